"""Expectations: what a netlist's ``expect:`` section asks of a run, and the checks that judge one.

Job: read the ``expect`` block (kept verbatim by the loader) into :class:`RunSpec` objects — which
chip to run on (profile, seeds), for how long, with which batch, and the checks to make — and
evaluate each check on a :class:`chip.host.RunResult` (plus the run's golden entry when it has a
``golden:`` check), returning :class:`Failure` records that say which expectation failed, what was
expected and what came out; for spike trains also where they first diverge from the golden ones.

Boundary: nothing here runs a chip (``runner.py`` does) or knows the golden file's text format
(``golden.py`` does; this module compares :class:`~chip.regression.golden.GoldenRun` objects). A
malformed block is reported like any netlist error, ``FILE:LINE: expect.path: what is wrong``.

Units follow the netlist: rates and times in a check are in the netlist's timescale (biological
Hz and ms for ``timescale: biological``) and must carry a unit; counts, fractions and membrane
values (model units) are plain numbers. The format is documented in docs/regression-tests.md.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import NetlistError
from ..netlist import Netlist
from ..profiles import PROFILES
from ..units import UnitError, parse_rate_hz, parse_time_us
from .golden import GoldenRun, golden_run

if TYPE_CHECKING:
    from ..host import RunResult

__all__ = [
    "Bound",
    "Failure",
    "RunContext",
    "RunSpec",
    "Check",
    "SpikeCheck",
    "FirstSpikeCheck",
    "EventCheck",
    "MembraneCheck",
    "GoldenCheck",
    "parse_expect",
    "run_headers",
    "van_rossum",
    "first_divergence",
    "winners",
]

#: keys that choose the run (shared at the top of ``expect`` or set per run)
SETTINGS = ("profile", "die_seed", "noise_seed", "duration", "batch")
#: keys that hold checks
CHECKS = ("spikes", "first_spike", "events", "membrane", "golden")
RUN_KEYS = ("name", "slow") + SETTINGS + CHECKS
TOP_KEYS = ("runs",) + SETTINGS + CHECKS


# ---------------------------------------------------------------------------------------------
# Quantities and bounds
# ---------------------------------------------------------------------------------------------


def _fmt_num(x: float) -> str:
    if x is None:
        return "none"
    if isinstance(x, (int, np.integer)) or (math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:.6g}"


def _spikes(n: int) -> str:
    return f"{n} spike" + ("" if n == 1 else "s")


def _fmt_rate(hz: float) -> str:
    for unit, scale in (("MHz", 1e6), ("kHz", 1e3)):
        if abs(hz) >= scale:
            return f"{hz / scale:.6g} {unit}"
    return f"{hz:.6g} Hz"


def fmt_time(us: float) -> str:
    """A time in µs (of whatever timescale), shown in the most readable unit."""
    if abs(us) >= 1e6:
        return f"{us / 1e6:.6g} s"
    if abs(us) >= 1e3:
        return f"{us / 1e3:.6g} ms"
    return f"{us:.6g} us"


@dataclass(frozen=True)
class _Kind:
    """What a bound measures: how its values are read from YAML and shown."""

    name: str
    read: Callable[[Any], float]
    show: Callable[[float], str]


def _read_plain(value) -> float:
    if isinstance(value, bool):
        raise UnitError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise UnitError(f"expected a number, got {value!r}")


def _read_fraction(value) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        return _read_plain(value.strip()[:-1]) / 100.0
    return _read_plain(value)


COUNT = _Kind("count", _read_plain, _fmt_num)
NUMBER = _Kind("number (model units)", _read_plain, lambda x: f"{x:.6g}")
FRACTION = _Kind("fraction", _read_fraction, lambda x: f"{x:.4g}")
RATE = _Kind("rate", parse_rate_hz, _fmt_rate)

_COMPARE = re.compile(r"^\s*(<=|>=|==|<|>|≤|≥)\s*(\S.*?)\s*$")
_PLUS_MINUS = re.compile(r"^\s*(\S.*?)\s*(?:±|\+/-|\+-)\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Bound:
    """An allowed interval for one measured value: ``lo ≤ x ≤ hi`` (either side open, strict
    when ``lo_strict``/``hi_strict``). ``text`` is how the netlist wrote it, for messages."""

    text: str
    lo: float | None = None
    hi: float | None = None
    lo_strict: bool = False
    hi_strict: bool = False

    def holds(self, x: float) -> bool:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        # a relative slack of 1e-9 so that a rate of 6.000000000001 Hz meets "== 6 Hz"
        slack = 1e-9 * max(1.0, abs(x))
        if self.lo is not None and (x <= self.lo - slack if not self.lo_strict else x <= self.lo):
            return False
        if self.hi is not None and (x >= self.hi + slack if not self.hi_strict else x >= self.hi):
            return False
        return True

    @classmethod
    def parse(cls, value, kind: _Kind) -> "Bound":
        """Read a bound: ``5`` / ``"5 Hz"`` (exactly), ``[lo, hi]`` (inclusive; ``null`` for an open
        side), ``"> 0"`` / ``">= 3 Hz"`` / ``"< 0.5"`` / ``"== 0"``, or ``"6 Hz ± 50%"`` /
        ``"6 Hz +- 1 Hz"`` / ``"10 ± 2"``. Raises UnitError with what was expected."""
        if isinstance(value, list):
            if len(value) != 2:
                raise UnitError(f"a range is [low, high], got {len(value)} entries")
            lo = None if value[0] is None else kind.read(value[0])
            hi = None if value[1] is None else kind.read(value[1])
            if lo is not None and hi is not None and lo > hi:
                raise UnitError(f"empty range: low {value[0]!r} is above high {value[1]!r}")
            text = f"[{'none' if lo is None else kind.show(lo)}, {'none' if hi is None else kind.show(hi)}]"
            return cls(text, lo, hi)
        if isinstance(value, str):
            match = _COMPARE.match(value)
            if match:
                op, x = match.group(1), kind.read(match.group(2))
                op = {"≤": "<=", "≥": ">="}.get(op, op)
                text = f"{op} {kind.show(x)}"
                if op == "==":
                    return cls(text, x, x)
                if op[0] == ">":
                    return cls(text, lo=x, lo_strict=op == ">")
                return cls(text, hi=x, hi_strict=op == "<")
            match = _PLUS_MINUS.match(value)
            if match:
                centre = kind.read(match.group(1))
                tol_text = match.group(2)
                if tol_text.endswith("%"):
                    tol = abs(centre) * _read_plain(tol_text[:-1]) / 100.0
                else:
                    tol = kind.read(tol_text)
                if tol < 0:
                    raise UnitError(f"tolerance must be >= 0, got {tol_text!r}")
                return cls(f"{kind.show(centre)} ± {tol_text}", centre - tol, centre + tol)
        if isinstance(value, (dict, bool)) or value is None:
            raise UnitError(f"expected a {kind.name} bound: a value, [low, high], '> x', '<= x' or "
                            f"'x ± tol', got {value!r}")
        x = kind.read(value)
        return cls(kind.show(x), x, x)

    def describe(self) -> str:
        return self.text


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold: where it is written, what it wanted, what came out,
    and (for spike trains) extra lines that locate the difference."""

    path: str
    line: int | None
    expected: str
    actual: str
    details: tuple[str, ...] = ()

    def one_line(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.actual}"

    def lines(self, file: str | None = None) -> list[str]:
        where = f"{file}:{self.line}: " if file and self.line else (f"{file}: " if file else "")
        out = [f"{where}{self.path}", f"    expected: {self.expected}", f"    actual:   {self.actual}"]
        out.extend(f"    {d}" for d in self.details)
        return out


