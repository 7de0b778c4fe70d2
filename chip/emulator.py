"""The emulator: the analog core and its event fabric, advanced step by step.

Boundary: takes a mapped chip, a die and the chip's configuration memory (``ChipState``) and runs
one batch of inputs; returns raw observations (spike cycles, ADC samples, correlation sums, link
counters). It knows nothing about YAML, rules or the CLI; ``chip.host`` is its only caller.

Dynamics per neuron (model units, see ``chip.netlist``) are linear between events, so each step of
``dt`` is integrated exactly with exponential propagators::

    V(t0+h) = V_L + (V0 − V_L)·e^{−h/τm} + Σ_x ±I_x0·κ_x(h),   κ_x(h) = τx/(τx − τm)·(e^{−h/τx} − e^{−h/τm})

An input event arriving at time a inside a step adds w·e^{−(t1−a)/τx} to I_x and w·κ_x(t1 − a) to V
at the step's end (superposition is exact). Neurons that cross threshold, or leave refractoriness,
inside the step take a slow path: their trajectory is evaluated on the clock grid of the step (or
bisected when the clock is much finer than the step), including that step's input events, so the
spike is stamped on the first clock cycle at which V ≥ θ. The neuron resets there, is held at
v_reset for τ_ref, then evolves freely for the rest of the step. Limits, by design: at most one
spike per neuron per step, and a threshold excursion that starts and ends inside one step of a
neuron that ends the step below threshold is not seen.

Events travel from their source to the synapse drivers of each target half along routes of the
mapped routing graph. Each link is a FIFO server of ``capacity`` events per clock cycle with a
queue of ``queue_depth`` events; an event that would wait behind more than that is dropped and
counted. An event never acts inside the step it was emitted in: when latency + delay is shorter
than what is left of that step, it acts from the next step on with its exact decay since arrival.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .die import Die, Transfer
from .events import SpikeEvents
from .netlist import MembraneRecord, Record
from .state import ChipState

__all__ = ["Emulator", "RawRun", "LinkStats"]

_GRID_MAX_CYCLES = 512  # evaluate the slow path on the clock grid up to this many cycles per step


@dataclass
class LinkStats:
    name: str
    offered: int = 0
    dropped: int = 0
    max_wait_us: float = 0.0

    @property
    def delivered(self) -> int:
        return self.offered - self.dropped


@dataclass
class RawRun:
    """Raw observations of one batch. Spike times are clock cycles (int64)."""

    spikes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # pop -> (batch, neuron, cycle)
    traces: list[tuple[MembraneRecord, np.ndarray, np.ndarray]]   # (record, times_us (T,), values (B, T, k) model units)
    correlations: dict[str, tuple[np.ndarray, np.ndarray]]        # proj -> (causal, acausal) (B, n_pre, n_post)
    links: list[LinkStats]
    batch: int
    steps: int
    emulated_us: float
    wall_s: float
    offered_events: int = 0   # events sent by sources into the fabric, each counted once
    dropped_events: int = 0   # of those, events lost on at least one link of their routes


def _kernel(h, tau_syn, tau_mem):
    """κ(h) = τs/(τs − τm)·(e^{−h/τs} − e^{−h/τm}), with its limit h/τm·e^{−h/τm} when τs ≈ τm."""
    h = np.asarray(h, dtype=np.float64)
    es = np.exp(-h / tau_syn)
    em = np.exp(-h / tau_mem)
    diff = tau_syn - tau_mem
    close = np.abs(diff) < 1e-9 * np.maximum(tau_syn, tau_mem)
    with np.errstate(divide="ignore", invalid="ignore"):
        general = tau_syn / np.where(close, 1.0, diff) * (es - em)
    limit = h / tau_mem * em
    return np.where(close, limit, general)


class _Decay:
    """e^{−h/τx} and κ_x(h) for the post neurons of one delivery unit, for many h at once.

    Uniform time constants give (k, 1) factors; per-neuron ones (mismatch) use a table on the clock
    grid when the step holds few cycles, else direct exponentials.
    """

    def __init__(self, tau_syn: np.ndarray, tau_mem: np.ndarray, clock_us: float, dt_us: float):
        self.uniform = bool(np.all(tau_syn == tau_syn[0]) and np.all(tau_mem == tau_mem[0]))
        self.tau_syn = tau_syn[:1] if self.uniform else tau_syn
        self.tau_mem = tau_mem[:1] if self.uniform else tau_mem
        self.clock_us = clock_us
        ts, tm = float(self.tau_syn[0]), float(self.tau_mem[0])
        self.neg_inv_syn, self.neg_inv_mem = -1.0 / ts, -1.0 / tm
        self.coeff = ts / (ts - tm) if abs(ts - tm) > 1e-6 * max(ts, tm) else None
        self.table = None
        cycles = int(round(2 * dt_us / clock_us)) + 2
        if not self.uniform and cycles <= 4 * _GRID_MAX_CYCLES:
            h = np.arange(cycles)[:, None] * clock_us
            self.table = (np.exp(-h / tau_syn[None, :]), _kernel(h, tau_syn[None, :], tau_mem[None, :]))

    def factors(self, h_us: np.ndarray):
        if self.uniform and self.coeff is not None:
            f_i = np.exp(h_us * self.neg_inv_syn)
            return f_i[:, None], (self.coeff * (f_i - np.exp(h_us * self.neg_inv_mem)))[:, None]
        if self.table is not None:
            idx = np.rint(h_us / self.clock_us).astype(np.int64)
            if idx.max(initial=0) < len(self.table[0]):
                return self.table[0][idx], self.table[1][idx]
        h = h_us[:, None]
        return np.exp(-h / self.tau_syn[None, :]), _kernel(h, self.tau_syn[None, :], self.tau_mem[None, :])


@dataclass(eq=False)
class _Unit:
    """The synapses of one projection onto one contiguous run of post neurons with one route set."""

    projection: str
    pre: str
    pre_is_input: bool
    post_start: int   # global index of the first post neuron of this unit
    post_cols: slice  # columns of the projection's weight matrix
    w_exc: np.ndarray | None
    w_inh: np.ndarray | None
    decay_exc: _Decay | None
    decay_inh: _Decay | None
    latency_us: np.ndarray   # (n_pre,) route latency to this unit's half
    last_link: np.ndarray    # (n_pre,) index of the last link of each pre neuron's route (-1: no link model)
    delay_us: float
    size: int
    # (projection, first column of that projection in this unit) for every projection merged in
    parts: tuple = ()


@dataclass
class _Pending:
    """Events waiting in one step's bucket for one unit."""

    batch: list = field(default_factory=list)
    pre: list = field(default_factory=list)
    time: list = field(default_factory=list)


