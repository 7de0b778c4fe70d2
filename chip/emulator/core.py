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

Batch-to-batch drift moves each neuron's threshold by its own draw per run (:func:`run_thresholds`).
An adaptation current (ALIF with ``adaptation: current``) enters V like an inhibitory current with
τ_adapt (exact), driven by the membrane at step resolution. Saturating synaptic inputs scale each
neuron's membrane change due to each input by one gain per step; rails clip the membrane at each
step's end.

Events travel from their source to the synapse drivers of each target half along routes of the
mapped routing graph. Each link is a FIFO server of ``capacity`` events per clock cycle with a
queue of ``queue_depth`` events; an event that would wait behind more than that is dropped and
counted. An event never acts inside the step it was emitted in: when latency + delay is shorter
than what is left of that step, it acts from the next step on with its exact decay since arrival.

The step loop itself is compiled (``chip.emulator.kernel``); the tables it reads are built by
``chip.emulator.tables.build_tables`` (cached here per configuration version and step). This
module makes what lives for one run only (calendar, scratch, spike and trace buffers, link
servers, correlation sensors) inside :meth:`Emulator.run`, calls the kernel for runs of steps,
grows its buffers when it asks, and turns its outputs back into spikes per population, traces,
correlation sums and link counters. The samples of a batch are independent experiments: a run
that records neither membranes nor sensors and has no timer splits its batch into parts advanced
in threads (``CHIPCTL_THREADS``, default up to two), each with its own buffers and its block of the
run's noise draws, with the same spikes as in one piece. An emulator keeps no run's buffers after
that run: runs may nest (a run started from a timer callback) or overlap in threads, and an
emulator pickles as its configuration.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import kernel as kernels
from .noise import MEMBRANE_STREAM, MembraneNoise, threshold_drift
from .tables import (Calendar, ChipTables, NeuronState, Scratch, SensorTable, SpikeBuffer, StepConfig, TraceBuffer,
                     build_tables, effective_params, link_table)
from ..die import Die
from ..errors import NetlistError
from ..events import SpikeEvents
from ..netlist import Record
from ..readout import CADC, Correlation, CorrelationSensors, Trace, adc_trace, sample_delays
from ..state import ChipState

__all__ = ["Emulator", "RawRun", "LinkStats", "Capacity", "run_thresholds"]

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
    traces: list[Trace]                   # one per membrane record, read through its ADC
    correlations: dict[str, Correlation]  # proj -> the sensors read at the end of the run
    links: list[LinkStats]
    batch: int
    steps: int
    emulated_us: float
    wall_s: float
    offered_events: int = 0   # events sent by sources into the fabric, each counted once
    dropped_events: int = 0   # of those, events lost on at least one link of their routes
    kernel_load_s: float = 0.0  # loading (or, on a first run, compiling) the compiled step loop
    loop_s: float = 0.0       # the step loop itself
    buffer_growth: dict[str, int] = field(default_factory=dict)  # times each buffer grew (spikes: drained)
    threads: int = 1          # threads the batch was split across


@dataclass(frozen=True)
class Capacity:
    """Initial sizes of a run's buffers; each grows on demand (a test starts them at 1)."""

    ring_events_per_slot: int = 256   # events per calendar slot
    events_per_step: int = 1024       # events delivered in one step
    spikes: int = 1 << 16             # spikes held before they are moved out of the kernel's buffer