@dataclass
class RunContext:
    """What a check may look at: the netlist as run, its result, and the golden entry of the run
    (``golden`` None when there is none; ``golden_problem`` then says why)."""

    netlist: Netlist
    result: "RunResult"
    golden: GoldenRun | None = None
    golden_file: str | None = None
    golden_key: str | None = None
    golden_problem: str | None = None
    _actual_golden: GoldenRun | None = field(default=None, repr=False)

    @property
    def factor(self) -> float:
        """Hardware µs per µs of the netlist's own time."""
        return self.netlist.time_factor_us()

    def time_text(self, hardware_us: float) -> str:
        """A hardware time shown in the netlist's timescale."""
        return fmt_time(hardware_us / self.factor)

    def rate_hz(self, population: str) -> float:
        """Mean rate per neuron and sample in Hz of the netlist's timescale."""
        return self.result.rate_hz(population) * self.factor

    def actual_golden(self) -> GoldenRun:
        """The run's spikes in the golden file's form (every recorded population)."""
        if self._actual_golden is None:
            self._actual_golden = golden_run(self.netlist, self.result)
        return self._actual_golden


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Check:
    """Base of all checks: ``path`` is the dotted field path of the check in the netlist and
    ``line`` its line there."""

    path: str
    line: int | None

    def evaluate(self, ctx: RunContext) -> list[Failure]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, sub: str, expected: str, actual: str, details=(), line: int | None = None) -> Failure:
        return Failure(f"{self.path}.{sub}" if sub else self.path, line or self.line, expected, actual, tuple(details))


