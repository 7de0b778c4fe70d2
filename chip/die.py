"""A die: the fixed-pattern deviations of one chip, and the code↔value transfers they act on.

Every analog neuron parameter is held on the chip as a code (10 bits on BSS-2, 0..1022). The
profile defines the nominal transfer from code to physical value: linear in volts for voltages,
log-spaced for time constants (a bias-current DAC spans decades), linear for gains. A die scales
each circuit's physical value by (1 + sigma·N(0,1)), one draw per parameter per circuit, and each
synapse's amplitude by its own gain. Because the deviation acts after the code, choosing per-circuit
codes (calibration) can cancel it — the host sees only nominal values, the emulator uses effective
ones. Draws are made for every circuit and synapse of the chip in a fixed order, so a circuit's
deviation depends on the die seed and its position, never on the netlist.

With ``digital_refractory`` on, the refractory time is not analog: it is counted by an 8-bit
counter on a divided clock, so it is quantized to that clock and has no mismatch (see
:func:`refractory_code`).

Temporal noise is not here: it lives in the emulator and has its own seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profiles import ANALOG_PARAMETERS, ChipProfile

__all__ = ["Die", "SetupDraw", "Transfer", "VOLTAGE_PARAMETERS", "TIME_PARAMETERS", "refractory_code", "REFRACTORY_TICK_US"]

VOLTAGE_PARAMETERS = ("v_leak", "v_reset", "v_threshold")
TIME_PARAMETERS = ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us", "tau_ref_us", "tau_adapt_us")

# The refractory counter of a BSS-2 neuron (haldls NeuronBackendConfig::RefractoryTime, 8 bits) counts
# a clock of 250 MHz / 2^(s+1), s = 0..15 (CommonNeuronBackendConfig::ClockScale): one tick is
# 2^(s+1)·4 ns = 2^s·8 ns. A refractory code here counts the fastest tick (8 ns): code = n·2^s. The
# values stay within the profile's tau_ref_range_us (bss2: 0.04..32 µs, calix's check_target). Not
# modelled: the holdoff after the counter (at least one cycle in which the membrane moves but
# cannot spike).
REFRACTORY_TICK_US = 0.008
REFRACTORY_COUNT_MAX = 255
REFRACTORY_SCALES = 16


def refractory_code(tau_us, low_us: float, high_us: float) -> np.ndarray:
    """The counter code (in 8 ns ticks) nearest to ``tau_us`` within [low_us, high_us]: the smallest
    clock scale s whose count n = round(τ / (2^s·8 ns)) fits 8 bits (the finest resolution),
    code = n·2^s; values beyond the range are clipped into it (to a representable value)."""
    ticks = np.clip(np.asarray(tau_us, dtype=np.float64), low_us, high_us) / REFRACTORY_TICK_US
    lo_ticks, hi_ticks = low_us / REFRACTORY_TICK_US, high_us / REFRACTORY_TICK_US
    top = float(REFRACTORY_COUNT_MAX * 2 ** (REFRACTORY_SCALES - 1))
    code = np.full(ticks.shape, top)
    for s in reversed(range(REFRACTORY_SCALES)):  # the last scale assigned is the smallest that fits
        unit = float(2 ** s)
        n = np.rint(ticks / unit)
        n = np.where(n * unit > hi_ticks * (1 + 1e-12), np.floor(hi_ticks / unit), n)
        n = np.where(n * unit < lo_ticks * (1 - 1e-12), np.ceil(lo_ticks / unit), n)
        code = np.where(n <= REFRACTORY_COUNT_MAX, n * unit, code)
    return code


class Transfer:
    """Nominal code ↔ model-value transfer of every analog parameter for one profile.

    ``to_code`` quantizes and clips to the code range (and says nothing about mismatch);
    ``to_value`` is the nominal value a code stands for. On a profile without parameter codes
    (``param_bits: null``) the "code" is the float value itself and both maps are the identity.
    """

    def __init__(self, profile: ChipProfile):
        self.profile = profile
        self.max_code = profile.param_max_code
        self.digital_refractory = profile.nonidealities.digital_refractory

    @property
    def quantized(self) -> bool:
        return self.max_code is not None

    def _counted(self, name: str) -> bool:
        """Whether this parameter is a digital counter's code (the refractory time, when digital)."""
        return self.digital_refractory and name == "tau_ref_us"

    def _range(self, name: str) -> tuple[float, float]:
        return self.profile.parameter_range(name)

    def _v_to_model(self, volts):
        p = self.profile
        return (volts - p.v_model_zero_v) / (p.v_model_one_v - p.v_model_zero_v)

    def _model_to_v(self, model):
        p = self.profile
        return p.v_model_zero_v + model * (p.v_model_one_v - p.v_model_zero_v)

    def _log_spaced(self, name: str) -> bool:
        lo, _ = self._range(name)
        return name in TIME_PARAMETERS and lo > 0

    def to_code(self, name: str, value) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        lo, hi = self._range(name)
        if self._counted(name):
            return refractory_code(value, lo, hi)
        if not self.quantized:
            return np.clip(value, lo, hi)
        if self._log_spaced(name):
            x = np.log(np.clip(value, lo, hi) / lo) / np.log(hi / lo)
        else:
            x = (np.clip(value, lo, hi) - lo) / (hi - lo)
        return np.clip(np.rint(x * self.max_code), 0, self.max_code).astype(np.float64)

    def to_value(self, name: str, code) -> np.ndarray:
        code = np.asarray(code, dtype=np.float64)
        if self._counted(name):
            return code * REFRACTORY_TICK_US
        if not self.quantized:
            return code.copy()
        lo, hi = self._range(name)
        x = code / self.max_code
        if self._log_spaced(name):
            return lo * (hi / lo) ** x
        return lo + x * (hi - lo)

    def store_code(self, name: str, code) -> np.ndarray:
        """The code a write of raw ``code`` leaves in the configuration: a whole number in the code
        range, or for a counter code the nearest representable one within the value range."""
        code = np.asarray(code, dtype=np.float64)
        if self._counted(name):
            return self.to_code(name, self.to_value(name, code))
        if not self.quantized:
            return code.copy()
        return np.clip(np.rint(code), 0, self.max_code)

    def physical(self, name: str, value) -> np.ndarray:
        """Model value → the physical quantity mismatch scales (volts for voltages)."""
        return self._model_to_v(value) if name in VOLTAGE_PARAMETERS else np.asarray(value, dtype=np.float64)

    def from_physical(self, name: str, physical) -> np.ndarray:
        return self._v_to_model(physical) if name in VOLTAGE_PARAMETERS else np.asarray(physical, dtype=np.float64)


