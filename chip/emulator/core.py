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

The step loop itself is compiled (``chip.emulator.kernel``); this module turns the mapped chip, die and
state into the kernel's flat tables (parameters, synapse table, link tables, event calendar),
calls it for runs of steps, grows its buffers when it asks, and turns its outputs back into
spikes per population, traces, correlation sums and link counters.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import kernel as kernels
from .tables import (Calendar, LinkTable, NeuronState, NeuronTable, Scratch, SpikeBuffer, StepConfig,
                     SynapseTable, TraceBuffer)
from ..die import Die, Transfer
from ..events import SpikeEvents
from ..netlist import MembraneRecord, Record
from ..state import ChipState

__all__ = ["Emulator", "RawRun", "LinkStats"]

_log = logging.getLogger(__name__)

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
    kernel_load_s: float = 0.0  # loading (or, on a first run, compiling) the compiled step loop
    loop_s: float = 0.0       # the step loop itself


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


@dataclass(eq=False)
class _Unit:
    """The synapses of one projection onto one contiguous run of post neurons with one route set.
    Its weights live in the emulator's synapse table (rows ``row_base .. row_base + n_pre``)."""

    projection: str
    pre: str
    pre_is_input: bool
    post_start: int   # global index of the first post neuron of this unit
    size: int
    latency_us: np.ndarray   # (n_pre,) route latency to this unit's half
    last_link: np.ndarray    # (n_pre,) index of the last link of each pre neuron's route (-1: no link model)
    delay_us: float
    parts: tuple = ()        # (projection, first column of that projection in this unit)


