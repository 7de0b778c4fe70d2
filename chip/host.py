"""The host interface: the one API through which anything outside ``chip/`` uses the chip.

The CLI, learning rules and tests load a netlist, run batches and read and write weights and
parameters here — never the emulator's internals. What comes back is what the real chip would
give a host: clock-stamped spike events, membrane samples through the ADCs, correlation-sensor
readings, link counters. Writes go through the chip's resolution: weights are quantized to the
profile's bits and clipped to the synapse's range, parameters to their codes; each write returns
what was actually written. NaN/inf writes are refused whole. ``transaction()`` snapshots the
configuration and rolls every write in the block back when it raises.

The host never sees the die's deviations: ``read_params`` reports the nominal value of the code
that was written, as on hardware, where only measurement (calibration) reveals the real value.

``export_config`` gives the whole configuration as a versioned dict that names the netlist, the
kind of chip and the die it belongs to; ``import_config`` puts one back through the same writes —
exactly on the same die, as nominal values on another die of the same profile, and not at all
(one line) for another netlist or kind of chip. Checkpoints are made of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .budget import Limits, check_run
from .die import Die, Transfer
from .emulator import Emulator, LinkStats
from .errors import RunError, WriteError
from .events import SpikeEvents
from .inputs import broadcast_batch, realize_input
from .mapping import MappedChip, map_netlist
from .netlist import Netlist, Record
from .profiles import ANALOG_PARAMETERS
from .readout import Correlation, Trace
from .state import ChipState

__all__ = ["HostInterface", "RunResult", "Trace", "Correlation", "ProjectionInfo", "PARAMETERS"]

PARAMETERS = ANALOG_PARAMETERS


@dataclass(frozen=True, eq=False)
class RunResult:
    spikes: dict[str, SpikeEvents]
    traces: list[Trace]
    correlations: dict[str, Correlation]
    links: list[LinkStats]
    offered_events: int
    dropped_events: int
    batch: int
    duration_us: float
    emulated_us: float
    steps: int
    wall_s: float
    inputs: dict[str, SpikeEvents]
    kernel_load_s: float = 0.0  # of wall_s: loading the compiled step loop (compiling it, first time)
    loop_s: float = 0.0         # of wall_s: the step loop

    def trace(self, population: str) -> Trace:
        for tr in self.traces:
            if tr.population == population:
                return tr
        raise KeyError(f"no membrane trace of population {population!r} was recorded")

    def rate_hz(self, population: str) -> float:
        """Mean rate per neuron over the batch, in hertz of hardware time."""
        ev = self.spikes[population]
        return len(ev) / (ev.size * self.batch * self.duration_us * 1e-6) if self.duration_us > 0 else 0.0


@dataclass(frozen=True, eq=False)
class ProjectionInfo:
    """What a rule may know about a projection: ends, sign, connectivity and its delay from the
    presynaptic spike to the synapse (route latency + the projection's delay), per pre neuron."""

    name: str
    pre: str
    post: str
    sign: str
    mask: np.ndarray
    delay_us: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape


class HostInterface:
    """A chip loaded with a netlist. Build with ``HostInterface(netlist)`` or ``from_file``."""

    def __init__(self, netlist: Netlist, *, mapped: MappedChip | None = None):
        self.netlist = netlist
        self.profile = netlist.chip
        self.mapped = mapped if mapped is not None else map_netlist(netlist)
        self.die = Die(self.profile)
        self.transfer = Transfer(self.profile)
        self.state = self._initial_state()
        self.emulator = Emulator(self.mapped, self.die, self.state)
        self.runs_done = 0
        self.limits: Limits | None = None  # None: chip.budget's (the environment's, or none with --force)
        self.reference_reads = 0
        self.calibration = None
        if netlist.calibration is not None:
            self.load_calibration(netlist.calibration)

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> "HostInterface":
        """Load, validate and map a netlist file. ``overrides``: profile, die_seed, noise_seed, batch."""
        from .netlist import load_netlist

        return cls(load_netlist(path, **overrides))

    # ------------------------------------------------------------------ configuration
    def _initial_state(self) -> ChipState:
        n = self.mapped.n_circuits
        codes = {name: np.zeros(n) for name in ANALOG_PARAMETERS}
        adaptive = np.zeros(n, dtype=bool)
        soft = np.zeros(n, dtype=bool)
        for name, placed in self.mapped.populations.items():
            pop = self.netlist.populations[name]
            sl = slice(placed.offset, placed.offset + placed.size)
            for param in ANALOG_PARAMETERS:
                codes[param][sl] = self.transfer.to_code(param, getattr(pop.params, param))
            adaptive[sl] = pop.model == "ALIF"
            soft[sl] = pop.reset == "soft"
            if pop.reset == "soft" and self.profile.reset_circuit != "subtractive":
                # the reader refuses this with the netlist's line; a Netlist built in Python gets here
                from .errors import MappingError

                raise MappingError(f"population {name!r}: soft reset (u <- u - theta) needs a chip whose reset can "
                                   f"subtract the threshold (reset_circuit: subtractive); the {self.profile.name} "
                                   f"neuron resets to the potential v_reset", field=f"populations.{name}.reset")
        state = ChipState(codes=codes, adaptive=adaptive, exc_code={}, inh_code={},
                          soft_reset=soft if soft.any() else None)
        for name, proj in self.mapped.projections.items():
            state.exc_code[name] = np.zeros(proj.n_synapses)
            state.inh_code[name] = np.zeros(proj.n_synapses)
        self.state = state
        for name, proj in self.mapped.projections.items():
            self._store_weights(name, proj.initial_weights, np.ones(proj.n_synapses, dtype=bool))
        state.version = 0
        return state

    def load_calibration(self, calibration) -> None:
        """Put a calibration (a ``chip.calibration.Calibration`` or its file) on this chip: its
        codes for every circuit of every population, through ``write_codes``. Refused in one line
        (``CalibrationError``, naming the file), with nothing written, when it was made for another
        die or kind of chip, or when a population's value of a calibrated parameter is not the
        calibration's target. From then on a calibrated code reads as its target
        (``read_params``) and writing the target writes it (``write_params``). A netlist's
        ``chip.calibration`` is loaded this way when the host is made."""
        from .calibration import Calibration

        if not isinstance(calibration, Calibration):
            calibration = Calibration.load(calibration)
        calibration.check_chip(self.profile)
        calibration.check_netlist(self.netlist)
        with self.transaction():
            calibration.apply(self)
        self.calibration = calibration

    @property
    def populations(self) -> dict[str, int]:
        return {name: p.size for name, p in self.mapped.populations.items()}

    @property
    def inputs(self) -> dict[str, int]:
        return {name: src.size for name, src in self.netlist.inputs.items()}

    @property
    def threads(self) -> int:
        """Threads a run may split its batch across (``CHIPCTL_THREADS``, default up to two cores)."""
        return self.emulator.thread_count()

    def circuits(self, population: str) -> np.ndarray:
        """Global indices of the neuron circuits a population occupies, neuron by neuron (its
        placement). A circuit's deviations belong to its place on the chip, so per-circuit
        calibrations are kept by these indices."""
        sl = self._pop_slice(population)
        return np.arange(sl.start, sl.stop, dtype=np.int64)

    def projection(self, name: str) -> ProjectionInfo:
        proj = self._proj(name)
        post_half = np.asarray(proj.post_half)
        lat = np.array([[self.mapped.routes[(int(g), int(h))].latency_cycles for h in np.unique(post_half)]
                        for g in proj.pre_group]).max(axis=1) if len(proj.pre_group) else np.zeros(0)
        return ProjectionInfo(name, proj.pre, proj.post, proj.sign, proj.mask,
                              lat * self.profile.clock_us + proj.delay_us)

    @property
    def projections(self) -> dict[str, ProjectionInfo]:
        return {name: self.projection(name) for name in self.mapped.projections}

    def _proj(self, name: str):
        try:
            return self.mapped.projections[name]
        except KeyError:
            raise WriteError(f"unknown projection {name!r}; known: {', '.join(self.mapped.projections)}") from None

    def neuron_model(self, population: str) -> dict:
        """What a population's neurons are, beyond their parameters: ``model`` (``"LIF"`` or
        ``"ALIF"``), ``adaptation`` (what an ALIF neuron's adaptation acts on on this chip:
        ``"threshold"`` or ``"current"``; None for LIF) and ``reset`` (``"hard"``: to v_reset;
        ``"soft"``: u <- u − θ)."""
        self._pop_slice(population)
        pop = self.netlist.populations[population]
        return {"model": pop.model, "adaptation": self.profile.adaptation if pop.model == "ALIF" else None,
                "reset": pop.reset}

    def _pop_slice(self, population: str) -> slice:
        try:
            placed = self.mapped.populations[population]
        except KeyError:
            raise WriteError(f"unknown population {population!r}; known: {', '.join(self.mapped.populations)}") from None
        return slice(placed.offset, placed.offset + placed.size)

    def _full_scale(self, population: str) -> np.ndarray:
        """Nominal model weight at the top weight code for each neuron of a population."""
        return self.transfer.to_value("weight_full_scale", self.state.codes["weight_full_scale"][self._pop_slice(population)])

    # ------------------------------------------------------------------ weights
    def read_weights(self, projection: str) -> np.ndarray:
        """Signed logical weights (n_pre, n_post) in model units, as written (nominal, quantized)."""
        proj = self._proj(projection)
        scale = float(self.profile.weight_max_code or 1)
        wfs = self._full_scale(proj.post)[proj.post_index]
        dense = np.zeros(proj.shape)
        dense[proj.pre_index, proj.post_index] = (self.state.exc_code[projection] - self.state.inh_code[projection]) / scale * wfs
        return dense

    def write_weights(self, projection: str, values, *, mask: np.ndarray | None = None) -> np.ndarray:
        """Write signed weights (n_pre, n_post) in model units where the projection has synapses
        (and ``mask`` is True). On quantized profiles values are clipped to ±weight_full_scale of
        the post neuron and quantized to the profile's weight bits (float profiles store them as
        given); weights of the wrong sign for an excitatory or inhibitory projection become 0. Returns the weights as now stored (full matrix)."""
        proj = self._proj(projection)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != proj.shape:
            raise WriteError(f"weights for {projection!r} must have shape {proj.shape}, got {values.shape}")
        at = (proj.pre_index, proj.post_index)
        where = np.ones(proj.n_synapses, dtype=bool) if mask is None else np.broadcast_to(
            np.asarray(mask, dtype=bool), proj.shape)[at]
        if not np.all(np.isfinite(values[at][where])):
            raise WriteError(f"refused to write non-finite weights to {projection!r}; nothing was written")
        self._store_weights(projection, values[at], where)
        self.state.touch(f"weights {projection}")
        return self.read_weights(projection)

    def _store_weights(self, projection: str, values: np.ndarray, where: np.ndarray) -> None:
        """Store weights given per connection (vectors over the projection's connections)."""
        proj = self.mapped.projections[projection]
        max_code = self.profile.weight_max_code
        # in place on one temporary: at millions of synapses each extra vector is tens of MB
        frac = np.asarray(values, dtype=np.float64) / self._full_scale(proj.post)[proj.post_index]
        if proj.sign == "excitatory":
            np.maximum(frac, 0.0, out=frac)
        elif proj.sign == "inhibitory":
            np.minimum(frac, 0.0, out=frac)
        if max_code is not None:
            np.clip(frac, -1.0, 1.0, out=frac)
            frac *= max_code
            np.rint(frac, out=frac)
        codes = frac
        everywhere = bool(np.all(where))
        # the side a one-sign projection lacks stays the zeros it was made as (never written, it
        # takes no memory pages)
        for side, sign, store in ((1.0, "inhibitory", self.state.exc_code[projection]),
                                  (-1.0, "excitatory", self.state.inh_code[projection])):
            if proj.sign == sign:
                continue
            if everywhere:
                np.maximum(side * codes, 0.0, out=store)
            else:
                store[where] = np.maximum(side * codes, 0.0)[where]

    def weight_step(self, projection: str) -> np.ndarray | None:
        """Model-unit size of one weight code for each post neuron (None on float profiles)."""
        if self.profile.weight_max_code is None:
            return None
        return self._full_scale(self._proj(projection).post) / self.profile.weight_max_code

    def read_weight_codes(self, projection: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw weight codes (excitatory, inhibitory), each (n_pre, n_post), 0 where there is no
        synapse: whole numbers 0..2^weight_bits − 1 on a quantized profile, the fraction of
        ``weight_full_scale`` on a float one. The logical weight is (exc − inh) · step."""
        proj = self._proj(projection)
        exc, inh = np.zeros(proj.shape), np.zeros(proj.shape)
        exc[proj.pre_index, proj.post_index] = self.state.exc_code[projection]
        inh[proj.pre_index, proj.post_index] = self.state.inh_code[projection]
        return exc, inh

    def write_weight_codes(self, projection: str, exc, inh) -> tuple[np.ndarray, np.ndarray]:
        """Write raw weight codes exactly (what ``read_weight_codes`` returned, e.g. from a saved
        configuration), where the projection has synapses. Refused whole (``WriteError``) unless
        every code is a whole number in 0..2^weight_bits − 1 (any finite value ≥ 0 on a float
        profile) and an excitatory projection has no inhibitory codes and vice versa. Returns the
        codes as now stored."""
        proj = self._proj(projection)
        given = {}
        for kind, values in (("excitatory", exc), ("inhibitory", inh)):
            values = np.asarray(values, dtype=np.float64)
            if values.shape != proj.shape:
                raise WriteError(f"{kind} weight codes for {projection!r} must have shape {proj.shape}, "
                                 f"got {values.shape}")
            values = values[proj.pre_index, proj.post_index]
            top = self.profile.weight_max_code
            bad = ~np.isfinite(values) | (values < 0)
            if top is not None:
                bad |= (values > top) | (values != np.rint(values))
            if bad.any():
                allowed = "finite and >= 0" if top is None else f"whole numbers from 0 to {top}"
                raise WriteError(f"{kind} weight codes for {projection!r} must be {allowed}; nothing was written")
            if proj.sign == ("inhibitory" if kind == "excitatory" else "excitatory") and values.any():
                raise WriteError(f"{proj.sign} projection {projection!r} has no {kind} synapses; nothing was written")
            given[kind] = values
        self.state.exc_code[projection][...] = given["excitatory"]
        self.state.inh_code[projection][...] = given["inhibitory"]
        self.state.touch(f"weight codes {projection}")
        return self.read_weight_codes(projection)

    # ------------------------------------------------------------------ parameters
    def read_params(self, population: str, name: str) -> np.ndarray:
        """Nominal model value (per neuron) of an analog parameter, from the code written. On a
        calibrated chip, a circuit holding its calibrated code for a parameter reads that code's
        target (what it was measured to be), unless the calibration did not reach it there."""
        self._check_param(name)
        codes = self.state.codes[name][self._pop_slice(population)]
        values = self.transfer.to_value(name, codes)
        calibrated = self._calibrated(population, name)
        if calibrated is not None:
            cal_codes, reached, target = calibrated
            values = np.where(reached & (codes == cal_codes), target, values)
        return values

    def _calibrated(self, population: str, name: str):
        """(calibrated codes, reached, target) of a population's circuits for a parameter of the
        chip's calibration, or None."""
        cal = self.calibration
        if cal is None or name not in cal.codes:
            return None
        circuits = self.circuits(population)
        return cal.codes[name][circuits], cal.reached(name)[circuits], cal.targets[name]

    def write_params(self, population: str, name: str, values) -> np.ndarray:
        """Write a parameter (scalar or one value per neuron, model units / µs); returns the nominal
        values of the codes actually written (quantized and clipped to the profile's range). On a
        calibrated chip the calibration's target of a parameter is written as each circuit's
        calibrated code (where the calibration reached it)."""
        self._check_param(name)
        sl = self._pop_slice(population)
        size = sl.stop - sl.start
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), (size,)) if np.ndim(values) == 0 else \
            np.asarray(values, dtype=np.float64)
        if values.shape != (size,):
            raise WriteError(f"{name} for {population!r} needs {size} values, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise WriteError(f"refused to write non-finite {name} to {population!r}; nothing was written")
        codes = self.transfer.to_code(name, values)
        calibrated = self._calibrated(population, name)
        if calibrated is not None:
            # the calibration's target is written as each circuit's calibrated code
            cal_codes, reached, target = calibrated
            at_target = reached & np.isclose(values, target, rtol=1e-9, atol=1e-12)
            codes = np.where(at_target, cal_codes, codes)
        self.state.codes[name][sl] = codes
        self.state.touch(f"param {population}.{name}")
        return self.read_params(population, name)

    def read_codes(self, population: str, name: str) -> np.ndarray:
        """Raw parameter codes (what calibration chooses)."""
        self._check_param(name)
        return self.state.codes[name][self._pop_slice(population)].copy()

    def write_codes(self, population: str, name: str, codes) -> np.ndarray:
        self._check_param(name)
        sl = self._pop_slice(population)
        size = sl.stop - sl.start
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim == 0:
            codes = np.broadcast_to(codes, (size,))
        if codes.shape != (size,):
            raise WriteError(f"codes of {name} for {population!r} need {size} values, got shape {codes.shape}; "
                             "nothing was written")
        if not np.all(np.isfinite(codes)):
            raise WriteError(f"refused to write non-finite codes to {population}.{name}")
        self.state.codes[name][sl] = self.transfer.store_code(name, codes)
        self.state.touch(f"codes {population}.{name}")
        return self.read_codes(population, name)

    def read_cadc_reference(self, population: str, *, samples: int = 1, noise_seed: int | None = None) -> np.ndarray:
        """(samples, n) CADC codes of the channels of a population's neurons while every channel
        reads the chip's shared reference line instead of its membrane — what the CADC's own
        offset calibration reads. All channels see the same voltage (one global cell, in the middle
        of the CADC's reliable range), so the differences between channels are their offsets;
        the line's absolute level is no better known than the CADC's slope. Each read has fresh
        read noise: call ``k`` of a host draws it from (noise seed, k), ``noise_seed`` replacing
        the profile's. Raises ``RunError`` on a chip without a CADC model (``cadc_bits: null``)."""
        from .readout import CADC

        if self.profile.cadc_bits is None:
            raise RunError("this chip has no CADC model (cadc_bits: null): its traces are exact values")
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise RunError(f"samples must be an integer >= 1, got {samples!r}")
        seed = self.profile.noise_seed if noise_seed is None else noise_seed
        cadc = CADC.of_run(self.profile, self.die, (seed, self.reference_reads))
        self.reference_reads += 1
        return cadc.reference_codes(self.circuits(population), int(samples), cadc.reference_noise())

    def _check_param(self, name: str) -> None:
        if name not in ANALOG_PARAMETERS:
            raise WriteError(f"unknown parameter {name!r}; known: {', '.join(ANALOG_PARAMETERS)}")

    # ------------------------------------------------------------------ transactions
    def snapshot(self) -> ChipState:
        return self.state.copy()

    def restore(self, snapshot: ChipState) -> None:
        self.state.restore(snapshot)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["HostInterface"]:
        """All writes inside the block take effect together; if the block raises, none do."""
        snap = self.state.copy()
        runs = self.runs_done
        try:
            yield self
        except BaseException:
            self.state.restore(snap)
            self.runs_done = runs
            raise

    # ------------------------------------------------------------------ running
    def run(self, inputs: dict[str, SpikeEvents] | None = None, *, batch: int | None = None,
            duration_us: float | None = None, record: Record | None = None, noise_seed: int | None = None,
            timer: tuple[float, Callable[[float], None]] | None = None,
            progress: Callable[[float], None] | None = None) -> RunResult:
        """Run one batch. ``inputs`` replaces the netlist's input sources by name (the others are
        realized from the netlist). Each run draws fresh temporal noise from (noise seed, run
        index), so a sequence of runs is reproducible. ``timer=(period_us, fn)`` calls fn(t_us)
        between steps every period — the hook for plasticity during a run."""
        nl = self.netlist
        inputs = dict(inputs or {})
        for name in inputs:
            if name not in nl.inputs:
                raise RunError(f"unknown input {name!r}; the netlist has {', '.join(nl.inputs) or 'none'}")
        if batch is None:
            sizes = {ev.batch_size for ev in inputs.values() if ev.batch_size != 1}
            if len(sizes) > 1:
                raise RunError(f"inputs disagree on the batch size: {sorted(sizes)}")
            batch = sizes.pop() if sizes else nl.batch
        duration_us = nl.duration_us if duration_us is None else float(duration_us)
        if not duration_us > 0:
            raise RunError("duration must be positive")
        record = nl.record if record is None else self._check_record(record)
        # what the run will cost, before anything is drawn or allocated (chip.budget)
        check_run(nl, self.mapped, limits=self.limits, batch=batch, duration_us=duration_us, record=record,
                  given_inputs=inputs)
        events = {}
        for name, source in nl.inputs.items():
            if name in inputs:
                ev = inputs[name]
                if ev.size != source.size:
                    raise RunError(f"input {name!r} has {source.size} channels, got events for {ev.size}")
                events[name] = broadcast_batch(ev, batch, name)
            else:
                events[name] = realize_input(source, batch, duration_us)
        seed = self.profile.noise_seed if noise_seed is None else noise_seed
        # the run's index is taken when it starts, so a run started inside this one (from a timer
        # callback) or beside it (another thread) draws its own noise; a failed run does not count
        index = self.runs_done
        initial_v = self._initial_v(batch)
        self.runs_done = index + 1
        try:
            raw = self.emulator.run(events, batch=batch, duration_us=duration_us, record=record,
                                    noise_seed=(seed, index), timer=timer, progress=progress, initial_v=initial_v)
        except BaseException:
            if self.runs_done == index + 1:
                self.runs_done = index
            raise
        return self._result(raw, events, duration_us)

    def _check_record(self, record: Record) -> Record:
        """A record asked for at run time gets the same checks as a netlist's (as a RunError)."""
        from .errors import MappingError
        from .mapping import check_records

        for name in record.spikes:
            if name not in self.mapped.populations:
                raise RunError(f"cannot record spikes of unknown population {name!r}")
        for name in record.correlations:
            if name not in self.mapped.projections:
                raise RunError(f"cannot read correlation sensors of unknown projection {name!r}")
        try:
            check_records(dataclasses.replace(self.netlist, record=record), self.mapped.populations)
        except MappingError as exc:
            raise RunError(f"{exc.field}: {exc.message}") from None
        return record

    def read_correlations(self, projection: str) -> Correlation:
        """During a run (from a timer callback): the correlation sensors of a recorded projection,
        accumulated since the run started or since the last ``reset_correlations``, read through
        the CADC as the plasticity processor reads them. Reading does not clear them."""
        return self._live_sensors(projection).read(projection)

    def reset_correlations(self, projection: str) -> None:
        """During a run (from a timer callback): reset the correlation sensors of a recorded
        projection — a separate operation from reading, as on the chip — and read their baseline,
        against which later reads are counted in pairs."""
        self._live_sensors(projection).reset(projection)

    def _live_sensors(self, projection: str):
        sensors = self.emulator.live_sensors(projection)
        if sensors is None:
            raise RunError(f"no sensors of {projection!r} are being recorded in a running batch "
                           "(ask for them in the run's record, e.g. a rule's RunRequest.correlations)")
        return sensors

    def _initial_v(self, batch: int) -> np.ndarray | None:
        inits = {name: pop for name, pop in self.netlist.populations.items() if getattr(pop, "v_init", None) is not None}
        if not inits:
            return None
        v = np.broadcast_to(self.emulator.effective_params()["v_leak"], (batch, self.mapped.n_circuits)).copy()
        for name, pop in inits.items():
            sl = self._pop_slice(name)
            init = pop.v_init
            if isinstance(init, (int, float)):
                v[:, sl] = init
            else:
                low, high, seed = init
                rng = np.random.default_rng([seed, self.runs_done])
                v[:, sl] = rng.uniform(low, high, size=(batch, sl.stop - sl.start))
        return v

    def _result(self, raw, events, duration_us) -> RunResult:
        clock = self.profile.clock_us
        spikes = {pop: SpikeEvents(b, n, c.astype(np.float64) * clock, self.mapped.populations[pop].size, raw.batch)
                  for pop, (b, n, c) in raw.spikes.items()}
        return RunResult(spikes=spikes, traces=raw.traces, correlations=raw.correlations, links=raw.links,
                         offered_events=raw.offered_events, dropped_events=raw.dropped_events, batch=raw.batch,
                         duration_us=duration_us, emulated_us=raw.emulated_us, steps=raw.steps, wall_s=raw.wall_s,
                         inputs=events, kernel_load_s=raw.kernel_load_s, loop_s=raw.loop_s)

    # ------------------------------------------------------------------ description
    def describe(self) -> dict:
        p = self.profile
        return {
            "profile": p.name,
            "cores": p.cores,
            "neurons": self.mapped.n_circuits,
            "step_us": p.step_us,
            "clock_ns": p.clock_ns,
            "weight_bits": p.weight_bits,
            "die_seed": p.die_seed,
            "noise_seed": p.noise_seed,
        }

    # ------------------------------------------------------------------ configuration export / import
    CONFIG_FORMAT = 1
    """Version of the dict ``export_config`` writes; ``import_config`` reads exactly this version."""

    PROFILE_IDENTITY_FIELDS = (
        "weight_bits", "param_bits",
        "v_range_v", "tau_range_us", "tau_ref_range_us", "tau_adapt_range_us", "weight_full_scale_range",
        "adapt_increment_range", "tau_syn_range_us", "adapt_coupling_range",
        "v_model_zero_v", "v_model_one_v",
        "clock_ns", "step_us",
        "cores", "neurons_per_core", "halves_per_core", "rows_per_half", "labels_per_row",
    )
    """Profile fields that give stored codes their meaning (bit widths, value ranges, the voltage
    mapping, clock and step, sizes), and whether the refractory time is a digital counter's code.
    Seeds, mismatch and noise are not among them: they make another die or another noise stream
    of the same kind of chip."""

    def _identity(self) -> dict:
        nl, p = self.netlist, self.profile
        # a soft reset is part of the structure (written only where used, so other fingerprints stay)
        populations = {name: {"size": int(pop.size), "model": pop.model, **({"reset": pop.reset} if pop.reset != "hard" else {})}
                       for name, pop in nl.populations.items()}
        projections = {}
        for name, placed in self.mapped.projections.items():
            mask = np.ascontiguousarray(placed.mask, dtype=bool)
            projections[name] = {"pre": placed.pre, "post": placed.post, "sign": placed.sign,
                                 "shape": [int(n) for n in mask.shape],
                                 "mask": _sha256(np.packbits(mask).tobytes() + str(mask.shape).encode())}
        structure = {"populations": populations, "projections": projections}
        return {
            "netlist": {"name": nl.name, "fingerprint": _sha256(_json(structure).encode()), **structure},
            "profile": profile_identity(p),
            "die": die_identity(p),
        }

    def export_config(self) -> dict:
        """The chip's configuration as a versioned, self-describing dict (numpy arrays and JSON-able
        values), to be stored and given to ``import_config`` later, on this chip or another:

        - ``format``: ``CONFIG_FORMAT``;
        - ``netlist``: ``name``, ``fingerprint`` and the structure it hashes — ``populations``
          (name -> ``size``, ``model``) and ``projections`` (name -> ``pre``, ``post``, ``sign``,
          ``shape``, ``mask``: a hash of the connection mask);
        - ``profile``: ``name``, ``fingerprint`` and the ``fields`` it hashes
          (``PROFILE_IDENTITY_FIELDS``);
        - ``die``: ``seed`` and ``mismatch`` (the sigmas), which together make the die;
        - ``runs_done``: the run counter (which seeds the next run's noise);
        - ``populations``: name -> ``codes`` and ``values`` (nominal), each parameter -> (n,);
        - ``projections``: name -> ``weights`` (logical, nominal), ``exc_codes``, ``inh_codes``,
          each (n_connections,) over the connections in the row-major order of the mask.
        """
        config = {"format": self.CONFIG_FORMAT, **self._identity(), "runs_done": int(self.runs_done)}
        config["populations"] = {
            pop: {"codes": {name: self.read_codes(pop, name) for name in ANALOG_PARAMETERS},
                  "values": {name: self.read_params(pop, name) for name in ANALOG_PARAMETERS}}
            for pop in self.mapped.populations}
        config["projections"] = {}
        for name in self.mapped.projections:
            mask = self._proj(name).mask
            exc, inh = self.read_weight_codes(name)
            config["projections"][name] = {"weights": self.read_weights(name)[mask], "exc_codes": exc[mask],
                                           "inh_codes": inh[mask]}
        return config

    def import_config(self, config: dict) -> dict:
        """Put a configuration from ``export_config`` on this chip, through the host's own writes
        (one transaction: all of it or, if anything is refused, none of it).

        Refused with one line (``CheckpointError``) when the format version, the netlist (name or
        structure) or the kind of chip (profile name or ``PROFILE_IDENTITY_FIELDS``) differ. The
        same die (seed and mismatch): every parameter and weight code is restored exactly
        (``write_codes``, ``write_weight_codes``). Another die of the same profile — a legitimate
        experiment: parameters travel as nominal values (``write_params``: on a calibrated chip a
        calibration target lands on this die's calibrated codes) and weights as logical values
        (``write_weights``), quantized by this chip. The run counter is reported, not set
        (like ``restore``): the caller decides where the noise continues.

        Returns ``same_die``, ``trained_die_seed`` (the die the configuration came from),
        ``die_seed`` (this one) and ``runs_done`` (the configuration's run counter)."""
        from .errors import CheckpointError

        if not isinstance(config, dict) or "format" not in config:
            raise CheckpointError("not a chip configuration (no format version; written by an older chipctl?)")
        if config["format"] != self.CONFIG_FORMAT:
            raise CheckpointError(f"chip configuration of format {config['format']!r}; this chipctl reads format "
                                  f"{self.CONFIG_FORMAT}")
        mine = self._identity()
        problem = _netlist_difference(config.get("netlist") or {}, mine["netlist"]) or \
            _profile_difference(config.get("profile") or {}, mine["profile"])
        if problem:
            raise CheckpointError(problem)
        die = config.get("die") or {}
        same_die = _canonical(die) == mine["die"]
        populations = config.get("populations") or {}
        projections = config.get("projections") or {}
        try:
            with self.transaction():
                for pop in self.mapped.populations:
                    saved = populations[pop]["codes" if same_die else "values"]
                    for name in ANALOG_PARAMETERS:
                        if same_die:
                            self.write_codes(pop, name, saved[name])
                        else:
                            self.write_params(pop, name, saved[name])
                for name in self.mapped.projections:
                    saved = projections[name]
                    mask = self._proj(name).mask
                    if same_die:
                        self.write_weight_codes(name, _scatter(mask, saved["exc_codes"]),
                                                _scatter(mask, saved["inh_codes"]))
                    else:
                        self.write_weights(name, _scatter(mask, saved["weights"]))
        except KeyError as exc:
            raise CheckpointError(f"incomplete chip configuration: nothing stored for {exc.args[0]!r}") from None
        except ValueError as exc:
            raise CheckpointError(f"chip configuration does not fit: {exc}") from None
        return {"same_die": same_die, "trained_die_seed": die.get("seed"), "die_seed": int(self.profile.die_seed),
                "runs_done": int(config.get("runs_done", 0))}


def profile_identity(profile) -> dict:
    """The kind of chip a profile is, as ``export_config`` names it: ``name``, the
    ``PROFILE_IDENTITY_FIELDS`` (plus whether the refractory time is a digital counter's code) as
    ``fields``, and their ``fingerprint``."""
    fields = {f: _canonical(getattr(profile, f)) for f in HostInterface.PROFILE_IDENTITY_FIELDS}
    # a digital refractory counter gives tau_ref's codes another meaning (ticks, not a DAC code)
    fields["digital_refractory"] = bool(profile.nonidealities.digital_refractory)
    return {"name": profile.name, "fingerprint": _sha256(_json(fields).encode()), "fields": fields}


def die_identity(profile) -> dict:
    """The die a profile's chip is: its ``seed`` and the ``mismatch`` sigmas."""
    return {"seed": int(profile.die_seed), "mismatch": _canonical(dataclasses.asdict(profile.mismatch))}


def _canonical(value):
    """JSON's view of a value (tuples as lists, numpy scalars as Python numbers), so identities
    compare equal after a round trip through a file."""
    import json

    return json.loads(_json(value))


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      default=lambda o: o.item() if isinstance(o, np.generic) else list(o))


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _scatter(mask: np.ndarray, per_connection) -> np.ndarray:
    """A (n_connections,) vector in the row-major order of ``mask`` as a dense matrix."""
    values = np.asarray(per_connection, dtype=np.float64)
    if values.shape != (int(mask.sum()),):
        raise ValueError(f"{values.shape} values for {int(mask.sum())} connections")
    dense = np.zeros(mask.shape)
    dense[mask] = values
    return dense


