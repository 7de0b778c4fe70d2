"""Expectation runs: what a netlist's ``expect:`` section asks of a run, and the checks that judge one.

Job: read the ``expect`` block (kept verbatim by the loader) into :class:`RunSpec` objects — which
chip to run on (profile, seeds), for how long, with which batch, and the checks to make — and
evaluate each check on a :class:`chip.host.RunResult` (plus the run's golden entry when it has a
``golden:`` check), returning :class:`Failure` records that say which expectation failed, what was
expected and what came out; for spike trains also where they first diverge from the golden ones.

Boundary: nothing here runs a chip (``runner.py`` does) or knows the golden file's text format
(``golden.py`` does; this module compares :class:`~regression.golden.GoldenRun` objects). A
malformed block is reported like any netlist error, ``FILE:LINE: expect.path: what is wrong``.

Units follow the netlist: rates and times in a check are in the netlist's timescale (biological
Hz and ms for ``timescale: biological``) and must carry a unit; counts, fractions and membrane
values (model units) are plain numbers. The format is documented in docs/regression-tests.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from chip.errors import NetlistError
from chip.netlist import Netlist
from chip.profiles import PROFILES
from chip.units import UnitError, parse_number, parse_time_us

if TYPE_CHECKING:
    pass
from .bounds import COUNT, FRACTION, NUMBER, RATE, Bound, _Kind, _read_fraction, fmt_time
from .checks import _STATS, Check, EventCheck, FirstSpikeCheck, GoldenCheck, MembraneCheck, SpikeCheck

__all__ = ["SETTINGS", "CHECKS", "RunSpec", "parse_expect", "run_headers"]

#: keys that choose the run (shared at the top of ``expect`` or set per run)
SETTINGS = ("profile", "die_seed", "noise_seed", "duration", "batch")
#: keys that hold checks
CHECKS = ("spikes", "first_spike", "events", "membrane", "golden")
RUN_KEYS = ("name", "slow") + SETTINGS + CHECKS
TOP_KEYS = ("runs",) + SETTINGS + CHECKS


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run of a netlist to check: chip overrides, length, batch and the checks."""

    name: str
    path: str                       # "expect" or "expect.runs.<i>"
    line: int | None
    profile: str | None = None
    die_seed: int | None = None
    noise_seed: int | None = None
    duration_netlist_us: float | None = None  # in the netlist's timescale
    batch: int | None = None
    slow: bool = False
    checks: tuple[Check, ...] = ()

    @property
    def golden_check(self) -> GoldenCheck | None:
        return next((c for c in self.checks if isinstance(c, GoldenCheck)), None)

    @property
    def uses_golden(self) -> bool:
        return self.golden_check is not None or any(
            isinstance(c, FirstSpikeCheck) and c.golden_agreement is not None for c in self.checks)

    def golden_populations(self) -> tuple[str, ...] | None:
        """Populations the golden entry must hold (None: all recorded)."""
        pops: set[str] = set()
        gc = self.golden_check
        if gc is not None:
            if gc.populations is None:
                return None
            pops.update(gc.populations)
        for c in self.checks:
            if isinstance(c, FirstSpikeCheck) and c.golden_agreement is not None:
                pops.add(c.population)
        return tuple(sorted(pops))

    def duration_us(self, netlist: Netlist) -> float:
        """Hardware µs to run (the netlist's duration unless overridden)."""
        if self.duration_netlist_us is None:
            return netlist.duration_us
        return self.duration_netlist_us * netlist.time_factor_us()

    def describe(self) -> str:
        parts = []
        for key in ("profile", "die_seed", "noise_seed", "batch"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key} {value}")
        if self.duration_netlist_us is not None:
            parts.append(f"duration {fmt_time(self.duration_netlist_us)}")
        return ", ".join(parts) or "as the netlist says"


def _run_dicts(expect: dict) -> list[tuple[str, dict, frozenset]]:
    """(path, merged settings, the run's own keys) per run: each run inherits the top-level keys
    it does not set itself."""
    shared = {k: v for k, v in expect.items() if k != "runs"}
    runs = expect.get("runs")
    if runs is None:
        return [("expect", shared, frozenset(shared))]
    if not isinstance(runs, list):
        return []
    out = []
    for i, run in enumerate(runs):
        merged = dict(shared)
        own = run if isinstance(run, dict) else {}
        merged.update(own)
        out.append((f"expect.runs.{i}", merged, frozenset(own)))
    return out