class _Noise:
    """The membrane noise of each chunk of steps, drawn in chunk order from one generator (so the
    stream does not depend on the chunking's timing). With ``prefetch`` the next chunk is drawn on
    a helper thread while the kernel (which releases the GIL) runs the current one."""

    def __init__(self, rng, chunks, B: int, N: int, prefetch: bool):
        self.rng, self.chunks, self.shape = rng, chunks, (B, N)
        self.k = 0
        self.pool = None
        self.future = None
        if prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chipctl-noise")
            self.future = self.pool.submit(self._draw, 0)

    def _draw(self, k):
        a, b = self.chunks[k]
        return self.rng.standard_normal((b - a,) + self.shape)

    def next(self):
        k = self.k
        self.k += 1
        if self.pool is None:
            return self._draw(k)
        xi = self.future.result()
        if k + 1 < len(self.chunks):
            self.future = self.pool.submit(self._draw, k + 1)
        return xi

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class Emulator:
    """Runs batches on one mapped chip with one die; reads the configuration from ``state``."""

    # initial buffer sizes; each grows on demand (tests shrink them to exercise the growth)
    ring_capacity = 256        # events per calendar slot
    event_capacity = 1024      # events per step
    spike_capacity = 1 << 16   # spikes held before they are moved out of the kernel's buffer

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
        """Effective amplitudes (exc ≥ 0, inh ≥ 0) of a projection's connections, as vectors over
        its connections (see ``chip.mapping.PlacedProjection``)."""
        proj = self.mapped.projections[projection]
        post = self.mapped.populations[proj.post]
        wfs_code = self.state.codes["weight_full_scale"][post.offset:post.offset + post.size]
        wfs = self.die.effective(self.transfer, "weight_full_scale", wfs_code,
                                 self.circuits[post.offset:post.offset + post.size])[proj.post_index]
        scale = float(self.profile.weight_max_code or 1)
        result = []
        for codes, ids in ((self.state.exc_code[projection], proj.exc_synapse),
                           (self.state.inh_code[projection], proj.inh_synapse)):
            w = codes / scale * wfs
            gain = self.die.synapse_gain(ids)
            if gain is not None:
                w = w * gain
            result.append(w)
        return result[0], result[1]

    def _prepare(self, dt: float) -> None:
        if self._prepared_version == (self.state.version, dt):
            return
        p = self.effective_params()
        f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
        self.p = p
        self.VL, self.Vr, self.Vth = f64(p["v_leak"]), f64(p["v_reset"]), f64(p["v_threshold"])
        self.tm, self.te, self.ti = f64(p["tau_mem_us"]), f64(p["tau_syn_exc_us"]), f64(p["tau_syn_inh_us"])
        self.tref, self.ta, self.da = f64(p["tau_ref_us"]), f64(p["tau_adapt_us"]), f64(p["adapt_increment"])
        self.am = np.exp(-dt / self.tm)
        self.ae = np.exp(-dt / self.te)
        self.ai = np.exp(-dt / self.ti)
        self.aa = np.exp(-dt / self.ta)
        self.ke = f64(_kernel(dt, self.te, self.tm))
        self.ki = f64(_kernel(dt, self.ti, self.tm))
        self.any_adaptive = bool(np.any(self.da > 0))
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

    def _build_units(self, dt: float) -> None:
        """Delivery units and the synapse table the kernel reads (see ``chip.emulator.kernel``).

        A unit is one projection onto a run of post neurons that share routes: per half when links
        can congest (events queue per route), else split only where the route latency changes.
        Only synapses with a non-zero weight enter the table; a write rebuilds it.
        """
        mapped, clock = self.mapped, self.profile.clock_us
        units: list[_Unit] = []
        rows_per_unit, cols_per_unit, we_per_unit, wi_per_unit, counts_per_unit = [], [], [], [], []
        for name, proj in mapped.projections.items():
            w_exc, w_inh = self.effective_weights(name)
            if proj.sign == "excitatory":
                w_inh = None
            elif proj.sign == "inhibitory":
                w_exc = None
            post = mapped.populations[proj.post]
            halves = np.asarray(proj.post_half)
            boundaries = [0]
            for j in range(1, post.size):
                if halves[j] == halves[j - 1]:
                    continue
                if self.link_model or not np.array_equal(self._route_latency(proj, halves[j]),
                                                         self._route_latency(proj, halves[j - 1])):
                    boundaries.append(j)
            boundaries.append(post.size)
            n_pre = proj.mask.shape[0]
            nonzero = np.zeros(proj.n_synapses, dtype=bool)
            for w in (w_exc, w_inh):
                if w is not None:
                    nonzero |= w != 0
            # connections are in row-major order, so a post range keeps each row's columns sorted
            for a, b in zip(boundaries[:-1], boundaries[1:]):
                sel = nonzero & (proj.post_index >= a) & (proj.post_index < b)
                r = proj.pre_index[sel]
                rows_per_unit.append(np.bincount(r, minlength=n_pre))
                cols_per_unit.append(proj.post_index[sel] + post.offset)
                we_per_unit.append(w_exc[sel] if w_exc is not None else np.zeros(len(r)))
                wi_per_unit.append(w_inh[sel] if w_inh is not None else np.zeros(len(r)))
                lat_cycles, last = self._route_of(proj, int(halves[a]))
                unit = _Unit(projection=name, pre=proj.pre, pre_is_input=proj.pre_is_input,
                             post_start=post.offset + a, size=b - a, latency_us=lat_cycles * clock,
                             last_link=last, delay_us=proj.delay_us, parts=((name, a),))
                units.append(unit)
                counts_per_unit.append(n_pre)
            del w_exc, w_inh
        self.units = units
        self.units_of_source: dict[str, list[int]] = {}
        for i, unit in enumerate(units):
            self.units_of_source.setdefault(unit.pre, []).append(i)

        U = len(units)
        n_rows = np.array(counts_per_unit, dtype=np.int64)
        row_base = np.zeros(U, dtype=np.int64)
        if U:
            row_base[1:] = np.cumsum(n_rows)[:-1]
        per_row = np.concatenate(rows_per_unit) if U else np.zeros(0, dtype=np.int64)
        indptr = np.zeros(len(per_row) + 1, dtype=np.int64)
        np.cumsum(per_row, out=indptr[1:])
        cat = lambda parts, dtype: (np.ascontiguousarray(np.concatenate(parts), dtype=dtype)  # noqa: E731
                                    if parts else np.zeros(0, dtype=dtype))
        cols = cat(cols_per_unit, np.int64)
        w_e = cat(we_per_unit, np.float64)
        w_i = cat(wi_per_unit, np.float64)
        ustart = np.array([u.post_start for u in units], dtype=np.int64)
        uend = np.array([u.post_start + u.size for u in units], dtype=np.int64)
        delay = np.array([u.delay_us for u in units], dtype=np.float64)
        uniform = np.array([self._uniform(u.post_start, u.post_start + u.size) for u in units], dtype=np.bool_)
        lat = cat([u.latency_us for u in units], np.float64)
        lat_base = np.zeros(U, dtype=np.int64)
        if U:
            lat_base[1:] = np.cumsum([len(u.latency_us) for u in units])[:-1]
        # sources: the populations that feed a unit (ids 0 .. n_pop_sources - 1, in placement
        # order), then the inputs that do; per neuron its source id (-1: feeds nothing) and index
        nsrc = np.full(self.n, -1, dtype=np.int64)
        nlocal = np.zeros(self.n, dtype=np.int64)
        src_ptr, src_units, grp_parts = [0], [], []
        self.source_id: dict[str, int] = {}
        names = [pop for pop in self.pop_offset if pop in self.units_of_source]
        self.n_pop_sources = len(names)
        names += [name for name in self.units_of_source if name not in self.pop_offset]
        for name in names:
            sid = len(src_ptr) - 1
            self.source_id[name] = sid
            ids = self.units_of_source[name]
            if name in self.pop_offset:
                offset, size = self.pop_offset[name], self.pop_size[name]
                nsrc[offset:offset + size] = sid
                nlocal[offset:offset + size] = np.arange(size)
            src_units.extend(ids)
            src_ptr.append(len(src_units))
            # the route group of each source neuron (the same in every projection from it)
            grp_parts.append(np.asarray(mapped.projections[units[ids[0]].projection].pre_group, dtype=np.int64))
        self.grp = np.concatenate(grp_parts) if grp_parts else np.zeros(0, dtype=np.int64)
        self.grp_base = np.zeros(len(grp_parts), dtype=np.int64)
        if grp_parts:
            self.grp_base[1:] = np.cumsum([len(g) for g in grp_parts])[:-1]
        self.last_flat = cat([u.last_link for u in units], np.int64)
        self.syn = SynapseTable(row_base, indptr, cols, w_e, w_i, ustart, uend, delay, uniform, lat_base, lat,
                                np.array(src_ptr, dtype=np.int64), np.array(src_units, dtype=np.int64), nsrc, nlocal)
        # how far ahead of its emission step an event can act: the calendar's length
        reach = max((float(u.latency_us.max(initial=0.0)) + u.delay_us for u in units), default=0.0)
        if self.link_model:
            reach += self._max_link_wait_us()
        self.horizon_steps = int(math.ceil(reach / dt)) + 3

    def _uniform(self, a: int, b: int) -> bool:
        return bool(b > a and all(np.all(x[a:b] == x[a]) for x in (self.tm, self.te, self.ti)))

    def _max_link_wait_us(self) -> float:
        """Longest time an event can spend in the links of a route, queueing included."""
        clock = self.profile.clock_us
        links = self.mapped.links
        worst = 0.0
        for route in self.mapped.routes.values():
            total = 0.0
            for i in route.links:
                link = links[i]
                service = clock / link.capacity_per_cycle if math.isfinite(link.capacity_per_cycle) else 0.0
                total += (link.queue_depth + 1) * service + link.latency_cycles * clock
            worst = max(worst, total)
        return worst

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
    def _link_tables(self, batch: int):
        """The link model as the kernel reads it (``LNK`` in ``chip.emulator.kernel``); placeholders of the
        same types when links cannot congest (then routes are plain latencies)."""
        i64 = np.int64
        mapped, clock = self.mapped, self.profile.clock_us
        n_links = len(mapped.links)
        self.link_stats = [LinkStats(link.name) for link in mapped.links]
        if not self.link_model:
            z = np.zeros(0, dtype=i64)
            return LinkTable(np.full((1, 1), -2, dtype=i64), z, np.zeros(1), np.zeros(1), np.zeros(1),
                             np.full((1, batch), -np.inf), np.zeros(1, dtype=i64), np.zeros(1, dtype=i64),
                             np.zeros(1), self.grp_base, self.grp, self.last_flat)
        # per source group: each link of its routes (a tree) with its predecessor, -1 for the first
        n_groups = len(mapped.source_groups)
        pred = np.full((n_groups, n_links), -2, dtype=i64)
        for (g, _half), route in mapped.routes.items():
            prev = -1
            for link in route.links:
                if pred[g, link] == -2:
                    pred[g, link] = prev
                prev = link
        # a global order in which every link comes after all of its predecessors (any group)
        import networkx as nx

        order_graph = nx.DiGraph()
        for g, link in zip(*np.nonzero(pred != -2)):
            order_graph.add_node(int(link))
            if pred[g, link] >= 0:
                order_graph.add_edge(int(pred[g, link]), int(link))
        order = np.array(list(nx.topological_sort(order_graph)), dtype=i64)
        service = np.array([clock / link.capacity_per_cycle if math.isfinite(link.capacity_per_cycle) else 0.0
                            for link in mapped.links])
        limit = np.array([link.queue_depth for link in mapped.links], dtype=np.float64) * service
        link_lat = np.array([link.latency_cycles * clock for link in mapped.links], dtype=np.float64)
        return LinkTable(pred, order, service, limit, link_lat, np.full((n_links, batch), -np.inf),
                         np.zeros(n_links, dtype=i64), np.zeros(n_links, dtype=i64), np.zeros(n_links),
                         self.grp_base, self.grp, self.last_flat)

    def _link_finish(self, lnk) -> None:
        if not self.link_model:
            return
        offered, dropped, max_wait = lnk.offered, lnk.dropped, lnk.max_wait_us
        for i, stats in enumerate(self.link_stats):
            stats.offered = int(offered[i])
            stats.dropped = int(dropped[i])
            stats.max_wait_us = float(max_wait[i])

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
        has_noise = noise_sigma > 0
        nscale = noise_sigma * np.sqrt(1.0 - self.am ** 2) if has_noise else np.zeros(N)

        if initial_v is None:
            V = np.ascontiguousarray(np.broadcast_to(self.VL, (B, N)), dtype=np.float64).copy()
        else:
            V = np.array(initial_v, dtype=np.float64, order="C")
        state = NeuronState(V, np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, N)), np.full((B, N), -np.inf),
                            np.empty((B, N)), np.empty((B, N)), np.empty((B, N)), np.empty((B, N)))
        self.sent_events = 0
        lnk = self._link_tables(B)

        # the calendar: a ring of step slots for events emitted during the run; inputs go to a
        # static list sorted by arrival step, or (with congestible links) to a list sorted by the
        # step they are sent in, from which the kernel passes them through the links
        self._ring_alloc(self.horizon_steps, self.ring_capacity)
        static, sends = [], []
        for name, events in inputs.items():
            if name not in self.units_of_source or len(events) == 0:
                continue
            t = np.rint(events.time_us / clock) * clock
            if self.link_model:
                step_of = np.floor(t / dt + 1e-9).astype(np.int64)
                sends.append((step_of, np.full(len(t), self.source_id[name]), events.batch, events.neuron, t))
                continue
            self.sent_events += len(t)
            for ui in self.units_of_source[name]:
                unit = self.units[ui]
                arrival = t + unit.latency_us[events.neuron] + unit.delay_us
                step = np.maximum(np.floor(arrival / dt + 1e-9).astype(np.int64), 0)
                static.append((step, np.full(len(t), ui), events.batch, events.neuron, arrival))
        self._static = self._static_table(static, n_steps) + self._static_table(sends, n_steps)

        i64 = np.int64
        scratch = self._scratch(self.event_capacity, B, N)
        sp_cap = max(self.spike_capacity, B * N)
        out = SpikeBuffer(np.empty(sp_cap, i64), np.empty(sp_cap, i64), np.empty(sp_cap, i64))
        counters = np.zeros(8, dtype=i64)
        counters[kernels.C_SENT_STEP] = -1
        spikes_b, spikes_n, spikes_c = [], [], []

        def drain():
            k = int(counters[kernels.C_SPIKES])
            if k:
                spikes_b.append(out[0][:k].copy())
                spikes_n.append(out[1][:k].copy())
                spikes_c.append(out[2][:k].copy())
            counters[kernels.C_SPIKES] = counters[kernels.C_EMITTED] = 0

        tr_idx, tr_every, tr_out, tr_records = self._trace_setup(record, B, dt, n_steps)
        corr = self._corr_setup(record, B)
        self._live_corr = corr
        timer_every = max(1, int(round(timer[0] / dt))) if timer is not None else None
        progress_every = max(1, n_steps // 100) if progress is not None else n_steps
        # steps run in one call of the kernel: up to the next callback; one at a time where the
        # host side acts every step (correlation sensors)
        per_step = bool(corr)
        # with noise: chunks of at most 4 Mi draws, and at least 8 chunks so that drawing the next
        # chunk's noise overlaps with running the current one
        max_chunk = max(1, min((1 << 22) // (B * N), -(-n_steps // 8))) if has_noise else n_steps
        no_noise = np.zeros((1, 1, 1))
        grid = M <= _GRID_MAX_CYCLES

        params = self._params(nscale)
        traces = TraceBuffer(tr_idx, tr_every, tr_out)
        cfg = StepConfig(float(dt), float(clock), int(M), bool(grid), bool(self.any_adaptive), bool(self.link_model),
                         int(self.n_pop_sources), bool(has_noise))

        # a call of zero steps loads the compiled kernel (compiles it on a checkout's first run),
        # so that the loop's timing is the loop's
        def advance(first, last, xi):
            return kernels.advance(first, last, cfg, params, state, self.syn, self._cal(), lnk, scratch, out, xi,
                                   traces, counters)

        t_load = time.perf_counter()
        notice = threading.Timer(2.0, _log.info, args=(
            "compiling the emulator's step loop (first run after installing or updating; about 30 s, cached afterwards)",))
        notice.daemon = True
        notice.start()
        try:
            advance(0, 0, np.zeros((1, B, N)) if has_noise else no_noise)
        finally:
            notice.cancel()
        t_loop = time.perf_counter()
        kernel_load_s = t_loop - t_load

        chunks = []
        s = 0
        while s < n_steps:
            if per_step:
                s_end = s + 1
            else:
                s_end = min(n_steps, s + max_chunk, (s // progress_every + 1) * progress_every)
                if timer_every is not None:
                    s_end = min(s_end, (s // timer_every + 1) * timer_every)
            chunks.append((s, s_end))
            s = s_end
        noise = _Noise(rng, chunks, B, N, prefetch=has_noise and not per_step and len(chunks) > 1) \
            if has_noise else None

        try:
            for s, s_end in chunks:
                xi = noise.next() if noise is not None else no_noise
                if counters[kernels.C_SPIKES] + B * N > len(out[0]):
                    drain()
                sp0 = int(counters[kernels.C_SPIKES])
                cur = s
                while True:
                    status = advance(cur, s_end, xi[cur - s:] if has_noise else xi)
                    cur = int(counters[kernels.C_NEXT])
                    if status == kernels.DONE:
                        break
                    if status == kernels.RING_FULL:
                        self._ring_grow()
                    elif status == kernels.SPIKES_FULL:
                        drain()
                        sp0 = 0
                    elif status == kernels.EVENTS_FULL:
                        scratch = self._scratch(2 * int(counters[kernels.C_NEED]), B, N)
                if corr:
                    # the correlation sensors see this step's events and spikes (one step per call)
                    t1 = s * dt + dt
                    n_ev = int(counters[kernels.C_EVENTS])
                    eu, eb, ep, et = (a[:n_ev] for a in scratch[:4])  # unit, sample, index, time
                    for ui in np.unique(eu):
                        sel = eu == ui
                        self._corr_pre(corr, self.units[int(ui)], eb[sel], ep[sel], et[sel], t1)
                    k = int(counters[kernels.C_SPIKES])
                    if k > sp0:
                        self._corr_post(corr, out[0][sp0:k].copy(), out[1][sp0:k].copy(), out[2][sp0:k] * clock, t1)
                    self._corr_decay(corr, dt)
                if timer_every is not None and s_end % timer_every == 0:
                    timer[1]((s_end - 1) * dt + dt)
                    if self._prepared_version[0] != self.state.version:
                        self._prepare(dt)
                        params = self._params(nscale)
                if progress is not None and (s_end % progress_every == 0 or s_end == n_steps):
                    progress(s_end / n_steps)
        finally:
            if noise is not None:
                noise.close()
        drain()
        self.sent_events += int(counters[kernels.C_SENT])
        self.lost_events = int(counters[kernels.C_LOST])
        self._link_finish(lnk)
        loop_s = time.perf_counter() - t_loop

        spikes = self._split_spikes(spikes_b, spikes_n, spikes_c)
        links = self.link_stats if self.link_model else []
        return RawRun(
            spikes=spikes,
            traces=self._trace_finish(tr_records, tr_out, tr_idx, n_steps, dt),
            correlations=self._corr_finish(corr),
            links=links,
            batch=B,
            steps=n_steps,
            emulated_us=n_steps * dt,
            wall_s=time.perf_counter() - start_wall,
            offered_events=self.sent_events,
            dropped_events=self.lost_events,
            kernel_load_s=kernel_load_s,
            loop_s=loop_s,
        )

    def _params(self, nscale):
        """Per-neuron parameters in the kernel's order (see ``chip.emulator.kernel``)."""
        return NeuronTable(self.VL, self.Vr, self.Vth, self.tm, self.te, self.ti, self.tref, self.ta, self.da,
                           self.am, self.ae, self.ai, self.aa, self.ke, self.ki, self.c_e, self.c_i, nscale)

    # ------------------------------------------------------------------ calendar and scratch
    def _ring_alloc(self, slots: int, cap: int) -> None:
        i64 = np.int64
        self._ring = (np.zeros((slots, cap), i64), np.zeros((slots, cap), i64), np.zeros((slots, cap), i64),
                      np.zeros((slots, cap)), np.zeros(slots, i64))

    def _ring_grow(self) -> None:
        old = self._ring
        slots, cap = old[0].shape
        self._ring_alloc(slots, 2 * cap)
        for new, a in zip(self._ring[:4], old[:4]):
            new[:, :cap] = a
        self._ring[4][:] = old[4]

    def _cal(self):
        return Calendar(*self._ring, *self._static)

    @staticmethod
    def _static_table(static, n_steps: int):
        i64 = np.int64
        if static:
            step, u, b, p, t = (np.concatenate(parts) for parts in zip(*static))
            order = np.argsort(step, kind="stable")
            step = step[order]
            ptr = np.searchsorted(step, np.arange(n_steps + 1), side="left").astype(i64)
            return (ptr, np.ascontiguousarray(u[order], dtype=i64), np.ascontiguousarray(b[order], dtype=i64),
                    np.ascontiguousarray(p[order], dtype=i64), np.ascontiguousarray(t[order], dtype=np.float64))
        z = np.zeros(0, dtype=i64)
        return (np.zeros(n_steps + 1, dtype=i64), z, z, z, np.zeros(0))

    @staticmethod
    def _scratch(ev_cap: int, B: int, N: int):
        i64 = np.int64
        ev_cap = max(ev_cap, 1)
        return Scratch(np.empty(ev_cap, i64), np.empty(ev_cap, i64), np.empty(ev_cap, i64), np.empty(ev_cap),
                       np.empty(B * N, i64), np.empty(B * N, i64), np.empty(ev_cap), np.empty(ev_cap),
                       np.empty(ev_cap), np.empty(ev_cap, i64), np.empty(B + 1, i64), np.empty(B, i64))

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
    def _trace_setup(self, record: Record, B: int, dt: float, n_steps: int):
        """Columns of the kernel's sample array: neuron and sampling interval (steps) of each."""
        records, idx, every = [], [], []
        for rec in record.membrane:
            e = max(1, int(math.ceil(rec.period_us / dt - 1e-9)))  # never faster than asked
            cols = self.pop_offset[rec.population] + np.asarray(rec.neurons, dtype=np.int64)
            records.append((rec, e, len(idx), len(cols)))
            idx.extend(cols.tolist())
            every.extend([e] * len(cols))
        rows = max((n_steps // e for _, e, _, _ in records), default=0)
        out = np.zeros((B, max(rows, 1), len(idx)))
        return np.array(idx, dtype=np.int64), np.array(every, dtype=np.int64), out, records

    def _trace_finish(self, records, out, idx, n_steps, dt):
        result = []
        for rec, every, first, k in records:
            n = n_steps // every
            times = np.array([(j + 1) * every * dt for j in range(n)])
            result.append((rec, times, out[:, :n, first:first + k].copy()))
        return result

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