@dataclass(frozen=True, eq=False)
class SpikeCheck(Check):
    """Spike statistics of one population: ``count`` (spikes over all samples), ``rate`` (mean
    per neuron and sample, Hz of the netlist's timescale), ``active`` (fraction of (sample,
    neuron) pairs with at least one spike)."""

    population: str = ""
    count: Bound | None = None
    rate: Bound | None = None
    active: Bound | None = None
    key_lines: dict = field(default_factory=dict)  # line of each key of the check

    def evaluate(self, ctx: RunContext) -> list[Failure]:
        ev = ctx.result.spikes[self.population]
        out = []
        if self.count is not None and not self.count.holds(len(ev)):
            out.append(self._fail("count", self.count.describe(), _spikes(len(ev)),
                                  [f"per sample: {_short(ev.counts().sum(axis=1).tolist())}"],
                                  self.key_lines.get("count")))
        if self.rate is not None:
            rate = ctx.rate_hz(self.population)
            if not self.rate.holds(rate):
                out.append(self._fail("rate", self.rate.describe(), _fmt_rate(rate),
                                      [f"{len(ev)} spikes of {ev.size} neurons × {ctx.result.batch} samples in "
                                       f"{ctx.time_text(ctx.result.duration_us)}"], self.key_lines.get("rate")))
        if self.active is not None:
            frac = float((ev.counts() > 0).mean())
            if not self.active.holds(frac):
                out.append(self._fail("active", self.active.describe(), f"{frac:.4g}",
                                      [f"{int((ev.counts() > 0).sum())} of {ev.size * ev.batch_size} "
                                       "(sample, neuron) pairs spiked"], self.key_lines.get("active")))
        return out


def winners(first: np.ndarray) -> list[int | None]:
    """Class per sample from first-spike times (batch, neurons): the neuron that spikes first
    (ties: the lowest index), None when none spikes."""
    out = []
    for row in first:
        out.append(int(np.argmin(row)) if np.isfinite(row).any() else None)
    return out


def _orders(first: np.ndarray) -> list[list[int]]:
    out = []
    for row in first:
        idx = np.nonzero(np.isfinite(row))[0]
        out.append([int(i) for i in idx[np.lexsort((idx, row[idx]))]])
    return out


