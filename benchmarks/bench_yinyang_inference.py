#!/usr/bin/env python3
"""Yin-Yang-shaped inference throughput (samples/s) on the bss2 profile (mismatch and noise on).

    python benchmarks/bench_yinyang_inference.py [--batches 64,256,1000] [--repeats 3]
        [--min-samples 256] [--netlist netlists/yinyang_bss2.yaml] [--json]

The network is netlists/yinyang_bss2.yaml when it exists (25 inputs → 100 hidden LIF → 3 out,
signed weights, τ_mem 12 µs, τ_syn 6 µs, 50 µs per sample); otherwise the same 25-100-3 network is
built here as YAML text and loaded with ``chip.netlist.load_netlist_text``. Inputs are the
Yin-Yang test set (``rules.tasks.yinyang`` if importable, else uniform random points) latency coded as in
netlists/yinyang_batch.npz: channels [x, y, 1−x, 1−y, bias] tiled 5×, one spike each at
2 µs + 20 µs·value (bias at 2 µs), so 25 spikes per sample in [2, 22] µs.

For each batch size B: one unmeasured warm-up ``host.run(inputs, batch=B)``, then ``--repeats``
timed repeats, each of ceil(min_samples / B) consecutive runs (different samples each run).
Batch sizes are interleaved within each repeat so they share the machine's noise. Reported
(median over repeats): samples/s = samples / wall time around ``host.run`` (everything the host
call does: input routing, the emulation, result assembly); ``per_step_us`` = the emulation loop's
own ``RunResult.wall_s`` / ``RunResult.steps``; and the process's peak RSS after the warm-up of
each size (sizes are warmed up in increasing order, so this is the peak up to that size).
Only ``chip.host.HostInterface`` / ``chip.netlist`` are used, no emulator internals.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_NETLIST = REPO / "netlists" / "yinyang_bss2.yaml"

# Peer figures measured earlier on this machine (not re-measured by this script).
PEER_FIGURES = {
    "snntorch": {
        "setup": "snnTorch 1.0, torch 2.13 CPU, Yin-Yang 5(x5)-120-3, 38 steps of 1 us",
        "samples_per_s": {"64": 4600.0, "1000": 18900.0},
        "note": "measured earlier on this machine, not re-measured in the same run",
    },
}

FALLBACK_NETLIST = """\
name: yinyang_bench
description: Yin-Yang 25-100-3 on bss2 (built by benchmarks/bench_yinyang_inference.py).
duration: 50 us
batch: 64
chip:
  profile: bss2
populations:
  hidden:
    size: 100
    params: {tau_mem: 12 us, tau_syn: 6 us, tau_ref: 0.2 us, v_leak: 0, v_reset: 0, v_threshold: 1, weight_full_scale: 3.0}
  out:
    size: 3
    params: {tau_mem: 12 us, tau_syn: 6 us, tau_ref: 0.2 us, v_leak: 0, v_reset: 0, v_threshold: 1, weight_full_scale: 1.0}
inputs:
  in:
    size: 25
    type: spikes
    times: {unit: us, values: [%s]}
projections:
  in_hidden:  {pre: in, post: hidden, sign: signed, weights: {normal: {mean: 0.3, std: 0.6}, seed: 1}}
  hidden_out: {pre: hidden, post: out, sign: signed, weights: {normal: {mean: 0.05, std: 0.15}, seed: 2}}
record:
  spikes: all
