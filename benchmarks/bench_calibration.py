"""How long a whole core takes to calibrate, and what the calibration does to the spreads.

For each die: ``chipctl calibrate``'s work in this process (``rules.calibration.calibrate_die``),
timed twice — the calibration alone (``report: false``) and with the spreads measured before and
after (what ``chipctl calibrate`` does by default) — and the report's spreads per parameter: the
standard deviation over the core's circuits (5 % cut from each tail) with nominal codes and with
the calibrated ones, measured through the host, and their ratio against the bars of calix's
hardware tests. A first, untimed calibration of a small chip loads the compiled step loop.

    python benchmarks/bench_calibration.py                    # bss2, dies 1 2 3, a table
    python benchmarks/bench_calibration.py --die-seeds 1 --json

The spreads of the circuits' true values (which only the emulator knows) are checked by
``tests/test_calibration.py``; its slow test prints them for whole cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

#: calibrated spread / uncalibrated spread that calix's hardware tests require
#: (tests/hw/py/test_neuron_distribution.py)
BARS = {"v_leak": 0.30, "v_reset": 0.20, "v_threshold": 0.35, "tau_mem_us": 0.45, "tau_syn_exc_us": 0.20,
        "tau_syn_inh_us": 0.20}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="bss2")
    parser.add_argument("--die-seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv=None) -> int:
    from chip.profiles import get_profile
    from rules.calibration import calibrate_die, spread_table

    args = build_parser().parse_args(argv)

    chip = get_profile(args.profile)
    calibrate_die(chip.replace(neurons_per_core=64), targets={"v_leak": 0.0},
                  options={"calibration": {"report": False}})  # loads the compiled step loop
    dies = []
    for seed in args.die_seeds:
        t0 = time.perf_counter()
        bare = calibrate_die(chip, die_seed=seed, options={"calibration": {"report": False}})
        t1 = time.perf_counter()
        cal = calibrate_die(chip, die_seed=seed)
        t2 = time.perf_counter()
        rows = spread_table(cal)
        dies.append({"die_seed": seed, "circuits": cal.circuits, "calibrate_s": t1 - t0,
                     "calibrate_and_report_s": t2 - t1, "runs": bare.report["runs"],
                     "neuron_steps": bare.report["neuron_steps"], "rows": rows,
                     "unreached": {k: len(v) for k, v in cal.unreached.items()}})
    summary = {"profile": args.profile, "dies": dies,
               "calibrate_s_median": statistics.median(d["calibrate_s"] for d in dies),
               "calibrate_and_report_s_median": statistics.median(d["calibrate_and_report_s"] for d in dies),
               "bars": BARS}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.profile}: {dies[0]['circuits']} circuits per die; calibration alone "
          f"{summary['calibrate_s_median']:.1f} s, with the spreads measured before and after "
          f"{summary['calibrate_and_report_s_median']:.1f} s (medians over dies {args.die_seeds})")
    print(f"{'die':>4} {'parameter':<15} {'before':>10} {'after':>10} {'ratio':>7} {'bar':>5}  not reached")
    for d in dies:
        for row in d["rows"]:
            name = row["parameter"]
            ok = "ok" if row["ratio"] <= BARS[name] else "OVER"
            print(f"{d['die_seed']:>4} {name:<15} {row['before_spread']:>10.5f} {row['after_spread']:>10.5f} "
                  f"{row['ratio']:>7.3f} {BARS[name]:>5.2f} {ok:>4}  {row['unreached']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
