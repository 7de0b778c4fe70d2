#!/usr/bin/env python3
"""What correlation sensors and a plasticity timer cost a run (bss2, everything on).

    python benchmarks/bench_sensors.py [--repeats 5] [--batch 16] [--duration-us 500]
        [--timer-us 5] [--json]

The network is a plastic layer: 64 Poisson inputs (40 kHz) onto 64 LIF neurons (all to all,
signed: an excitatory and an inhibitory row each) and 64 × 63 recurrent excitatory synapses (all
to all without self-connections; the rows the buses have left), τ_mem 10 µs, τ_syn 5 µs.
Four cases, interleaved within each repeat so they share the machine's noise:

- ``off``: spikes only;
- ``timer``: a timer every ``--timer-us`` whose callback does nothing (the cost of cutting the
  run into kernel calls);
- ``sensors``: the sensors of both projections recorded (read once, at the end of the run);
- ``sensors_timer``: the sensors, and on the timer each projection read through the CADC and
  reset, as a plasticity rule does (``host.read_correlations`` / ``host.reset_correlations``).

Reported per case (median over repeats): ``loop_s`` (the step loop, ``RunResult.loop_s``, which
includes the timer callbacks), of that ``read_s`` (inside the callbacks: the reads through the CADC
model and the resets) and ``kernel_s`` (the rest), ``wall_s`` (all of ``host.run``) and the ratio of
each to ``off``.
One unmeasured warm-up run of each case comes first. Only the host interface is used.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NETLIST = """\
name: sensor_bench
duration: {duration} us
batch: {batch}
chip: {{profile: bss2}}
populations:
  layer: {{size: 64, params: {{tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 1}}}}
inputs:
  in: {{size: 64, type: poisson, rate: 40 kHz, seed: 1}}
projections:
  feed: {{pre: in, post: layer, sign: signed, weights: {{normal: {{mean: 0.05, std: 0.2}}, seed: 1}}}}
  recurrent: {{pre: layer, post: layer, sign: excitatory, connectivity: {{all_to_all: {{allow_self: false}}}},
              weights: {{uniform: {{low: 0.0, high: 0.04}}, seed: 2}}}}
record:
  spikes: all
"""

CASES = ("off", "timer", "sensors", "sensors_timer")


def run_case(host, case: str, timer_us: float):
    from chip.netlist import Record

    projections = ("feed", "recurrent")
    record = Record(spikes=("layer",), correlations=projections if case.startswith("sensors") else ())
    reads = [0, 0.0]

    def idle(t_us):
        pass

    def plasticity(t_us):
        begin = time.perf_counter()
        for name in projections:
            host.read_correlations(name)
            host.reset_correlations(name)
        reads[0] += 1
        reads[1] += time.perf_counter() - begin

    timer = None
    if case == "timer":
        timer = (timer_us, idle)
    elif case == "sensors_timer":
        timer = (timer_us, plasticity)
    start = time.perf_counter()
    result = host.run(record=record, timer=timer)
    return {"wall_s": time.perf_counter() - start, "loop_s": result.loop_s, "steps": result.steps,
            "spikes": len(result.spikes["layer"]), "reads": reads[0], "read_s": reads[1],
            "kernel_s": result.loop_s - reads[1]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--duration-us", type=float, default=500.0)
    parser.add_argument("--timer-us", type=float, default=5.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from chip.host import HostInterface
    from chip.netlist import load_netlist_text

    host = HostInterface(load_netlist_text(NETLIST.format(duration=args.duration_us, batch=args.batch)))
    for case in CASES:  # warm-up: the compiled loop, the tables
        run_case(host, case, args.timer_us)
    runs = {case: [] for case in CASES}
    for _ in range(args.repeats):
        for case in CASES:
            runs[case].append(run_case(host, case, args.timer_us))
    median = {case: {key: statistics.median(r[key] for r in rs) for key in ("wall_s", "loop_s", "kernel_s", "read_s")}
              for case, rs in runs.items()}
    for case, rs in runs.items():
        median[case].update(steps=rs[0]["steps"], reads=rs[0]["reads"],
                            spikes_per_sample=rs[0]["spikes"] / args.batch,
                            per_step_us=median[case]["loop_s"] / rs[0]["steps"] * 1e6)
    ratios = {case: {key: median[case][key] / median["off"][key] for key in ("wall_s", "loop_s", "kernel_s")}
              for case in CASES}
    out = {"batch": args.batch, "duration_us": args.duration_us, "timer_us": args.timer_us, "repeats": args.repeats,
           "sensors": 2 * (64 * 64 + 64 * 64), "median": median, "ratio_to_off": ratios,
           "runs": runs}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"bss2, 64 → 64 (+64 × 63 recurrent), batch {args.batch}, {args.duration_us:g} µs "
          f"({median['off']['steps']} steps), timer every {args.timer_us:g} µs; medians of {args.repeats}")
    print(f"{'case':<15}{'loop s':>9}{'µs/step':>9}{'reads s':>9}{'wall s':>9}{'loop/off':>10}{'kernel/off':>11}"
          f"{'wall/off':>10}")
    for case in CASES:
        m, r = median[case], ratios[case]
        print(f"{case:<15}{m['loop_s']:>9.3f}{m['per_step_us']:>9.1f}{m['read_s']:>9.3f}{m['wall_s']:>9.3f}"
              f"{r['loop_s']:>10.2f}{r['kernel_s']:>11.2f}{r['wall_s']:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
