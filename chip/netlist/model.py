"""The logical netlist: populations, inputs, projections, recordings — what the user asked for.

Job: one frozen dataclass per kind of thing a netlist can hold, in hardware units (µs, Hz,
model-unit voltages), each with its equations or meaning in its docstring and its own checks in
``__post_init__`` (shapes, ranges, finiteness), which raise a plain ``ValueError`` naming the field.
The vocabularies of the format (neuron models, connectivity, weight and input kinds, signs, ADCs,
timescales) are derived here from those dataclasses, and only here.

Boundary: reading YAML, reporting ``FILE:LINE`` errors and writing YAML back is the job of the
rest of ``chip.netlist`` (``reader``, ``writer``); realizing masks and weights is
``chip.netlist.connectivity``'s; placing a netlist on circuits is ``chip.mapping``'s. Nothing
here knows about files, codes, mismatch or routes.

Neuron model (model units, leak 0 and threshold 1 by default)::

    tau_mem dV/dt = -(V - v_leak) + I_exc - I_inh        tau_syn_x dI_x/dt = -I_x
    V >= theta  ->  spike, V <- v_reset, held for tau_ref
    LIF:  theta = v_threshold                                            (LIFParams)
    ALIF: theta = v_threshold + a,   tau_adapt da/dt = -a,   a <- a + adapt_increment at each spike
                                                                         (ALIFParams)
    ALIF on a chip with ``adaptation: current`` (bss2): a is a current instead (AdEx),
          tau_mem dV/dt = ... - a,   tau_adapt da/dt = -a + adapt_coupling*(V - v_leak),
          a <- a + adapt_increment at each spike,   theta = v_threshold

An input event on a synapse adds its weight (model units) to I_exc or I_inh of the target.
(Yin et al.'s ALIF threshold b0 + beta*b with tau_adp db/dt = -b + spikes is this model with
v_threshold = b0 and adapt_increment = beta / tau_adp.)

Signs: a projection is ``excitatory``, ``inhibitory`` or ``signed`` (SIGNS). The YAML reader also
accepts ``sign: auto``, which is an input spelling only: it resolves ``auto`` to one of SIGNS from
what the weights can be, so a loaded ``Projection`` never holds it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..events import SpikeEvents
from ..profiles import ChipProfile

__all__ = [
    "LIFParams",
    "ALIFParams",
    "Population",
    "InputSource",
    "SpikeInput",
    "PoissonInput",
    "FileInput",
    "AllToAll",
    "OneToOne",
    "RandomConnectivity",
    "ExplicitPairs",
    "Connectivity",
    "ConstantWeights",
    "NormalWeights",
    "UniformWeights",
    "ArrayWeights",
    "Weights",
    "Projection",
    "MembraneRecord",
    "Record",
    "Netlist",
    "NEURON_MODELS",
    "PARAMS_BY_MODEL",
    "CONNECTIVITY_TYPES",
    "CONNECTIVITY_KINDS",
    "WEIGHT_TYPES",
    "WEIGHT_KINDS",
    "INPUT_TYPES",
    "INPUT_KINDS",
    "SIGNS",
    "ADCS",
    "TIMESCALES",
    "nearest_line",
]

#: what a projection's synapse rows are; the reader's ``auto`` resolves to one of these
SIGNS = ("excitatory", "inhibitory", "signed")
#: the membrane ADCs: ``cadc`` (one channel per column, slow), ``madc`` (few channels, fast)
ADCS = ("cadc", "madc")
#: what a population's reset does at a spike (``Population.reset``)
RESETS = ("hard", "soft")
#: what the times and rates of a netlist file mean: hardware time, or biological time / speedup
TIMESCALES = ("hardware", "biological")

#: the adaptation settings of a circuit that does not adapt (and the ALIF defaults)
NO_ADAPTATION_TAU_US = 100.0
NO_ADAPTATION_INCREMENT = 0.0
NO_ADAPTATION_COUPLING = 0.0


# ---------------------------------------------------------------------------------------------
# Checks shared by the dataclasses (plain ValueError messages that name the field)
# ---------------------------------------------------------------------------------------------


def _finite(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def _seed(obj, name: str = "seed") -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def _flag(obj, name: str) -> None:
    if not isinstance(getattr(obj, name), (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {getattr(obj, name)!r}")


def nearest_line(lines, path: str) -> int | None:
    """The line recorded for a dotted path in ``lines``, else for its nearest recorded parent."""
    parts = path.split(".") if path else []
    while True:
        key = ".".join(parts)
        if key in lines:
            return lines[key]
        if not parts:
            return None
        parts.pop()


def _same_events(a: SpikeEvents, b: SpikeEvents) -> bool:
    return ((a.size, a.batch_size) == (b.size, b.batch_size) and np.array_equal(a.batch, b.batch)
            and np.array_equal(a.neuron, b.neuron) and np.array_equal(a.time_us, b.time_us))


# ---------------------------------------------------------------------------------------------
# Neurons
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LIFParams:
    """Leaky integrate-and-fire neuron with current-based synapses (nominal values; the mapper
    turns them into codes)::

        tau_mem dV/dt = -(V - v_leak) + I_exc - I_inh        tau_syn_x dI_x/dt = -I_x
        V >= v_threshold  ->  spike, V <- v_reset, held for tau_ref

    ``weight_full_scale`` is the model-unit current added by the top weight code. Times are > 0
    (``tau_ref_us`` >= 0), all values finite, ``v_threshold > v_reset``.

    A LIF neuron does not adapt. Its circuit still holds the adaptation parameters, so
    ``tau_adapt_us``, ``adapt_increment`` and ``adapt_coupling`` answer the values the chip is
    configured with for a circuit that does not adapt (100 µs, 0 and 0); they are not fields and
    cannot be set.
    """

    model: ClassVar[str] = "LIF"

    tau_mem_us: float = 10.0
    tau_syn_exc_us: float = 5.0
    tau_syn_inh_us: float = 5.0
    tau_ref_us: float = 2.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    v_threshold: float = 1.0
    weight_full_scale: float = 1.0  # model units added to I by the top weight code

    def __post_init__(self):
        _finite(self, *(f.name for f in dataclasses.fields(self)))
        for name in ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us", "weight_full_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.tau_ref_us < 0:
            raise ValueError("tau_ref_us must be >= 0")
        if self.v_threshold <= self.v_reset:
            raise ValueError("v_threshold must be above v_reset")

    @property
    def tau_adapt_us(self) -> float:
        return NO_ADAPTATION_TAU_US

    @property
    def adapt_increment(self) -> float:
        return NO_ADAPTATION_INCREMENT

    @property
    def adapt_coupling(self) -> float:
        return NO_ADAPTATION_COUPLING


@dataclass(frozen=True)
class ALIFParams(LIFParams):
    """Adaptive LIF: a LIF neuron whose threshold rises by ``adapt_increment`` at each spike and
    relaxes back with ``tau_adapt_us``::

        theta = v_threshold + a,   tau_adapt da/dt = -a,   a <- a + adapt_increment at each spike

    On a chip whose profile says ``adaptation: current`` (the BSS-2 neuron's AdEx adaptation) a is
    a current that lowers the membrane instead, driven by the membrane through ``adapt_coupling``::

        tau_mem dV/dt = -(V - v_leak) + I_exc - I_inh - a
        tau_adapt da/dt = -a + adapt_coupling*(V - v_leak),   a <- a + adapt_increment at each spike

    ``tau_adapt_us`` > 0, ``adapt_increment`` >= 0 (threshold jump, or current jump, per spike,
    model units), ``adapt_coupling`` >= 0 (model units of current per unit of V; 0: no
    subthreshold adaptation; used only with ``adaptation: current``).
    """

    model: ClassVar[str] = "ALIF"

    tau_adapt_us: float = NO_ADAPTATION_TAU_US
    adapt_increment: float = NO_ADAPTATION_INCREMENT
    adapt_coupling: float = NO_ADAPTATION_COUPLING

    def __post_init__(self):
        super().__post_init__()
        if self.tau_adapt_us <= 0:
            raise ValueError("tau_adapt_us must be positive")
        if self.adapt_increment < 0:
            raise ValueError("adapt_increment must be >= 0")
        if self.adapt_coupling < 0:
            raise ValueError("adapt_coupling must be >= 0")


#: neuron model name -> its parameter dataclass
PARAMS_BY_MODEL: dict[str, type[LIFParams]] = {cls.model: cls for cls in (LIFParams, ALIFParams)}
NEURON_MODELS = tuple(PARAMS_BY_MODEL)


@dataclass(frozen=True)
class Population:
    """``size`` neurons of one model; the model is the type of ``params`` (``model`` says which).

    ``v_init``: initial membrane, model units: None (at the leak), a number, or
    ``(low, high, seed)`` for uniform draws per neuron, sample and run.

    ``reset``: ``"hard"`` — at a spike V <- v_reset (the chip's circuit: a reset to a potential);
    ``"soft"`` — Yin et al.'s u <- u − θ with u = V − v_leak (only on a profile whose
    ``reset_circuit`` is ``subtractive``). In continuous time the membrane at the crossing is
    exactly θ, so the soft reset leaves V at v_leak whatever θ is (also a moving, adaptive θ);
    it differs from a hard reset in discrete-time models, where u overshoots θ within a step.
    """

    name: str
    size: int
    params: LIFParams = field(default_factory=LIFParams)
    v_init: float | tuple[float, float, int] | None = None
    reset: str = "hard"

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise ValueError(f"size must be an integer >= 1, got {self.size!r}")
        if not isinstance(self.params, LIFParams):
            raise ValueError(f"params must be one of {', '.join(c.__name__ for c in PARAMS_BY_MODEL.values())}, "
                             f"got {type(self.params).__name__}")
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(RESETS)}, got {self.reset!r}")

    @property
    def model(self) -> str:
        """The neuron model: "LIF" or "ALIF" (a key of PARAMS_BY_MODEL)."""
        return self.params.model


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class InputSource:
    """Spikes injected from the host (through the FPGA links on real hardware) into ``size``
    channels. The kinds: SpikeInput, PoissonInput, FileInput."""

    kind: ClassVar[str] = ""

    name: str
    size: int

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise ValueError(f"size must be an integer >= 1, got {self.size!r}")


def _check_events(source, spikes) -> None:
    if not isinstance(spikes, SpikeEvents):
        raise ValueError(f"spikes must be SpikeEvents, got {type(spikes).__name__}")
    if spikes.size != source.size:
        raise ValueError(f"spikes are for {spikes.size} neurons but size is {source.size}")
    if len(spikes) and spikes.time_us.min() < 0:
        raise ValueError("spike times must be >= 0")


@dataclass(frozen=True, eq=False)
class SpikeInput(InputSource):
    """Explicit spike events (hardware µs). ``spikes.batch_size`` 1 means the same trains for
    every sample; otherwise one set of trains per sample. ``spikes`` None means no spikes."""

    kind: ClassVar[str] = "spikes"

    spikes: SpikeEvents | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.spikes is None:
            object.__setattr__(self, "spikes", SpikeEvents.empty(self.size))
        _check_events(self, self.spikes)

    def __eq__(self, other):
        return (type(other) is type(self) and (self.name, self.size) == (other.name, other.size)
                and _same_events(self.spikes, other.spikes))

    __hash__ = None


@dataclass(frozen=True)
class PoissonInput(InputSource):
    """Independent Poisson trains per channel and sample at ``rate_hz`` (hardware Hz) in
    [start_us, stop_us) — stop None: the end of the run. Sample b draws from
    ``default_rng([seed, b])``: n ~ Poisson(rate · span), times uniform in the window."""

    kind: ClassVar[str] = "poisson"

    rate_hz: float
    start_us: float = 0.0
    stop_us: float | None = None
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        _finite(self, "rate_hz", "start_us")
        _seed(self)
        if self.rate_hz < 0:
            raise ValueError(f"rate_hz must be >= 0, got {self.rate_hz!r}")
        if self.start_us < 0:
            raise ValueError(f"start_us must be >= 0, got {self.start_us!r}")
        if self.stop_us is not None:
            _finite(self, "stop_us")
            if self.stop_us <= self.start_us:
                raise ValueError("stop_us must be after start_us")


@dataclass(frozen=True, eq=False)
class FileInput(InputSource):
    """Spike events read from an ``.npz`` file (arrays neuron, time_us in hardware µs, optional
    batch): ``path`` as written in the netlist (relative to it), ``spikes`` what it held. The
    writer writes them inline, as a SpikeInput."""

    kind: ClassVar[str] = "file"

    path: str
    spikes: SpikeEvents

    def __post_init__(self):
        super().__post_init__()
        _check_events(self, self.spikes)

    def __eq__(self, other):
        return (type(other) is type(self) and (self.name, self.size, self.path) == (other.name, other.size, other.path)
                and _same_events(self.spikes, other.spikes))

    __hash__ = None


INPUT_TYPES: tuple[type[InputSource], ...] = (SpikeInput, PoissonInput, FileInput)
INPUT_KINDS = tuple(t.kind for t in INPUT_TYPES)


# ---------------------------------------------------------------------------------------------
# Connectivity: which (pre, post) pairs are synapses. Realized by chip.netlist.connectivity.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllToAll:
    """Every pair: ``mask[i, j] = True``. With ``allow_self`` false, a projection of a population
    onto itself leaves out i → i (the diagonal); between two populations it has no effect."""

    kind: ClassVar[str] = "all_to_all"

    allow_self: bool = True

    def __post_init__(self):
        _flag(self, "allow_self")


@dataclass(frozen=True)
class OneToOne:
    """The identity: ``mask[i, j] = (i == j)``; pre and post must have the same size."""

    kind: ClassVar[str] = "one_to_one"


@dataclass(frozen=True)
class RandomConnectivity:
    """Each pair independently with probability p: ``mask = default_rng(seed).random((n_pre,
    n_post)) < probability``, drawn over the full matrix so a pair's draw does not depend on the
    others. With ``allow_self`` false, a projection of a population onto itself leaves out i → i."""

    kind: ClassVar[str] = "probability"

    probability: float
    seed: int = 0
    allow_self: bool = True

    def __post_init__(self):
        _finite(self, "probability")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")
        _seed(self)
        _flag(self, "allow_self")


@dataclass(frozen=True, eq=False)
class ExplicitPairs:
    """The listed pairs: ``mask[pre, post] = True`` for each row (pre, post) of ``pairs``
    (int64, shape (k, 2)); a pair listed twice is one synapse, self connections are kept as
    listed. Whether the indices are in range depends on the sizes: checked when realized."""

    kind: ClassVar[str] = "explicit"

    pairs: np.ndarray

    def __post_init__(self):
        pairs = np.asarray(self.pairs)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(f"explicit pairs must have shape (k, 2), got {pairs.shape}")
        if not np.issubdtype(pairs.dtype, np.integer):
            if not np.issubdtype(pairs.dtype, np.number) or not np.all(np.isfinite(pairs)) \
                    or np.any(pairs != np.round(pairs)):
                raise ValueError("explicit pairs must be integer neuron indices")
        pairs = pairs.astype(np.int64)
        if pairs.size and pairs.min() < 0:
            raise ValueError("explicit pairs must be neuron indices >= 0")
        object.__setattr__(self, "pairs", pairs)

    def __eq__(self, other):
        return type(other) is type(self) and np.array_equal(self.pairs, other.pairs)

    __hash__ = None


Connectivity = AllToAll | OneToOne | RandomConnectivity | ExplicitPairs
CONNECTIVITY_TYPES: tuple[type, ...] = (AllToAll, OneToOne, RandomConnectivity, ExplicitPairs)
CONNECTIVITY_KINDS = tuple(t.kind for t in CONNECTIVITY_TYPES)


# ---------------------------------------------------------------------------------------------
# Initial weights, signed model units. Realized by chip.netlist.connectivity.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConstantWeights:
    """``w[i, j] = value`` on every synapse (given outright: its sign must be the projection's)."""

    kind: ClassVar[str] = "constant"

    value: float

    def __post_init__(self):
        _finite(self, "value")


@dataclass(frozen=True)
class NormalWeights:
    """``w = default_rng(seed).normal(mean, std, (n_pre, n_post))`` on the synapses; ``std`` >= 0.
    Drawn: a sign-constrained projection clips draws on the wrong side to 0."""

    kind: ClassVar[str] = "normal"

    mean: float
    std: float
    seed: int = 0

    def __post_init__(self):
        _finite(self, "mean", "std")
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std!r}")
        _seed(self)


@dataclass(frozen=True)
class UniformWeights:
    """``w = default_rng(seed).uniform(low, high, (n_pre, n_post))`` on the synapses; ``low`` <=
    ``high``. Drawn: a sign-constrained projection clips draws on the wrong side to 0."""

    kind: ClassVar[str] = "uniform"

    low: float
    high: float
    seed: int = 0

    def __post_init__(self):
        _finite(self, "low", "high")
        if self.low > self.high:
            raise ValueError(f"high {self.high:g} is below low {self.low:g}")
        _seed(self)


@dataclass(frozen=True, eq=False)
class ArrayWeights:
    """``w = array`` (float64, shape (n_pre, n_post), all finite), given outright; entries where
    there is no synapse are ignored. ``path`` is the ``.npy`` file it was read from, as written in
    the netlist (None for an inline array): provenance only — two ArrayWeights are equal when
    their arrays are, and the writer writes the array inline."""

    kind: ClassVar[str] = "array"

    array: np.ndarray
    path: str | None = None

    def __post_init__(self):
        array = np.asarray(self.array)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
            raise ValueError(f"weight array must hold real numbers, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(f"weight array must be 2-D (n_pre, n_post), got shape {array.shape}")
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError("weight array holds NaN or inf")
        object.__setattr__(self, "array", array)

    def __eq__(self, other):
        return type(other) is type(self) and np.array_equal(self.array, other.array)

    __hash__ = None


Weights = ConstantWeights | NormalWeights | UniformWeights | ArrayWeights
WEIGHT_TYPES: tuple[type, ...] = (ConstantWeights, NormalWeights, UniformWeights, ArrayWeights)
WEIGHT_KINDS = tuple(t.kind for t in WEIGHT_TYPES)


# ---------------------------------------------------------------------------------------------
# Projections, recordings, the netlist
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from ``pre`` (a population or an input) onto ``post`` (a population).

    sign: one of SIGNS. A signed projection takes an excitatory and an inhibitory synapse row per
    presynaptic source, as on the real chip; weights then carry their sign. ``delay_us`` is added
    on top of the route's latency.
    """

    name: str
    pre: str
    post: str
    connectivity: Connectivity = field(default_factory=AllToAll)
    weights: Weights = field(default_factory=lambda: ConstantWeights(0.0))
    sign: str = "excitatory"
    delay_us: float = 0.0


@dataclass(frozen=True)
class MembraneRecord:
    """Membrane trace of chosen neurons through an ADC (one of ADCS): ``cadc`` (parallel, one
    channel per column) or ``madc`` (few channels, fast). ``period_us`` is the requested sample
    period."""

    population: str
    neurons: tuple[int, ...]
    adc: str = "cadc"
    period_us: float = 1.7


@dataclass(frozen=True)
class Record:
    spikes: tuple[str, ...] = ()
    membrane: tuple[MembraneRecord, ...] = ()
    correlations: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Netlist:
    """A whole netlist, resolved to hardware units and a concrete chip profile.

    ``lines`` maps dotted field paths ("projections.in_hidden.weights") to 1-based source lines so
    later stages (mapping, rules, regression checks) can point at the YAML. ``expect`` and
    ``train`` are kept as plain data for the regression and training front ends, which validate
    them with the same kit (``chip.netlist.validation``).
    """

    chip: ChipProfile
    duration_us: float
    populations: dict[str, Population]
    inputs: dict[str, InputSource] = field(default_factory=dict)
    projections: dict[str, Projection] = field(default_factory=dict)
    record: Record = field(default_factory=Record)
    batch: int = 1
    name: str = "netlist"
    description: str = ""
    timescale: str = "hardware"
    expect: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    source_path: str | None = None
    lines: dict[str, int] = field(default_factory=dict)
    calibration: str | None = None  # the calibration file (chip.calibration), resolved; the host applies it

    def line_of(self, path: str) -> int | None:
        """Best line for a dotted path: the path itself or its nearest recorded parent."""
        return nearest_line(self.lines, path)

    def size_of(self, name: str) -> int:
        if name in self.populations:
            return self.populations[name].size
        return self.inputs[name].size

    def time_factor_us(self) -> float:
        """µs of hardware time per µs of the netlist's own time (1, or 1/speedup when biological)."""
        return 1.0 if self.timescale == "hardware" else 1.0 / self.chip.speedup

    def with_chip(self, chip: ChipProfile) -> "Netlist":
        return dataclasses.replace(self, chip=chip)

    def replace(self, **changes) -> "Netlist":
        return dataclasses.replace(self, **changes)
