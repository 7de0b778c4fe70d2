"""Run summaries and output files: what ``chipctl run`` prints and writes.

The summary is plain JSON-able data (also the ``--json`` output); files are ``.npz`` so numpy,
scipy and most analysis tools read them without chipctl.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["summarize", "write_outputs"]


def summarize(host, result, *, wall_s: float) -> dict:
    nl = host.netlist
    factor = nl.time_factor_us()  # hardware µs per netlist µs
    duration_netlist_s = result.duration_us / factor * 1e-6
    pops = {}
    for name, ev in result.spikes.items():
        rate = len(ev) / (ev.size * result.batch * duration_netlist_s) if duration_netlist_s > 0 else 0.0
        pops[name] = {"size": ev.size, "spikes": int(len(ev)), "rate_hz": float(rate)}
    return {
        "netlist": nl.name,
        "profile": nl.chip.name,
        "timescale": nl.timescale,
        "time_factor_us": float(factor),  # hardware µs per µs of the netlist's time (pictures use it)
        "batch": result.batch,
        "populations": pops,
        "offered_events": int(result.offered_events),
        "dropped_events": int(result.dropped_events),
        "links": [{"name": link.name, "offered": link.offered, "delivered": link.delivered, "dropped": link.dropped,
                   "max_wait_us": link.max_wait_us} for link in result.links if link.offered],
        "emulated_us": float(result.emulated_us),
        "steps": int(result.steps),
        "run_wall_s": float(result.wall_s),
        "kernel_load_s": float(result.kernel_load_s),
        "loop_s": float(result.loop_s),
        "wall_s": float(wall_s),
        "die_seed": nl.chip.die_seed,
        "noise_seed": nl.chip.noise_seed,
        "traces": [{"population": tr.population, "adc": tr.adc, "neurons": list(tr.neurons),
                    "samples": int(len(tr.time_us))} for tr in result.traces],
    }


def _atomic_savez(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    os.replace(tmp, path)


def write_outputs(out: Path, host, result, summary: dict) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, ev in result.spikes.items():
        arrays[f"{name}/batch"] = ev.batch
        arrays[f"{name}/neuron"] = ev.neuron
        arrays[f"{name}/time_us"] = ev.time_us
    _atomic_savez(out / "spikes.npz", arrays)
    if result.traces:
        arrays = {}
        for i, tr in enumerate(result.traces):
            key = f"{tr.population}/{tr.adc}{i}"
            arrays[f"{key}/time_us"] = tr.time_us
            arrays[f"{key}/values"] = tr.values
            arrays[f"{key}/neurons"] = np.asarray(tr.neurons)
            if tr.codes is not None:
                arrays[f"{key}/codes"] = tr.codes
        _atomic_savez(out / "traces.npz", arrays)
    if result.correlations:
        arrays = {}
        for name, c in result.correlations.items():
            arrays[f"{name}/causal"] = c.causal
            arrays[f"{name}/acausal"] = c.acausal
        _atomic_savez(out / "correlations.npz", arrays)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True))
    os.replace(tmp, out / "summary.json")