def _short(seq, limit: int = 12) -> str:
    seq = list(seq)
    text = ", ".join("none" if v is None else str(v) for v in seq[:limit])
    return f"[{text}{', ...' if len(seq) > limit else ''}]" + (f" ({len(seq)} in all)" if len(seq) > limit else "")


@dataclass(frozen=True, eq=False)
class FirstSpikeCheck(Check):
    """First-spike order and class of an output population.

    ``order``: neurons by first spike time (silent ones left out), one list for every sample or a
    list of lists, one per sample. ``classes``: the winning neuron (first to spike, ties to the
    lowest index, None for no spike) for every sample, or one per sample. ``accuracy`` against
    ``labels`` and ``golden_agreement`` (fraction of samples whose class equals the golden run's)
    are bounds on fractions."""

    population: str = ""
    order: tuple | None = None
    classes: tuple | None = None
    per_sample_order: bool = False
    per_sample_class: bool = False
    labels: tuple[int, ...] | None = None
    accuracy: Bound | None = None
    golden_agreement: Bound | None = None
    key_lines: dict = field(default_factory=dict)  # line of each key of the check

    def evaluate(self, ctx: RunContext) -> list[Failure]:
        ev = ctx.result.spikes[self.population]
        first = ev.first_spike_times()
        batch = first.shape[0]
        out = []
        if self.order is not None:
            want = list(self.order) if self.per_sample_order else [list(self.order)] * batch
            got = _orders(first)
            if len(want) != batch:
                out.append(self._fail("order", f"one order per sample ({len(want)} given)", f"batch {batch}",
                                      line=self.key_lines.get("order")))
            else:
                bad = [b for b in range(batch) if list(want[b]) != got[b]]
                if bad:
                    b = bad[0]
                    out.append(self._fail("order", f"{want[b]} (sample {b})", f"{got[b]}",
                                          [f"{len(bad)} of {batch} samples differ; first spikes of sample {b}: "
                                           + ", ".join(f"neuron {i} at {ctx.time_text(first[b, i])}" for i in got[b])],
                                          self.key_lines.get("order")))
        got_classes = winners(first)
        if self.classes is not None:
            want = list(self.classes) if self.per_sample_class else [self.classes[0]] * batch
            if len(want) != batch:
                out.append(self._fail("class", f"one class per sample ({len(want)} given)", f"batch {batch}",
                                      line=self.key_lines.get("class")))
            else:
                bad = [b for b in range(batch) if want[b] != got_classes[b]]
                if bad:
                    b = bad[0]
                    out.append(self._fail("class", f"class {_show_class(want[b])} in sample {b}",
                                          f"class {_show_class(got_classes[b])}",
                                          [f"{len(bad)} of {batch} samples differ: {_short(bad)}",
                                           f"expected {_short(want)}", f"actual   {_short(got_classes)}"],
                                          self.key_lines.get("class")))
        if self.accuracy is not None:
            if self.labels is None or len(self.labels) != batch:
                n = 0 if self.labels is None else len(self.labels)
                out.append(self._fail("labels", f"{batch} labels (one per sample)", f"{n}",
                                      line=self.key_lines.get("labels")))
            else:
                acc = float(np.mean([g == l for g, l in zip(got_classes, self.labels)]))
                if not self.accuracy.holds(acc):
                    out.append(self._fail("accuracy", self.accuracy.describe(), f"{acc:.4g}",
                                          [f"{int(round(acc * batch))} of {batch} samples classified as labelled"],
                                          self.key_lines.get("accuracy")))
        if self.golden_agreement is not None:
            if ctx.golden is None:
                out.append(_no_golden(ctx, f"{self.path}.golden_agreement", self.key_lines.get("golden_agreement")))
            elif self.population not in ctx.golden.populations:
                out.append(self._fail("golden_agreement", f"population {self.population} in the golden file",
                                      "not there", [f"update {ctx.golden_file}: chipctl test --update-golden"],
                                      self.key_lines.get("golden_agreement")))
            else:
                gold = winners(ctx.golden.populations[self.population].first_spike_cycles().astype(float))
                if len(gold) != batch:
                    out.append(self._fail("golden_agreement", f"golden batch {len(gold)}", f"batch {batch}",
                                          line=self.key_lines.get("golden_agreement")))
                else:
                    agree = float(np.mean([g == a for g, a in zip(gold, got_classes)]))
                    if not self.golden_agreement.holds(agree):
                        bad = [b for b in range(batch) if gold[b] != got_classes[b]]
                        out.append(self._fail("golden_agreement", self.golden_agreement.describe(), f"{agree:.4g}",
                                              [f"classes differ from the golden in samples {_short(bad)}",
                                               f"golden {_short(gold)}", f"actual {_short(got_classes)}"],
                                              self.key_lines.get("golden_agreement")))
        return out