class Emulator:
    """Runs batches on one mapped chip with one die; reads the configuration from ``state``.

    The only thing kept between runs is the last tables built (keyed by the configuration's
    version and the step); while a run is in progress it is also listed, so that its correlation
    sensors can be read from a timer callback.
    """

    def __init__(self, mapped, die: Die, state: ChipState, *, capacity: Capacity | None = None,
                 threads: int | None = None):
        self.mapped = mapped
        self.profile = mapped.profile
        self.die = die
        self.state = state
        self.capacity = capacity if capacity is not None else Capacity()
        # threads a run's batch is split across (None: CHIPCTL_THREADS, else up to two cores)
        self.threads = threads
        self._tables: tuple[tuple[int, float], ChipTables] | None = None
        self._active: list[_Run] = []

    def __getstate__(self):
        # the tables are a cache and runs in progress are not part of a copy
        state = self.__dict__.copy()
        state["_tables"] = None
        state["_active"] = []
        return state

    # ------------------------------------------------------------------ configuration
    def tables(self, dt: float) -> ChipTables:
        """The kernel's tables for the current configuration at step ``dt`` (built once per
        configuration version and step)."""
        key = (self.state.version, dt)
        cached = self._tables
        if cached is not None and cached[0] == key:
            return cached[1]
        tables = build_tables(self.mapped, self.die, self.state, dt)
        self._tables = (key, tables)
        return tables

    def thread_count(self) -> int:
        """Threads a run may split its batch across: ``threads``, else ``CHIPCTL_THREADS``, else up
        to two cores."""
        return _threads(self.threads)

    def invalidate(self) -> None:
        """Forget the tables built so far (after the mapped chip was changed in place)."""
        self._tables = None

    def effective_params(self) -> dict[str, np.ndarray]:
        """Effective (die-deviated) model value of every analog parameter, per neuron."""
        return effective_params(self.die, self.state)

    # ------------------------------------------------------------------ run
    def run(self, inputs: dict[str, SpikeEvents], *, batch: int, duration_us: float, record: Record,
            noise_seed, initial_v: np.ndarray | None = None,
            timer: tuple[float, Callable[[float], None]] | None = None,
            progress: Callable[[float], None] | None = None) -> RawRun:
        run = _Run(self, batch, record, noise_seed)
        self._active.append(run)
        try:
            return run.execute(inputs, duration_us=duration_us, noise_seed=noise_seed, initial_v=initial_v,
                               timer=timer, progress=progress)
        finally:
            self._active.remove(run)

    def live_sensors(self, projection: str) -> CorrelationSensors | None:
        """The correlation sensors of a projection in a run in progress (this thread's innermost
        run that records them, else another thread's), or None."""
        me = threading.get_ident()
        innermost_first = self._active[::-1]
        for run in [r for r in innermost_first if r.thread == me] + [r for r in innermost_first if r.thread != me]:
            if projection in run.sensors:
                return run.sensors
        return None


