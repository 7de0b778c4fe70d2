#!/usr/bin/env python3
"""What each imperfection of the chip costs: one training netlist with every effect on, with each
switched off in turn, and on the ideal profile; test accuracy over several seeds per row.

    python benchmarks/ablation.py netlists/yinyang_bss2.yaml --seeds 1 2 3 --jobs 2
        [--rows all,no_saturation,...] [--epochs N] [--calibrated] [--json-out results/ablation.json]

Seed s sets the die and the noise (die_seed = noise_seed = s), the data order and the initial
weights (each projection's weight seed + 100·s), as ``benchmarks/train_yinyang.py`` does; every row
trains the same seeds, so rows differ only in the effect they switch off. The readout's switches
(``cadc_*``, ``correlation_spread``) are not rows: they never change spikes
(``tests/test_readout.py::test_the_readout_never_changes_the_spikes``), so a spike-based rule
trains identically with them on or off. ``--calibrated`` calibrates each row's die for the values
the netlist's populations use before training on it (as ``train_yinyang.py --calibrated`` does),
the calibration made on the row's own chip — with the row's effect switched off — so that a
calibrated and an uncalibrated ablation of the same seeds differ only in the calibration (which
effect a calibrated die's accuracy difference comes from). Prints a markdown table (mean ± std of the final test
accuracy, and the seeds' values) and, with ``--json-out``, writes every run's history.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# row name -> (what it is, changes: profile field -> value; "nonidealities" takes a dict of switches
# or "off" for all of them ("base": "off": the given switches on, every other one off), "mismatch"
# takes "off", "profile" swaps the profile before the rest)
ROWS: dict[str, tuple[str, dict]] = {
    "all": ("bss2, every effect on", {}),
    "no_saturation": ("synaptic input linear", {"nonidealities": {"synaptic_saturation": False}}),
    "no_rails": ("membrane without rails", {"nonidealities": {"membrane_rails": False}}),
    "no_digital_refractory": ("analog refractory time (10 % spread)", {"nonidealities": {"digital_refractory": False}}),
    "no_batch_drift": ("no batch-to-batch threshold drift", {"nonidealities": {"batch_drift": False}}),
    "no_setup_variation": ("no per-die weight scale, CADC slope, input delay",
                           {"nonidealities": {"setup_variation": False}}),
    "no_mismatch": ("no fixed-pattern mismatch", {"mismatch": "off"}),
    "no_noise": ("no membrane noise", {"noise_membrane": 0.0}),
    "ideal": ("ideal profile (float weights, no mismatch, noise, latency or effects)", {"profile": "ideal"}),
    # what is left of bss2 with every switch above off at once: its structure (6-bit weights,
    # 10-bit parameter codes, the 0.2 us step and 8 ns clock, event latency and routing)
    "effects_off": ("bss2 with every effect, mismatch and noise off",
                    {"nonidealities": "off", "mismatch": "off", "noise_membrane": 0.0}),
    # ... and which structural property costs what: the weights' resolution alone, both ways
    "effects_off_float_weights": ("as effects_off, with float weights (no 6-bit quantization)",
                                  {"nonidealities": "off", "mismatch": "off", "noise_membrane": 0.0,
                                   "weight_bits": None}),
    "ideal_6bit": ("ideal profile with 6-bit weights (only the quantization on)",
                   {"profile": "ideal", "weight_bits": 6}),
    # the effects in two groups: what changes from run to run (membrane noise, threshold drift
    # between batches) and what a die keeps (mismatch, saturation, rails, refractory, setup)
    "only_noise_drift": ("bss2 with only membrane noise and batch drift on",
                         {"nonidealities": {"batch_drift": True}, "mismatch": "off", "base": "off"}),
    "no_noise_drift": ("bss2 without membrane noise and batch drift (the die's fixed effects on)",
                       {"nonidealities": {"batch_drift": False}, "noise_membrane": 0.0}),
}


def _netlist(path: str, row: str, seed: int, epochs: int | None, out: str):
    from chip.netlist import load_netlist
    from chip.profiles import Mismatch, Nonidealities

    _, changes = ROWS[row]
    changes = dict(changes)
    nl = load_netlist(path, profile=changes.pop("profile", None), die_seed=seed, noise_seed=seed)
    chip = nl.chip
    switches = changes.pop("nonidealities", None)
    # "base": "off" starts the switches from all off, so the row's own switches are the ones on
    base = Nonidealities() if changes.pop("base", None) == "off" else chip.nonidealities
    if switches == "off":
        chip = chip.replace(nonidealities=Nonidealities())
    elif switches or base is not chip.nonidealities:
        chip = chip.replace(nonidealities=dataclasses.replace(base, **(switches or {})))
    if changes.pop("mismatch", None) == "off":
        chip = chip.replace(mismatch=Mismatch())
    if changes:
        chip = chip.replace(**changes)
    train = dict(nl.train, seed=seed, checkpoint=out)
    if epochs is not None:
        train["epochs"] = epochs
    projections = {name: dataclasses.replace(p, weights=dataclasses.replace(p.weights, seed=p.weights.seed + 100 * seed))
                   for name, p in nl.projections.items()}
    return nl.replace(chip=chip, train=train, projections=projections)


def _train_yinyang():
    """``benchmarks/train_yinyang.py`` as a module (it sits next to this script, not in a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_yinyang", Path(__file__).resolve().with_name("train_yinyang.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_one(path: str, row: str, seed: int, epochs: int | None, out: str, calibrated: bool = False) -> None:
    """In a child process: one row, one seed; a JSON line per epoch and a FINAL line.
    ``calibrated``: calibrate the row's die first (``train_yinyang.calibrate_netlist``)."""
    from rules.training import Trainer

    nl = _netlist(path, row, seed, epochs, out)
    calibration = {}
    if calibrated:
        nl, calibration = _train_yinyang().calibrate_netlist(nl, out, seed)
    trainer = Trainer(nl)
    trainer.on_epoch = lambda m: print(json.dumps(m), flush=True)
    metrics = trainer.fit()
    print("FINAL " + json.dumps({**calibration, **{k: v for k, v in metrics.items() if k != "history"}}), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--calibrated", action="store_true",
                        help="calibrate each row's die (for the row's chip) before training on it")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.child is not None:
        row, seed = args.child[0], int(args.child[1])
        train_one(args.netlist, row, seed, args.epochs,
                  f"{args.out}/{row}{'-calibrated' if args.calibrated else ''}-seed{seed}", args.calibrated)
        return 0
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")

    start = time.perf_counter()
    pending = [(row, seed) for row in rows for seed in args.seeds]
    running: dict[tuple[str, int], subprocess.Popen] = {}
    finals: dict[tuple[str, int], dict] = {}
    histories: dict[str, list] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            key = pending.pop(0)
            cmd = [sys.executable, __file__, args.netlist, "--child", key[0], str(key[1]), "--out", args.out]
            if args.epochs is not None:
                cmd += ["--epochs", str(args.epochs)]
            if args.calibrated:
                cmd += ["--calibrated"]
            running[key] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for key, proc in list(running.items()):
            line = proc.stdout.readline()
            if line.startswith("FINAL "):
                finals[key] = json.loads(line[6:])
                print(f"{key[0]} seed {key[1]}: test {finals[key]['test_accuracy']:.3f}", file=sys.stderr, flush=True)
            elif line:
                histories.setdefault(f"{key[0]}/{key[1]}", []).append(json.loads(line))
            elif proc.poll() is not None:
                del running[key]
                if proc.returncode != 0:
                    print(f"{key[0]} seed {key[1]} failed with exit code {proc.returncode}", file=sys.stderr)

    table = ["| row | what | test accuracy (mean ± std) | per seed | median epoch |",
             "|---|---|---|---|---|"]
    summary = {}
    for row in rows:
        accs = [finals[(row, s)]["test_accuracy"] for s in args.seeds if (row, s) in finals]
        epochs = [h["epoch_wall_s"] for s in args.seeds for h in histories.get(f"{row}/{s}", [])]
        mean = statistics.mean(accs) if accs else float("nan")
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        summary[row] = {"what": ROWS[row][0], "test_accuracy": accs, "mean": mean, "std": std,
                        "epoch_wall_s_median": statistics.median(epochs) if epochs else None}
        if args.calibrated:
            summary[row]["calibration"] = {s: {k: finals[(row, s)][k] for k in ("calibration", "calibration_wall_s", "unreached")
                                               if k in finals[(row, s)]} for s in args.seeds if (row, s) in finals}
        table.append(f"| `{row}` | {ROWS[row][0]} | {100 * mean:.1f} ± {100 * std:.1f} % | "
                     f"{', '.join(f'{100 * a:.1f}' for a in accs)} | "
                     f"{summary[row]['epoch_wall_s_median'] or float('nan'):.1f} s |")
    print("\n".join(table))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({
            "netlist": args.netlist, "seeds": args.seeds, "jobs": args.jobs, "epochs": args.epochs,
            "calibrated": args.calibrated,
            "wall_s": time.perf_counter() - start, "rows": summary, "histories": histories}, indent=1))
    return 0 if len(finals) == len(rows) * len(args.seeds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
