"""The checks of the expect format and what they judge: spike counts and rates, first spikes,
event conservation and drops, membrane statistics, distance to the golden spikes. Each returns
:class:`Failure` records saying what was expected, what came out and where spikes diverge."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from chip.analysis import first_divergence, van_rossum, winners
from chip.netlist import Netlist

if TYPE_CHECKING:
    from chip.host import RunResult
from .bounds import Bound, _fmt_num, _fmt_rate, _spikes, fmt_time
from .golden import GoldenRun, golden_run


__all__ = ["Failure", "RunContext", "Check", "SpikeCheck", "FirstSpikeCheck", "EventCheck", "MembraneCheck",
           "GoldenCheck"]


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
