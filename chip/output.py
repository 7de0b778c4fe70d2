"""Run summaries and output files: what ``chipctl run`` prints and writes.

The summary is plain JSON-able data (also the ``--json`` output); files are ``.npz`` so numpy,
scipy and most analysis tools read them without chipctl.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from .errors import OutputError

__all__ = ["summarize", "write_outputs", "check_output_dir", "check_output_file", "atomic_write"]


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


# ---------------------------------------------------------------------- output paths
_UMASK = os.umask(0)
os.umask(_UMASK)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def _probe(folder: Path, path: Path, what: str) -> None:
    """A file can be created in ``folder`` (tried, not guessed from permission bits)."""
    if not folder.is_dir():
        raise OutputError(f"{path}: {what}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"{path}: {what}: cannot write in {folder} ({_why(exc)})") from None


def check_output_dir(path: str | Path, what: str) -> None:
    """Before a run: ``path`` is a folder we can write in, or one we can create (``what``: the
    option or field that named it, for the message)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{path}: {what}: exists and is not a folder (it names a folder to write into)")
        _probe(path, path, what)
        return
    _probe(_existing_ancestor(path), path, what)


def check_output_file(path: str | Path, what: str) -> None:
    """Before the work: ``path`` can be written as a file — its folder exists and takes files, and
    it is not itself a folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: {what}: is a folder; give a file name")
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"{path}: {what}: no folder {folder} (create it first)")
    _probe(folder, path, what)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file whole or not at all: ``write(fh)`` into a temporary file beside it, flushed to
    disk, then renamed over ``path``. A file-system error is one line naming the path."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary open() would make it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({_why(exc)})") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def _atomic_savez(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def write_outputs(out: Path, host, result, summary: dict) -> None:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the folder ({_why(exc)})") from None
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
    text = json.dumps(summary, indent=2, sort_keys=True).encode()
    atomic_write(out / "summary.json", lambda fh: fh.write(text))
