"""Measuring every circuit of a population at once, through the host interface only.

Job: the measurements a calibration searches codes with, each vectorized over all neurons and a
batch of samples — the CADC's channel offsets (reads of the shared reference line), the resting
membrane (CADC reads), the reset potential (CADC reads of neurons held in their refractory
period), the threshold (whether a neuron spikes with its leak at a given level: spikes, no
voltages), the membrane time constant (a decay fit after a burst of short synaptic inputs) and the
synaptic time constants (decay fits of PSPs with the membrane made fast). What every measurement
sees is what a host of the chip gets: spikes, CADC codes with the reported sample times, and the
nominal meaning of the codes it writes.

Readout: CADC codes are corrected by each channel's offset (measured on the reference line), and
samples outside the CADC's reliable range (``cadc_linear_codes``) are not used: above it the ramp
compresses, below it reads are unreliable. Values are in model units through the nominal CADC
transfer, so they carry the die's CADC slope — as on the chip, voltages are calibrated in CADC
terms.

Boundary: no searching (``rules.calibration.search``) and no decisions about targets (the plugin);
nothing here knows the die.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from chip.events import SpikeEvents
from chip.netlist import MembraneRecord, Record

__all__ = ["Bench", "Transfer", "decay_fit", "trimmed_std"]


def trimmed_std(values, cut: float = 0.05) -> float:
    """Standard deviation after cutting ``cut`` of the values from each tail (calix's spread
    measure), NaNs left out."""
    v = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    k = int(cut * len(v))
    v = v[k:len(v) - k] if len(v) > 2 * k else v
    return float(np.std(v)) if len(v) else float("nan")


class Transfer:
    """The nominal code -> value map of one parameter, learned through the host (write codes, read
    the nominal values back), for quantized codes: ``values[c]`` for every code c. ``slope(codes)``
    is d value / d code there (d log value / d code with ``log``)."""

    def __init__(self, host, population: str, name: str):
        self.name = name
        top = host.profile.param_max_code
        self.quantized = top is not None
        saved = host.read_codes(population, name)
        if self.quantized:
            codes = np.arange(top + 1, dtype=np.float64)
            n = len(saved)
            values = np.empty(len(codes))
            for start in range(0, len(codes), n):
                chunk = codes[start:start + n]
                padded = np.concatenate([chunk, np.full(n - len(chunk), chunk[-1])])
                host.write_codes(population, name, padded)
                values[start:start + len(chunk)] = host.read_params(population, name)[:len(chunk)]
            self.codes, self.values = codes, values
            self.top = float(top)
        host.write_codes(population, name, saved)

    def value(self, codes) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float64)
        if not self.quantized:
            return codes.copy()
        return np.interp(codes, self.codes, self.values)

    def code(self, values) -> np.ndarray:
        """The code whose nominal value is nearest to ``values`` (clipped to the code range)."""
        values = np.asarray(values, dtype=np.float64)
        if not self.quantized:
            return values.copy()
        return np.clip(np.rint(np.interp(values, self.values, self.codes)), 0, self.top)

    def slope(self, codes, log: bool = False) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.float64)
        if not self.quantized:
            return 1.0 / np.abs(codes) if log else np.ones_like(codes)
        lo = np.clip(codes - 1, 0, self.top)
        hi = np.clip(codes + 1, 0, self.top)
        v_lo, v_hi = self.value(lo), self.value(hi)
        if log:
            v_lo, v_hi = np.log(v_lo), np.log(v_hi)
        return (v_hi - v_lo) / np.maximum(hi - lo, 1.0)


def decay_fit(t_rel: np.ndarray, y: np.ndarray, w: np.ndarray, taus: np.ndarray, *, fast_us: float = 0.0):
    """Least-squares fit of y = L + A·f(t) per neuron, f(t) = e^{−t/τ} − e^{−t/τ_fast} for
    t ≥ 0 and 0 for t < 0 (a baseline sample) — τ by a grid over ``taus`` (shared by all neurons,
    log-spaced) refined by a parabola through the three best points, L and A in closed form for
    every τ. ``t_rel`` (M,) sample times relative to the decay's start, NaN for samples that are
    not used; ``y``, ``w`` (M, N) values and weights (0: not used). Returns (τ, A, L), each (N,),
    NaN where a neuron has too few samples or its best τ is the grid's edge."""
    t = np.asarray(t_rel, dtype=np.float64)
    used = np.isfinite(t)
    t, y, w = t[used], y[used], w[used]
    on = t >= 0
    grid = np.asarray(taus, dtype=np.float64)
    E = np.where(on[None, :], np.exp(-np.maximum(t, 0)[None, :] / grid[:, None]), 0.0)
    if fast_us > 0:
        E = E - np.where(on, np.exp(-np.maximum(t, 0) / fast_us), 0.0)[None, :]
    wy = w * y
    S0, Y0, YY = w.sum(0), wy.sum(0), (wy * y).sum(0)
    S1, S2, Y1 = E @ w, (E * E) @ w, E @ wy
    det = S0 * S2 - S1 ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        L = (S2 * Y0 - S1 * Y1) / det
        A = (S0 * Y1 - S1 * Y0) / det
        rss = YY - L * Y0 - A * Y1
    rss = np.where(np.isfinite(rss), rss, np.inf)
    k = np.argmin(rss, axis=0)
    cols = np.arange(y.shape[1])
    inner = (k > 0) & (k < len(grid) - 1)
    kk = np.clip(k, 1, len(grid) - 2)
    r0, r1, r2 = rss[kk - 1, cols], rss[kk, cols], rss[kk + 1, cols]
    h = np.log(grid[1] / grid[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = 0.5 * h * (r0 - r2) / (r0 - 2 * r1 + r2)
    shift = np.where(np.isfinite(shift), np.clip(shift, -h, h), 0.0)
    tau = np.where(inner, grid[kk] * np.exp(shift), np.nan)
    enough = (w > 0).sum(0) >= 6
    tau = np.where(enough, tau, np.nan)
    # L and A at each neuron's refined τ
    safe = np.where(np.isfinite(tau), tau, grid[k])
    e = np.where(on[:, None], np.exp(-np.maximum(t, 0)[:, None] / safe[None, :]), 0.0)
    if fast_us > 0:
        e = e - np.where(on, np.exp(-np.maximum(t, 0) / fast_us), 0.0)[:, None]
    s1, s2, y1 = (w * e).sum(0), (w * e * e).sum(0), (wy * e).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        det = S0 * s2 - s1 ** 2
        base = (s2 * Y0 - s1 * y1) / det
        amp = (S0 * y1 - s1 * Y0) / det
    return tau, amp, base


@dataclass
class Counts:
    runs: int = 0
    emulated_us: float = 0.0
    neuron_steps: float = 0.0


class Bench:
    """One population of a host, measured through ``host.run`` and ``host.read_cadc_reference``.

    ``stimulus`` is an input with an excitatory and an inhibitory projection onto the population
    whose first channel reaches every neuron, found among the host's projections (None when there
    is none: then only potentials can be measured). ``batch`` samples per run (τ measurements use
    more); ``progress(status)`` is called before each run."""

    def __init__(self, host, population: str, *, batch: int = 16, progress=None):
        self.host = host
        self.pop = population
        self.n = host.populations[population]
        self.batch = int(batch)
        self.profile = p = host.profile
        self.progress = progress
        self.counts = Counts()
        self.quantized = p.cadc_bits is not None
        self.offset_codes = np.zeros(self.n)
        self.model_per_code = p.cadc_lsb_v / (p.v_model_one_v - p.v_model_zero_v)
        self.period_us = max(p.cadc_min_period_us, p.step_us)
        self.exc, self.inh, self.stimulus = self._find_stimulus()
        self.transfers: dict[str, Transfer] = {}
        self.record = Record(spikes=(population,),
                             membrane=(MembraneRecord(population, tuple(range(self.n)), "cadc", self.period_us),))
        self.spikes_only = Record(spikes=(population,))

    def _find_stimulus(self):
        found = {}
        for name, info in self.host.projections.items():
            if info.post == self.pop and info.pre in self.host.inputs and bool(info.mask[0].all()):
                found.setdefault(info.sign, (name, info.pre))
        exc, inh = found.get("excitatory"), found.get("inhibitory")
        if exc is None or inh is None or exc[1] != inh[1]:
            return None, None, None
        return exc[0], inh[0], exc[1]

    def transfer(self, name: str) -> Transfer:
        if name not in self.transfers:
            self.transfers[name] = Transfer(self.host, self.pop, name)
        return self.transfers[name]

    # ------------------------------------------------------------------ writing
    def codes(self, name: str) -> np.ndarray:
        return self.host.read_codes(self.pop, name)

    def set_codes(self, name: str, codes) -> None:
        self.host.write_codes(self.pop, name, np.broadcast_to(np.asarray(codes, dtype=np.float64), (self.n,)))

    def set_value(self, name: str, value) -> None:
        """Write a nominal value (every neuron the same code)."""
        self.host.write_params(self.pop, name, value)

    def value_range(self, name: str) -> tuple[float, float]:
        """The nominal values of the lowest and the highest code (writes clip to the range)."""
        saved = self.codes(name)
        ends = []
        for extreme in (-1e30, 1e30):
            self.host.write_params(self.pop, name, extreme)
            ends.append(float(self.host.read_params(self.pop, name)[0]))
        self.host.write_codes(self.pop, name, saved)
        return ends[0], ends[1]

    def threshold_off(self) -> None:
        """The highest threshold the codes give: above the upper membrane rail, never reached."""
        self.set_value("v_threshold", self.value_range("v_threshold")[1])

    @contextlib.contextmanager
    def holding(self, *names: str):
        """Put the codes of ``names`` back as they were when the block ends (a measurement
        changes what it needs and leaves the configuration as it found it)."""
        saved = {name: self.codes(name) for name in names}
        try:
            yield
        finally:
            for name, codes in saved.items():
                self.set_codes(name, codes)

    def stimulus_weights(self, exc: float = 0.0, inh: float = 0.0) -> None:
        """Every stimulus synapse at ``exc`` (excitatory rows) and ``inh`` (inhibitory rows, a
        magnitude), model units of current."""
        for name, value in ((self.exc, exc), (self.inh, -abs(inh))):
            shape = self.host.projection(name).shape
            self.host.write_weights(name, np.full(shape, value))

    # ------------------------------------------------------------------ running
    def run(self, *, duration_us: float, batch: int | None = None, membrane: bool = True,
            stimulus: SpikeEvents | None = None, status: str = ""):
        if self.progress is not None:
            self.progress(status)
        batch = self.batch if batch is None else batch
        inputs = {self.stimulus: stimulus} if stimulus is not None else None
        result = self.host.run(inputs, batch=batch, duration_us=duration_us,
                               record=self.record if membrane else self.spikes_only)
        self.counts.runs += 1
        self.counts.emulated_us += result.emulated_us * batch
        self.counts.neuron_steps += result.steps * batch * self.n
        return result

    def trace(self, result):
        """(times (S,), values (B, S, N) model units with the channels' offsets taken out,
        usable (B, S, N): inside the CADC's reliable range)."""
        tr = result.trace(self.pop)
        if tr.codes is None:
            return tr.time_us, tr.values, np.ones(tr.values.shape, dtype=bool)
        low, high = self.profile.cadc_linear_codes
        usable = (tr.codes >= low) & (tr.codes <= high)
        values = tr.values - self.offset_codes[None, None, :] * self.model_per_code
        return tr.time_us, values, usable

    # ------------------------------------------------------------------ the CADC
    def measure_cadc_offsets(self, samples: int = 400) -> np.ndarray:
        """Each channel's offset against the median channel, in codes, from ``samples`` reads of
        the shared reference line; taken out of every later read. Zero on a chip without a CADC
        model."""
        if not self.quantized:
            self.offset_codes = np.zeros(self.n)
            return self.offset_codes
        codes = self.host.read_cadc_reference(self.pop, samples=samples).astype(np.float64)
        mean = codes.mean(axis=0)
        self.offset_codes = mean - np.median(mean)
        return self.offset_codes

    # ------------------------------------------------------------------ potentials
    def rest(self, *, duration_us: float = 20.0, batch: int | None = None, status: str = "resting potential"):
        """The resting membrane of every neuron with its threshold out of reach and no input: the
        mean of the usable CADC samples (NaN where none is usable), and their spread."""
        with self.holding("v_threshold"):
            self.threshold_off()
            result = self.run(duration_us=duration_us, batch=batch, status=status)
        _, values, usable = self.trace(result)
        return _masked_mean(values, usable), _masked_std(values, usable)

    def reset(self, *, duration_us: float = 40.0, batch: int = 4, status: str = "reset potential"):
        """The reset potential: every neuron held in its refractory period (the longest the codes
        give) and its threshold as low as the codes allow, so that it spikes again as soon as it
        is released — the membrane sits at the reset all the time. Mean of the usable samples."""
        with self.holding("v_threshold", "tau_ref_us"):
            self.set_value("v_threshold", self.value_range("v_threshold")[0])
            self.set_value("tau_ref_us", self.value_range("tau_ref_us")[1])
            result = self.run(duration_us=duration_us, batch=batch, status=status)
        _, values, usable = self.trace(result)
        return _masked_mean(values, usable)

    def spike_fraction(self, *, duration_us: float = 2.0, batch: int | None = None, status: str = "threshold"):
        """The fraction of samples in which each neuron spikes within ``duration_us`` of a run
        without input (its membrane starting from rest)."""
        result = self.run(duration_us=duration_us, batch=batch, membrane=False, status=status)
        counts = result.spikes[self.pop].counts()
        return (counts > 0).mean(axis=0)

    # ------------------------------------------------------------------ time constants
    def _offsets(self, batch: int) -> np.ndarray:
        """Stimulus shift of each sample: spread over one CADC period, so that the samples of a
        batch together see the decay on a grid ``period / batch`` fine (equivalent-time sampling),
        on the clock."""
        clock = self.profile.clock_us
        return np.rint(np.arange(batch) * self.period_us / batch / clock) * clock

    def tau_mem(self, tau_guess_us: float, *, batch: int | None = None, rest: float = -0.6, lift: float = 1.8,
                status: str = "membrane time constant"):
        """τ_mem of every neuron: from a low resting potential (``rest``, model units: room for a
        large decay inside the CADC's range), a burst of short excitatory inputs lifts the membrane
        by about ``lift`` (threshold out of reach), then it decays back; fit of L + A·e^{−t/τ} to the
        samples after the synaptic current has died away, the samples before the burst fixing L.
        ``tau_guess_us`` sets the burst, the fit window and the grid (τ/4 .. 4τ)."""
        batch = 3 * self.batch if batch is None else batch
        p = self.profile
        lo_syn, hi_syn = self.value_range("tau_syn_exc_us")
        tau_syn = float(np.clip(tau_guess_us / 20.0, lo_syn, hi_syn))
        saved = {name: self.codes(name) for name in ("tau_syn_exc_us", "weight_full_scale", "v_leak", "v_threshold")}
        self.set_value("v_leak", rest)
        self.set_value("tau_syn_exc_us", tau_syn)
        weight = 1.0
        self.set_value("weight_full_scale", weight)
        self.stimulus_weights(exc=weight)
        tau_syn = float(self.host.read_params(self.pop, "tau_syn_exc_us")[0])  # as stored
        spikes = int(np.clip(math.ceil(lift * tau_guess_us / (weight * tau_syn)), 1, 200))
        spacing = max(0.1, p.clock_us)
        start = 4.0 * self.period_us
        shift = self._offsets(batch)
        burst = (spikes - 1) * spacing
        settle = 12.0 * tau_syn * 1.5
        duration = start + shift[-1] + burst + settle + 4.5 * tau_guess_us
        channels = self.host.inputs[self.stimulus]
        b, nrn, t = [], [], []
        for i, s in enumerate(shift):
            times = start + s + spacing * np.arange(spikes)
            b.append(np.full(spikes, i))
            nrn.append(np.arange(spikes) % channels)
            t.append(times)
        stim = SpikeEvents.from_arrays(np.concatenate(b), np.concatenate(nrn), np.concatenate(t), channels, batch)
        self.threshold_off()
        result = self.run(duration_us=duration, batch=batch, stimulus=stim, status=status)
        self.stimulus_weights()
        for name, codes in saved.items():
            self.set_codes(name, codes)
        times, values, usable = self.trace(result)
        t0 = start + shift + burst + settle                     # (B,): the fit starts here
        rel = times[None, :] - t0[:, None]                      # (B, S)
        before = times[None, :] < (start + shift)[:, None]
        rel = np.where(before, -1.0, np.where(rel >= 0, rel, np.nan))
        taus = tau_guess_us * np.exp(np.linspace(np.log(0.25), np.log(4.0), 97))
        tau, amp, _ = decay_fit(rel.reshape(-1), values.reshape(-1, self.n), usable.reshape(-1, self.n).astype(float),
                                taus)
        return np.where(amp > 0, tau, np.nan)

    def tau_syn(self, kind: str, tau_guess_us: float, *, batch: int | None = None, psp: float = 1.0,
                status: str | None = None):
        """τ_syn of every neuron's excitatory or inhibitory input (``kind``): with the membrane made
        as fast as the codes allow it follows the synaptic current, so a PSP decays with τ_syn;
        fit of L + A·(e^{−t/τ} − e^{−t/τ_fast}) to the samples from a few fast time constants after
        the input on, the samples before it fixing L. An inhibitory PSP is measured from a raised
        leak, so that it stays above the lower rail and inside the CADC's range; an excitatory one
        from a lowered leak."""
        batch = 4 * self.batch if batch is None else batch
        name = f"tau_syn_{kind}_us"
        saved = {n: self.codes(n) for n in ("tau_mem_us", "v_leak", "weight_full_scale", "v_threshold")}
        fast = self.value_range("tau_mem_us")[0]
        self.set_value("tau_mem_us", fast)
        fast = float(self.host.read_params(self.pop, "tau_mem_us")[0])
        self.set_value("v_leak", 1.0 if kind == "inh" else -0.6)
        self.set_value("weight_full_scale", psp)
        if kind == "exc":
            self.stimulus_weights(exc=psp)
        else:
            self.stimulus_weights(inh=psp)
        start = 4.0 * self.period_us
        shift = self._offsets(batch)
        settle = max(6.0 * fast, 3.0)
        duration = start + shift[-1] + settle + 5.0 * tau_guess_us
        stim = SpikeEvents.from_arrays(np.arange(batch), np.zeros(batch, dtype=np.int64), start + shift,
                                       self.host.inputs[self.stimulus], batch)
        self.threshold_off()
        result = self.run(duration_us=duration, batch=batch, stimulus=stim, status=status or f"{name[:-3]}")
        self.stimulus_weights()
        for n, codes in saved.items():
            self.set_codes(n, codes)
        delay = float(self.host.projection(self.exc if kind == "exc" else self.inh).delay_us[0])
        times, values, usable = self.trace(result)
        arrival = start + shift + delay
        rel = times[None, :] - arrival[:, None]
        before = times[None, :] < (start + shift)[:, None]
        rel = np.where(before, -1.0, np.where(rel >= settle, rel, np.nan))
        taus = tau_guess_us * np.exp(np.linspace(np.log(0.25), np.log(4.0), 97))
        tau, amp, _ = decay_fit(rel.reshape(-1), values.reshape(-1, self.n), usable.reshape(-1, self.n).astype(float),
                                taus, fast_us=fast)
        sign = 1.0 if kind == "exc" else -1.0
        return np.where(sign * amp > 0, tau, np.nan)


def _masked_mean(values, usable):
    count = usable.sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (values * usable).sum(axis=(0, 1)) / count, np.nan)


def _masked_std(values, usable):
    mean = _masked_mean(values, usable)
    count = usable.sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (((values - mean) ** 2) * usable).sum(axis=(0, 1)) / np.maximum(count - 1, 1)
    return np.where(count > 1, np.sqrt(var), np.nan)