def _show_class(c) -> str:
    return "none" if c is None else str(c)


def _no_golden(ctx: RunContext, path: str, line: int | None) -> Failure:
    details = ([ctx.golden_problem] if ctx.golden_problem else []) + [
        f"write it with: chipctl test --update-golden {ctx.netlist.source_path}"]
    return Failure(path, line, f"a golden entry {ctx.golden_key!r} in {ctx.golden_file}", "none", tuple(details))


@dataclass(frozen=True, eq=False)
class EventCheck(Check):
    """Event-fabric counters: ``offered`` (events sent into the fabric), ``dropped`` (of those,
    lost on a link), ``dropped_fraction``; ``conservation: true`` checks that the counters add up
    (see docs/regression-tests.md)."""

    offered: Bound | None = None
    dropped: Bound | None = None
    dropped_fraction: Bound | None = None
    conservation: bool = False
    key_lines: dict = field(default_factory=dict)  # line of each key of the check

    def evaluate(self, ctx: RunContext) -> list[Failure]:
        r = ctx.result
        out = []
        summary = (f"offered {r.offered_events}, delivered {r.offered_events - r.dropped_events}, "
                   f"dropped {r.dropped_events}")
        links = [f"link {l.name}: offered {l.offered}, delivered {l.delivered}, dropped {l.dropped}"
                 for l in r.links if l.offered]
        if self.offered is not None and not self.offered.holds(r.offered_events):
            out.append(self._fail("offered", self.offered.describe(), str(r.offered_events), [summary],
                                  self.key_lines.get("offered")))
        if self.dropped is not None and not self.dropped.holds(r.dropped_events):
            out.append(self._fail("dropped", self.dropped.describe(), str(r.dropped_events), [summary] + links,
                                  self.key_lines.get("dropped")))
        if self.dropped_fraction is not None:
            frac = r.dropped_events / r.offered_events if r.offered_events else 0.0
            if not self.dropped_fraction.holds(frac):
                out.append(self._fail("dropped_fraction", self.dropped_fraction.describe(), f"{frac:.4g}", [summary],
                                      self.key_lines.get("dropped_fraction")))
        if self.conservation:
            problems = _conservation_problems(ctx)
            if problems:
                out.append(self._fail("conservation", "offered = delivered + dropped, on every link and in total",
                                      problems[0], problems[1:] + [summary] + links,
                                      self.key_lines.get("conservation")))
        return out


