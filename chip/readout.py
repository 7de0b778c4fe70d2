"""Readout models: what the chip's ADCs and correlation sensors make of the analog state.

Boundary: the ADC model turns membrane samples (model units, as the emulator's step loop wrote
them) into the integer codes a host reads, and codes back into nominal model units; the
correlation sensors accumulate causal and acausal pre/post pair sums per synapse from the events
and spikes of each step, and are quantized like the ADCs when read. This module neither runs nor
schedules anything: ``chip.emulator.core`` feeds the sensors once per step and reads the ADCs of a
run with the die's offsets and the run's noise; ``chip.host`` hands out what comes back and
quantizes the sensors. The sensors are host-side Python for now (which is why a run that records
them steps one step per kernel call); moving their accumulation into the compiled loop is a later step.

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
  seed in streams of its own (one per record), so switching it off changes no other draw.
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

**MADC**: 10 bits, linear over the profile's ``v_range_v`` (about 29 MSa/s on the chip, haldls
``src/haldls/vx/madc.cpp``). A figure of the BrainScaleS-2 demos suggests about 1.6 mV per MADC
code, a lead read off a plot that is not used here. Its noise is not published: not modelled.
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

__all__ = ["Trace", "Correlation", "CADC", "adc_trace", "sample_delays", "sensor_reading", "CorrelationSensors"]

# the run's noise seed feeds these streams (each its own, so switching one effect off changes no
# other draw): CADC read noise of a membrane record, sample timing
_STREAM = 41
_TRACE_NOISE, _TIMING = 0, 2


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
    """Causal (pre before post) and acausal (post before pre) sums of exp(−Δt/τ) per synapse,
    (batch, n_pre, n_post); ``*_codes`` are the sensor's integer readings (None when unquantized)."""

    causal: np.ndarray
    acausal: np.ndarray
    causal_codes: np.ndarray | None
    acausal_codes: np.ndarray | None


def _stream(noise_seed, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng([noise_seed, _STREAM, kind, index])


class CADC:
    """The columnar ADC: its nominal transfer, and — for a run — the die's channel offsets, the
    read noise and the ramp's compression, each as its switch says (see the module docstring).

    ``CADC(profile)`` is the converter without offsets or noise; ``CADC.of_run(profile, die,
    noise_seed)`` the one a run reads through."""

    def __init__(self, profile: ChipProfile, *, offsets_lsb: np.ndarray | None = None, noise_lsb: float = 0.0,
                 noise_seed=None):
        self.profile = profile
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
        return cls(profile, offsets_lsb=offsets, noise_lsb=noise, noise_seed=noise_seed)

    def record_noise(self, index: int) -> np.random.Generator | None:
        """The run's stream of read noise for its membrane record ``index`` (None without noise)."""
        return None if self.noise_lsb == 0.0 else _stream(self.noise_seed, _TRACE_NOISE, index)

    # --- the transfer ---
    def ideal_codes(self, model_values) -> np.ndarray:
        """The continuous code of membrane values (model units) through the nominal transfer."""
        p = self.profile
        volts = self.transfer.physical("v_leak", model_values)
        return (volts - p.cadc_zero_v) / p.cadc_lsb_v

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


def sensor_reading(profile: ChipProfile, causal: np.ndarray, acausal: np.ndarray) -> Correlation:
    """Correlation sums as the sensors' ADC reads them: clipped to the full scale and quantized
    to the profile's correlation bits (unchanged when it has none)."""
    bits = profile.correlation_bits
    if bits is None:
        return Correlation(causal, acausal, None, None)
    top = 2 ** bits - 1
    fs = profile.correlation_full_scale
    cc = np.clip(np.rint(causal / fs * top), 0, top).astype(np.int64)
    ac = np.clip(np.rint(acausal / fs * top), 0, top).astype(np.int64)
    return Correlation(cc / top * fs, ac / top * fs, cc, ac)


class CorrelationSensors:
    """The correlation sensors of some projections during one run (model: one exponential trace
    per presynaptic and per postsynaptic neuron, time constant ``correlation_tau_us``).

    Per step the run calls :meth:`presynaptic` for the events that reached a delivery unit,
    :meth:`postsynaptic` for the step's spikes, then :meth:`decay`. A presynaptic event adds the
    postsynaptic trace (decayed back to its arrival) to the acausal sum and e^{−(t1 − t)/τ} to
    its trace; a spike adds the presynaptic trace to the causal sum, likewise. Pairs are seen with
    the step resolution of this bookkeeping.
    """

    def __init__(self, mapped, projections, batch: int):
        self.mapped = mapped
        self.tau_us = mapped.profile.correlation_tau_us
        self.sums: dict[str, dict] = {}
        for name in projections:
            proj = mapped.projections[name]
            n_pre, n_post = proj.mask.shape
            self.sums[name] = {
                "pre_trace": np.zeros((batch, n_pre)),
                "post_trace": np.zeros((batch, n_post)),
                "causal": np.zeros((batch, n_pre, n_post)),
                "acausal": np.zeros((batch, n_pre, n_post)),
                "post_offset": mapped.populations[proj.post].offset,
                "n_post": n_post,
            }

    def __bool__(self) -> bool:
        return bool(self.sums)

    def __contains__(self, projection: str) -> bool:
        return projection in self.sums

    def presynaptic(self, projection: str, post_start: int, size: int, b, pre, t_arrival_us, t_end_us: float):
        """Events of ``projection`` that reached the delivery unit of post neurons
        ``post_start .. post_start + size`` in the step ending at ``t_end_us``: samples ``b``,
        presynaptic indices ``pre``, arrival times."""
        c = self.sums.get(projection)
        # one unit per projection feeds the sensor (events reach every unit alike): the one
        # holding the projection's first post neuron
        if c is not None and post_start <= c["post_offset"] < post_start + size:
            # acausal: presynaptic event meets the postsynaptic trace (post before pre), decayed to arrival
            back = np.exp(-(t_end_us - t_arrival_us) / self.tau_us)
            post_at_arrival = c["post_trace"][b] / back[:, None]
            np.add.at(c["acausal"], (b, pre), post_at_arrival)
            np.add.at(c["pre_trace"], (b, pre), back)

    def postsynaptic(self, b, neuron, t_spike_us, t_end_us: float):
        """Spikes of the step ending at ``t_end_us``: samples, global neuron indices, times."""
        for c in self.sums.values():
            sel = (neuron >= c["post_offset"]) & (neuron < c["post_offset"] + c["n_post"])
            if not sel.any():
                continue
            bs, j = b[sel], neuron[sel] - c["post_offset"]
            back = np.exp(-(t_end_us - t_spike_us[sel]) / self.tau_us)
            # causal: postsynaptic spike meets the presynaptic trace (pre before post)
            pre_at_spike = c["pre_trace"][bs] / back[:, None]
            c["causal"][bs, :, j] += pre_at_spike
            np.add.at(c["post_trace"], (bs, j), back)

    def decay(self, dt_us: float):
        factor = math.exp(-dt_us / self.tau_us)
        for c in self.sums.values():
            c["pre_trace"] *= factor
            c["post_trace"] *= factor

    def read(self, projection: str, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """(causal, acausal) of a projection's synapses so far (0 where it has none); ``reset``
        clears them, as reading does on the chip."""
        c = self.sums[projection]
        mask = self.mapped.projections[projection].mask
        out = (c["causal"] * mask, c["acausal"] * mask)
        if reset:
            c["causal"][...] = 0.0
            c["acausal"][...] = 0.0
        return out

    def finish(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(causal, acausal) of every projection at the end of the run."""
        return {name: self.read(name, reset=False) for name in self.sums}