def _names(runs: list[tuple[str, dict]], default_profile: str) -> list[str]:
    names, seen = [], {}
    for _, run, _ in runs:
        base = run.get("name") if isinstance(run.get("name"), str) and run.get("name") else None
        if base is None:
            base = run.get("profile") if isinstance(run.get("profile"), str) else default_profile
        base = str(base)
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


def run_headers(raw_netlist) -> list[tuple[str, bool]]:
    """(name, slow) of each run of a netlist's raw (just YAML-parsed, unvalidated) top level —
    cheap, for collection. Never raises: [] when the block is too malformed to name its runs (the
    loader then reports it when the netlist is run)."""
    if not isinstance(raw_netlist, dict) or not isinstance(raw_netlist.get("expect"), dict):
        return []
    chip = raw_netlist.get("chip") if isinstance(raw_netlist.get("chip"), dict) else {}
    runs = _run_dicts(raw_netlist["expect"])
    names = _names(runs, str(chip.get("profile", "bss2")))
    return [(n, run.get("slow") is True) for n, (_, run, _) in zip(names, runs)]


class _Reader:
    """Validates an expect block against its netlist; raises NetlistError at the first problem."""

    def __init__(self, netlist: Netlist):
        self.nl = netlist
        self.file = netlist.source_path or "<netlist>"

    def fail(self, path: str, message: str):
        raise NetlistError(message, file=self.file, line=self.nl.line_of(path), field=path)

    def mapping(self, value, path: str, allowed, what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping ({what}), got {value!r}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
                self.fail(f"{path}.{key}", f"unknown field '{key}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                          + f"; expected one of {', '.join(allowed)}")
        return value

    def bound(self, value, path: str, kind: _Kind) -> Bound:
        try:
            return Bound.parse(value, kind)
        except UnitError as exc:
            self.fail(path, str(exc))

    def integer(self, value, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def time(self, value, path: str) -> float:
        try:
            t = parse_time_us(value)
        except UnitError as exc:
            self.fail(path, str(exc))
        if not t > 0:
            self.fail(path, f"must be positive, got {value!r}")
        return t

    def population(self, name, path: str, *, recorded: str | None = None) -> str:
        pops = self.nl.populations
        if name not in pops:
            hint = difflib.get_close_matches(str(name), list(pops), n=1, cutoff=0.6)
            self.fail(path, f"unknown population '{name}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                      + f"; known: {', '.join(pops)}")
        if recorded == "spikes" and name not in self.nl.record.spikes:
            self.fail(path, f"the spikes of '{name}' are not recorded; add it to record.spikes")
        return name

    def key_lines(self, path: str, spec: dict) -> dict:
        return {k: self.nl.line_of(f"{path}.{k}") for k in spec}

    # -------------------------------------------------------------- sections
    def run(self, path: str, name: str, spec: dict, own) -> RunSpec:
        self.mapping(spec, path, RUN_KEYS, "a run: chip settings and checks")
        profile = spec.get("profile")
        if profile is not None and profile not in PROFILES:
            self.fail(f"{path}.profile", f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        die = self.integer(spec["die_seed"], f"{path}.die_seed") if "die_seed" in spec else None
        noise = self.integer(spec["noise_seed"], f"{path}.noise_seed") if "noise_seed" in spec else None
        batch = self.integer(spec["batch"], f"{path}.batch", 1) if "batch" in spec else None
        duration = self.time(spec["duration"], f"{path}.duration") if "duration" in spec else None
        slow = spec.get("slow", False)
        if not isinstance(slow, bool):
            self.fail(f"{path}.slow", f"expected true or false, got {slow!r}")
        checks: list[Check] = []
        for key in (k for k in spec if k in CHECKS):  # in the order written
            # a check inherited from the top level is reported where it is written
            where = f"{path}.{key}" if key in own else f"expect.{key}"
            checks.extend(getattr(self, key)(spec[key], where))
        if not checks:
            self.fail(path, "a run needs at least one check: " + ", ".join(CHECKS))
        return RunSpec(name=name, path=path, line=self.nl.line_of(path), profile=profile, die_seed=die,
                       noise_seed=noise, duration_netlist_us=duration, batch=batch, slow=slow, checks=tuple(checks))

    def spikes(self, value, path: str) -> list[Check]:
        if not isinstance(value, dict) or not value:
            self.fail(path, f"expected a mapping population -> {{count, rate, active}}, got {value!r}")
        out = []
        for pop, spec in value.items():
            where = f"{path}.{pop}"
            self.population(pop, where, recorded="spikes")
            self.mapping(spec, where, ("count", "rate", "active"), "count, rate, active")
            if not spec:
                self.fail(where, "give at least one of count, rate, active")
            out.append(SpikeCheck(
                where, self.nl.line_of(where), population=pop,
                count=self.bound(spec["count"], f"{where}.count", COUNT) if "count" in spec else None,
                rate=self.bound(spec["rate"], f"{where}.rate", RATE) if "rate" in spec else None,
                active=self.bound(spec["active"], f"{where}.active", FRACTION) if "active" in spec else None,
                key_lines=self.key_lines(where, spec)))
        return out

    def first_spike(self, value, path: str) -> list[Check]:
        if not isinstance(value, dict) or not value:
            self.fail(path, f"expected a mapping population -> {{order, class, accuracy, ...}}, got {value!r}")
        out = []
        for pop, spec in value.items():
            where = f"{path}.{pop}"
            self.population(pop, where, recorded="spikes")
            self.mapping(spec, where, ("order", "class", "labels", "accuracy", "golden_agreement"),
                         "order, class, labels, accuracy, golden_agreement")
            size = self.nl.populations[pop].size
            order = per_order = None
            if "order" in spec:
                order, per_order = self.order(spec["order"], f"{where}.order", size)
            classes = per_class = None
            if "class" in spec:
                classes, per_class = self.classes(spec["class"], f"{where}.class", size)
            labels = self.labels(spec["labels"], f"{where}.labels", size) if "labels" in spec else None
            accuracy = self.bound(spec["accuracy"], f"{where}.accuracy", FRACTION) if "accuracy" in spec else None
            if accuracy is not None and labels is None:
                self.fail(f"{where}.accuracy", "accuracy needs labels: a list, or an .npz/.npy file")
            agreement = (self.bound(spec["golden_agreement"], f"{where}.golden_agreement", FRACTION)
                         if "golden_agreement" in spec else None)
            if order is None and classes is None and accuracy is None and agreement is None:
                self.fail(where, "give at least one of order, class, accuracy, golden_agreement")
            out.append(FirstSpikeCheck(where, self.nl.line_of(where), population=pop, order=order, classes=classes,
                                       per_sample_order=bool(per_order), per_sample_class=bool(per_class),
                                       labels=labels, accuracy=accuracy, golden_agreement=agreement,
                                       key_lines=self.key_lines(where, spec)))
        return out

    def _index(self, value, path: str, size: int, allow_none: bool = False):
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            self.fail(path, f"expected a neuron index in 0..{size - 1}" + (" or null" if allow_none else "")
                      + f", got {value!r}")
        return value

    def order(self, value, path: str, size: int):
        if not isinstance(value, list):
            self.fail(path, f"expected a list of neuron indices (or one list per sample), got {value!r}")
        if value and all(isinstance(v, list) for v in value):
            return tuple(tuple(self._index(i, f"{path}.{b}", size) for i in row) for b, row in enumerate(value)), True
        return tuple(self._index(i, path, size) for i in value), False

    def classes(self, value, path: str, size: int):
        if isinstance(value, list):
            return tuple(self._index(c, path, size, allow_none=True) for c in value), True
        return (self._index(value, path, size, allow_none=True),), False

    def labels(self, value, path: str, size: int) -> tuple[int, ...]:
        if isinstance(value, str):
            base = Path(self.nl.source_path).resolve().parent if self.nl.source_path else Path.cwd()
            file = base / value
            try:
                data = np.load(file, allow_pickle=False)
                arr = data["labels"] if hasattr(data, "files") else data
            except (OSError, ValueError, KeyError) as exc:
                self.fail(path, f"cannot read labels from {value!r} (an .npy array or an .npz with 'labels'): {exc}")
            value = np.asarray(arr).ravel().tolist()
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a list of labels (one per sample) or a file, got {value!r}")
        return tuple(self._index(v, path, size) for v in value)

    def events(self, value, path: str) -> list[Check]:
        spec = self.mapping(value, path, ("offered", "dropped", "dropped_fraction", "conservation"),
                            "offered, dropped, dropped_fraction, conservation")
        if not spec:
            self.fail(path, "give at least one of offered, dropped, dropped_fraction, conservation")
        conservation = spec.get("conservation", False)
        if not isinstance(conservation, bool):
            self.fail(f"{path}.conservation", f"expected true or false, got {conservation!r}")
        return [EventCheck(path, self.nl.line_of(path),
                           offered=self.bound(spec["offered"], f"{path}.offered", COUNT) if "offered" in spec else None,
                           dropped=self.bound(spec["dropped"], f"{path}.dropped", COUNT) if "dropped" in spec else None,
                           dropped_fraction=(self.bound(spec["dropped_fraction"], f"{path}.dropped_fraction", FRACTION)
                                             if "dropped_fraction" in spec else None),
                           conservation=conservation, key_lines=self.key_lines(path, spec))]

    def membrane(self, value, path: str) -> list[Check]:
        if not isinstance(value, dict) or not value:
            self.fail(path, f"expected a mapping population -> {{mean, std, min, max}}, got {value!r}")
        out = []
        for pop, spec in value.items():
            where = f"{path}.{pop}"
            self.population(pop, where)
            self.mapping(spec, where, ("adc", "neuron") + _STATS, "adc, neuron, mean, std, min, max")
            adc = spec.get("adc")
            recs = [r for r in self.nl.record.membrane if r.population == pop and (adc is None or r.adc == adc)]
            if not recs:
                self.fail(where, f"no membrane of '{pop}' is recorded" + (f" through the {adc}" if adc else "")
                          + "; add it to record.membrane")
            neuron = None
            if "neuron" in spec:
                neuron = self._index(spec["neuron"], f"{where}.neuron", self.nl.populations[pop].size)
                if neuron not in recs[0].neurons:
                    self.fail(f"{where}.neuron", f"neuron {neuron} of '{pop}' is not recorded; recorded: "
                                                 f"{list(recs[0].neurons)}")
            stats = tuple((s, self.bound(spec[s], f"{where}.{s}", NUMBER)) for s in _STATS if s in spec)
            if not stats:
                self.fail(where, "give at least one of mean, std, min, max")
            out.append(MembraneCheck(where, self.nl.line_of(where), population=pop, adc=adc, neuron=neuron,
                                     stats=stats, key_lines=self.key_lines(where, spec)))
        return out

    def golden(self, value, path: str) -> list[Check]:
        if value is True:
            value = {}
        spec = self.mapping(value, path, ("populations", "max_distance", "tau", "count_tolerance"),
                            "populations, max_distance, tau, count_tolerance (or true)")
        pops = None
        if "populations" in spec:
            raw = spec["populations"]
            if not isinstance(raw, list) or not raw:
                self.fail(f"{path}.populations", f"expected a list of population names, got {raw!r}")
            pops = tuple(self.population(p, f"{path}.populations", recorded="spikes") for p in raw)
        dist = spec.get("max_distance", 0.0)
        if isinstance(dist, bool) or not isinstance(dist, (int, float)) or dist < 0:
            self.fail(f"{path}.max_distance", f"expected a number >= 0 (spike units), got {dist!r}")
        tau = self.time(spec["tau"], f"{path}.tau") if "tau" in spec else None
        count_abs = count_rel = 0.0
        if "count_tolerance" in spec:
            raw = spec["count_tolerance"]
            try:
                if isinstance(raw, str) and raw.strip().endswith("%"):
                    count_rel = _read_fraction(raw)
                else:
                    count_abs = parse_number(raw)
            except UnitError as exc:
                self.fail(f"{path}.count_tolerance", f"{exc}; write a spike count or a percentage like '5%'")
            if count_abs < 0 or count_rel < 0:
                self.fail(f"{path}.count_tolerance", f"must be >= 0, got {raw!r}")
        return [GoldenCheck(path, self.nl.line_of(path), populations=pops, max_distance=float(dist),
                            tau_netlist_us=tau, count_abs=count_abs, count_rel=count_rel)]


def parse_expect(netlist: Netlist) -> list[RunSpec]:
    """The runs of a netlist's ``expect`` block, validated against the netlist (names, what is
    recorded). Raises NetlistError ``FILE:LINE: expect.path: what is wrong``; [] without a block."""
    expect = netlist.expect
    if expect is None:
        return []
    reader = _Reader(netlist)
    reader.mapping(expect, "expect", TOP_KEYS, "runs, chip settings and checks")
    runs = _run_dicts(expect)
    if "runs" in expect:
        if not isinstance(expect["runs"], list) or not expect["runs"]:
            reader.fail("expect.runs", f"expected a non-empty list of runs, got {expect['runs']!r}")
        for i, run in enumerate(expect["runs"]):
            if not isinstance(run, dict):
                reader.fail(f"expect.runs.{i}", f"expected a mapping (a run), got {run!r}")
            if "runs" in run:
                reader.fail(f"expect.runs.{i}.runs", "runs do not nest")
    names = _names(runs, netlist.chip.name)
    return [reader.run(path, name, spec, own) for name, (path, spec, own) in zip(names, runs)]
