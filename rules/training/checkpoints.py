"""Training checkpoints: one file, written atomically, that is either whole or absent.

Job: store nested dicts of numpy arrays and JSON-able values in ``checkpoint.npz`` and read them
back. Boundary: what goes in is the trainer's — the chip's configuration as
``host.export_config()`` gives it (versioned; with the netlist, profile and die it belongs to and
the run counter that seeds the next run's noise), the optimizer's master weights and moments, the
completed epoch, the metrics so far and every rule's own state — and the chip is restored with
``host.import_config``, never by writing its memory from here. The file is written to a temporary
name and renamed over the old one, so a run killed while saving leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from chip.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_lock", "CHECKPOINT_FILE", "LOCK_FILE"]

CHECKPOINT_FILE = "checkpoint.npz"
LOCK_FILE = ".lock"


@contextlib.contextmanager
def checkpoint_lock(directory: str | Path):
    """Hold the checkpoint folder for one training process: a second ``chipctl train`` on the same
    folder is refused (CheckpointError naming the folder and the holder's pid) instead of
    interleaving its checkpoints with the first one's. An advisory lock (flock) on ``.lock`` in the
    folder, released by the system however the holder ends, SIGKILL included."""
    directory = Path(directory)
    if directory.is_file():
        raise CheckpointError(f"{directory}: is a file; --checkpoint names the folder that train writes "
                              f"{CHECKPOINT_FILE} into")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CheckpointError(f"{directory}: cannot use the checkpoint folder ({exc.strerror})") from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this system: no lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise CheckpointError(f"{directory}: another chipctl train (pid {holder}) is using this checkpoint "
                                      "folder; wait for it or give another --checkpoint") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        # temporary files of a writer that was killed while saving: nobody else writes here now
        for stale in directory.glob(f".{CHECKPOINT_FILE}.*.tmp"):
            try:
                stale.unlink()
            except OSError:
                pass
        yield directory
    finally:
        os.close(fd)  # closing releases the lock


def _flatten(prefix: str, value: Any, arrays: dict, meta: dict) -> None:
    if isinstance(value, np.ndarray):
        arrays[prefix] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}/{k}", v, arrays, meta)
    else:
        meta[prefix] = value


def save_checkpoint(directory: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (nested dicts of arrays and JSON-able values) atomically."""
    from chip.errors import OutputError
    from chip.output import atomic_write

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{directory}: cannot create the checkpoint folder ({exc.strerror})") from None
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for key, value in payload.items():
        _flatten(key, value, arrays, meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta, default=_json_default).encode(), dtype=np.uint8)
    path = directory / CHECKPOINT_FILE
    try:
        return atomic_write(path, lambda fh: np.savez(fh, **arrays))
    except OutputError as exc:
        raise CheckpointError(str(exc)) from None


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def load_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read a checkpoint back into nested dicts (the shape ``save_checkpoint`` was given)."""
    if Path(directory).is_file():
        raise CheckpointError(f"{directory}: is a file; --checkpoint names the folder that train writes "
                              f"{CHECKPOINT_FILE} into")
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint there (train first, or check --checkpoint)")
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from None
    try:
        meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not a mapping")
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a chipctl checkpoint ({exc})") from None
    out: dict[str, Any] = {}
    for key, value in list(arrays.items()) + list(meta.items()):
        parts = key.split("/")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out
