"""One point of a sweep, run where a worker runs it: the netlist with the point's values, and
what the spec asks of it (``run``, ``test`` or ``train``), as one row of plain data.

Job: :func:`run_point` takes a :class:`Task` (plain, picklable data — it travels to a pool process
or a cluster worker), sets each axis value at its path in the base netlist's parsed tree, reads the
result with the netlist reader (so a bad value is reported like a bad netlist field, at the line of
the field it replaces), does the action and returns the row: the point's values, ``status`` ``ok``
or ``error``, its one-line ``error``, ``metrics`` and ``wall_s``. Nothing raised by chipctl escapes:
a point that fails is a row, and the sweep goes on.

Boundary: the chip is used through the host interface, trainings through ``rules.training``,
expect checks through ``regression``; nothing here schedules or writes files (``sweeps.run`` does).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

from chip.errors import ChipctlError
from chip.netlist.reader import NetlistReader
from chip.netlist.yaml_tree import parse_yaml
from chip.profiles import get_profile

from .spec import MISMATCH_SCALE

__all__ = ["Task", "run_point", "point_netlist", "failed_row", "metric_names"]


@dataclass(frozen=True)
class Task:
    """What a worker needs for one point: plain data only."""

    netlist: str                               # the base netlist file
    action: str                                # run | test | train
    index: int
    key: str
    values: tuple[tuple[str, object], ...]     # netlist path -> value
    epochs: int | None = None


@functools.lru_cache(maxsize=8)
def _parsed(path: str, stamp: float):
    text = Path(path).read_text(encoding="utf-8")
    return parse_yaml(text, path)


def _describe(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _set(raw: dict, path: str, value, file: str, lines) -> None:
    """Put ``value`` at the dotted ``path`` of the tree, making mappings on the way."""
    node = raw
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[:depth + 1])
            raise _bad(file, lines, path, f"cannot set {path}: {where} is not a mapping in the netlist")
        node = child
    node[parts[-1]] = value


def _bad(file: str, lines, field: str, message: str):
    from chip.errors import NetlistError
    from chip.netlist.model import nearest_line

    return NetlistError(message, file=file, line=nearest_line(lines, field), field=field)


def _scale_mismatch(raw: dict, factor: float) -> None:
    """Every mismatch sigma of the point's chip (the profile's, or the netlist's own) times ``factor``."""
    chip = raw.setdefault("chip", {})
    written = chip.get("mismatch")
    if written is False or written == "off":
        return
    profile = get_profile(chip.get("profile", "bss2") if isinstance(chip.get("profile", "bss2"), str) else "bss2")
    sigmas = {f.name: getattr(profile.mismatch, f.name) for f in dataclasses.fields(profile.mismatch)}
    if isinstance(written, dict):
        sigmas.update(written)
    chip["mismatch"] = {name: (sigma * factor if isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
                               else sigma) for name, sigma in sigmas.items()}


def point_netlist(task: Task):
    """The base netlist with the point's values set, read and checked (``NetlistError`` at the
    first problem, pointing at the base netlist's line of the field a value replaces)."""
    path = task.netlist
    raw, tree = _parsed(path, Path(path).stat().st_mtime)
    raw = copy.deepcopy(raw)
    scale = None
    for target, value in task.values:
        if target == MISMATCH_SCALE:
            scale = value
        else:
            _set(raw, target, value, path, tree.lines)
    if scale is not None:
        _scale_mismatch(raw, float(scale))
    reader = NetlistReader(path, tree.lines, Path(path).resolve().parent)
    netlist = reader.netlist(raw, default_name=Path(path).stem, profile=None, die_seed=None, noise_seed=None,
                             batch=None)
    return netlist.replace(source_path=path, lines=dict(tree.public))


