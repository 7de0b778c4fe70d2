"""Train a Yin-Yang netlist over several seeds and report mean and spread of the accuracy.

Seed s sets everything that differs between repetitions: the die (mismatch pattern) and the
temporal noise (``die_seed = noise_seed = s``), the data order and rule generators
(``train.seed = s``) and the initial weights (each projection's weight seed + 100·s). Runs are
independent processes, ``--jobs`` at a time.

    python benchmarks/train_yinyang.py netlists/yinyang_ideal.yaml --seeds 1 2 3 --jobs 2
    python benchmarks/train_yinyang.py netlists/yinyang_bss2.yaml --seeds 1 2 3 --jobs 2 --json
    python benchmarks/train_yinyang.py netlists/yinyang_surrogate_bss2.yaml --mismatch-scale 2   # decalibrated
    python benchmarks/train_yinyang.py netlists/yinyang_surrogate_bss2.yaml --seeds 1 --epochs 10 --resume   # go on
    python benchmarks/train_yinyang.py netlists/yinyang_surrogate_bss2.yaml --seeds 2 --epochs 3 --set train.optimizer.lr=0.015

``--set train.KEY.SUBKEY=VALUE`` (repeatable) changes one entry of the netlist's ``train:`` block
for a screen without editing the file (VALUE is read as YAML: numbers, true/false, lists); the
checkpoint directory's name then ends in the changes, so a screen never overwrites the plain run.

Writes one checkpoint directory per seed under ``--out`` (default runs/<netlist>-seed<s>) and
prints per-epoch lines as runs progress, then a summary (mean ± std over seeds).

``--calibrated`` trains each seed's die calibrated: the child first calibrates that die for the
values the netlist's populations use (``rules.calibration``, about 10 s for a core), writes the
calibration into its checkpoint directory (runs/<netlist>-calibrated-seed<s>) and names it as the
netlist's ``chip.calibration``; everything else is the same, so the two runs of a seed differ only
in the calibration:

    python benchmarks/train_yinyang.py netlists/yinyang_bss2.yaml --seeds 1 2 3 --jobs 1
    python benchmarks/train_yinyang.py netlists/yinyang_bss2.yaml --seeds 1 2 3 --jobs 1 --calibrated

``--calibrate`` with names of a targets file's keys (``v_leak v_reset v_threshold``, ``tau_mem``,
``tau_syn``, ...) calibrates only those parameters, the others staying at their nominal codes
(checkpoint directory runs/<netlist>-calibrated-<names>-seed<s>): which part of a calibration an
accuracy difference comes from. ``--respread 1`` (with ``--calibrated``) is a diagnosis: it puts a
fresh spread of the die's own mismatch sigmas back on the calibrated codes, so that the circuits
spread about their targets as on an uncalibrated die but in another pattern, while reading as the
targets: whether the spread itself, rather than something else the calibration changes, is what
an accuracy difference comes from.
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


def _bad_set(message: str):
    print(message, file=sys.stderr)
    raise SystemExit(2)


def parse_set(text: str) -> tuple[list[str], object]:
    """``train.a.b=VALUE`` -> (["a", "b"], VALUE read as YAML); SystemExit(2) with a one-line
    message, exit 2 otherwise."""
    import yaml

    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or path[0] != "train" or not all(path):
        _bad_set(f"--set {text!r}: expected train.KEY[.SUBKEY...]=VALUE")
    try:
        return path[1:], yaml.safe_load(value)
    except yaml.YAMLError as exc:
        _bad_set(f"--set {text!r}: VALUE is not YAML ({str(exc).splitlines()[0]})")


def apply_sets(train: dict, sets: list[str]) -> dict:
    """A copy of the ``train:`` block with each ``--set`` applied (nested mappings copied, not shared)."""
    import copy

    train = copy.deepcopy(train)
    for text in sets:
        path, value = parse_set(text)
        node = train
        for key in path[:-1]:
            if not isinstance(node.get(key, {}), dict):
                _bad_set(f"--set {text!r}: train.{key} is not a mapping")
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return train


def train_one(netlist: str, seed: int, out: str, epochs: int | None, calibrated: bool = False,
              mismatch_scale: float = 1.0, resume: bool = False, sets: list[str] = (),
              calibrate: list[str] | None = None, respread: float = 0.0) -> None:
    """Run in a child process: train one seed, one JSON line per epoch, a FINAL line at the end.
    ``calibrated``: calibrate the seed's die for the netlist's values first; ``mismatch_scale``
    multiplies every fixed-pattern sigma of the chip (2: a decalibrated chip); ``resume`` continues
    from the checkpoint in ``out`` (ending where an uninterrupted run would); ``calibrate``: the
    parameters to calibrate (targets-file keys: v_leak, tau_syn, ...), None for all; ``respread``:
    put a fresh spread back on the calibrated codes (see :func:`respread_calibration`)."""
    from chip.netlist import load_netlist
    from rules.training import Trainer

    nl = load_netlist(netlist, die_seed=seed, noise_seed=seed)
    if mismatch_scale != 1.0:
        sigmas = {k: mismatch_scale * v for k, v in dataclasses.asdict(nl.chip.mismatch).items()}
        nl = nl.replace(chip=nl.chip.replace(mismatch=dataclasses.replace(nl.chip.mismatch, **sigmas)))
    calibration = {}
    if calibrated:
        nl, calibration = calibrate_netlist(nl, out, seed, calibrate, respread)
    train = apply_sets(dict(nl.train), list(sets))
    train.update(seed=seed, checkpoint=out)
    if epochs is not None:
        train["epochs"] = epochs
    projections = {name: dataclasses.replace(p, weights=dataclasses.replace(p.weights, seed=p.weights.seed + 100 * seed))
                   for name, p in nl.projections.items()}
    trainer = Trainer(nl.replace(train=train, projections=projections))
    if resume:
        trainer.resume()
    trainer.on_epoch = lambda m: print(json.dumps({"seed": seed, **m}), flush=True)
    metrics = trainer.fit()
    print("FINAL " + json.dumps({"seed": seed, **calibration, **{k: v for k, v in metrics.items() if k != "history"}}),
          flush=True)


def calibrate_netlist(nl, out: str, seed: int, calibrate: list[str] | None = None, respread: float = 0.0):
    """``nl`` with its die calibrated for the values its populations use (``calibrate``: only those
    targets-file keys, None for all; ``respread``: see :func:`respread_calibration`), the
    calibration written to ``out``/calibration.yaml and named as the netlist's; and what a results
    file records of it. The calibration is made on ``nl.chip`` as it is, so a chip with an effect
    switched off (``benchmarks/ablation.py --calibrated``) gets a calibration of its own."""
    from rules.calibration import calibrate_die, targets_of_netlist

    cal = calibrate_die(nl.chip, targets=targets_of_netlist(nl, calibrated_parameters(calibrate)),
                        options={"calibration": {"report": False}})
    if respread:
        cal = respread_calibration(cal, nl, seed, respread)
    Path(out).mkdir(parents=True, exist_ok=True)
    path = cal.dump(Path(out) / "calibration.yaml")
    # named relative to --out, so that a results file holds no machine path
    return nl.replace(calibration=str(path.resolve())), {
        "calibration": str(Path(Path(out).name) / path.name), "calibration_wall_s": cal.made_by["wall_s"],
        "unreached": {k: len(v) for k, v in cal.unreached.items()}}


def calibrated_parameters(keys: list[str] | None) -> tuple[str, ...]:
    """The calibration's parameters for ``--calibrate`` keys (a targets file's spellings), all of
    them for None."""
    from rules.calibration.targets import DEFAULT_TARGETS, TARGET_KEYS

    if not keys:
        return tuple(DEFAULT_TARGETS)
    return tuple(name for key in keys for name in TARGET_KEYS[key])


def respread_calibration(cal, netlist, seed: int, scale: float):
    """A diagnosis, not a calibration: ``cal`` with a fresh fixed-pattern spread put back on the
    codes of the circuits the netlist's populations use. Each calibrated code is moved to the code
    whose nominal value is its own nominal value times (1 + scale·sigma·z) — sigma the profile's
    mismatch sigma of the parameter (of the volts, for potentials), z a fresh normal draw (seeded
    by the seed, independent of the die's pattern) — so that the circuits spread about their
    targets as much as on an uncalibrated die, while reading as the targets (the moved codes are
    the calibration's). The nominal transfer is read through a host (write a code, read its
    value; write a value, read its code), never the die."""
    import numpy as np

    from chip.host import HostInterface

    chip = netlist.chip
    host = HostInterface(netlist.replace(calibration=None))
    volts = chip.v_model_one_v - chip.v_model_zero_v
    rng = np.random.default_rng([seed, 999])
    codes = {}
    for name, code in cal.codes.items():
        z = rng.standard_normal(len(code))
        factor = np.maximum(1 + scale * chip.mismatch.sigma_of(name) * z, 0.05)
        moved = np.asarray(code, dtype=np.float64).copy()
        for population in host.populations:
            circuits = host.circuits(population)
            host.write_codes(population, name, moved[circuits])
            nominal = host.read_params(population, name)
            if name.startswith("v_"):  # the mismatch scales the potential in volts
                value = ((chip.v_model_zero_v + nominal * volts) * factor[circuits] - chip.v_model_zero_v) / volts
            else:
                value = nominal * factor[circuits]
            host.write_params(population, name, value)
            moved[circuits] = host.read_codes(population, name)
        codes[name] = moved
    return dataclasses.replace(cal, codes=codes, source=None,
                               made_by={**cal.made_by, "respread": {"scale": scale, "seed": [seed, 999]}})


def build_parser() -> argparse.ArgumentParser:
    from rules.calibration.targets import TARGET_KEYS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--calibrated", action="store_true",
                        help="calibrate each seed's die (rules.calibration) before training on it")
    parser.add_argument("--calibrate", nargs="+", default=None, metavar="PARAMETER",
                        choices=list(TARGET_KEYS),
                        help="with --calibrated: calibrate only these parameters (a targets file's keys); "
                             "the others stay at their nominal codes")
    parser.add_argument("--respread", type=float, default=0.0, metavar="SCALE",
                        help="with --calibrated, a diagnosis: put a fresh spread of SCALE x the die's mismatch "
                             "sigmas back on the calibrated codes (the circuits spread as on an uncalibrated die, "
                             "and read as the targets)")
    parser.add_argument("--mismatch-scale", type=float, default=1.0,
                        help="multiply every fixed-pattern mismatch sigma of the chip (2: decalibrated)")
    parser.add_argument("--resume", action="store_true",
                        help="continue each seed from its checkpoint under --out up to --epochs")
    parser.add_argument("--set", action="append", default=[], metavar="train.KEY=VALUE", dest="sets",
                        help="change one entry of the netlist's train block (VALUE as YAML); repeatable")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.sets:  # checked here, once, rather than failing in every child
        from chip.netlist import load_netlist

        apply_sets(dict(load_netlist(args.netlist).train), args.sets)
    if args.calibrate and not args.calibrated:
        _bad_set("--calibrate: names what to calibrate; it needs --calibrated")
    if args.respread and not args.calibrated:
        _bad_set("--respread: spreads a calibration's codes; it needs --calibrated")
    stem = Path(args.netlist).stem + ("-calibrated" if args.calibrated else "")
    if args.calibrate:
        stem += "-" + "-".join(args.calibrate)
    if args.respread:
        stem += f"-respread{args.respread:g}"
    if args.sets:
        stem += "-" + "-".join(t.removeprefix("train.").replace("/", "_").replace(" ", "") for t in args.sets)
    if args.child is not None:
        train_one(args.netlist, args.child, f"{args.out}/{stem}-seed{args.child}", args.epochs, args.calibrated,
                  args.mismatch_scale, args.resume, args.sets, args.calibrate, args.respread)
        return 0

    start = time.perf_counter()
    pending = list(args.seeds)
    running: dict[int, subprocess.Popen] = {}
    finals: dict[int, dict] = {}
    histories: dict[int, list] = {s: [] for s in args.seeds}
    while pending or running:
        while pending and len(running) < args.jobs:
            seed = pending.pop(0)
            cmd = [sys.executable, __file__, args.netlist, "--child", str(seed), "--out", args.out]
            if args.epochs is not None:
                cmd += ["--epochs", str(args.epochs)]
            if args.calibrated:
                cmd += ["--calibrated"]
            if args.calibrate:
                cmd += ["--calibrate", *args.calibrate]
            if args.respread:
                cmd += ["--respread", str(args.respread)]
            if args.mismatch_scale != 1.0:
                cmd += ["--mismatch-scale", str(args.mismatch_scale)]
            if args.resume:
                cmd += ["--resume"]
            for text in args.sets:
                cmd += ["--set", text]
            running[seed] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for seed, proc in list(running.items()):
            line = proc.stdout.readline()
            if line:
                if line.startswith("FINAL "):
                    finals[seed] = json.loads(line[6:])
                else:
                    histories[seed].append(json.loads(line))
                    h = histories[seed][-1]
                    print(f"seed {seed} epoch {h['epoch']:>2}: train {h['train_accuracy']:.3f} "
                          f"test {h.get('test_accuracy', float('nan')):.3f} ({h['epoch_wall_s']:.0f} s)",
                          file=sys.stderr, flush=True)
            elif proc.poll() is not None:
                del running[seed]
                if proc.returncode != 0:
                    print(f"seed {seed} failed with exit code {proc.returncode}", file=sys.stderr)
    tests = [finals[s]["test_accuracy"] for s in sorted(finals)]
    epoch_s = [h["epoch_wall_s"] for s in histories for h in histories[s]]
    summary = {
        "netlist": args.netlist, "sets": args.sets, "calibrated": args.calibrated,
        "calibrate": args.calibrate, "respread": args.respread, "mismatch_scale": args.mismatch_scale,
        "seeds": sorted(finals), "test_accuracy": tests,
        "test_accuracy_mean": statistics.mean(tests) if tests else None,
        "test_accuracy_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
        "train_accuracy": [finals[s]["train_accuracy"] for s in sorted(finals)],
        "calibration": {s: {k: finals[s][k] for k in ("calibration", "calibration_wall_s", "unreached") if k in finals[s]}
                        for s in sorted(finals)} if args.calibrated else None,
        "epoch_wall_s_median": statistics.median(epoch_s) if epoch_s else None,
        "jobs": args.jobs, "wall_s": time.perf_counter() - start, "histories": histories,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{args.netlist}{' (calibrated dies)' if args.calibrated else ''}: test accuracy {summary['test_accuracy_mean']:.4f} ± {summary['test_accuracy_std']:.4f} "
              f"over seeds {summary['seeds']} ({', '.join(f'{t:.3f}' for t in tests)}); "
              f"median epoch {summary['epoch_wall_s_median']:.1f} s with {args.jobs} jobs on this machine")
    return 0 if len(finals) == len(args.seeds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
