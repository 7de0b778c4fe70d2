"""Expectation runs: what a netlist's ``expect:`` section asks of a run, and the checks that judge one.

Job: read the ``expect`` block (kept verbatim by the loader) into :class:`RunSpec` objects — which
chip to run on (profile, seeds), for how long, with which batch, and the checks to make — and
evaluate each check on a :class:`chip.host.RunResult` (plus the run's golden entry when it has a
``golden:`` check), returning :class:`Failure` records that say which expectation failed, what was
expected and what came out; for spike trains also where they first diverge from the golden ones.

Boundary: nothing here runs a chip (``runner.py`` does) or knows the golden file's text format
(``golden.py`` does; this module compares :class:`~regression.golden.GoldenRun` objects). The
block's keys are the ``expect`` forms of the netlist's JSON Schema (``chip.netlist.schema``) and
it is read with the netlist's validation kit (``chip.netlist.validation``), so a malformed block
is reported like any netlist error, ``FILE:LINE: expect.path: what is wrong``.

Units follow the netlist: rates and times in a check are in the netlist's timescale (biological
Hz and ms for ``timescale: biological``) and must carry a unit; counts, fractions and membrane
values (model units) are plain numbers. The format is documented in docs/regression-tests.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chip.netlist import Netlist
from chip.netlist.schema import EXPECT_CHECKS, EXPECT_SETTINGS, MEMBRANE_STATS
from chip.netlist.validation import FieldReader, show_value
from chip.profiles import PROFILES
from chip.units import UnitError, parse_number

from .bounds import COUNT, FRACTION, NUMBER, RATE, Bound, _Kind, _read_fraction, fmt_time
from .checks import Check, EventCheck, FirstSpikeCheck, GoldenCheck, MembraneCheck, SpikeCheck

__all__ = ["SETTINGS", "CHECKS", "RunSpec", "parse_expect", "run_headers"]

#: keys that choose the run (shared at the top of ``expect`` or set per run)
SETTINGS = EXPECT_SETTINGS
#: keys that hold checks
CHECKS = EXPECT_CHECKS
# the allowed keys of the block and of a run are those of the schema's forms expect and expect_run


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


class _Reader(FieldReader):
    """Validates an expect block against its netlist with the netlist kit; raises NetlistError at
    the first problem. Times (``duration``, ``tau``) stay in the netlist's own timescale, so the
    kit reads them without conversion; the runner converts them."""

    def __init__(self, netlist: Netlist):
        super().__init__(netlist.source_path or "<netlist>", netlist.lines)
        self.nl = netlist

    def read(self) -> list[RunSpec]:
        """The validated runs of the block (the netlist has one)."""
        expect = self.keys(self.nl.expect, "expect", "expect", "a mapping of runs, chip settings and checks")
        runs = _run_dicts(expect)
        if "runs" in expect:
            if not isinstance(expect["runs"], list) or not expect["runs"]:
                self.fail("expect.runs", f"expected a non-empty list of runs, got {show_value(expect['runs'])}")
            for i, run in enumerate(expect["runs"]):
                path = f"expect.runs.{i}"
                self.mapping(run, path, "a mapping (a run)")
                if "runs" in run:
                    self.fail(f"{path}.runs", "runs do not nest")
                self.keys(run, path, "expect_run", "a run: chip settings and checks")
        names = _names(runs, self.nl.chip.name)
        return [self.run(path, name, spec, own) for name, (path, spec, own) in zip(names, runs)]

    def bound(self, value, path: str, kind: _Kind) -> Bound:
        try:
            return Bound.parse(value, kind)
        except UnitError as exc:
            self.fail(path, str(exc))

    def population(self, name, path: str, *, recorded: str | None = None) -> str:
        name = self.reference(name, path, self.nl.populations, "population")
        if recorded == "spikes" and name not in self.nl.record.spikes:
            self.fail(path, f"the spikes of '{name}' are not recorded; add it to record.spikes")
        return name

    def per_population(self, value, path: str, what: str) -> dict:
        if not isinstance(value, dict) or not value:
            self.fail(path, f"expected a mapping population -> {{{what}}}, got {show_value(value)}")
        return value

    def key_lines(self, path: str, spec: dict) -> dict:
        return {k: self.line(f"{path}.{k}") for k in spec}

    # -------------------------------------------------------------- sections
    def run(self, path: str, name: str, spec: dict, own) -> RunSpec:
        profile = spec.get("profile")
        if profile is not None:
            # reported where it is written: in the run, or inherited from the top of the block
            where = f"{path}.profile" if "profile" in own else "expect.profile"
            profile = self.choice(profile, where, list(PROFILES), "profile")
        values = {}
        for key, read in (("die_seed", self.seed), ("noise_seed", self.seed),
                          ("batch", lambda v, p: self.integer(v, p, minimum=1)),
                          ("duration", lambda v, p: self.time(v, p, positive=True)), ("slow", self.boolean)):
            if key in spec:
                values[key] = read(spec[key], f"{path}.{key}" if key in own else f"expect.{key}")
        checks: list[Check] = []
        for key in (k for k in spec if k in CHECKS):  # in the order written
            # a check inherited from the top level is reported where it is written
            where = f"{path}.{key}" if key in own else f"expect.{key}"
            checks.extend(getattr(self, key)(spec[key], where))
        if not checks:
            self.fail(path, "a run needs at least one check: " + ", ".join(CHECKS))
        return RunSpec(name=name, path=path, line=self.line(path), profile=profile, die_seed=values.get("die_seed"),
                       noise_seed=values.get("noise_seed"), duration_netlist_us=values.get("duration"),
                       batch=values.get("batch"), slow=values.get("slow", False), checks=tuple(checks))

    def spikes(self, value, path: str) -> list[Check]:
        out = []
        for pop, spec in self.per_population(value, path, "count, rate, active").items():
            where = f"{path}.{pop}"
            self.population(pop, where, recorded="spikes")
            self.keys(spec, where, "expect_spikes", "a mapping of count, rate, active")
            if not spec:
                self.fail(where, "give at least one of count, rate, active")
            out.append(SpikeCheck(
                where, self.line(where), population=pop,
                count=self.bound(spec["count"], f"{where}.count", COUNT) if "count" in spec else None,
                rate=self.bound(spec["rate"], f"{where}.rate", RATE) if "rate" in spec else None,
                active=self.bound(spec["active"], f"{where}.active", FRACTION) if "active" in spec else None,
                key_lines=self.key_lines(where, spec)))
        return out

    def first_spike(self, value, path: str) -> list[Check]:
        out = []
        for pop, spec in self.per_population(value, path, "order, class, accuracy, ...").items():
            where = f"{path}.{pop}"
            self.population(pop, where, recorded="spikes")
            self.keys(spec, where, "expect_first_spike", "a mapping of order, class, labels, accuracy, golden_agreement")
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
            out.append(FirstSpikeCheck(where, self.line(where), population=pop, order=order, classes=classes,
                                       per_sample_order=bool(per_order), per_sample_class=bool(per_class),
                                       labels=labels, accuracy=accuracy, golden_agreement=agreement,
                                       key_lines=self.key_lines(where, spec)))
        return out

    def _index(self, value, path: str, size: int, allow_none: bool = False):
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            self.fail(path, f"expected a neuron index in 0..{size - 1}" + (" or null" if allow_none else "")
                      + f", got {show_value(value)}")
        return value

    def order(self, value, path: str, size: int):
        if not isinstance(value, list):
            self.fail(path, f"expected a list of neuron indices (or one list per sample), got {show_value(value)}")
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
            self.fail(path, f"expected a list of labels (one per sample) or a file, got {show_value(value)}")
        return tuple(self._index(v, path, size) for v in value)

    def events(self, value, path: str) -> list[Check]:
        spec = self.keys(value, path, "expect_events", "a mapping of offered, dropped, dropped_fraction, conservation")
        if not spec:
            self.fail(path, "give at least one of offered, dropped, dropped_fraction, conservation")
        conservation = self.boolean(spec["conservation"], f"{path}.conservation") if "conservation" in spec else False
        return [EventCheck(path, self.line(path),
                           offered=self.bound(spec["offered"], f"{path}.offered", COUNT) if "offered" in spec else None,
                           dropped=self.bound(spec["dropped"], f"{path}.dropped", COUNT) if "dropped" in spec else None,
                           dropped_fraction=(self.bound(spec["dropped_fraction"], f"{path}.dropped_fraction", FRACTION)
                                             if "dropped_fraction" in spec else None),
                           conservation=conservation, key_lines=self.key_lines(path, spec))]

    def membrane(self, value, path: str) -> list[Check]:
        out = []
        for pop, spec in self.per_population(value, path, "mean, std, min, max").items():
            where = f"{path}.{pop}"
            self.population(pop, where)
            self.keys(spec, where, "expect_membrane", "a mapping of adc, neuron, mean, std, min, max")
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
            stats = tuple((s, self.bound(spec[s], f"{where}.{s}", NUMBER)) for s in MEMBRANE_STATS if s in spec)
            if not stats:
                self.fail(where, "give at least one of " + ", ".join(MEMBRANE_STATS))
            out.append(MembraneCheck(where, self.line(where), population=pop, adc=adc, neuron=neuron,
                                     stats=stats, key_lines=self.key_lines(where, spec)))
        return out

    def golden(self, value, path: str) -> list[Check]:
        if value is True:
            value = {}
        spec = self.keys(value, path, "expect_golden", "a mapping of populations, max_distance, tau, count_tolerance "
                                                       "(or true)")
        pops = None
        if "populations" in spec:
            raw = spec["populations"]
            if not isinstance(raw, list) or not raw:
                self.fail(f"{path}.populations", f"expected a list of population names, got {show_value(raw)}")
            pops = tuple(self.population(p, f"{path}.populations", recorded="spikes") for p in raw)
        dist = self.number(spec.get("max_distance", 0.0), f"{path}.max_distance", minimum=0.0, allow_inf=True)
        tau = self.time(spec["tau"], f"{path}.tau", positive=True) if "tau" in spec else None
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
                self.fail(f"{path}.count_tolerance", f"must be >= 0, got {show_value(raw)}")
        return [GoldenCheck(path, self.line(path), populations=pops, max_distance=dist,
                            tau_netlist_us=tau, count_abs=count_abs, count_rel=count_rel)]


def parse_expect(netlist: Netlist) -> list[RunSpec]:
    """The runs of a netlist's ``expect`` block, validated against the netlist (names, what is
    recorded). Raises NetlistError ``FILE:LINE: expect.path: what is wrong``; [] without a block."""
    if netlist.expect is None:
        return []
    return _Reader(netlist).read()
