"""Chip profiles: what a kind of chip is (sizes, resolutions, clock, analog spread, routing limits).

A profile is a frozen description; a netlist names one and may override fields
(``chip: {profile: bss2, cores: 2, step: 0.2 us}``). ``bss2`` follows the public facts of
BrainScaleS-2 (512 neuron circuits per core in two halves of 256 columns, 256 synapse rows per
half, 6-bit weights, 10-bit parameter codes, 125 MHz FPGA clock). ``ideal`` is the same machine
without its limits: float weights and parameters, no mismatch, no noise, a fine clock and routes
that never congest, so the same netlist can be checked against closed forms.

Voltages are in model units (leak 0, threshold 1 by default); the profile says where model units
sit in the chip's physical range (``v_model_zero_v``, ``v_model_one_v``), which sets how parameter
codes, mismatch and the membrane ADC see them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = ["Mismatch", "Nonidealities", "ChipProfile", "PROFILES", "get_profile", "ANALOG_PARAMETERS",
           "ADAPTATION_MECHANISMS", "RESET_CIRCUITS"]

# Analog neuron parameters held as codes on the chip, in the order the die draws them.
ANALOG_PARAMETERS = (
    "v_leak",
    "v_reset",
    "v_threshold",
    "tau_mem_us",
    "tau_syn_exc_us",
    "tau_syn_inh_us",
    "tau_ref_us",
    "weight_full_scale",
    "tau_adapt_us",
    "adapt_increment",
    "adapt_coupling",  # appended last: earlier parameters keep their draws
)

#: how an adaptive (ALIF) neuron adapts: ``threshold`` — the threshold rises by the adaptation
#: variable (θ = v_threshold + A); ``current`` — AdEx-style, A is a current that pulls the membrane
#: down and is driven by the membrane (τ_adapt dA/dt = −A + a·(V − v_leak), the chip's mechanism)
ADAPTATION_MECHANISMS = ("threshold", "current")

#: what a neuron's reset can do: ``potential`` — reset to the potential v_reset (the BSS-2
#: circuit); ``subtractive`` — also Yin et al.'s soft reset u ← u − θ for populations with
#: ``reset: soft`` (in continuous time, at the crossing u = θ, so it leaves u at the leak)
RESET_CIRCUITS = ("potential", "subtractive")


@dataclass(frozen=True)
class Mismatch:
    """Relative fixed-pattern spread (one sigma) of each analog parameter.

    A circuit's parameter p deviates as p·(1 + sigma·N(0,1)) on the code→physical transfer
    (30 % at 3 sigma ⇒ sigma = 0.10). ``weight`` is the per-synapse gain spread.
    """

    v_leak: float = 0.0
    v_reset: float = 0.0
    v_threshold: float = 0.0
    tau_mem: float = 0.0
    tau_syn: float = 0.0
    tau_ref: float = 0.0
    tau_adapt: float = 0.0
    adapt_increment: float = 0.0
    adapt_coupling: float = 0.0
    weight_full_scale: float = 0.0
    weight: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                raise ValueError(f"mismatch.{f.name} must be a relative sigma in [0, 1), got {value!r}")

    def sigma_of(self, parameter: str) -> float:
        """Sigma for an entry of ANALOG_PARAMETERS."""
        key = {
            "tau_mem_us": "tau_mem",
            "tau_syn_exc_us": "tau_syn",
            "tau_syn_inh_us": "tau_syn",
            "tau_ref_us": "tau_ref",
            "tau_adapt_us": "tau_adapt",
        }.get(parameter, parameter)
        return getattr(self, key)

    @property
    def off(self) -> bool:
        return all(getattr(self, f.name) == 0.0 for f in dataclasses.fields(self))


@dataclass(frozen=True)
class Nonidealities:
    """Which of the chip's imperfections beyond mismatch, temporal noise and quantization act.

    Each switch turns one modelled effect on or off, so a user can ask what it costs (the
    profile's fields hold its size: e.g. ``membrane_rails_v`` for ``membrane_rails``). ``bss2``
    switches all of them on, ``ideal`` none; ``docs/fidelity.md`` says what each is and where its
    numbers come from. Mismatch (``mismatch: off``), membrane noise (``noise: 0``) and quantization
    (``weight_bits: null``) keep their own knobs.
    """

    synaptic_saturation: bool = False  # the synaptic input's transconductance saturates
    membrane_rails: bool = False       # the membrane cannot leave the supply's range
    cadc_offsets: bool = False         # fixed per-channel offsets of the CADC
    cadc_noise: bool = False           # read noise of every ADC sample
    cadc_nonlinearity: bool = False    # the ramp ADC compresses above its linear range
    cadc_timing: bool = False          # irregular sample times
    correlation_spread: bool = False   # per-synapse amplitude and time-constant spread of the sensors
    digital_refractory: bool = False   # refractory time from a digital counter: quantized, no spread
    batch_drift: bool = False          # thresholds drift from batch to batch
    setup_variation: bool = False      # global weight and trace scale and spike-time offset per die

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ValueError(f"nonidealities.{f.name} must be on or off, got {getattr(self, f.name)!r}")

    @classmethod
    def all_on(cls) -> "Nonidealities":
        return cls(**{f.name: True for f in dataclasses.fields(cls)})

    @property
    def off(self) -> bool:
        return not any(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class ChipProfile:
    """Everything that makes one kind of chip; units are in the field names."""

    name: str
    # --- size ---
    cores: int = 1
    neurons_per_core: int = 512
    halves_per_core: int = 2
    rows_per_half: int = 256
    labels_per_row: int = 64  # 6-bit synapse address label
    # --- resolution (None = float, unquantized) ---
    weight_bits: int | None = 6
    param_bits: int | None = 10
    # --- time ---
    clock_ns: float = 8.0
    step_us: float = 0.2
    speedup: float = 1000.0  # hardware runs this much faster than biology
    # --- analog ranges (physical) ---
    v_range_v: tuple[float, float] = (0.0, 1.2)
    v_model_zero_v: float = 0.45  # physical voltage of model 0 (leak)
    v_model_one_v: float = 0.75   # physical voltage of model 1 (threshold)
    tau_range_us: tuple[float, float] = (0.5, 60.0)
    tau_ref_range_us: tuple[float, float] = (0.04, 32.0)
    tau_adapt_range_us: tuple[float, float] = (1.0, 2000.0)
    weight_full_scale_range: tuple[float, float] = (0.01, 8.0)  # model units at the top weight code
    adapt_increment_range: tuple[float, float] = (0.0, 2.0)
    # --- analog imperfections ---
    mismatch: Mismatch = field(default_factory=Mismatch)
    nonidealities: Nonidealities = field(default_factory=Nonidealities)
    noise_membrane: float = 0.0  # stationary std of membrane noise, model units
    die_seed: int = 0
    noise_seed: int = 0
    # --- analog core: saturation, rails, adaptation, refractory counter, drift ---
    # (the defaults change nothing; ``bss2`` sets the chip's values; each acts only when its switch
    # in ``nonidealities`` is on, except ``adaptation`` and ``tau_syn_range_us``, which are what the
    # chip is)
    synaptic_saturation_exc: float = math.inf  # I_sat of g(x) = I_sat·tanh(x/I_sat), model current units
    synaptic_saturation_inh: float = math.inf
    membrane_rails_v: tuple[float, float] = (-1e9, 1e9)  # the membrane stays within these (volts)
    adaptation: str = "threshold"  # one of ADAPTATION_MECHANISMS
    adapt_coupling_range: tuple[float, float] = (0.0, 1.0)  # subthreshold adaptation a, current per unit of V
    tau_syn_range_us: tuple[float, float] = (0.5, 60.0)  # synaptic time constants (tau_range_us: the others)
    threshold_drift: float = 0.0  # std of a run's threshold offset, fraction of v_threshold − v_leak
    reset_circuit: str = "potential"  # one of RESET_CIRCUITS: whether populations may ask for a soft reset
    # --- event routing ---
    input_links: int = 1                # FPGA → chip links
    input_link_capacity: float = 1.0    # events per clock cycle per link
    neuron_output_capacity: float = 1.0  # events per clock cycle per half leaving the neurons
    core_link_capacity: float = 1.0     # events per clock cycle between two cores
    queue_depth: int = 256              # events a link buffers before it drops
    latency_input_cycles: int = 8
    latency_neuron_out_cycles: int = 2
    latency_crossbar_cycles: int = 2
    latency_core_link_cycles: int = 16
    # --- routing: buses ---
    # A half's synapse drivers hang on buses_per_half buses (driver d on bus d mod buses_per_half);
    # each bus owns rows_per_half / buses_per_half rows (bss2: 32 drivers x 2 rows = 64). Neurons
    # leave through one event output per block of neurons_per_event_output columns of their half,
    # and output o reaches only bus o mod buses_per_half of every half; FPGA inputs reach any bus.
    buses_per_half: int = 4
    neurons_per_event_output: int = 32
    bus_capacity: float = 1.0           # events per clock cycle on one bus of a half
    # --- readout ---
    cadc_bits: int | None = 8
    cadc_min_period_us: float = 1.7
    madc_bits: int | None = 10
    madc_channels_per_core: int = 1
    madc_min_period_us: float = 0.033
    correlation_tau_us: float = 5.0
    # --- readout: CADC transfer and imperfections, correlation sensors ---
    # (chip.readout says what each does and where its numbers come from; cadc_bits: null means no
    # ADC model at all, traces and sensors read as floats; the MADC stays linear over v_range)
    cadc_lsb_v: float = 0.0045        # volts per code: reads 20..220 span ~0.15..1.05 V after calibration
    cadc_zero_v: float = 0.06         # volts that read code 0 (code = (V - zero) / lsb)
    cadc_linear_codes: tuple[float, float] = (30.0, 210.0)  # the reliable range; compressed above its top
    cadc_offset_lsb: float = 3.0      # sigma of the per-channel offset left after offset calibration
    cadc_noise_lsb: float = 1.0       # sigma of the read noise of every sample
    correlation_amplitude_lsb: float = 0.5    # CADC codes per pair at dt = 0
    correlation_spread_sigma: float = 0.35    # lognormal sigma of per-synapse amplitude and tau
    correlation_baseline_lsb: float = 200.0   # read of a sensor right after its reset
    correlation_saturation_lsb: float = 160.0  # accumulated signal where the sensor starts to saturate
    # --- setup to setup: one draw per die of each global factor (switch ``setup_variation``) ---
    # (the defaults change nothing; a die's draws: ``chip.die.Die.setup``)
    setup_weight_gain_sigma: float = 0.0  # lognormal sigma of the die's factor on every synaptic strength
    setup_weight_gain_range: tuple[float, float] = (1.0, 1.0)  # ... clipped to this range
    setup_trace_gain_sigma: float = 0.0   # lognormal sigma of the die's CADC slope (codes per volt)
    setup_trace_gain_range: tuple[float, float] = (1.0, 1.0)
    setup_input_delay_us: tuple[float, float] = (0.0, 0.0)  # uniform extra delay of the host's input events

    def __post_init__(self):
        positive_ints = ("cores", "neurons_per_core", "halves_per_core", "rows_per_half", "labels_per_row",
                         "input_links", "queue_depth", "buses_per_half", "neurons_per_event_output")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.neurons_per_core % self.halves_per_core:
            raise ValueError("neurons_per_core must divide evenly into halves_per_core")
        if self.rows_per_half % self.buses_per_half:
            raise ValueError(f"rows_per_half ({self.rows_per_half}) must divide evenly into buses_per_half "
                             f"({self.buses_per_half})")
        for name in ("weight_bits", "param_bits", "cadc_bits", "madc_bits"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 1 <= value <= 24):
                raise ValueError(f"{name} must be an integer from 1 to 24 or null (float), got {value!r}")
        if not self.clock_ns > 0:
            raise ValueError(f"clock must be positive, got {self.clock_ns!r} ns")
        if not self.step_us > 0:
            raise ValueError(f"step must be positive, got {self.step_us!r} us")
        cycles = self.step_us * 1e3 / self.clock_ns
        if abs(cycles - round(cycles)) > 1e-6 * max(1.0, cycles):
            raise ValueError(f"step {self.step_us} us is not a whole number of {self.clock_ns} ns clock cycles")
        self._check_analog_core()
        if not self.noise_membrane >= 0:
            raise ValueError("noise must be >= 0")
        if not self.speedup > 0:
            raise ValueError("speedup must be positive")
        self._check_readout()

    # --- derived sizes ---
    @property
    def neurons_per_half(self) -> int:
        return self.neurons_per_core // self.halves_per_core

    @property
    def rows_per_bus(self) -> int:
        return self.rows_per_half // self.buses_per_half

    @property
    def total_neurons(self) -> int:
        return self.cores * self.neurons_per_core

    @property
    def clock_us(self) -> float:
        return self.clock_ns * 1e-3

    @property
    def cycles_per_step(self) -> int:
        return int(round(self.step_us * 1e3 / self.clock_ns))

    @property
    def weight_max_code(self) -> int | None:
        return None if self.weight_bits is None else 2 ** self.weight_bits - 1

    @property
    def param_max_code(self) -> int | None:
        # BSS-2 capacitive memory cells hold 0..1022
        return None if self.param_bits is None else 2 ** self.param_bits - 2

    @property
    def synaptic_saturation(self) -> tuple[float, float] | None:
        """I_sat of the excitatory and inhibitory synaptic inputs, g(x) = I_sat·tanh(x/I_sat), when
        this kind of chip's inputs saturate (the effect on and a finite I_sat), else None; ``inf``
        for a line that stays linear. A documented constant of the profile, not of a die."""
        if not self.nonidealities.synaptic_saturation or (
                math.isinf(self.synaptic_saturation_exc) and math.isinf(self.synaptic_saturation_inh)):
            return None
        return float(self.synaptic_saturation_exc), float(self.synaptic_saturation_inh)

    @property
    def is_ideal(self) -> bool:
        return self.weight_bits is None

    def parameter_range(self, name: str) -> tuple[float, float]:
        """The nominal values a parameter's codes span on this chip, (low, high): potentials in
        model units, times in µs. Beyond them a nominal value is clipped (a die's circuit may still
        reach it through its mismatch, which is what a calibration searches for)."""
        if name in ("v_leak", "v_reset", "v_threshold"):
            lo, hi = self.v_range_v
            scale = self.v_model_one_v - self.v_model_zero_v
            return (lo - self.v_model_zero_v) / scale, (hi - self.v_model_zero_v) / scale
        ranges = {"tau_ref_us": self.tau_ref_range_us, "tau_adapt_us": self.tau_adapt_range_us,
                  "tau_syn_exc_us": self.tau_syn_range_us, "tau_syn_inh_us": self.tau_syn_range_us,
                  "tau_mem_us": self.tau_range_us, "adapt_coupling": self.adapt_coupling_range,
                  "weight_full_scale": self.weight_full_scale_range,
                  "adapt_increment": self.adapt_increment_range}
        if name not in ranges:
            raise KeyError(name)
        lo, hi = ranges[name]
        return float(lo), float(hi)

    def _check_readout(self):
        """The readout block's fields (see chip.readout)."""
        for name in ("cadc_lsb_v", "correlation_tau_us", "correlation_amplitude_lsb", "correlation_baseline_lsb",
                     "correlation_saturation_lsb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("cadc_offset_lsb", "cadc_noise_lsb", "correlation_spread_sigma"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be >= 0 and finite, got {getattr(self, name)!r}")
        low, high = self.cadc_linear_codes
        if not 0 <= low < high <= (math.inf if self.cadc_bits is None else 2 ** self.cadc_bits - 1):
            raise ValueError(f"cadc_linear_codes must be 0 <= low < high <= the top code, got {self.cadc_linear_codes!r}")
        sat = self.correlation_saturation_lsb
        if math.isfinite(sat) and not sat < self.correlation_baseline_lsb:
            raise ValueError(f"correlation_saturation_lsb ({sat!r}) must be below correlation_baseline_lsb "
                             f"({self.correlation_baseline_lsb!r}), or inf for none")

    def replace(self, **changes) -> "ChipProfile":
        return dataclasses.replace(self, **changes)

    def _check_analog_core(self) -> None:
        """The analog core block's fields."""
        for name in ("synaptic_saturation_exc", "synaptic_saturation_inh"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive (inf: no saturation), got {getattr(self, name)!r}")
        low, high = self.membrane_rails_v
        if not low < high:
            raise ValueError(f"membrane_rails_v must be [low, high] with low < high, got {self.membrane_rails_v!r}")
        if self.reset_circuit not in RESET_CIRCUITS:
            raise ValueError(f"reset_circuit must be one of {', '.join(RESET_CIRCUITS)}, got {self.reset_circuit!r}")
        if self.adaptation not in ADAPTATION_MECHANISMS:
            raise ValueError(f"adaptation must be one of {', '.join(ADAPTATION_MECHANISMS)}, got {self.adaptation!r}")
        low, high = self.tau_syn_range_us
        if not 0 < low < high:
            raise ValueError(f"tau_syn_range_us must be [low, high] with 0 < low < high, got {self.tau_syn_range_us!r}")
        low, high = self.adapt_coupling_range
        if not 0 <= low < high:
            raise ValueError(f"adapt_coupling_range must be [low, high] with 0 <= low < high, "
                             f"got {self.adapt_coupling_range!r}")
        if not (math.isfinite(self.threshold_drift) and self.threshold_drift >= 0):
            raise ValueError(f"threshold_drift must be >= 0, got {self.threshold_drift!r}")


_BSS2_MISMATCH = Mismatch(
    v_leak=0.02,
    v_reset=0.02,
    v_threshold=0.02,
    tau_mem=0.10,
    tau_syn=0.10,
    tau_ref=0.10,
    tau_adapt=0.10,
    adapt_increment=0.05,
    adapt_coupling=0.10,  # not sourced, as for the other adaptation parameters
    weight_full_scale=0.05,
    weight=0.05,
)

_INF = math.inf

PROFILES: dict[str, ChipProfile] = {
    "bss2": ChipProfile(
        name="bss2",
        cores=1,
        mismatch=_BSS2_MISMATCH,
        nonidealities=Nonidealities.all_on(),
        noise_membrane=0.01,
        die_seed=1,
        noise_seed=1,
        # analog core. Synaptic input OTA: no public transfer curve; the one lead is the BSS-2 demo
        # "dynamic range" (brainscales2-demos ts_06): the excitatory PSP height is nearly linear up
        # to about 288 summed weight codes (~5 threshold units): I_sat = 12 keeps tanh within 6 % of
        # linear there; the inhibitory slope halves between ~100 and ~300 summed codes (1.7-5 units):
        # I_sat = 4 (part of that compression is the membrane's lower rail, modelled apart).
        # g(x) = I_sat·tanh(x/I_sat) with these I_sat is a guess in that spirit.
        synaptic_saturation_exc=12.0,
        synaptic_saturation_inh=4.0,
        # the membrane stays within ~25..228 CADC LSB (hxtorch tests/hw/test_spiking_boundary.py)
        membrane_rails_v=(0.17, 1.09),
        adaptation="current",  # the neuron's AdEx adaptation current (BSS-2 neuron circuit)
        # the chip's a (i_bias_a, sign via invert_a) is a raw CapMem current: calix calibrates no
        # adaptation and hxtorch passes raw values, so this range is not sourced (a >= 0 only)
        adapt_coupling_range=(0.0, 1.0),
        # what calix calibrates (calix/spiking/neuron.py check_target, calix/constants.py tau_syn_range)
        tau_syn_range_us=(0.3, 30.0),
        # fastAndDeep (Göltz et al.) yin_yang_hwAware.yaml: threshold_noise_b2b_std 0.04 of
        # theta - E_l = 2.6 -> 1.5 % from batch to batch
        threshold_drift=0.015,
        # synaptic strength: a full-code synapse is ~1.1 threshold units of current jump on the chip
        # (jaxsnn examples/event/yinyang_bss2.py: 58 codes per unit; calibrated hxtorch/demo setups
        # 43-78 codes per unit); the synaptic-input bias leaves some headroom above that, and beyond
        # ~2 units per synapse the input saturates anyway
        weight_full_scale_range=(0.05, 2.0),
        # setup to setup (docs/fidelity.md): the codes per threshold unit of calibrated setups span
        # 43-78 around jaxsnn's 58 (factor 0.74-1.35); the threshold-to-leak distance in CADC codes
        # 38-59 for a nominal 45 (hxtorch tests/hw/test_spiking_threshold.py: factor 0.84-1.31, part
        # of it per-neuron mismatch, modelled apart); the host's spike-time correction 80 ns (jaxsnn
        # --hw-correction) to 160 ns (its older -20 FPGA cycles): the input route's 80 ns plus 0-80 ns
        setup_weight_gain_sigma=0.10,
        setup_weight_gain_range=(0.74, 1.35),
        setup_trace_gain_sigma=0.08,
        setup_trace_gain_range=(0.84, 1.31),
        setup_input_delay_us=(0.0, 0.08),
    ),
    "ideal": ChipProfile(
        name="ideal",
        cores=64,
        rows_per_half=65536,
        labels_per_row=65536,
        weight_bits=None,
        param_bits=None,
        clock_ns=1.0,
        step_us=0.1,
        tau_range_us=(1e-3, 1e9),
        tau_ref_range_us=(0.0, 1e9),
        tau_adapt_range_us=(1e-3, 1e9),
        weight_full_scale_range=(1e-9, 1e9),
        adapt_increment_range=(0.0, 1e9),
        adapt_coupling_range=(0.0, 1e9),
        tau_syn_range_us=(1e-3, 1e9),
        reset_circuit="subtractive",
        v_range_v=(-1e9, 1e9),
        mismatch=Mismatch(),
        noise_membrane=0.0,
        input_links=1,
        input_link_capacity=_INF,
        neuron_output_capacity=_INF,
        buses_per_half=1,               # one pooled path into a half's drivers
        neurons_per_event_output=256,   # one event output per half
        bus_capacity=_INF,
        core_link_capacity=_INF,
        latency_input_cycles=0,
        latency_neuron_out_cycles=0,
        latency_crossbar_cycles=0,
        latency_core_link_cycles=0,
        cadc_bits=None,
        cadc_min_period_us=0.0,
        madc_bits=None,
        madc_channels_per_core=1 << 20,
        madc_min_period_us=0.0,
        correlation_saturation_lsb=_INF,
    ),
}


def get_profile(name: str) -> ChipProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown chip profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
