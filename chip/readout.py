"""Readout models: what the chip's ADCs and correlation sensors make of the analog state.

Boundary: the ADC model turns membrane samples (model units, as the emulator's step loop wrote
them) into the integer codes a host reads, and codes back into nominal model units; the
correlation sensors pair presynaptic arrivals and postsynaptic spikes per synapse and are read
through the CADC. This module neither runs nor schedules anything: ``chip.emulator.core`` feeds
the sensors once per step and reads the ADCs of a run with the die's offsets and the run's noise;
``chip.host`` hands out what comes back. The sensors are host-side Python for now (which is why a
run that records them steps one step per kernel call); moving their accumulation into the compiled
loop is a later step.

Each imperfection below is one switch of ``ChipProfile.nonidealities`` (on on ``bss2``, off on
``ideal``); the sizes are profile fields. The sources are the public BrainScaleS-2 software stack
(github.com/electronicvisions: calix, hxtorch, haldls).

**CADC transfer** (always, when ``cadc_bits`` is set): 8 bits, code = (V − ``cadc_zero_v``) /
``cadc_lsb_v`` with 0.06 V and 4.5 mV: calix calibrates the ramp so that reads 20..220 span
"some 0.15 to 1.05 V" (calix ``include/ccalix/cadc_calib_target.h``), 0.9 V / 200 codes; the ramp
tops out at 1.2 V (haldls ``include/lola/vx/cadc.h``). V comes from the model value through the
profile's voltage mapping (``Transfer.physical``). Hosts get the codes and the nominal value of
each code (linear, no offsets), as a real host converts them.

- ``cadc_offsets``: a fixed offset per channel (one channel per neuron column), N(0,
  ``cadc_offset_lsb`` = 3): what is left after the CADC's own offset calibration, which every
  experiment runs first (calix ``tests/hw/py/test_cadc_calibration.py``: spread of the reads
  below 3 codes after it, below 20 before). Same die, same offsets (``Die.cadc_offsets_lsb``).
- ``cadc_noise``: fresh N(0, ``cadc_noise_lsb`` = 1) per sample and channel. With the membrane
  noise of ``bss2`` (0.01 threshold units ≈ 0.67 codes) a resting membrane reads ≈ 1.2 codes of
  std, the target of calix's leak-bias calibration (``calix/hagen/neuron_leak_bias.py``,
  ``LeakBiasCalib(target=1.2)``); hxtorch's perceptron mock uses 2. Drawn from the run's noise
  seed in streams of its own (per record, per sensor projection), so switching it off changes no
  other draw.
- ``cadc_nonlinearity``: linear up to the top of ``cadc_linear_codes`` (30..210, calix
  ``calix/constants.py cadc_reliable_range``), above it compressed towards the top code,
  210 + 45·tanh((x − 210)/45); clipped to 0..255. The tanh shape is a model: calix only says the
  ramp "will become less linear" near its top (``calix/common/cadc.py``).
- ``cadc_timing``: each CADC sample carries its own timestamp on the chip, and hxtorch
  interpolates the irregular samples onto its grid (hxtorch
  ``src/hxtorch/spiking/detail/to_dense.cpp``). Here each sample of a record is taken at its
  nominal step or one step later (a draw per run and sample index), and ``Trace.time_us`` says
  when. No public figure for the jitter exists; one step (0.2 µs on ``bss2``, 12 % of the 1.7 µs
  minimum period) is a guess. hxtorch's ``cadc_time_shift`` (whole steps between samples and
  spikes; introduced 2022 with default 1, default 0 since 2025) needs no counterpart: the times
  reported here are the true sample times.

**Reference line**: the CADC's own offset calibration connects every channel to one shared line
driven by a global cell; ``CADC.reference_codes`` reads it (``HostInterface.read_cadc_reference``)
at the middle of the reliable range, through the same slope, offsets, noise (a stream of its own)
and compression as a membrane read. The channels see the same voltage, so their differences are
their offsets; the line's absolute level is as uncertain as the CADC's slope.

**MADC**: 10 bits, linear over the profile's ``v_range_v`` (about 29 MSa/s on the chip, haldls
``src/haldls/vx/madc.cpp``). A figure of the BrainScaleS-2 demos suggests about 1.6 mV per MADC
code, a lead read off a plot that is not used here. Its noise is not published: not modelled.

**Correlation sensors.** Each synapse has a causal (pre before post) and an acausal (post before
pre) accumulator. A postsynaptic spike adds A·e^{−Δt/τ} to the causal one for the most recent
presynaptic arrival only; an arrival adds A·e^{−Δt/τ} to the acausal one for the most recent
postsynaptic spike only (both strictly earlier; a pair at Δt = 0 counts on neither side). The
public stack does not state the pairing rule; calix works around hardware that "remembers the
last seen pulse, even if that is a long time ago" (``calix/spiking/correlation_measurement.py``),
which fits nearest-neighbour pairing. Both profiles pair this way: it is the chip's mechanism.
A = ``correlation_amplitude_lsb`` = 0.5 CADC codes per pair at Δt = 0 and τ =
``correlation_tau_us`` = 5 µs (calix ``include/ccalix/correlation_calib_target.h`` defaults;
feasible 0.2..2 codes and 2..30 µs).

- ``correlation_spread``: amplitude and τ of each synapse × lognormal(σ =
  ``correlation_spread_sigma`` = 0.35), fixed per die (``Die.correlation_spread``): 95 % of the
  synapses within ×2 of the target, the 30th/70th percentiles at ×0.83/×1.20; calix's hardware
  test allows those percentiles up to ×2 off (``tests/hw/py/test_correlation.py``).
- Read through the CADC: the accumulation capacitor is reset to a baseline of
  ``correlation_baseline_lsb`` ≈ 200 codes (calix resets it near the top of the reliable range
  and fails a measurement whose baseline is below 120) and a correlated pair lowers it; the read
  is baseline − signal plus the offset of the CADC channel of the synapse's column and read noise
  (when on), through the CADC's compression and clip. (The chip reads the causal and the acausal
  branch on channels of their own, calix indexes its reads by channel type; here both share the
  column's channel and offset.) The signal saturates softly above ``correlation_saturation_lsb`` = 160
  codes (calix discards results above 160 as "may be in saturation"): 160 + 40·tanh((s − 160)/40)
  with the 40 codes left down to 0 — the shape is a model.
- Reset is its own operation, as on the chip: reading does not clear. A reset sets the
  accumulators to 0 and reads the baseline once, as calix does before it measures; the pair
  units a host gets are (baseline read − read) / A, calix's amplitude definition
  (``correlation_measurement.py``: baselines − results). A run starts with its sensors reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .die import Transfer

if TYPE_CHECKING:
    from .die import Die
    from .netlist import MembraneRecord
    from .profiles import ChipProfile

__all__ = ["Trace", "Correlation", "CADC", "adc_trace", "sample_delays", "CorrelationSensors"]

# the run's noise seed feeds these streams (each its own, so switching one effect off changes no
# other draw): CADC read noise of a membrane record / of a projection's sensors, sample timing
_STREAM = 41
_TRACE_NOISE, _SENSOR_NOISE, _TIMING, _REFERENCE_NOISE = 0, 1, 2, 3


@dataclass(frozen=True, eq=False)
class Trace:
    """Membrane samples of some neurons through an ADC.

    ``time_us`` (samples,) are the sample times (the end of the step sampled); ``codes`` (batch,
    samples, neurons) the ADC's integer readings (None on a profile without ADC quantization);
    ``values`` the same in model units through the nominal ADC transfer.
    """

    population: str
    neurons: tuple[int, ...]
    adc: str
    time_us: np.ndarray
    values: np.ndarray
    codes: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Correlation:
    """Correlation-sensor readings of a projection, each (batch, n_pre, n_post), 0 where there
    is no synapse.

    ``causal`` (pre before post) and ``acausal`` (post before pre) in pairs: (baseline read −
    read) / ``correlation_amplitude_lsb``, a correlated pair at Δt = 0 counting 1. ``*_codes`` are
    the CADC reads and ``*_baseline_codes`` the reads right after the last reset (None without
    ADC quantization, where the pairs are exact sums of gain·e^{−Δt/τ})."""

    causal: np.ndarray
    acausal: np.ndarray
    causal_codes: np.ndarray | None = None
    acausal_codes: np.ndarray | None = None
    causal_baseline_codes: np.ndarray | None = None
    acausal_baseline_codes: np.ndarray | None = None


def _stream(noise_seed, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([noise_seed, _STREAM, kind, index])


class CADC:
    """The columnar ADC: its nominal transfer, and — for a run — the die's channel offsets, the
    read noise and the ramp's compression, each as its switch says (see the module docstring).

    ``CADC(profile)`` is the converter without offsets or noise; ``CADC.of_run(profile, die,
    noise_seed)`` the one a run reads through."""

    def __init__(self, profile: ChipProfile, *, offsets_lsb: np.ndarray | None = None, noise_lsb: float = 0.0,
                 noise_seed=None, gain: float = 1.0):
        self.profile = profile
        self.gain = float(gain)  # the die's CADC slope against the nominal (setup_variation)
        self.quantized = profile.cadc_bits is not None
        self.top = None if profile.cadc_bits is None else 2 ** profile.cadc_bits - 1
        self.offsets_lsb = offsets_lsb
        self.noise_lsb = float(noise_lsb)
        self.noise_seed = noise_seed
        self.nonlinear = profile.nonidealities.cadc_nonlinearity
        self.transfer = Transfer(profile)

    @classmethod
    def of_run(cls, profile: ChipProfile, die: Die, noise_seed) -> "CADC":
        switches = profile.nonidealities
        quantized = profile.cadc_bits is not None
        offsets = die.cadc_offsets_lsb() if quantized and switches.cadc_offsets else None
        noise = profile.cadc_noise_lsb if quantized and switches.cadc_noise else 0.0
        gain = die.setup().trace_gain if quantized else 1.0
        return cls(profile, offsets_lsb=offsets, noise_lsb=noise, noise_seed=noise_seed, gain=gain)

    def record_noise(self, index: int) -> np.random.Generator | None:
        """The run's stream of read noise for its membrane record ``index`` (None without noise)."""
        return None if self.noise_lsb == 0.0 else _stream(self.noise_seed, _TRACE_NOISE, index)

    def sensor_noise(self, index: int) -> np.random.Generator | None:
        """The run's stream of read noise for its sensor projection ``index`` (None without noise)."""
        return None if self.noise_lsb == 0.0 else _stream(self.noise_seed, _SENSOR_NOISE, index)

    def reference_noise(self) -> np.random.Generator | None:
        """The stream of read noise for reads of the reference line (None without noise)."""
        return None if self.noise_lsb == 0.0 else _stream(self.noise_seed, _REFERENCE_NOISE, 0)

    def reference_codes(self, channels, samples: int, rng: np.random.Generator | None) -> np.ndarray:
        """(samples, channels) codes of every channel reading the shared reference line, held at
        the middle of the reliable range of the nominal transfer (one global voltage: every
        channel sees the same one), through this converter — its slope, the channels' offsets,
        read noise and compression. Only differences between channels are meaningful to a host:
        the line's absolute level is as uncertain as the CADC's slope."""
        p = self.profile
        level = 0.5 * (p.cadc_linear_codes[0] + p.cadc_linear_codes[1])
        x = np.full((samples, len(channels)), self.gain * level)
        return self.read(x, channels, rng)

    # --- the transfer ---
    def ideal_codes(self, model_values) -> np.ndarray:
        """The continuous code of membrane values (model units) through this converter's transfer:
        the nominal one, its slope times the die's ``gain`` (1 without setup variation)."""
        p = self.profile
        volts = self.transfer.physical("v_leak", model_values)
        return self.gain * (volts - p.cadc_zero_v) / p.cadc_lsb_v

    def model_values(self, codes) -> np.ndarray:
        """Nominal model value of codes (linear, no offsets: what a host computes)."""
        p = self.profile
        return self.transfer.from_physical("v_leak", p.cadc_zero_v + np.asarray(codes, dtype=np.float64) * p.cadc_lsb_v)

    def compress(self, x) -> np.ndarray:
        """The ramp's compression above the linear range (identity below it)."""
        knee = float(self.profile.cadc_linear_codes[1])
        head = self.top - knee
        x = np.asarray(x, dtype=np.float64)
        if head <= 0:
            return x
        return np.where(x > knee, knee + head * np.tanh((x - knee) / head), x)

    def read(self, x, channels, rng: np.random.Generator | None) -> np.ndarray:
        """Integer codes of continuous codes ``x`` read on ``channels`` (broadcast against x's
        last axis): plus the channel's offset and fresh noise, compressed, rounded, clipped."""
        x = np.asarray(x, dtype=np.float64)
        if self.offsets_lsb is not None:
            if channels is None:
                raise ValueError("a CADC with channel offsets reads on given channels")
            x = x + self.offsets_lsb[np.asarray(channels)]
        if rng is not None:
            x = x + self.noise_lsb * rng.standard_normal(x.shape)
        if self.nonlinear:
            x = self.compress(x)
        return np.clip(np.rint(x), 0, self.top).astype(np.int64)


