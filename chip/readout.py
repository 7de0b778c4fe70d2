"""Readout models: what the chip's ADCs and correlation sensors make of the analog state.

Boundary: the ADC model turns membrane samples (model units, as the emulator's step loop wrote
them) into the integer codes a host reads, and codes back into nominal model units; the
correlation sensors pair presynaptic arrivals and postsynaptic spikes per synapse and are read
through the CADC. This module neither runs nor schedules anything: the compiled step loop
(``chip.emulator.kernel``) accumulates the sensors into the arrays of :class:`CorrelationSensors`,
``chip.emulator.core`` reads the ADCs of a run with the die's offsets and the run's noise, and
``chip.host`` hands out what comes back.

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
        return _soft_top(x, knee, head)

    def read(self, x, channels, rng: np.random.Generator | None) -> np.ndarray:
        """Integer codes of continuous codes ``x`` read on ``channels`` (broadcast against x's
        last axis): plus the channel's offset and fresh noise, compressed, rounded, clipped."""
        x = np.array(x, dtype=np.float64)  # a copy: the steps below work in place
        if self.offsets_lsb is not None:
            if channels is None:
                raise ValueError("a CADC with channel offsets reads on given channels")
            x += self.offsets_lsb[np.asarray(channels)]
        if rng is not None:
            x += self.noise_lsb * rng.standard_normal(x.shape)
        if self.nonlinear:
            x = self.compress(x)
        np.rint(x, out=x)
        np.clip(x, 0, self.top, out=x)
        return x.astype(np.int64)


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
    return _soft_top(np.asarray(signal, dtype=np.float64), knee, full - knee)


def _soft_top(x: np.ndarray, knee: float, head: float) -> np.ndarray:
    """knee + head·tanh((x − knee)/head) above the knee, x below (a new array; tanh only where it
    applies, since reads of many sensors are mostly below it)."""
    out = x.copy()
    above = x > knee
    if above.any():
        out[above] = knee + head * np.tanh((x[above] - knee) / head)
    return out


class CorrelationSensors:
    """The correlation sensors of some projections during one run (see the module docstring).

    The compiled step loop accumulates them (``chip.emulator.kernel``): the arrays here are what
    it writes, one flat run of sensors per projection (its (n_pre, n_post) mask in row-major
    order), per sample. The accumulators hold Σ gain·e^{−Δt/τ} per synapse (in pairs of the
    nominal amplitude; gain and τ per synapse when ``correlation_spread`` is on); with them the
    memory of each synapse's latest presynaptic arrival and each neuron's latest spike, which a
    reset keeps. :meth:`read` reads them through the CADC; :meth:`reset` clears them and reads the
    baseline. Pairs are taken at the events' exact times, also for an event that reaches its
    synapse within the step its spike was emitted in (which the neurons feel from the next step).
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
        self.base: dict[str, int] = {}
        masks, gains, taus = [], [], []
        total = 0
        for name in projections:
            proj = mapped.projections[name]
            n_pre, n_post = proj.shape
            gain = np.ones((n_pre, n_post))
            tau = np.full((n_pre, n_post), float(prof.correlation_tau_us))
            if spread:
                # a connection's sensor is that of its excitatory synapse (its inhibitory one on
                # an inhibitory projection)
                ids = np.where(proj.exc_synapse >= 0, proj.exc_synapse, proj.inh_synapse)
                g, h = die.correlation_spread(ids)
                at = (proj.pre_index, proj.post_index)
                gain[at] = g
                tau[at] *= h
            self.base[name] = total
            total += n_pre * n_post
            masks.append(proj.mask.ravel())
            gains.append(gain.ravel())
            taus.append(tau.ravel())
        def flat(parts, dtype):
            return np.ascontiguousarray(np.concatenate(parts), dtype=dtype) if parts else np.zeros(0, dtype=dtype)

        self.mask, self.gain, self.tau_us = flat(masks, np.bool_), flat(gains, np.float64), flat(taus, np.float64)
        n = mapped.n_circuits if projections else 0
        self.causal = np.zeros((batch, total))
        self.acausal = np.zeros((batch, total))
        self.last_pre_us = np.full((batch, total), -np.inf)
        self.last_post_us = np.full((batch, n), -np.inf)
        self.spike_us = np.full((batch, n), np.inf)
        for index, name in enumerate(projections):
            proj = mapped.projections[name]
            post = mapped.populations[proj.post]
            n_pre, n_post = proj.shape
            span = slice(self.base[name], self.base[name] + n_pre * n_post)
            self.sensors[name] = {
                "mask": proj.mask,
                "offset": post.offset,
                "n_post": n_post,
                "channels": post.offset + np.arange(n_post),
                # views of the accumulators the step loop writes, (batch, n_pre, n_post)
                "causal": self.causal[:, span].reshape(batch, n_pre, n_post),
                "acausal": self.acausal[:, span].reshape(batch, n_pre, n_post),
                "rng": cadc.sensor_noise(index),
                "baseline": None,
            }
            self.reset(name)

    def __bool__(self) -> bool:
        return bool(self.sensors)

    def __contains__(self, projection: str) -> bool:
        return projection in self.sensors

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
