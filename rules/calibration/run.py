"""Calibrating a die end to end: the bench, the plugin through pluggy, the calibration file.

Job: what ``chipctl calibrate`` (and a script that trains on calibrated dies) does — load the
calibration bench on the chip, call ``chipctl_calibrate`` through a ``RuleSet`` (the built-in
calibration, or any rule named), and turn what it wrote into a ``chip.calibration.Calibration``:
the codes of every circuit as the host now holds them, the targets, the circuits that did not
reach them, the report. Boundary: no measuring (the plugin's) and no file format (chip's).
"""

from __future__ import annotations

import time

import numpy as np

from chip.calibration import Calibration
from chip.errors import RuleError
from chip.profiles import ChipProfile, get_profile

from ..manager import RuleSet
from .bench import POPULATION, bench_netlist
from .targets import DEFAULT_TARGETS

__all__ = ["calibrate_die", "spread_table"]


def calibrate_die(profile: str | ChipProfile = "bss2", *, die_seed: int | None = None, noise_seed: int | None = None,
                  targets: dict | None = None, rules=("calibration",), options: dict | None = None,
                  progress=None, host_view=None) -> Calibration:
    """Calibrate every circuit of a die (``profile`` by name or as a ``ChipProfile``, its die and
    noise seeds replaced when given) for ``targets`` (parameter -> value; default
    ``DEFAULT_TARGETS``) with the first of ``rules`` that reports. ``host_view(host)`` may hand
    the rules something else than the host itself (a test hides its internals this way).
    Raises ``RuleError`` when no rule reports."""
    from chip.host import HostInterface

    chip = get_profile(profile) if isinstance(profile, str) else profile
    targets = dict(DEFAULT_TARGETS if targets is None else targets)
    netlist = bench_netlist(chip, die_seed=die_seed, noise_seed=noise_seed, params=targets)
    host = HostInterface(netlist)
    view = host if host_view is None else host_view(host)
    start = time.perf_counter()
    ruleset = RuleSet(list(rules), host=view, train={}, options=dict(options or {}), seed=0, progress=progress)
    answer = ruleset.calibrate({POPULATION: targets})
    if answer is None:
        raise RuleError(f"no calibration reported (asked: {', '.join(rules)})")
    rule, reports = answer
    report = reports[POPULATION] if isinstance(reports, dict) and POPULATION in reports else reports
    circuits = host.circuits(POPULATION)
    codes = {}
    for name in targets:
        per_circuit = np.full(netlist.chip.total_neurons, np.nan)
        per_circuit[circuits] = host.read_codes(POPULATION, name)
        codes[name] = per_circuit
    unreached = {name: entry.get("unreached", []) for name, entry in report.get("parameters", {}).items()}
    summary = {k: v for k, v in report.items() if k not in ("parameters", "circuits")}
    summary["parameters"] = {name: {k: _without_values(v) for k, v in entry.items() if k not in ("codes", "unreached")}
                             for name, entry in report.get("parameters", {}).items()}
    made_by = {"rule": rule, "noise_seed": int(netlist.chip.noise_seed), "wall_s": time.perf_counter() - start}
    return Calibration.for_chip(netlist.chip, targets=targets, codes=codes, unreached=unreached, report=summary,
                                made_by=made_by)


def _without_values(stats):
    """A before/after entry without its per-circuit values (the file keeps the codes, not every
    measurement)."""
    return {k: v for k, v in stats.items() if k != "values"} if isinstance(stats, dict) else stats


def spread_table(calibration: Calibration) -> list[dict]:
    """One row per parameter of a calibration's report: target, the level a potential was brought
    to as the CADC reads it (None for time constants), mean and spread before and after (model
    units or µs), their ratio, and how many circuits did not reach the target."""
    rows = []
    for name, entry in calibration.report.get("parameters", {}).items():
        before, after = entry.get("before", {}), entry.get("after", {})
        rows.append({"parameter": name, "target": entry.get("target"), "level": entry.get("level"),
                     "before_mean": before.get("mean"), "before_spread": before.get("spread"),
                     "after_mean": after.get("mean"), "after_spread": after.get("spread"),
                     "ratio": entry.get("ratio"), "unreached": len(calibration.unreached.get(name, []))})
    return rows