def adc_trace(profile: ChipProfile, rec: MembraneRecord, times_us: np.ndarray, values: np.ndarray, *,
              cadc: CADC | None = None, channels=None, rng: np.random.Generator | None = None) -> Trace:
    """Membrane values (model units, (batch, samples, neurons)) through the record's ADC.

    CADC: the transfer of ``cadc`` (default: the profile's, without offsets or noise) on
    ``channels`` (the neurons' global circuits; needed with offsets), noise from ``rng``. MADC:
    clipped to the chip's voltage range and quantized linearly to its bits. Values read back
    through the nominal transfer; unquantized ADCs pass the values through."""
    if rec.adc == "cadc":
        cadc = cadc if cadc is not None else CADC(profile)
        if not cadc.quantized:
            return Trace(rec.population, rec.neurons, rec.adc, times_us, values, None)
        codes = cadc.read(cadc.ideal_codes(values), channels, rng)
        return Trace(rec.population, rec.neurons, rec.adc, times_us, cadc.model_values(codes), codes)
    bits = profile.madc_bits
    if bits is None:
        return Trace(rec.population, rec.neurons, rec.adc, times_us, values, None)
    transfer = Transfer(profile)
    lo, hi = profile.v_range_v
    top = 2 ** bits - 1
    volts = transfer.physical("v_leak", values)
    codes = np.clip(np.rint((volts - lo) / (hi - lo) * top), 0, top).astype(np.int64)
    model = transfer.from_physical("v_leak", lo + codes / top * (hi - lo))
    return Trace(rec.population, rec.neurons, rec.adc, times_us, model, codes)