def _conservation_problems(ctx: RunContext) -> list[str]:
    """The bookkeeping of events, checked from independent counts where there are any."""
    r, nl = ctx.result, ctx.netlist
    problems = []
    for link in r.links:
        if not 0 <= link.dropped <= link.offered or link.delivered + link.dropped != link.offered:
            problems.append(f"link {link.name}: offered {link.offered} != delivered {link.delivered} "
                            f"+ dropped {link.dropped}")
    if not 0 <= r.dropped_events <= r.offered_events:
        problems.append(f"dropped {r.dropped_events} is not within 0..offered {r.offered_events}")
    # every offered event was sent by a source: an input event or a spike of a population with targets
    sources = {p.pre for p in nl.projections.values()}
    sent = sum(len(r.inputs[s]) for s in sources if s in r.inputs)
    countable = all(s in r.inputs or s in r.spikes for s in sources)
    sent += sum(len(r.spikes[s]) for s in sources if s in r.spikes)
    if countable and r.offered_events > sent:
        problems.append(f"offered {r.offered_events} is more than the {sent} events the sources sent")
    if r.links:
        lost = [link.dropped for link in r.links]
        # an event lost on one link is counted once, however many branches of its route lost it
        if not max(lost) <= r.dropped_events <= sum(lost):
            problems.append(f"dropped {r.dropped_events} does not match the links' drops "
                            f"(between {max(lost)} and {sum(lost)})")
    elif r.dropped_events:
        problems.append(f"dropped {r.dropped_events} events without a link model")
    return problems


_STATS = ("mean", "std", "min", "max")


@dataclass(frozen=True, eq=False)
class MembraneCheck(Check):
    """Statistics (``mean``, ``std``, ``min``, ``max``, model units) of a recorded membrane trace
    over samples, times and recorded neurons — or one neuron (``neuron``, index in the
    population). ``adc`` picks the recording when a population has one per ADC."""

    population: str = ""
    adc: str | None = None
    neuron: int | None = None
    stats: tuple[tuple[str, Bound], ...] = ()
    key_lines: dict = field(default_factory=dict)  # line of each key of the check

    def evaluate(self, ctx: RunContext) -> list[Failure]:
        trace = next(tr for tr in ctx.result.traces
                     if tr.population == self.population and (self.adc is None or tr.adc == self.adc))
        values = trace.values
        if self.neuron is not None:
            values = values[:, :, trace.neurons.index(self.neuron)]
        measured = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                    "min": float(np.min(values)), "max": float(np.max(values))}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in measured.items())
        which = f"neuron {self.neuron}" if self.neuron is not None else f"neurons {list(trace.neurons)}"
        out = []
        for name, bound in self.stats:
            if not bound.holds(measured[name]):
                out.append(self._fail(name, bound.describe(), f"{measured[name]:.6g}",
                                      [f"{trace.adc} trace of {self.population} {which}, "
                                       f"{values.size} samples: {shown}"],
                                      self.key_lines.get(name)))
        return out


def van_rossum(a_us: np.ndarray, b_us: np.ndarray, tau_us: float) -> float:
    """Squared van Rossum distance of two spike trains, normalized so that one unmatched spike
    adds 1: D² = (2/τ)∫(f−g)² dt with f, g the trains convolved with e^{−t/τ}. A shift by δ of
    one spike adds 2(1 − e^{−δ/τ})."""
    a = np.asarray(a_us, dtype=float)
    b = np.asarray(b_us, dtype=float)
    if len(a) == len(b) and np.array_equal(a, b):
        return 0.0

    def k(x, y):
        return float(np.exp(-np.abs(x[:, None] - y[None, :]) / tau_us).sum()) if len(x) and len(y) else 0.0

    return max(0.0, k(a, a) + k(b, b) - 2.0 * k(a, b))


def first_divergence(golden: list[tuple[int, int]], actual: list[tuple[int, int]]):
    """Index and the two (cycle, neuron) events where two time-ordered event lists first differ
    (None for a missing event), or None when they are identical."""
    for i in range(max(len(golden), len(actual))):
        g = golden[i] if i < len(golden) else None
        a = actual[i] if i < len(actual) else None
        if g != a:
            return i, g, a
    return None