class _Run:
    """One batch in progress: everything that lives only while it runs (calendar, scratch, spike and
    trace buffers, link servers and counters, correlation sensors). Made and dropped by
    ``Emulator.run``."""

    def __init__(self, emulator: Emulator, batch: int, record: Record, noise_seed):
        self.emulator = emulator
        self.thread = threading.get_ident()
        self.batch = batch
        self.record = record
        # the ADCs as this run reads them: the die's channel offsets, the run's read noise
        self.cadc = CADC.of_run(emulator.profile, emulator.die, noise_seed)
        self.sensors = CorrelationSensors(emulator.mapped, record.correlations, batch, emulator.die, self.cadc)

    def execute(self, inputs: dict[str, SpikeEvents], *, duration_us: float, noise_seed, initial_v, timer,
                progress) -> RawRun:
        emu = self.emulator
        start_wall = time.perf_counter()
        prof = emu.profile
        dt = prof.step_us
        clock = prof.clock_us
        M = prof.cycles_per_step
        n_steps = int(math.ceil(duration_us / dt - 1e-9))
        tables = emu.tables(dt)
        B, N = self.batch, emu.mapped.n_circuits
        rng = np.random.default_rng([noise_seed, MEMBRANE_STREAM])
        has_noise = prof.noise_membrane > 0
        # the noise scale stays the one at the run's start when a timer callback changes τm
        noise_scale = tables.neurons.noise_scale
        capacity = emu.capacity

        if initial_v is None:
            V = np.ascontiguousarray(np.broadcast_to(tables.neurons.v_leak, (B, N)), dtype=np.float64).copy()
        else:
            V = np.array(initial_v, dtype=np.float64, order="C")

        sensors = self.sensors
        timer_every = max(1, int(round(timer[0] / dt))) if timer is not None else None
        # the batch split across threads: every sample is its own experiment (own state, link
        # servers and calendar entries; the noise drawn for the whole batch and cut per sample), so
        # the spikes do not depend on the split. Runs that read sensors, membranes or call back
        # into the chip stay in one piece.
        n_parts = min(B, _threads(emu.threads))
        if timer is not None or len(sensors.sensors) or len(self.record.membrane) or B * N * n_steps < (1 << 14):
            n_parts = 1
        bounds = [(B * k) // n_parts for k in range(n_parts + 1)]
        parts = [_Part(tables, {name: _batch_slice(ev, b0, b1) for name, ev in inputs.items()} if n_parts > 1
                       else inputs, V[b0:b1] if n_parts > 1 else V, b0, b1, dt, clock, n_steps, capacity,
                       self.record, emu.mapped, noise_seed)
                 for b0, b1 in zip(bounds[:-1], bounds[1:])]
        sent_inputs = sum(part.sent_inputs for part in parts)
        traces, tr_records = parts[0].traces, parts[0].tr_records
        sense = _sensor_table(tables, sensors)
        progress_every = max(1, n_steps // 100) if progress is not None else n_steps
        # with noise: chunks of at most 4 Mi draws, and at least 8 chunks so that drawing the next
        # chunk's noise overlaps with running the current one
        max_chunk = max(1, min((1 << 22) // (B * N), -(-n_steps // 8))) if has_noise else n_steps
        no_noise = np.zeros((1, 1, 1))
        grid = M <= _GRID_MAX_CYCLES

        def configure(tables):
            rail_lo, rail_hi = tables.rails if tables.rails is not None else (-math.inf, math.inf)
            cfg = StepConfig(float(dt), float(clock), int(M), bool(grid), tables.adaptive, tables.link_model,
                             int(tables.n_pop_sources), bool(has_noise), adapt_current=bool(tables.adapt_current),
                             saturation=tables.saturation is not None, rails=tables.rails is not None,
                             rail_lo=float(rail_lo), rail_hi=float(rail_hi))
            neurons = tables.neurons
            return cfg, neurons._replace(noise_scale=noise_scale, v_threshold=run_thresholds(
                prof, neurons.v_threshold, neurons.v_leak, noise_seed))

        cfg, neurons = configure(tables)
        for part in parts:
            part.configure(cfg, neurons, tables.synapses, sense)

        t_load = time.perf_counter()
        # a call of zero steps loads the compiled kernel (compiles it on a checkout's first run),
        # so that the loop's timing is the loop's;
        # a cached loop loads in well under a second, a busy machine may take a few; compiling takes ~30 s
        notice = threading.Timer(8.0, _log.info, args=(
            "compiling the emulator's step loop (first run after installing or updating; about 30 s, cached afterwards)",))
        notice.daemon = True
        notice.start()
        try:
            parts[0].advance(0, 0, np.zeros((1, parts[0].B, N)) if has_noise else no_noise)
        finally:
            notice.cancel()
        t_loop = time.perf_counter()
        kernel_load_s = t_loop - t_load

        # steps run in one call of the kernel: up to the next callback
        chunks = []
        s = 0
        while s < n_steps:
            s_end = min(n_steps, s + max_chunk, (s // progress_every + 1) * progress_every)
            if timer_every is not None:
                s_end = min(s_end, (s // timer_every + 1) * timer_every)
            chunks.append((s, s_end))
            s = s_end
        noise = MembraneNoise(rng, chunks, B, N, prefetch=has_noise and len(chunks) > 1,
                              parts=bounds if n_parts > 1 else None) if has_noise else None
        pool = _pool() if n_parts > 1 else None

        def report(s_end):
            if progress is not None and (s_end % progress_every == 0 or s_end == n_steps):
                progress(s_end / n_steps)

        def run_part(k, part):
            # a part of a split batch runs all its chunks on its own (no waiting for the others)
            for s, s_end in chunks:
                part.run_chunk(s, s_end, noise.take(k) if noise is not None else no_noise, has_noise)
                if k == 0:
                    report(s_end)

        try:
            if n_parts > 1:
                futures = [pool.submit(run_part, k, part) for k, part in enumerate(parts) if k > 0]
                try:
                    run_part(0, parts[0])
                except BaseException:
                    if noise is not None:
                        noise.close()  # the other parts stop at their next chunk
                    wait(futures)
                    raise
                for f in futures:
                    f.result()
            for s, s_end in chunks if n_parts == 1 else ():
                xi = noise.next()[0] if noise is not None else no_noise
                parts[0].run_chunk(s, s_end, xi, has_noise)
                if timer_every is not None and s_end % timer_every == 0:
                    timer[1]((s_end - 1) * dt + dt)
                    current = emu.tables(dt)  # the same object unless the callback wrote to the chip
                    if current is not tables:
                        tables = current
                        cfg, neurons = configure(tables)
                        sense = _sensor_table(tables, sensors)
                        parts[0].configure(cfg, neurons, tables.synapses, sense)
                report(s_end)
        finally:
            if noise is not None:
                noise.close()
        for part in parts:
            part.drain()
        link_stats = [LinkStats(link.name) for link in emu.mapped.links] if tables.link_model else []
        for i, stats in enumerate(link_stats):
            stats.offered = sum(int(part.lnk.offered[i]) for part in parts)
            stats.dropped = sum(int(part.lnk.dropped[i]) for part in parts)
            stats.max_wait_us = max(float(part.lnk.max_wait_us[i]) for part in parts)
        growth = {key: sum(part.growth[key] for part in parts) for key in ("ring", "events", "spikes")}
        loop_s = time.perf_counter() - t_loop
        spikes_b = [b + part.b0 for part in parts for b in part.spikes_b]
        spikes_n = [n for part in parts for n in part.spikes_n]
        spikes_c = [c for part in parts for c in part.spikes_c]

        return RawRun(
            spikes=_split_spikes(emu.mapped, spikes_b, spikes_n, spikes_c),
            traces=_trace_finish(tr_records, traces, n_steps, dt, self.cadc),
            correlations=sensors.finish(),
            links=link_stats,
            batch=B,
            steps=n_steps,
            emulated_us=n_steps * dt,
            wall_s=time.perf_counter() - start_wall,
            offered_events=sent_inputs + sum(int(part.counters[kernels.C_SENT]) for part in parts),
            dropped_events=sum(int(part.counters[kernels.C_LOST]) for part in parts),
            kernel_load_s=kernel_load_s,
            loop_s=loop_s,
            buffer_growth=growth,
            threads=n_parts,
        )


def _threads(setting: int | None) -> int:
    """Threads a run may use: the emulator's setting, else CHIPCTL_THREADS, else up to two cores."""
    if setting is None:
        env = os.environ.get("CHIPCTL_THREADS", "").strip()
        if env:
            try:
                setting = int(env)
            except ValueError:
                raise NetlistError(f"CHIPCTL_THREADS={env!r} is not a whole number of threads (e.g. 1, 2)",
                                   file="<environment>") from None
        else:
            setting = min(2, os.cpu_count() or 1)
    return max(1, int(setting))


_POOL = None
_POOL_LOCK = threading.Lock()


def _pool():
    """The threads that run the other parts of split batches (the calling thread runs the first)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            from concurrent.futures import ThreadPoolExecutor

            # threads are started on demand: as many as the most parts a run asked for, less one
            _POOL = ThreadPoolExecutor(max_workers=63, thread_name_prefix="chipctl-batch")
        return _POOL


def _batch_slice(events: SpikeEvents, b0: int, b1: int) -> SpikeEvents:
    """The events of samples b0..b1-1, renumbered from 0 (time order kept)."""
    keep = (events.batch >= b0) & (events.batch < b1)
    return SpikeEvents(events.batch[keep] - b0, events.neuron[keep], events.time_us[keep], events.size, b1 - b0)


class _Part:
    """Samples b0..b1-1 of a run: their state, calendar, link servers, scratch and spike buffer,
    advanced by the kernel chunk by chunk (in a thread of its own when the batch is split)."""

    def __init__(self, tables: ChipTables, inputs, V, b0, b1, dt, clock, n_steps, capacity: Capacity, record,
                 mapped, noise_seed):
        B, N = b1 - b0, V.shape[1]
        self.b0, self.B = b0, B
        i64 = np.int64
        self.state = NeuronState(np.ascontiguousarray(V), np.zeros((B, N)), np.zeros((B, N)), np.zeros((B, N)),
                                 np.full((B, N), -np.inf), np.empty((B, N)), np.empty((B, N)), np.empty((B, N)),
                                 np.empty((B, N)))
        self.lnk = link_table(tables.links, B)
        self.cal, self.sent_inputs = _calendar(tables, inputs, dt, clock, n_steps, capacity.ring_events_per_slot)
        self.saturation = tables.saturation is not None
        self.scratch = _scratch(capacity.events_per_step, B, N, self.saturation)
        sp_cap = max(capacity.spikes, B * N)
        self.out = SpikeBuffer(np.empty(sp_cap, i64), np.empty(sp_cap, i64), np.empty(sp_cap, i64))
        self.counters = np.zeros(8, dtype=i64)
        self.counters[kernels.C_SENT_STEP] = -1
        self.spikes_b, self.spikes_n, self.spikes_c = [], [], []
        self.traces, self.tr_records = _trace_setup(mapped, record, B, dt, n_steps, noise_seed)
        self.growth = {"ring": 0, "events": 0, "spikes": 0}
        self.N = N

    def configure(self, cfg, neurons, synapses, sense):
        self.cfg, self.neurons, self.synapses, self.sense = cfg, neurons, synapses, sense

    def advance(self, first, last, xi):
        return kernels.advance(first, last, self.cfg, self.neurons, self.state, self.synapses, self.cal, self.lnk,
                               self.scratch, self.out, xi, self.traces, self.counters, self.sense)

    def drain(self):
        counters, out = self.counters, self.out
        k = int(counters[kernels.C_SPIKES])
        if k:
            self.spikes_b.append(out.sample[:k].copy())
            self.spikes_n.append(out.neuron[:k].copy())
            self.spikes_c.append(out.cycle[:k].copy())
        counters[kernels.C_SPIKES] = counters[kernels.C_EMITTED] = 0

    def run_chunk(self, s, s_end, xi, has_noise):
        """Steps s..s_end-1 with the chunk's noise xi (steps, B, N), growing buffers as asked."""
        counters = self.counters
        if counters[kernels.C_SPIKES] + self.B * self.N > len(self.out.sample):
            self.drain()
        cur = s
        while True:
            status = self.advance(cur, s_end, xi[cur - s:] if has_noise else xi)
            cur = int(counters[kernels.C_NEXT])
            if status == kernels.DONE:
                break
            if status == kernels.RING_FULL:
                self.cal = _ring_grow(self.cal)
                self.growth["ring"] += 1
            elif status == kernels.SPIKES_FULL:
                self.drain()
                self.growth["spikes"] += 1
            elif status == kernels.EVENTS_FULL:
                self.scratch = _scratch(2 * int(counters[kernels.C_NEED]), self.B, self.N, self.saturation)
                self.growth["events"] += 1



def run_thresholds(profile, v_threshold: np.ndarray, v_leak: np.ndarray, noise_seed) -> np.ndarray:
    """The thresholds of one run (one batch) with batch-to-batch drift (``batch_drift``): each
    neuron's effective threshold moved by its own offset ~ N(0, σ·|v_threshold − v_leak|), σ =
    ``threshold_drift``, drawn from the run's noise seed (noise seed, run index) in a stream of its
    own; the same for every sample and step of the run. Without drift, the thresholds as given."""
    if not (profile.nonidealities.batch_drift and profile.threshold_drift > 0):
        return v_threshold
    z = threshold_drift(noise_seed, len(v_threshold))
    return v_threshold + profile.threshold_drift * np.abs(v_threshold - v_leak) * z


# ---------------------------------------------------------------------- a run's buffers
def _calendar(tables: ChipTables, inputs: dict[str, SpikeEvents], dt: float, clock: float, n_steps: int,
              capacity: int) -> tuple[Calendar, int]:
    """The calendar of a run, and the number of input events it sends that do not pass links.

    A ring of step slots takes the events emitted during the run; inputs go to a static list
    sorted by arrival step, or (with congestible links) to a list sorted by the step they are sent
    in, from which the kernel passes them through the links."""
    static, sends = [], []
    sent = 0
    for name, events in inputs.items():
        if name not in tables.units_of_source or len(events) == 0:
            continue
        # the host's events enter the chip on the clock, after the die's extra input delay
        t = np.rint((events.time_us + tables.input_delay_us) / clock) * clock
        if tables.link_model:
            step_of = np.floor(t / dt + 1e-9).astype(np.int64)
            sends.append((step_of, np.full(len(t), tables.source_ids[name]), events.batch, events.neuron, t))
            continue
        sent += len(t)
        for ui in tables.units_of_source[name]:
            unit = tables.units[ui]
            arrival = t + unit.latency_us[events.neuron] + unit.delay_us
            step = np.maximum(np.floor(arrival / dt + 1e-9).astype(np.int64), 0)
            static.append((step, np.full(len(t), ui), events.batch, events.neuron, arrival))
    return Calendar(*_ring(tables.horizon_steps, capacity), *_by_step(static, n_steps),
                    *_by_step(sends, n_steps)), sent


def _ring(slots: int, cap: int):
    i64 = np.int64
    return (np.zeros((slots, cap), i64), np.zeros((slots, cap), i64), np.zeros((slots, cap), i64),
            np.zeros((slots, cap)), np.zeros(slots, i64))


def _ring_grow(cal: Calendar) -> Calendar:
    """The same calendar with twice the events per slot."""
    slots, cap = cal.ring_unit.shape
    unit, sample, index, time_us, count = _ring(slots, 2 * cap)
    for new, old in ((unit, cal.ring_unit), (sample, cal.ring_sample), (index, cal.ring_index),
                     (time_us, cal.ring_time_us)):
        new[:, :cap] = old
    count[:] = cal.ring_count
    return cal._replace(ring_unit=unit, ring_sample=sample, ring_index=index, ring_time_us=time_us, ring_count=count)


def _by_step(parts, n_steps: int):
    """Events (step, unit or source, sample, index, time) sorted by step, with a pointer per step."""
    i64 = np.int64
    if parts:
        step, u, b, p, t = (np.concatenate(columns) for columns in zip(*parts))
        order = np.argsort(step, kind="stable")
        step = step[order]
        # pointers up to the last step that has events (the kernel reads none past the end), so
        # that a long run with a few inputs does not hold a pointer for every one of its steps
        top = min(n_steps, int(step[-1]) + 1) if len(step) else 0
        ptr = np.searchsorted(step, np.arange(max(top, 0) + 1), side="left").astype(i64)
        return (ptr, np.ascontiguousarray(u[order], dtype=i64), np.ascontiguousarray(b[order], dtype=i64),
                np.ascontiguousarray(p[order], dtype=i64), np.ascontiguousarray(t[order], dtype=np.float64))
    z = np.zeros(0, dtype=i64)
    return (np.zeros(1, dtype=i64), z, z, z, np.zeros(0))


def _scratch(ev_cap: int, B: int, N: int, saturation: bool) -> Scratch:
    i64 = np.int64
    ev_cap = max(ev_cap, 1)
    per_neuron = (B, N) if saturation else (1, 1)
    return Scratch(np.empty(ev_cap, i64), np.empty(ev_cap, i64), np.empty(ev_cap, i64), np.empty(ev_cap),
                   np.empty(B * N, i64), np.empty(B * N, i64), np.empty(ev_cap), np.empty(ev_cap),
                   np.empty(ev_cap), np.empty(ev_cap, i64), np.empty(B + 1, i64), np.empty(B, i64),
                   np.empty(per_neuron), np.empty(per_neuron))


def _sensor_table(tables: ChipTables, sensors: CorrelationSensors) -> SensorTable:
    """The kernel's view of a run's correlation sensors: their arrays, and where each delivery
    unit's events land in them (empty arrays when no projection is recorded)."""
    i64 = np.int64
    names = list(sensors.sensors)
    mapped = sensors.mapped
    shape = [mapped.projections[name].shape for name in names]
    post0 = {name: mapped.populations[mapped.projections[name].post].offset for name in names}
    unit_base = np.array([sensors.base.get(u.projection, -1) for u in tables.units], dtype=i64)
    unit_n_post = np.array([mapped.projections[u.projection].shape[1] if u.projection in post0 else 0
                            for u in tables.units], dtype=i64)
    unit_post0 = np.array([post0.get(u.projection, 0) for u in tables.units], dtype=i64)
    return SensorTable(np.array([sensors.base[n] for n in names], dtype=i64), np.array([s[0] for s in shape], dtype=i64),
                       np.array([s[1] for s in shape], dtype=i64), np.array([post0[n] for n in names], dtype=i64),
                       unit_base, unit_n_post, unit_post0, sensors.mask, sensors.gain, sensors.tau_us,
                       sensors.causal, sensors.acausal, sensors.last_pre_us, sensors.last_post_us, sensors.spike_us)


def _split_spikes(mapped, sb, sn, sc) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    if sb:
        b = np.concatenate(sb)
        n = np.concatenate(sn)
        c = np.concatenate(sc)
    else:
        b = n = c = np.zeros(0, dtype=np.int64)
    order = np.lexsort((n, b, c))
    b, n, c = b[order], n[order], c[order]
    out = {}
    for pop, placed in mapped.populations.items():
        sel = (n >= placed.offset) & (n < placed.offset + placed.size)
        out[pop] = (b[sel], n[sel] - placed.offset, c[sel])
    return out


def _trace_setup(mapped, record: Record, B: int, dt: float, n_steps: int, noise_seed):
    """The kernel's sample buffer: neuron and sampling interval (steps) of each column, and the
    steps each sample comes late (``cadc_timing``; never past the run's last step)."""
    records, idx, every, delays = [], [], [], []
    for r, rec in enumerate(record.membrane):
        e = max(1, int(math.ceil(rec.period_us / dt - 1e-9)))  # never faster than asked
        cols = mapped.populations[rec.population].offset + np.asarray(rec.neurons, dtype=np.int64)
        n = n_steps // e
        late = sample_delays(mapped.profile, rec, r, n, noise_seed)
        late[(np.arange(1, n + 1) * e - 1 + late) >= n_steps] = 0
        records.append((rec, e, len(idx), cols, late))
        idx.extend(cols.tolist())
        every.extend([e] * len(cols))
        delays.extend([late] * len(cols))
    rows = max((n_steps // e for _, e, _, _, _ in records), default=0)
    late = np.zeros((max(rows, 1), len(idx)), dtype=np.int64)
    for k, d in enumerate(delays):
        late[:len(d), k] = d
    values = np.zeros((B, max(rows, 1), len(idx)))
    return TraceBuffer(np.array(idx, dtype=np.int64), np.array(every, dtype=np.int64), values, late), records


def _trace_finish(records, traces: TraceBuffer, n_steps, dt, cadc: CADC) -> list[Trace]:
    """Each record's samples read through its ADC (CADC: with the run's offsets and noise)."""
    result = []
    for r, (rec, every, first, cols, late) in enumerate(records):
        n = n_steps // every
        times = (np.arange(1, n + 1) * every + late) * dt
        values = traces.values[:, :n, first:first + len(cols)].copy()
        rng = cadc.record_noise(r) if rec.adc == "cadc" else None
        result.append(adc_trace(cadc.profile, rec, times, values, cadc=cadc, channels=cols, rng=rng))
    return result