def _netlist_difference(saved: dict, mine: dict) -> str | None:
    """One line saying how a configuration's netlist differs from this chip's, or None."""
    if saved.get("name") != mine["name"]:
        return f"the configuration is for netlist {saved.get('name')!r}, this chip is loaded with {mine['name']!r}"
    if saved.get("fingerprint") == mine["fingerprint"]:
        return None
    head = f"the configuration is for another netlist named {mine['name']!r}"
    for kind, noun in (("populations", "population"), ("projections", "projection")):
        theirs, ours = saved.get(kind) or {}, mine[kind]
        for name in list(ours) + [n for n in theirs if n not in ours]:
            if name not in theirs:
                return f"{head}: this one has {noun} {name!r}, the configuration does not"
            if name not in ours:
                return f"{head}: it has {noun} {name!r}, this one does not"
            for key, value in ours[name].items():
                there = _canonical(theirs[name].get(key))
                if there != value:
                    if key == "mask":
                        return f"{head}: projection {name!r} connects other pairs"
                    return f"{head}: {noun} {name!r} has {key} {there!r} there, {value!r} here"
    return f"{head}: its structure differs"


def _profile_difference(saved: dict, mine: dict) -> str | None:
    """One line saying how a configuration's kind of chip differs from this one, or None."""
    theirs = saved.get("fields") or {}
    field = next((f for f in mine["fields"] if _canonical(theirs.get(f)) != mine["fields"][f]), None)
    if saved.get("name") == mine["name"] and field is None:
        return None
    if field is None:
        return f"the configuration is for chip profile {saved.get('name')}, this chip is {mine['name']}"

    def show(value):
        return "null" if value is None else _json(value).replace(",", ", ")

    return (f"the configuration is for chip profile {saved.get('name')} with {field} {show(theirs.get(field))}, "
            f"this chip is {mine['name']} with {field} {show(mine['fields'][field])}")