@dataclass(frozen=True, eq=False)
class GoldenCheck(Check):
    """Spikes against the golden run: per population, the spike count within
    ``count_tolerance`` (an integer, or a fraction of the golden count) and the van Rossum
    distance (spike units, summed over samples and neurons as D = √ΣD²) within ``max_distance``,
    with time constant ``tau`` (default: the population's tau_mem)."""

    populations: tuple[str, ...] | None = None
    max_distance: float = 0.0
    tau_netlist_us: float | None = None
    count_abs: float = 0.0
    count_rel: float = 0.0

    def evaluate(self, ctx: RunContext) -> list[Failure]:
        if ctx.golden is None:
            return [_no_golden(ctx, self.path, self.line)]
        gold = ctx.golden
        actual = ctx.actual_golden()
        out = []
        clock_us = ctx.netlist.chip.clock_us
        if abs(gold.clock_ns - ctx.netlist.chip.clock_ns) > 1e-9:
            return [self._fail("", f"golden clock {gold.clock_ns} ns", f"{ctx.netlist.chip.clock_ns} ns",
                               [f"update {ctx.golden_file}: chipctl test --update-golden"])]
        for pop in self.populations or tuple(actual.populations):
            if pop not in gold.populations:
                out.append(self._fail("", f"population {pop} in golden run {gold.key!r}", "not there",
                                      [f"update {ctx.golden_file}: chipctl test --update-golden"]))
                continue
            g, a = gold.populations[pop], actual.populations[pop]
            if g.size != a.size or len(g.samples) != len(a.samples):
                out.append(self._fail("", f"{pop}: {g.size} neurons × {len(g.samples)} samples (golden)",
                                      f"{a.size} neurons × {len(a.samples)} samples"))
                continue
            tau_hw = (self.tau_netlist_us * ctx.factor if self.tau_netlist_us is not None
                      else ctx.netlist.populations[pop].params.tau_mem_us)
            d2 = 0.0
            for gs, as_ in zip(g.samples, a.samples):
                for n in set(gs) | set(as_):
                    d2 += van_rossum(np.asarray(gs.get(n, ()), float) * clock_us,
                                     np.asarray(as_.get(n, ()), float) * clock_us, tau_hw)
            dist = math.sqrt(d2)
            count_tol = max(self.count_abs, self.count_rel * g.count)
            count_bad = abs(a.count - g.count) > count_tol + 1e-9
            dist_bad = dist > self.max_distance + 1e-12
            if not (count_bad or dist_bad):
                continue
            expected = (f"{pop}: {_spikes(g.count)} (± {_fmt_num(count_tol)}) and van Rossum distance "
                        f"≤ {self.max_distance:g} (tau {ctx.time_text(tau_hw)}) from the golden")
            actual_text = f"{_spikes(a.count)}, distance {dist:.4g}"
            details = [f"golden {ctx.golden_file} run {gold.key!r}"]
            details += self._divergence(ctx, pop, g, a)
            out.append(self._fail("", expected, actual_text, details))
        return out

    @staticmethod
    def _divergence(ctx: RunContext, pop, g, a) -> list[str]:
        """Where the spikes first diverge: the earliest difference over the samples."""
        clock_us = ctx.netlist.chip.clock_us
        best = None
        n_diff = 0
        for b, (gs, as_) in enumerate(zip(g.samples, a.samples)):
            hit = first_divergence(g.events(b), a.events(b))
            if hit is None:
                continue
            n_diff += 1
            i, ge, ae = hit
            t = min(e[0] for e in (ge, ae) if e is not None)
            if best is None or t < best[0]:
                best = (t, b, i, ge, ae)
        if best is None:
            return []
        _, b, i, ge, ae = best

        def show(e):
            if e is None:
                return "no spike"
            return f"neuron {e[1]} at {ctx.time_text(e[0] * clock_us)} (cycle {e[0]})"

        return [f"first differing spike: population {pop}, sample {b}, spike #{i}: "
                f"golden {show(ge)}, actual {show(ae)}",
                f"{n_diff} of {len(g.samples)} samples differ"]


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
                    count_abs = _read_plain(raw)
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