class Emulator:
    """Runs batches on one mapped chip with one die; reads the configuration from ``state``."""

    def __init__(self, mapped, die: Die, state: ChipState):
        self.mapped = mapped
        self.profile = mapped.profile
        self.die = die
        self.state = state
        self.transfer = Transfer(self.profile)
        self._prepared_version = None
        self.n = mapped.n_circuits
        self.pop_offset = {name: p.offset for name, p in mapped.populations.items()}
        self.pop_size = {name: p.size for name, p in mapped.populations.items()}
        self.circuits = np.arange(self.n)
        self.link_model = any(math.isfinite(link.capacity_per_cycle) for link in mapped.links)

    # ------------------------------------------------------------------ configuration
    def effective_params(self) -> dict[str, np.ndarray]:
        """Effective (die-deviated) model value of every analog parameter, per neuron."""
        out = {}
        for name, code in self.state.codes.items():
            out[name] = self.die.effective(self.transfer, name, code, self.circuits)
        out["adapt_increment"] = np.where(self.state.adaptive, out["adapt_increment"], 0.0)
        return out

    def effective_weights(self, projection: str) -> tuple[np.ndarray, np.ndarray]:
        """Effective signed amplitudes (exc ≥ 0, inh ≥ 0) of a projection's synapses."""
        proj = self.mapped.projections[projection]
        post = self.mapped.populations[proj.post]
        wfs_code = self.state.codes["weight_full_scale"][post.offset:post.offset + post.size]
        wfs = self.die.effective(self.transfer, "weight_full_scale", wfs_code,
                                 self.circuits[post.offset:post.offset + post.size])
        scale = float(self.profile.weight_max_code or 1)
        result = []
        for codes, ids in ((self.state.exc_code[projection], proj.exc_synapse),
                           (self.state.inh_code[projection], proj.inh_synapse)):
            w = codes / scale * wfs[None, :]
            gain = self.die.synapse_gain(ids)
            if gain is not None:
                w = w * gain
            result.append(w)
        return result[0], result[1]

    def _prepare(self, dt: float) -> None:
        if self._prepared_version == (self.state.version, dt):
            return
        p = self.effective_params()
        self.p = p
        self.VL, self.Vr, self.Vth = p["v_leak"], p["v_reset"], p["v_threshold"]
        self.tm, self.te, self.ti = p["tau_mem_us"], p["tau_syn_exc_us"], p["tau_syn_inh_us"]
        self.tref, self.ta, self.da = p["tau_ref_us"], p["tau_adapt_us"], p["adapt_increment"]
        self.am = np.exp(-dt / self.tm)
        self.ae = np.exp(-dt / self.te)
        self.ai = np.exp(-dt / self.ti)
        self.aa = np.exp(-dt / self.ta)
        self.ke = _kernel(dt, self.te, self.tm)
        self.ki = _kernel(dt, self.ti, self.tm)
        self.any_adaptive = bool(np.any(self.da > 0))
        self.Vr_row = self.Vr[None, :]
        self.c_e = self._kernel_coeff(self.te, self.tm)
        self.c_i = self._kernel_coeff(self.ti, self.tm)
        self._build_units(dt)
        self._prepared_version = (self.state.version, dt)

    @staticmethod
    def _kernel_coeff(tau_syn, tau_mem):
        """τs/(τs − τm) per neuron, NaN where the two are too close for the difference formula."""
        diff = tau_syn - tau_mem
        close = np.abs(diff) < 1e-6 * np.maximum(tau_syn, tau_mem)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(close, np.nan, tau_syn / np.where(close, 1.0, diff))

    def _deliver(self, unit, b, pre, h, Ie, Ii, Vn, B):
        """Add the end-of-step effect of events that arrived h µs before the step's end."""
        sl = slice(unit.post_start, unit.post_start + unit.size)
        for w, decay, I, sign in ((unit.w_exc, unit.decay_exc, Ie, 1.0), (unit.w_inh, unit.decay_inh, Ii, -1.0)):
            if w is None:
                continue
            rows = w[pre]
            f_i, f_v = decay.factors(h)
            if B == 1 and decay.uniform:
                both = np.stack([f_i[:, 0], sign * f_v[:, 0]]) @ rows
                I[0, sl] += both[0]
                Vn[0, sl] += both[1]
                continue
            dI = rows * f_i
            dV = rows * f_v
            if B == 1:
                I[0, sl] += dI.sum(axis=0)
                Vn[0, sl] += sign * dV.sum(axis=0)
            else:
                onehot = np.zeros((B, len(b)))
                onehot[b, np.arange(len(b))] = 1.0
                I[:, sl] += onehot @ dI
                Vn[:, sl] += sign * (onehot @ dV)

    def _build_units(self, dt: float) -> None:
        mapped, clock = self.mapped, self.profile.clock_us
        self.units: list[_Unit] = []
        self.units_of_source: dict[str, list[int]] = {}
        for name, proj in mapped.projections.items():
            w_exc, w_inh = self.effective_weights(name)
            post = mapped.populations[proj.post]
            halves = np.asarray(proj.post_half)
            # split the post population where the route changes: per half when links can congest,
            # else only where the latency differs
            boundaries = [0]
            for j in range(1, post.size):
                if halves[j] == halves[j - 1]:
                    continue
                if self.link_model or not np.array_equal(self._route_latency(proj, halves[j]),
                                                         self._route_latency(proj, halves[j - 1])):
                    boundaries.append(j)
            boundaries.append(post.size)
            for a, b in zip(boundaries[:-1], boundaries[1:]):
                cols = slice(a, b)
                gidx = np.arange(post.offset + a, post.offset + b)
                we = w_exc[:, cols] if np.any(w_exc[:, cols]) or proj.sign != "inhibitory" else None
                wi = w_inh[:, cols] if np.any(w_inh[:, cols]) or proj.sign != "excitatory" else None
                if proj.sign == "excitatory":
                    wi = None
                if proj.sign == "inhibitory":
                    we = None
                half = int(halves[a])
                lat_cycles, last = self._route_of(proj, half)
                unit = _Unit(
                    projection=name, pre=proj.pre, pre_is_input=proj.pre_is_input,
                    post_start=post.offset + a, post_cols=cols,
                    w_exc=None if we is None else np.ascontiguousarray(we),
                    w_inh=None if wi is None else np.ascontiguousarray(wi),
                    decay_exc=None if we is None else _Decay(self.te[gidx], self.tm[gidx], clock, dt),
                    decay_inh=None if wi is None else _Decay(self.ti[gidx], self.tm[gidx], clock, dt),
                    latency_us=lat_cycles * clock, last_link=last, delay_us=proj.delay_us, size=b - a,
                )
                unit.parts = ((name, a),)
                self.units.append(unit)
        if not self.link_model:
            self.units = self._merge_units(self.units, clock, dt)
        for i, unit in enumerate(self.units):
            self.units_of_source.setdefault(unit.pre, []).append(i)

    def _merge_units(self, units, clock, dt):
        """Fuse units that share source, delay and latencies and feed adjacent neurons (e.g. E→E
        and E→I): one weight matrix, so each step delivers and checks them with one set of calls."""
        merged: list[_Unit] = []
        for unit in sorted(units, key=lambda u: (u.pre, u.delay_us, u.post_start)):
            last = merged[-1] if merged else None
            if (last is not None and last.pre == unit.pre and last.delay_us == unit.delay_us
                    and last.post_start + last.size == unit.post_start
                    and (last.w_exc is None) == (unit.w_exc is None) and (last.w_inh is None) == (unit.w_inh is None)
                    and np.array_equal(last.latency_us, unit.latency_us)):
                gidx = np.arange(last.post_start, unit.post_start + unit.size)
                we = None if unit.w_exc is None else np.hstack([last.w_exc, unit.w_exc])
                wi = None if unit.w_inh is None else np.hstack([last.w_inh, unit.w_inh])
                merged[-1] = _Unit(
                    projection=last.projection, pre=last.pre, pre_is_input=last.pre_is_input,
                    post_start=last.post_start, post_cols=slice(0, last.size + unit.size), w_exc=we, w_inh=wi,
                    decay_exc=None if we is None else _Decay(self.te[gidx], self.tm[gidx], clock, dt),
                    decay_inh=None if wi is None else _Decay(self.ti[gidx], self.tm[gidx], clock, dt),
                    latency_us=last.latency_us, last_link=last.last_link, delay_us=last.delay_us,
                    size=last.size + unit.size,
                    parts=last.parts + tuple((name, start + last.size) for name, start in unit.parts))
            else:
                merged.append(unit)
        return merged

    def _route_latency(self, proj, half):
        groups = np.asarray(proj.pre_group)
        return np.array([self.mapped.routes[(int(g), int(half))].latency_cycles for g in groups])

    def _route_of(self, proj, half):
        groups = np.asarray(proj.pre_group)
        lat = np.empty(len(groups))
        last = np.full(len(groups), -1, dtype=np.int64)
        for g in np.unique(groups):
            route = self.mapped.routes[(int(g), int(half))]
            sel = groups == g
            lat[sel] = route.latency_cycles
            if self.link_model and route.links:
                last[sel] = route.links[-1]
        return lat, last

    # ------------------------------------------------------------------ link model
    def _link_setup(self, batch: int) -> None:
        mapped = self.mapped
        self.link_stats = [LinkStats(link.name) for link in mapped.links]
        self.link_free_at = np.full((len(mapped.links), batch), -np.inf)
        # per source group: its links in route order with their predecessor
        self.group_links: dict[int, list[tuple[int, int]]] = {}
        for (g, _half), route in mapped.routes.items():
            seen = dict(self.group_links.get(g, []))
            prev = -1
            for link in route.links:
                seen.setdefault(link, prev)
                prev = link
            self.group_links[g] = list(seen.items())
        # a global order in which every link comes after all of its predecessors (any group)
        import networkx as nx

        order_graph = nx.DiGraph()
        for items in self.group_links.values():
            for link, pred in items:
                order_graph.add_node(link)
                if pred != -1:
                    order_graph.add_edge(pred, link)
        order = list(nx.topological_sort(order_graph))
        self.group_pred = {g: dict(items) for g, items in self.group_links.items()}
        self.link_order = order

    def _through_links(self, group: np.ndarray, batch: np.ndarray, t: np.ndarray):
        """Push emitted events through the link FIFOs; returns per-link (passed mask, exit time)."""
        links = self.mapped.links
        n = len(t)
        exit_at: dict[int, np.ndarray] = {}
        lost = np.zeros(n, dtype=bool)
        for link_index in self.link_order:
            link = links[link_index]
            entry = np.full(n, np.nan)
            for g, preds in self.group_pred.items():
                pred = preds.get(link_index)
                if pred is None:
                    continue
                sel = group == g
                if not sel.any():
                    continue
                if pred == -1:
                    entry[sel] = t[sel]
                else:
                    entry[sel] = exit_at[pred][sel]
            idx = np.nonzero(np.isfinite(entry))[0]
            out = np.full(n, np.nan)
            if len(idx):
                stats = self.link_stats[link_index]
                stats.offered += len(idx)
                depart, dropped, max_wait = self._fifo(link, link_index, batch[idx], entry[idx])
                stats.dropped += int(dropped.sum())
                stats.max_wait_us = max(stats.max_wait_us, max_wait)
                keep = ~dropped
                out[idx[keep]] = depart[keep] + link.latency_cycles * self.profile.clock_us
            exit_at[link_index] = out
            lost |= np.isfinite(entry) & ~np.isfinite(out)
        self.sent_events += n
        self.lost_events += int(lost.sum())
        return exit_at

    def _fifo(self, link, link_index: int, batch: np.ndarray, entry: np.ndarray):
        """FIFO service per sample: departure times, drop flags and the longest wait.

        One server per link and sample, ``service`` µs per event. With events sorted by entry,
        event j of a sample starts at j·σ + max(free, max_{i≤j}(e_i − i·σ)); the running max is
        taken per sample at once by offsetting each sample's values above the previous one's.
        """
        cap = link.capacity_per_cycle
        if not math.isfinite(cap):
            return entry.copy(), np.zeros(len(entry), dtype=bool), 0.0
        service = self.profile.clock_us / cap
        limit = link.queue_depth * service
        free_at = self.link_free_at[link_index]

        def serve(b, e):
            order = np.lexsort((e, b))
            bs, es = b[order], e[order]
            n = len(es)
            first = np.ones(n, dtype=bool)
            first[1:] = bs[1:] != bs[:-1]
            group = np.cumsum(first) - 1
            starts = np.nonzero(first)[0]
            j = np.arange(n) - starts[group]
            free = free_at[bs]
            x = np.maximum(es - j * service, np.where(np.isfinite(free), free, -np.inf))
            x = np.where(np.isfinite(x), x, es - j * service)
            big = float(x.max() - x.min()) + 1.0
            run = np.maximum.accumulate(x + group * big) - group * big
            start = run + j * service
            out = np.empty(n)
            out[order] = start
            return out

        start = serve(batch, entry)
        wait = start - entry
        dropped = wait > limit
        if dropped.any():
            kept = ~dropped
            start = np.full(len(entry), np.nan)
            start[kept] = serve(batch[kept], entry[kept])
            wait = np.where(kept, start - entry, 0.0)
        depart = start + service
        kept = ~dropped
        if kept.any():
            last = np.full(len(free_at), -np.inf)
            np.maximum.at(last, batch[kept], depart[kept])
            np.maximum(free_at, last, out=free_at)
        max_wait = float(wait[kept].max()) if kept.any() else 0.0
        return depart, dropped, max_wait

    # ------------------------------------------------------------------ run
    def run(self, inputs: dict[str, SpikeEvents], *, batch: int, duration_us: float, record: Record,
            noise_seed: int, initial_v: np.ndarray | None = None,
            timer: tuple[float, Callable[[float], None]] | None = None,
            progress: Callable[[float], None] | None = None) -> RawRun:
        start_wall = time.perf_counter()
        prof = self.profile
        dt = prof.step_us
        clock = prof.clock_us
        M = prof.cycles_per_step
        n_steps = int(math.ceil(duration_us / dt - 1e-9))
        self._prepare(dt)
        B, N = batch, self.n
        rng = np.random.default_rng([noise_seed, 7])
        noise_sigma = prof.noise_membrane
        noise_scale = noise_sigma * np.sqrt(1.0 - self.am ** 2) if noise_sigma > 0 else None

        V = np.broadcast_to(self.VL, (B, N)).copy() if initial_v is None else np.array(initial_v, dtype=float)
        Ie = np.zeros((B, N))
        Ii = np.zeros((B, N))
        A = np.zeros((B, N))
        ref_until = np.full((B, N), -np.inf)  # absolute end of refractoriness (µs)
        self.sent_events = 0
        self.lost_events = 0
        if self.link_model:
            self._link_setup(B)

        buckets: dict[int, dict[int, _Pending]] = {}
        emit_inputs: dict[int, list] = {}
        # inputs: with congestible links they are pushed through the links in the step they are
        # sent; otherwise they go straight to their arrival buckets
        for name, events in inputs.items():
            if name not in self.units_of_source or len(events) == 0:
                continue
            cycles = np.rint(events.time_us / clock)
            t = cycles * clock
            if self.link_model:
                step_of = np.floor(t / dt + 1e-9).astype(np.int64)
                for s in np.unique(step_of):
                    sel = step_of == s
                    emit_inputs.setdefault(int(s), []).append((name, events.batch[sel], events.neuron[sel], t[sel]))
            else:
                self._schedule(buckets, name, events.batch, events.neuron, t, -1)

        spikes_b, spikes_n, spikes_c = [], [], []
        traces = self._trace_setup(record, B, dt)
        corr = self._corr_setup(record, B)
        self._live_corr = corr
        timer_every = None
        if timer is not None:
            timer_every = max(1, int(round(timer[0] / dt)))
        progress_every = max(1, n_steps // 100)

        for s in range(n_steps):
            t0 = s * dt
            t1 = t0 + dt
            if self.link_model and s in emit_inputs:
                for name, b, n_, t in emit_inputs.pop(s):
                    self._emit(buckets, name, b, n_, t, s)
            pending = buckets.pop(s, None)

            Vn = V - self.VL
            Vn *= self.am
            Vn += self.VL
            Vn += Ie * self.ke
            Vn -= Ii * self.ki
            Ie0, Ii0, A0 = Ie, Ii, A  # start-of-step state, read by the slow path
            Ie = Ie * self.ae
            Ii = Ii * self.ai
            if self.any_adaptive:
                A = A * self.aa
            step_events = []
            if pending:
                for ui, pend in pending.items():
                    unit = self.units[ui]
                    if len(pend.batch) == 1:
                        b, pre, ta = pend.batch[0], pend.pre[0], pend.time[0]
                    else:
                        b, pre, ta = np.concatenate(pend.batch), np.concatenate(pend.pre), np.concatenate(pend.time)
                    self._deliver(unit, b, pre, t1 - ta, Ie, Ii, Vn, B)
                    step_events.append((ui, b, pre, ta - t0))
                    if corr:
                        self._corr_pre(corr, unit, b, pre, ta, t1)
            xi = None
            if noise_scale is not None:
                xi = rng.standard_normal((B, N)) * noise_scale
                Vn += xi
            refractory = ref_until > t0
            any_refractory = bool(refractory.any())
            if any_refractory:
                np.copyto(Vn, self.Vr_row, where=refractory)
            theta = self.Vth + A if self.any_adaptive else self.Vth
            slow = Vn >= theta
            if any_refractory:
                slow |= refractory & (ref_until < t1)
            spiked = None
            if slow.any():
                bi, ni = np.nonzero(slow)
                R0 = np.maximum(ref_until[bi, ni] - t0, 0.0)
                spiked = self._slow_path(bi, ni, V, Ie0, Ii0, A0, R0, Vn, xi, step_events, dt, M, clock)
            if spiked is not None:
                sb, sn, s_cycle, v_end, r_end, tau_sp = spiked
                ref_until[sb, sn] = t0 + tau_sp + self.tref[sn]
                Vn[sb, sn] = v_end
                if self.any_adaptive:
                    A[sb, sn] += self.da[sn] * np.exp(-(dt - tau_sp) / self.ta[sn])
                cycles = s * M + s_cycle
                spikes_b.append(sb)
                spikes_n.append(sn)
                spikes_c.append(cycles)
                if corr:
                    self._corr_post(corr, sb, sn, cycles * clock, t1)
                self._emit_neurons(buckets, sb, sn, cycles * clock, s)
            V = Vn
            if corr:
                self._corr_decay(corr, dt)
            if traces:
                self._trace_sample(traces, s, V)
            if timer_every is not None and (s + 1) % timer_every == 0:
                timer[1](t1)
                if self._prepared_version[0] != self.state.version:
                    self._prepare(dt)
            if progress is not None and (s + 1) % progress_every == 0:
                progress((s + 1) / n_steps)

        spikes = self._split_spikes(spikes_b, spikes_n, spikes_c)
        links = self.link_stats if self.link_model else []
        offered = self.sent_events
        dropped = self.lost_events
        return RawRun(
            spikes=spikes,
            traces=self._trace_finish(traces),
            correlations=self._corr_finish(corr),
            links=links,
            batch=B,
            steps=n_steps,
            emulated_us=n_steps * dt,
            wall_s=time.perf_counter() - start_wall,
            offered_events=offered,
            dropped_events=dropped,
        )

    # ------------------------------------------------------------------ slow path
    def _slow_path(self, bi, ni, V, Ie, Ii, A, R0, Vn, xi, step_events, dt, M, clock):
        """Exact in-step trajectories of the neurons that cross threshold or leave refractoriness.

        V, Ie, Ii, A hold the state at the start of the step; R0 the refractory time left then.
        Writes the end-of-step membrane of non-spiking neurons into Vn; returns the spikes.
        """
        n_s = len(bi)
        VL, Vr, Vth = self.VL[ni], self.Vr[ni], self.Vth[ni]
        tm, te, ti = self.tm[ni], self.te[ni], self.ti[ni]
        ce, ci = self.c_e[ni], self.c_i[ni]
        tref, ta = self.tref[ni], self.ta[ni]
        V0, Ie0, Ii0, A0 = V[bi, ni], Ie[bi, ni], Ii[bi, ni], A[bi, ni]
        noise = xi[bi, ni] if xi is not None else None
        exact_limit = bool(np.isnan(ce).any() or np.isnan(ci).any())

        # this step's events that reach these neurons: arrival offsets (K,), weights (n_s, K)
        offsets, WE, WI = [], [], []
        ni_min, ni_max = int(ni.min()), int(ni.max())
        for ui, b, pre, off in step_events:
            unit = self.units[ui]
            if unit.post_start > ni_max or unit.post_start + unit.size <= ni_min:
                continue
            inside = (ni >= unit.post_start) & (ni < unit.post_start + unit.size)
            j = np.nonzero(inside)[0]
            if not len(j):
                continue
            cols = ni[j] - unit.post_start
            same = bi[j][:, None] == b[None, :]
            sel = np.ix_(pre, cols)
            we = unit.w_exc[sel].T * same if unit.w_exc is not None else None
            wi = unit.w_inh[sel].T * same if unit.w_inh is not None else None
            hit = np.zeros(len(b), dtype=bool)
            if we is not None:
                hit |= (we != 0).any(axis=0)
            if wi is not None:
                hit |= (wi != 0).any(axis=0)
            if not hit.any():
                continue
            k = np.count_nonzero(hit)
            full_e = np.zeros((n_s, k))
            full_i = np.zeros((n_s, k))
            if we is not None:
                full_e[j] = we[:, hit]
            if wi is not None:
                full_i[j] = wi[:, hit]
            offsets.append(off[hit])
            WE.append(full_e)
            WI.append(full_i)
        if offsets:
            a_all = np.concatenate(offsets)
            WE = np.concatenate(WE, axis=1)
            WI = np.concatenate(WI, axis=1)
            # sparse (neuron, event) pairs: a neuron only sees its own sample's events that hit it
            pj, pk = np.nonzero((WE != 0) | (WI != 0))
            pwe, pwi, pa = WE[pj, pk], WI[pj, pk], a_all[pk]
            row_start = np.searchsorted(pj, np.arange(n_s))
            has_pairs = len(pj) > 0
        else:
            has_pairs = False

        def kern(h, tau_syn, c, em, tau_mem):
            if exact_limit:
                return _kernel(h, tau_syn, tau_mem)
            return c * (np.exp(-h / tau_syn) - em)

        def trajectory(tau, s_free, v_start, with_noise=True):
            """V at in-step times tau (n_s, G) of neurons free from s_free on, starting at v_start."""
            s_col = s_free[:, None]
            ie_s = Ie0 * np.exp(-s_free / te)
            ii_s = Ii0 * np.exp(-s_free / ti)
            if has_pairs:
                s_p = s_free[pj]
                # events that arrived while the neuron was held at reset charge its current only
                via = (pa < s_p) & (s_p > 0)
                if via.any():
                    age = np.maximum(s_p - pa, 0.0)
                    ie_s = ie_s + np.bincount(pj, weights=pwe * via * np.exp(-age / te[pj]), minlength=n_s)
                    ii_s = ii_s + np.bincount(pj, weights=pwi * via * np.exp(-age / ti[pj]), minlength=n_s)
            h = np.maximum(tau - s_col, 0.0)
            em = np.exp(-h / tm[:, None])
            v = (VL[:, None] + (v_start - VL)[:, None] * em
                 + ie_s[:, None] * kern(h, te[:, None], ce[:, None], em, tm[:, None])
                 - ii_s[:, None] * kern(h, ti[:, None], ci[:, None], em, tm[:, None]))
            if has_pairs:
                he = np.maximum(tau[pj] - pa[:, None], 0.0)  # (pairs, G)
                tmp = tm[pj][:, None]
                em_p = np.exp(-he / tmp)
                contrib = (pwe[:, None] * kern(he, te[pj][:, None], ce[pj][:, None], em_p, tmp)
                           - pwi[:, None] * kern(he, ti[pj][:, None], ci[pj][:, None], em_p, tmp))
                if via.any():
                    contrib = contrib * ~via[:, None]
                rows = np.unique(pj)
                v[rows] += np.add.reduceat(contrib, row_start[rows], axis=0)
            if with_noise and noise is not None:
                v = v + noise[:, None] * (tau / dt)
            return np.where(tau > s_col, v, np.where(s_col > 0, Vr[:, None], v_start[:, None]))

        def threshold(tau):
            if not self.any_adaptive:
                return Vth[:, None]
            return Vth[:, None] + A0[:, None] * np.exp(-tau / ta[:, None])

        s_free = np.minimum(R0, dt)
        v_start = np.where(R0 > 0, Vr, V0)
        crossing_cycle = np.full(n_s, -1, dtype=np.int64)
        if M <= _GRID_MAX_CYCLES:
            grid = np.broadcast_to(np.arange(1, M + 1) * clock, (n_s, M))
            v_grid = trajectory(grid, s_free, v_start)
            f_grid = v_grid - threshold(grid)
            above = (f_grid >= 0) & (grid > s_free[:, None] + 1e-12)
            has = above.any(axis=1)
            crossing_cycle[has] = np.argmax(above[has], axis=1) + 1
            v_end_free = v_grid[:, -1]
            # the analog reset acts at the crossing itself, the digital stamp on the next clock edge:
            # locate the crossing between grid points by linear interpolation (error O(clock²))
            crossing_time = crossing_cycle * clock
            m = crossing_cycle
            if has.any():
                rows = np.nonzero(has)[0]
                f_hi = f_grid[rows, m[rows] - 1]
                # the point before: the previous grid point, or the start of the step (free neurons)
                f_start = V0[rows] - Vth[rows] - (A0[rows] if self.any_adaptive else 0.0)
                f_lo = np.where(m[rows] >= 2, f_grid[rows, np.maximum(m[rows] - 2, 0)], f_start)
                t_lo = (m[rows] - 1) * clock
                ok = (f_lo < 0) & (t_lo >= s_free[rows]) & ((m[rows] >= 2) | (s_free[rows] == 0))
                frac = np.where(ok, -f_lo / np.where(ok, f_hi - f_lo, 1.0), 1.0)
                crossing_time[rows] = t_lo + frac * clock
        else:
            end = np.full((n_s, 1), dt)
            v_end_free = trajectory(end, s_free, v_start)[:, 0]
            has = v_end_free >= threshold(end)[:, 0]
            lo = s_free.copy()
            hi = np.full(n_s, dt)
            for _ in range(int(math.ceil(math.log2(max(M, 2)))) + 2):
                mid = 0.5 * (lo + hi)
                up = trajectory(mid[:, None], s_free, v_start)[:, 0] >= threshold(mid[:, None])[:, 0]
                hi = np.where(up, mid, hi)
                lo = np.where(up, lo, mid)
            crossing_cycle[has] = np.clip(np.ceil(hi[has] / clock - 1e-9).astype(np.int64), 1, M)
            crossing_time = hi

        Vn[bi, ni] = v_end_free
        spk = crossing_cycle > 0
        if not spk.any():
            return None
        k = np.nonzero(spk)[0]
        tau_sp = crossing_time[k]
        s_after = tau_sp + tref[k]
        v_end = Vr[k].copy()
        free = s_after < dt
        if free.any():
            # the reset neuron leaves refractoriness before the step ends: evolve it from v_reset
            idx = k[free]
            s_full = np.full(n_s, dt)
            s_full[idx] = s_after[free]
            v_full = Vr.copy()
            vv = trajectory(np.full((n_s, 1), dt), s_full, v_full, with_noise=False)[:, 0]
            v_end[free] = vv[idx] + (0.0 if noise is None else noise[idx] * (1 - s_after[free] / dt))
        return bi[k], ni[k], crossing_cycle[k], v_end, s_after - dt, tau_sp

    # ------------------------------------------------------------------ events
    def _emit_neurons(self, buckets, sb, sn, t, s):
        for pop, offset in self.pop_offset.items():
            size = self.pop_size[pop]
            sel = (sn >= offset) & (sn < offset + size)
            if sel.any() and pop in self.units_of_source:
                self._emit(buckets, pop, sb[sel], sn[sel] - offset, t[sel], s)

    def _emit(self, buckets, source, b, idx, t, s):
        """Send events from a source at times t (emitted in step s) to every unit it feeds."""
        exit_at = None
        if self.link_model:
            unit0 = self.units[self.units_of_source[source][0]]
            proj = self.mapped.projections[unit0.projection]
            group = np.asarray(proj.pre_group)[idx]
            exit_at = self._through_links(group, b, t)
        for ui in self.units_of_source[source]:
            unit = self.units[ui]
            if exit_at is not None:
                last = unit.last_link[idx]
                arrive = np.full(len(t), np.nan)
                for link in np.unique(last):
                    sel = last == link
                    arrive[sel] = (exit_at[int(link)][sel] if link >= 0 else t[sel])
                ok = np.isfinite(arrive)
                arrival = arrive[ok] + unit.delay_us
                bb, ii = b[ok], idx[ok]
            else:
                arrival = t + unit.latency_us[idx] + unit.delay_us
                bb, ii = b, idx
            self._bucket(buckets, ui, bb, ii, arrival, s)
        if exit_at is None:
            self.sent_events += len(t)

    def _schedule(self, buckets, source, b, idx, t, s):
        self.sent_events += len(t)
        for ui in self.units_of_source.get(source, []):
            unit = self.units[ui]
            self._bucket(buckets, ui, b, idx, t + unit.latency_us[idx] + unit.delay_us, s)

    def _bucket(self, buckets, ui, b, idx, arrival, s):
        if len(arrival) == 0:
            return
        dt = self.profile.step_us
        step = np.maximum(np.floor(arrival / dt + 1e-9).astype(np.int64), s + 1)
        if len(step) == 1 or np.all(step == step[0]):
            groups = [(int(step[0]), slice(None))]
        else:
            groups = [(int(u), step == u) for u in np.unique(step)]
        for st, sel in groups:
            pend = buckets.setdefault(st, {}).setdefault(ui, _Pending())
            pend.batch.append(b[sel])
            pend.pre.append(idx[sel])
            pend.time.append(arrival[sel])

    def _split_spikes(self, sb, sn, sc):
        if sb:
            b = np.concatenate(sb)
            n = np.concatenate(sn)
            c = np.concatenate(sc)
        else:
            b = n = c = np.zeros(0, dtype=np.int64)
        order = np.lexsort((n, b, c))
        b, n, c = b[order], n[order], c[order]
        out = {}
        for pop, offset in self.pop_offset.items():
            sel = (n >= offset) & (n < offset + self.pop_size[pop])
            out[pop] = (b[sel], n[sel] - offset, c[sel])
        return out

    # ------------------------------------------------------------------ readout: ADC traces
    def _trace_setup(self, record: Record, B: int, dt: float):
        traces = []
        for rec in record.membrane:
            every = max(1, int(math.ceil(rec.period_us / dt - 1e-9)))  # never faster than asked
            idx = self.pop_offset[rec.population] + np.asarray(rec.neurons, dtype=np.int64)
            traces.append({"record": rec, "every": every, "idx": idx, "times": [], "values": []})
        return traces

    def _trace_sample(self, traces, s, V):
        for tr in traces:
            if (s + 1) % tr["every"] == 0:
                tr["times"].append((s + 1) * self.profile.step_us)
                tr["values"].append(V[:, tr["idx"]].copy())

    def _trace_finish(self, traces):
        out = []
        for tr in traces:
            values = np.stack(tr["values"], axis=1) if tr["values"] else np.zeros((0, 0, len(tr["idx"])))
            out.append((tr["record"], np.asarray(tr["times"]), values))
        return out

    # ------------------------------------------------------------------ readout: correlation sensors
    def _corr_setup(self, record: Record, B: int):
        corr = {}
        for name in record.correlations:
            proj = self.mapped.projections[name]
            n_pre = proj.mask.shape[0]
            n_post = proj.mask.shape[1]
            corr[name] = {
                "pre_trace": np.zeros((B, n_pre)),
                "post_trace": np.zeros((B, n_post)),
                "causal": np.zeros((B, n_pre, n_post)),
                "acausal": np.zeros((B, n_pre, n_post)),
                "post_offset": self.pop_offset[proj.post],
                "n_post": n_post,
            }
        return corr

    def _corr_pre(self, corr, unit, b, pre, ta, t1):
        for name, _ in unit.parts:
            c = corr.get(name)
            # one unit per projection feeds the sensor (events reach every unit alike): the one
            # holding the projection's first post neuron
            if c is not None and self.pop_offset[self.mapped.projections[name].post] >= unit.post_start and \
                    self.pop_offset[self.mapped.projections[name].post] < unit.post_start + unit.size:
                self._corr_pre_one(c, b, pre, ta, t1)

    def _corr_pre_one(self, c, b, pre, ta, t1):
        tau = self.profile.correlation_tau_us
        # acausal: presynaptic event meets the postsynaptic trace (post before pre), decayed to arrival
        back = np.exp(-(t1 - ta) / tau)
        post_at_arrival = c["post_trace"][b] / back[:, None]
        np.add.at(c["acausal"], (b, pre), post_at_arrival)
        np.add.at(c["pre_trace"], (b, pre), back)

    def _corr_post(self, corr, sb, sn, t_sp, t1):
        tau = self.profile.correlation_tau_us
        for c in corr.values():
            sel = (sn >= c["post_offset"]) & (sn < c["post_offset"] + c["n_post"])
            if not sel.any():
                continue
            b, j = sb[sel], sn[sel] - c["post_offset"]
            back = np.exp(-(t1 - t_sp[sel]) / tau)
            # causal: postsynaptic spike meets the presynaptic trace (pre before post)
            pre_at_spike = c["pre_trace"][b] / back[:, None]
            c["causal"][b, :, j] += pre_at_spike
            np.add.at(c["post_trace"], (b, j), back)

    def _corr_decay(self, corr, dt):
        factor = math.exp(-dt / self.profile.correlation_tau_us)
        for c in corr.values():
            c["pre_trace"] *= factor
            c["post_trace"] *= factor

    def live_correlations(self, projection: str, *, reset: bool):
        corr = getattr(self, "_live_corr", None) or {}
        c = corr.get(projection)
        if c is None:
            return None
        mask = self.mapped.projections[projection].mask
        out = (c["causal"] * mask, c["acausal"] * mask)
        if reset:
            c["causal"][...] = 0.0
            c["acausal"][...] = 0.0
        return out

    def _corr_finish(self, corr):
        self._live_corr = None
        out = {}
        for name, c in corr.items():
            mask = self.mapped.projections[name].mask
            out[name] = (c["causal"] * mask, c["acausal"] * mask)
        return out
