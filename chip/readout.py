"""Readout models: what the chip's ADCs and correlation sensors make of the analog state.

Boundary: the ADC model turns membrane samples (model units, as the emulator's step loop wrote
them) into the integer codes a host reads and back into nominal model units; the correlation
sensors accumulate causal and acausal pre/post pair sums per synapse from the events and spikes
of each step, and are quantized like the ADCs when read. This module neither runs nor schedules
anything: ``chip.emulator.core`` feeds the sensors once per step, and ``chip.host`` reads and
quantizes. The sensors are host-side Python for now (which is why a run that records them steps
one step per kernel call); moving their accumulation into the compiled loop is a later step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .die import Transfer

if TYPE_CHECKING:
    from .netlist import MembraneRecord
    from .profiles import ChipProfile

__all__ = ["Trace", "Correlation", "adc_trace", "sensor_reading", "CorrelationSensors"]


@dataclass(frozen=True, eq=False)
class Trace:
    """Membrane samples of some neurons through an ADC.

    ``codes`` (batch, samples, neurons) are the ADC's integer readings (None on an unquantized
    profile); ``values`` the same in model units through the nominal ADC transfer.
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


def adc_trace(profile: ChipProfile, rec: MembraneRecord, times_us: np.ndarray, values: np.ndarray) -> Trace:
    """Membrane values (model units) through the record's ADC (CADC or MADC): clipped to the
    chip's voltage range, quantized to the ADC's bits, read back through the nominal transfer."""
    bits = profile.cadc_bits if rec.adc == "cadc" else profile.madc_bits
    if bits is None:
        return Trace(rec.population, rec.neurons, rec.adc, times_us, values, None)
    transfer = Transfer(profile)
    lo, hi = profile.v_range_v
    top = 2 ** bits - 1
    volts = transfer.physical("v_leak", values)
    codes = np.clip(np.rint((volts - lo) / (hi - lo) * top), 0, top).astype(np.int64)
    model = transfer.from_physical("v_leak", lo + codes / top * (hi - lo))
    return Trace(rec.population, rec.neurons, rec.adc, times_us, model, codes)


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