@dataclass(frozen=True)
class SetupDraw:
    """A die's global factors: ``weight_gain`` multiplies every synaptic strength, ``trace_gain``
    the CADC's codes per volt, ``input_delay_us`` delays every event the host sends."""

    weight_gain: float
    trace_gain: float
    input_delay_us: float


class Die:
    """Fixed-pattern deviations of one die (seeded by ``profile.die_seed``).

    ``gain[parameter]`` is a (circuits,) array of multiplicative deviations of the physical value;
    ``synapse_gain(ids)`` the per-synapse amplitude gain for global synapse ids.
    """

    def __init__(self, profile: ChipProfile):
        self.profile = profile
        self.seed = profile.die_seed
        n = profile.total_neurons
        mismatch = profile.mismatch
        self.gain: dict[str, np.ndarray | None] = {}
        rng = np.random.default_rng([profile.die_seed, 0])
        for name in ANALOG_PARAMETERS:
            sigma = mismatch.sigma_of(name)
            # draw for every parameter even when its sigma is 0 so changing one sigma leaves the others' pattern
            draw = rng.standard_normal(n) if not mismatch.off else None
            if name == "tau_ref_us" and profile.nonidealities.digital_refractory:
                sigma = 0.0  # a digital counter: no analog spread
            self.gain[name] = None if (draw is None or sigma == 0) else np.maximum(1.0 + sigma * draw, 0.05)
        self._synapse_sigma = mismatch.weight
        self._synapse_gain: np.ndarray | None = None

    def circuit_gain(self, name: str, circuits: np.ndarray) -> np.ndarray | None:
        g = self.gain[name]
        return None if g is None else g[circuits]

    def synapse_gain(self, ids: np.ndarray) -> np.ndarray | None:
        """Gain of each global synapse id (-1 ids get 1); None when synapses have no mismatch."""
        if self._synapse_sigma == 0:
            return None
        if self._synapse_gain is None:
            p = self.profile
            total = p.cores * p.halves_per_core * p.rows_per_half * p.neurons_per_half
            rng = np.random.default_rng([p.die_seed, 1])
            self._synapse_gain = np.maximum(1.0 + self._synapse_sigma * rng.standard_normal(total), 0.0)
        ids = np.asarray(ids)
        out = np.ones(ids.shape)
        valid = ids >= 0
        out[valid] = self._synapse_gain[ids[valid]]
        return out

    def effective(self, transfer: Transfer, name: str, code: np.ndarray, circuits: np.ndarray) -> np.ndarray:
        """Effective model value of ``code`` on the given circuits of this die."""
        nominal = transfer.to_value(name, code)
        g = self.circuit_gain(name, circuits)
        if g is None:
            return nominal
        return transfer.from_physical(name, transfer.physical(name, nominal) * g)

    def setup(self) -> "SetupDraw":
        """The die's global factors (switch ``setup_variation``): a factor on every synaptic
        strength, the CADC's slope and an extra delay of the host's input events, drawn once per die
        from a stream of their own (lognormal factors clipped to the profile's ranges, the delay
        uniform). With the switch off: 1, 1 and 0."""
        cache = self.__dict__.setdefault("_readout", {})
        if "setup" not in cache:
            p = self.profile
            if not p.nonidealities.setup_variation:
                cache["setup"] = SetupDraw(1.0, 1.0, 0.0)
            else:
                rng = np.random.default_rng([p.die_seed, 6])
                z_weight, z_trace, u = rng.standard_normal(), rng.standard_normal(), rng.random()
                cache["setup"] = SetupDraw(
                    weight_gain=float(np.clip(np.exp(p.setup_weight_gain_sigma * z_weight), *p.setup_weight_gain_range)),
                    trace_gain=float(np.clip(np.exp(p.setup_trace_gain_sigma * z_trace), *p.setup_trace_gain_range)),
                    input_delay_us=float(p.setup_input_delay_us[0] + u * (p.setup_input_delay_us[1]
                                                                          - p.setup_input_delay_us[0])))
        return cache["setup"]

    # --- readout: CADC channel offsets and correlation-sensor spread, each from its own stream ---
    # (drawn on first use from streams no other draw uses, so adding them changed no other pattern)

    _SPREAD_BLOCK = 1 << 16  # synapse ids per block of the sensor-spread draw

    def cadc_offsets_lsb(self) -> np.ndarray:
        """Offset in CADC codes of every channel (one per neuron column: index = global circuit),
        N(0, ``cadc_offset_lsb``): what the CADC's own offset calibration leaves. Fixed per die."""
        cache = self.__dict__.setdefault("_readout", {})
        if "cadc_offsets" not in cache:
            p = self.profile
            rng = np.random.default_rng([p.die_seed, 4])
            cache["cadc_offsets"] = p.cadc_offset_lsb * rng.standard_normal(p.total_neurons)
        return cache["cadc_offsets"]

    def correlation_spread(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(amplitude gain, time-constant gain) of the correlation sensor of each global synapse
        id, each lognormal with median 1 and sigma ``correlation_spread_sigma``; fixed per die.
        Drawn in blocks of synapse ids, so a large chip draws only the blocks it uses."""
        cache = self.__dict__.setdefault("_readout", {})
        blocks = cache.setdefault("correlation_spread", {})
        p = self.profile
        ids = np.asarray(ids, dtype=np.int64)
        amp, tau = np.ones(ids.shape), np.ones(ids.shape)
        block_of = ids // self._SPREAD_BLOCK
        for k in np.unique(block_of[ids >= 0]):
            if k not in blocks:
                z = np.random.default_rng([p.die_seed, 5, int(k)]).standard_normal((2, self._SPREAD_BLOCK))
                blocks[k] = np.exp(p.correlation_spread_sigma * z)
            sel = block_of == k
            within = ids[sel] % self._SPREAD_BLOCK
            amp[sel] = blocks[k][0, within]
            tau[sel] = blocks[k][1, within]
        return amp, tau