def metric_names(action: str, populations) -> tuple[str, ...]:
    """The metrics a point of ``action`` reports (``run``'s name the netlist's populations)."""
    if action == "run":
        return ("offered_events", "dropped_events", *(f"{kind}.{p}" for p in populations
                                                      for kind in ("spikes", "rate_hz")))
    if action == "test":
        return ("passed", "runs", "runs_passed", "checks", "failures", "first_failure")
    return ("train_accuracy", "test_accuracy", "train_loss", "epochs")


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _run(netlist) -> dict:
    from chip.host import HostInterface

    host = HostInterface(netlist)
    result = host.run()
    metrics = {"offered_events": int(result.offered_events), "dropped_events": int(result.dropped_events)}
    for name, events in result.spikes.items():
        metrics[f"spikes.{name}"] = int(len(events))
        metrics[f"rate_hz.{name}"] = float(result.rate_hz(name))
    return metrics


def _test(netlist, task: Task) -> dict:
    from regression.checks import RunContext
    from regression.expectations import parse_expect
    from regression.golden import golden_path, read_golden, run_key
    from chip.host import HostInterface

    specs = parse_expect(netlist)
    if not specs:
        raise ChipctlError(f"{netlist.source_path}: the netlist has no expect: section")
    golden = read_golden(golden_path(netlist))
    checks = failures = runs_passed = 0
    first = ""
    for spec in specs:
        nl = netlist
        changes = {k: getattr(spec, k) for k in ("die_seed", "noise_seed") if getattr(spec, k) is not None}
        if changes or spec.batch is not None or spec.profile is not None:
            # the expect run's own chip, with the point's values on top of it
            nl = point_netlist(dataclasses.replace(task, values=tuple(
                [(f"chip.{k}", v) for k, v in changes.items()]
                + ([("chip.profile", spec.profile)] if spec.profile is not None else [])
                + ([("batch", spec.batch)] if spec.batch is not None else [])
                + list(task.values))))
        result = HostInterface(nl).run(duration_us=spec.duration_us(nl))
        key = run_key(nl, result.duration_us, result.batch)
        entry = golden.get(key)
        problem = None if entry is not None or not spec.uses_golden else f"no golden entry {key!r}"
        ctx = RunContext(netlist=nl, result=result, golden=entry, golden_file=str(golden_path(netlist)),
                         golden_key=key, golden_problem=problem)
        found = [f for check in spec.checks for f in check.evaluate(ctx)]
        checks += len(spec.checks)
        failures += len(found)
        runs_passed += not found
        if found and not first:
            first = f"[{spec.name}] {found[0].one_line()}"
    return {"passed": runs_passed == len(specs), "runs": len(specs), "runs_passed": runs_passed,
            "checks": checks, "failures": failures, "first_failure": first}


def _train(netlist, epochs) -> dict:
    from rules.training import Trainer

    trainer = Trainer(netlist, epochs=epochs)
    trainer.checkpoint_dir = None  # a sweep keeps final metrics, not one checkpoint folder per point
    metrics = trainer.fit()
    return {k: _finite(float(metrics[k])) for k in ("train_accuracy", "test_accuracy", "train_loss")
            if metrics.get(k) is not None} | {"epochs": int(metrics["epochs"])}


def failed_row(task: Task, message: str, wall_s: float = 0.0) -> dict:
    """The row of a point that could not run at all (its worker died, the pool broke)."""
    return {"index": task.index, "key": task.key, "values": dict(task.values), "status": "error",
            "error": " ".join(message.split()), "metrics": {}, "wall_s": wall_s}


def run_point(task: Task) -> dict:
    """The row of one point (never raises for chipctl's own errors: they become the row's error)."""
    start = time.perf_counter()
    row = {"index": task.index, "key": task.key, "values": dict(task.values), "status": "ok", "error": "",
           "metrics": {}}
    try:
        netlist = point_netlist(task)
        if task.action == "run":
            row["metrics"] = _run(netlist)
        elif task.action == "test":
            row["metrics"] = _test(netlist, task)
        else:
            row["metrics"] = _train(netlist, task.epochs)
    except ChipctlError as exc:
        row["status"], row["error"] = "error", exc.one_line()
    except MemoryError:
        row["status"], row["error"] = "error", "out of memory"
    except Exception as exc:  # a bug on one point must not stop hundreds of others; say what it was
        row["status"], row["error"] = "error", " ".join(f"internal error: {type(exc).__name__}: {exc}".split())
    row["wall_s"] = round(time.perf_counter() - start, 4)
    return row
