"""Where a trained Yin-Yang network makes its test errors: the test-time lottery and the margins.

Takes checkpoint directories that ``train_yinyang.py`` (or ``chipctl train``) wrote and, for each,
puts the weights the last test pass used (the averaged weights with ``ema``, else the chip's) back
on the same die (read from the checkpoint), then runs the test set

* once with the noise of the training's last test pass (it must reproduce the reported figure),
* ``--passes`` more times with fresh noise seeds: the spread of one figure over test passes,
* once on the same die with membrane noise and batch-to-batch threshold drift off (``quiet``):
  what the same weights do without the run-to-run jitter,

and sorts every error by its first output spikes: the correct neuron silent, no output spike at
all, or another neuron first by a lead of < 0.1 µs (ties included), 0.1–0.3, 0.3–1 or >= 1 µs
(confidently wrong). It also reports the per-sample spread over the fresh passes of the correct
neuron's lead (the best other neuron's first spike minus the correct one's) — the jitter a margin
has to cover. Evaluation only, nothing is trained:

    python benchmarks/train_yinyang.py netlists/yinyang_bss2.yaml --seeds 2 3 4 --jobs 1 --out runs/diag
    python benchmarks/yinyang_errors.py netlists/yinyang_bss2.yaml runs/diag/yinyang_bss2-seed2 runs/diag/yinyang_bss2-seed3 --json

The netlist must be the one the checkpoints were trained from (its chip profile and populations);
a checkpoint of another netlist is refused by the host, one line, exit 2. A checkpoint of a training
on a calibrated die (``train_yinyang.py --calibrated``) is evaluated calibrated: on the same die the
host restores every parameter code it saved, the calibrated ones included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ERROR_KINDS = ("correct_silent", "no_output_spike", "lead_lt_0.1us", "lead_0.1_0.3us", "lead_0.3_1us", "lead_ge_1us")
NEAR_KINDS = ("correct_lead_le_0.1us", "correct_lead_0.1_0.3us", "correct_lead_0.3_1us")


def classify(first: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, dict[str, int], np.ndarray]:
    """(right per sample, counts of ERROR_KINDS and NEAR_KINDS, the correct neuron's lead in µs)
    from first output spike times (samples, classes; inf = silent), decoded as the trainer does
    (earliest first spike, ties to the lower index; all silent = no class). The lead is the best
    other neuron's first spike minus the correct one's: > 0 right, < 0 wrong; inf / nan where
    the correct neuron or all the others are silent."""
    n = len(labels)
    rows = np.arange(n)
    pred = np.argmin(first, axis=1)
    fired = np.isfinite(first).any(axis=1)
    pred[~fired] = -1
    right = pred == labels
    t_correct = first[rows, labels]
    others = first.copy()
    others[rows, labels] = np.inf
    with np.errstate(invalid="ignore"):
        lead = others.min(axis=1) - t_correct
    wrong = ~right & fired & np.isfinite(t_correct)
    lag = -lead
    counts = {
        "correct_silent": int(np.sum(~right & fired & ~np.isfinite(t_correct))),
        "no_output_spike": int(np.sum(~fired)),
        "lead_lt_0.1us": int(np.sum(wrong & (lag < 0.1))),
        "lead_0.1_0.3us": int(np.sum(wrong & (lag >= 0.1) & (lag < 0.3))),
        "lead_0.3_1us": int(np.sum(wrong & (lag >= 0.3) & (lag < 1.0))),
        "lead_ge_1us": int(np.sum(wrong & (lag >= 1.0))),
        "correct_lead_le_0.1us": int(np.sum(right & (lead <= 0.1))),
        "correct_lead_0.1_0.3us": int(np.sum(right & (lead > 0.1) & (lead <= 0.3))),
        "correct_lead_0.3_1us": int(np.sum(right & (lead > 0.3) & (lead <= 1.0))),
    }
    return right, counts, lead


def _trainer(netlist: str, die_seed: int, quiet: bool):
    from chip.netlist import load_netlist
    from rules.training import Trainer

    nl = load_netlist(netlist, die_seed=die_seed, noise_seed=die_seed)
    if quiet:
        chip = nl.chip
        nl = nl.replace(chip=chip.replace(nonidealities=dataclasses.replace(chip.nonidealities, batch_drift=False),
                                          noise_membrane=0.0))
    return Trainer(nl.replace(train=dict(nl.train, checkpoint=None)))


def _first_spikes(trainer, noise_base: int) -> np.ndarray:
    """First output spike times over the test set, run as ``Trainer.evaluate`` runs it (its test
    batches, noise from ``noise_base``, the run counter left unchanged)."""
    from rules.training.trainer import _merge_requests

    record, _ = _merge_requests({}, trainer.netlist.record, trainer.host, trainer.config.output, trainer.config.decode)
    return np.concatenate([result.spikes[trainer.config.output].first_spike_times()
                           for _, result in trainer.eval_runs(trainer.x_test, trainer.y_test, record, noise_base)])


def diagnose(netlist: str, checkpoint: str, passes: int = 5) -> dict:
    from chip.errors import CheckpointError
    from rules.training.checkpoints import load_checkpoint

    data = load_checkpoint(checkpoint)
    try:
        die_seed = int(data["chip"]["die"]["seed"])
        runs_done = int(data["chip"]["runs_done"])
        history = json.loads(data["history_json"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint}: not a training checkpoint ({type(exc).__name__}: {exc})") from None
    averaged = {k.replace("|", ":"): np.asarray(v) for k, v in data.get("average", {}).items()}
    row: dict = {"checkpoint": Path(checkpoint).name, "die_seed": die_seed, "epochs": len(history),
                 "reported_test_accuracy": history[-1].get("test_accuracy") if history else None}
    results = {}
    for quiet in (False, True):
        trainer = _trainer(netlist, die_seed, quiet)
        trainer.load_chip(data)  # the chip as saved: the tested weights, quantized on this die
        if averaged:
            trainer._write_master(averaged)
        trainer.host.runs_done = runs_done
        trainer.epoch = max(len(history) - 1, 0)
        last = trainer.eval_noise_base()  # the last test pass's
        labels = trainer.y_test
        if quiet:
            right, counts, lead = classify(_first_spikes(trainer, last), labels)
            results["quiet"] = {"accuracy": float(right.mean()), "errors": counts, "right": right, "lead": lead}
            continue
        right, counts, _ = classify(_first_spikes(trainer, last), labels)
        row["reproduced_test_accuracy"] = float(right.mean())
        row["reproduced_errors"] = counts
        rights, leads, all_counts = [], [], []
        for k in range(passes):
            r, c, lead = classify(_first_spikes(trainer, 10_000_000 + 100_003 * (k + 1) + 1000 * die_seed), labels)
            rights.append(r), leads.append(lead), all_counts.append(c)
        if not passes:
            continue
        accs = [float(r.mean()) for r in rights]
        rights = np.array(rights)
        row["passes"] = {
            "accuracy": accs, "mean": statistics.mean(accs), "sd": statistics.stdev(accs) if passes > 1 else 0.0,
            "always_right": int(rights.all(0).sum()), "always_wrong": int((~rights).all(0).sum()),
            "flipping": int((rights.any(0) & ~rights.all(0)).sum()),
            "errors": {key: sum(c[key] for c in all_counts) for key in all_counts[0]}}
        leads = np.array(leads)
        finite = np.isfinite(leads).all(0)
        if passes > 1 and finite.any():
            sd = leads[:, finite].std(0, ddof=1)
            row["lead_jitter_us"] = {"median_sd": float(np.median(sd)), "p90_sd": float(np.percentile(sd, 90))}
    quiet = results["quiet"]
    row["quiet"] = {"accuracy": quiet["accuracy"], "errors": quiet["errors"]}
    if passes:
        flipping = rights.any(0) & ~rights.all(0)
        lead = np.abs(quiet["lead"][flipping & np.isfinite(quiet["lead"])])
        row["quiet"]["flipping_samples_median_abs_lead_us"] = float(np.median(lead)) if len(lead) else None
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("checkpoints", nargs="+", help="checkpoint directories of trainings of this netlist")
    parser.add_argument("--passes", type=int, default=5, help="test passes with fresh noise seeds (default 5)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    return parser


def main(argv=None) -> int:
    from chip.errors import ChipctlError

    args = build_parser().parse_args(argv)
    if args.passes < 0:
        print("--passes must be >= 0", file=sys.stderr)
        return 2
    rows = []
    try:
        for path in args.checkpoints:
            rows.append(diagnose(args.netlist, path, args.passes))
            r = rows[-1]
            print(f"{r['checkpoint']}: reported {r['reported_test_accuracy']}, reproduced {r['reproduced_test_accuracy']:.3f}; "
                  + (f"{args.passes} fresh passes {r['passes']['mean']:.3f} ± {r['passes']['sd']:.3f}; " if args.passes else "")
                  + f"noise and drift off {r['quiet']['accuracy']:.3f}", file=sys.stderr, flush=True)
    except ChipctlError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"netlist": Path(args.netlist).name, "passes": args.passes, "rows": rows}))
    else:
        for r in rows:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