def sample_delays(profile: ChipProfile, rec: MembraneRecord, index: int, rows: int, noise_seed) -> np.ndarray:
    """Steps (0 or 1) by which each of a record's ``rows`` samples comes after its nominal step:
    a draw per run (``noise_seed``) and sample when ``cadc_timing`` is on for a quantized CADC
    record, else all 0."""
    if rec.adc != "cadc" or profile.cadc_bits is None or not profile.nonidealities.cadc_timing:
        return np.zeros(rows, dtype=np.int64)
    return _stream(noise_seed, _TIMING, index).integers(0, 2, rows).astype(np.int64)


def _saturate(signal, knee: float, full: float) -> np.ndarray:
    """Soft saturation of the accumulated signal above ``knee`` towards ``full``."""
    if math.isinf(knee):
        return signal
    head = full - knee
    return np.where(signal > knee, knee + head * np.tanh((signal - knee) / head), signal)


class CorrelationSensors:
    """The correlation sensors of some projections during one run (see the module docstring).

    Per step the run calls :meth:`observe` with the presynaptic events that reached each
    delivery unit and the step's spikes. The accumulators hold Σ gain·e^{−Δt/τ} per synapse (in
    pairs of the nominal amplitude; gain and τ per synapse when ``correlation_spread`` is on).
    :meth:`read` reads them through the CADC; :meth:`reset` clears them and reads the baseline.
    An event that reaches its synapse inside the step its spike was emitted in is seen from the
    next step on, as by the neurons: a pair with a postsynaptic spike in between is missed.
    """

    def __init__(self, mapped, projections, batch: int, die: Die, cadc: CADC):
        prof = mapped.profile
        self.mapped = mapped
        self.cadc = cadc
        self.amplitude = prof.correlation_amplitude_lsb
        self.baseline = prof.correlation_baseline_lsb
        self.knee = prof.correlation_saturation_lsb
        spread = prof.nonidealities.correlation_spread and prof.correlation_spread_sigma > 0
        self.sensors: dict[str, dict] = {}
        for index, name in enumerate(projections):
            proj = mapped.projections[name]
            n_pre, n_post = proj.mask.shape
            post = mapped.populations[proj.post]
            gain = np.ones((n_pre, n_post))
            tau = np.full((n_pre, n_post), float(prof.correlation_tau_us))
            if spread:
                # a connection's sensor is that of its excitatory synapse (its inhibitory one on
                # an inhibitory projection)
                ids = np.where(proj.exc_synapse >= 0, proj.exc_synapse, proj.inh_synapse)
                g, h = die.correlation_spread(ids)
                gain[proj.mask] = g
                tau[proj.mask] *= h
            self.sensors[name] = {
                "mask": proj.mask,
                "offset": post.offset,
                "n_post": n_post,
                "channels": post.offset + np.arange(n_post),
                "gain": gain,
                "tau": tau,
                "last_pre": np.full((batch, n_pre, n_post), -np.inf),  # latest arrival at each synapse
                "last_post": np.full((batch, n_post), -np.inf),
                "causal": np.zeros((batch, n_pre, n_post)),
                "acausal": np.zeros((batch, n_pre, n_post)),
                "rng": cadc.sensor_noise(index),
                "baseline": None,
            }
            self.reset(name)

    def __bool__(self) -> bool:
        return bool(self.sensors)

    def __contains__(self, projection: str) -> bool:
        return projection in self.sensors

    # --- accumulation ---
    def observe(self, events, b, neuron, t_spike_us) -> None:
        """One step: ``events`` a list of (projection, first post neuron of the unit (global),
        unit size, samples, presynaptic indices, arrival times) of the events that reached a
        delivery unit; ``b``, ``neuron`` (global), ``t_spike_us`` the step's spikes."""
        by_projection: dict[str, list] = {}
        for projection, post_start, size, eb, ep, et in events:
            c = self.sensors.get(projection)
            if c is not None and len(eb):
                lo = post_start - c["offset"]
                by_projection.setdefault(projection, []).append((lo, lo + size, eb, ep, et))
        for name, c in self.sensors.items():
            units = by_projection.get(name, [])
            sel = (neuron >= c["offset"]) & (neuron < c["offset"] + c["n_post"])
            bs, js, ts = b[sel], neuron[sel] - c["offset"], t_spike_us[sel]
            if not units and not len(bs):
                continue
            gain, tau, last_pre, last_post = c["gain"], c["tau"], c["last_pre"], c["last_post"]
            if len(bs):
                # causal: each spike with the latest arrival strictly before it (earlier steps, or
                # this step's); at most one spike per neuron and step, so (bs, js) are distinct
                cand = last_pre[bs, :, js]
                for lo, hi, eb, ep, et in units:
                    hit = (eb[None, :] == bs[:, None]) & (et[None, :] < ts[:, None]) & \
                        ((js >= lo) & (js < hi))[:, None]
                    si, ei = np.nonzero(hit)
                    np.maximum.at(cand, (si, ep[ei]), et[ei])
                seen = cand > -np.inf
                age = np.where(seen, ts[:, None] - cand, 0.0)
                c["causal"][bs, :, js] += np.where(seen, gain[:, js].T * np.exp(-age / tau[:, js].T), 0.0)
            if units:
                spiked = np.full(last_post.shape, np.inf)
                spiked[bs, js] = ts
                for lo, hi, eb, ep, et in units:
                    # acausal: each arrival with the latest spike strictly before it
                    now = spiked[eb, lo:hi]
                    cand = np.where(now < et[:, None], now, last_post[eb, lo:hi])
                    seen = (cand > -np.inf) & (cand < et[:, None])
                    age = np.where(seen, et[:, None] - cand, 0.0)
                    add = np.where(seen, gain[ep, lo:hi] * np.exp(-age / tau[ep, lo:hi]), 0.0)
                    np.add.at(c["acausal"][:, :, lo:hi], (eb, ep), add)
                for lo, hi, eb, ep, et in units:
                    np.maximum.at(last_pre[:, :, lo:hi], (eb, ep), et[:, None])
            last_post[bs, js] = ts

    # --- reading ---
    def _signal(self, pairs: np.ndarray) -> np.ndarray:
        return _saturate(self.amplitude * pairs, self.knee, self.baseline)

    def reset(self, projection: str) -> None:
        """Clear the accumulators (the memory of the last pulses stays, as on the chip) and read
        the baseline."""
        c = self.sensors[projection]
        c["causal"][...] = 0.0
        c["acausal"][...] = 0.0
        if self.cadc.quantized:
            shape = c["causal"].shape
            c["baseline"] = tuple(self.cadc.read(np.full(shape, self.baseline), c["channels"], c["rng"])
                                  for _ in range(2))

    def read(self, projection: str) -> Correlation:
        """The sensors of a projection since the run started or since the last reset, read
        through the CADC (exact sums without ADC quantization); reading does not clear them."""
        c = self.sensors[projection]
        mask = c["mask"]
        if not self.cadc.quantized:
            if math.isinf(self.knee):
                pairs = (c["causal"] * mask, c["acausal"] * mask)
            else:
                pairs = tuple(self._signal(c[k]) / self.amplitude * mask for k in ("causal", "acausal"))
            return Correlation(*pairs)
        codes = [self.cadc.read(self.baseline - self._signal(c[k]), c["channels"], c["rng"]) * mask
                 for k in ("causal", "acausal")]
        base = [b * mask for b in c["baseline"]]
        pairs = [(base[k] - codes[k]) / self.amplitude for k in range(2)]
        return Correlation(pairs[0], pairs[1], codes[0], codes[1], base[0], base[1])

    def finish(self) -> dict[str, Correlation]:
        """Every projection's reading at the end of the run."""
        return {name: self.read(name) for name in self.sensors}