""" % ", ".join(["[2.0]"] * 25)


def load_host(netlist: Path | None, profile: str | None):
    from chip.host import HostInterface
    from chip.netlist import load_netlist, load_netlist_text

    if netlist is not None and netlist.exists():
        nl = load_netlist(netlist, profile=profile)
        source = str(netlist)
    else:
        nl = load_netlist_text(FALLBACK_NETLIST, profile=profile)
        source = "built-in 25-100-3 text (netlist file not found)"
    return HostInterface(nl), source


def yinyang_points(n: int) -> tuple[np.ndarray, str]:
    try:
        from rules.tasks.yinyang import yinyang

        x, _ = yinyang("test")
        x = np.asarray(x, dtype=np.float64)[:, :2]
        source = "rules.tasks.yinyang test split"
    except Exception:  # the data generator is optional for a throughput benchmark
        x = np.random.default_rng(40).uniform(0.0, 1.0, size=(1000, 2))
        source = "uniform random points (rules.tasks.yinyang not importable)"
    reps = math.ceil(n / len(x))
    return np.tile(x, (reps, 1))[:n], source


def encode(points: np.ndarray, channels: int, t_early: float = 2.0, t_late: float = 22.0) -> np.ndarray:
    """(n, 2) points → (n, channels) spike times: [x, y, 1−x, 1−y, bias] tiled to `channels`."""
    x, y = points[:, 0], points[:, 1]
    feats = np.stack([x, y, 1 - x, 1 - y, np.zeros_like(x)], axis=1)
    feats = np.tile(feats, (1, math.ceil(channels / 5)))[:, :channels]
    return t_early + feats * (t_late - t_early)


def make_events(times: np.ndarray):
    from chip.events import SpikeEvents

    return SpikeEvents.from_dense_times(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", default="64,256,1000", help="comma-separated batch sizes (default 64,256,1000)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per batch size (default 3)")
    p.add_argument("--min-samples", type=int, default=256,
                   help="samples per timed repeat: ceil(min_samples / B) runs of batch B (default 256)")
    p.add_argument("--netlist", type=Path, default=DEFAULT_NETLIST,
                   help="Yin-Yang netlist (default netlists/yinyang_bss2.yaml; built-in text if missing)")
    p.add_argument("--profile", default=None, help="override the netlist's profile (default: its own, bss2)")
    p.add_argument("--input", default=None, help="name of the 25-channel input (default: auto)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or min(batches) < 1 or args.repeats < 1 or args.min_samples < 1:
        p.error("batch sizes, --repeats and --min-samples must be >= 1")
    batches = sorted(set(batches))

    t0 = time.perf_counter()
    host, netlist_source = load_host(args.netlist, args.profile)
    load_s = time.perf_counter() - t0
    inputs = host.inputs
    name = args.input or next((n for n, s in inputs.items() if s == 25), next(iter(inputs)))
    channels = inputs[name]
    runs_per = {b: math.ceil(args.min_samples / b) for b in batches}
    need = max(b * (1 + args.repeats * runs_per[b]) for b in batches)
    points, data_source = yinyang_points(need)
    times = encode(points, channels)
    log = sys.stderr
    log.write(f"netlist: {netlist_source} (profile {host.profile.name}, input {name!r}, {channels} channels); "
              f"data: {data_source}\n")

    cursor = {b: 0 for b in batches}

    def one_run(b: int):
        start = cursor[b]
        cursor[b] = (start + b) % (len(times) - b + 1) if len(times) > b else 0
        ev = make_events(times[start:start + b])
        t = time.perf_counter()
        res = host.run({name: ev}, batch=b)
        return time.perf_counter() - t, res

    per_batch = {b: {"warmup_s": None, "rss_after_warmup_mb": None, "repeats": []} for b in batches}
    for b in batches:
        wall, res = one_run(b)
        per_batch[b]["warmup_s"] = wall
        per_batch[b]["rss_after_warmup_mb"] = peak_rss_mb()
        per_batch[b]["steps"] = int(res.steps)
        log.write(f"warm-up batch {b}: {wall:.2f} s, {res.steps} steps\n")

    for r in range(args.repeats):
        for b in batches:
            walls, emu, steps, out_spikes, hid_spikes = [], 0.0, 0, 0, 0
            for _ in range(runs_per[b]):
                wall, res = one_run(b)
                walls.append(wall)
                emu += float(res.wall_s)
                steps += int(res.steps)
                out_spikes += len(res.spikes["out"]) if "out" in res.spikes else 0
                hid_spikes += len(res.spikes["hidden"]) if "hidden" in res.spikes else 0
            samples = b * runs_per[b]
            rep = {
                "runs": runs_per[b],
                "samples": samples,
                "wall_s": sum(walls),
                "samples_per_s": samples / sum(walls),
                "emulation_wall_s": emu,
                "per_step_us": emu / steps * 1e6,
                "per_step_per_sample_us": emu / steps / b * 1e6,
                "out_spikes_per_sample": out_spikes / samples,
                "hidden_spikes_per_sample": hid_spikes / samples,
            }
            per_batch[b]["repeats"].append(rep)
            log.write(f"repeat {r + 1}/{args.repeats} batch {b}: {rep['samples_per_s']:.0f} samples/s, "
                      f"{rep['per_step_us']:.0f} us/step, {rep['hidden_spikes_per_sample']:.0f} hidden "
                      f"and {rep['out_spikes_per_sample']:.1f} out spikes per sample\n")

    results = {}
    for b in batches:
        reps = per_batch[b]["repeats"]
        results[str(b)] = {
            "batch": b,
            "runs_per_repeat": runs_per[b],
            "steps_per_run": per_batch[b]["steps"],
            "samples_per_s": statistics.median(x["samples_per_s"] for x in reps),
            "samples_per_s_all": [x["samples_per_s"] for x in reps],
            "per_step_us": statistics.median(x["per_step_us"] for x in reps),
            "per_step_per_sample_us": statistics.median(x["per_step_per_sample_us"] for x in reps),
            "run_wall_s": statistics.median(x["wall_s"] / x["runs"] for x in reps),
            "warmup_s": per_batch[b]["warmup_s"],
            "peak_rss_mb_after_warmup": per_batch[b]["rss_after_warmup_mb"],
            "hidden_spikes_per_sample": statistics.median(x["hidden_spikes_per_sample"] for x in reps),
            "out_spikes_per_sample": statistics.median(x["out_spikes_per_sample"] for x in reps),
        }

    if args.json:
        print(json.dumps({
            "benchmark": "yinyang_inference",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cpus": os.cpu_count(),
            "netlist": netlist_source,
            "profile": host.profile.name,
            "mismatch_off": bool(host.profile.mismatch.off),
            "noise_membrane": host.profile.noise_membrane,
            "input": name,
            "channels": channels,
            "data": data_source,
            "repeats": args.repeats,
            "min_samples": args.min_samples,
            "load_s": load_s,
            "results": results,
            "peer_figures_not_remeasured": PEER_FIGURES,
        }, indent=1))
    else:
        print(f"Yin-Yang inference on {host.profile.name} (mismatch {'off' if host.profile.mismatch.off else 'on'}, "
              f"noise {host.profile.noise_membrane}), {netlist_source}; medians of {args.repeats} repeats")
        print(f"{'batch':>6} {'samples/s':>10} {'run [s]':>8} {'us/step':>9} {'us/step/sample':>15} "
              f"{'peak RSS MB':>12} {'hid spk/smp':>12} {'out spk/smp':>12}")
        for b in batches:
            x = results[str(b)]
            print(f"{b:>6} {x['samples_per_s']:>10.0f} {x['run_wall_s']:>8.3f} {x['per_step_us']:>9.0f} "
                  f"{x['per_step_per_sample_us']:>15.2f} {x['peak_rss_mb_after_warmup']:>12.0f} "
                  f"{x['hidden_spikes_per_sample']:>12.1f} {x['out_spikes_per_sample']:>12.2f}")
        peer = PEER_FIGURES["snntorch"]
        print(f"peer (not re-measured): {peer['setup']}: "
              + ", ".join(f"{v:.0f} samples/s at batch {k}" for k, v in peer["samples_per_s"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
