"""The logical netlist: populations, inputs, projections, recordings — what the user asked for.

Plain frozen dataclasses in hardware units (µs, Hz, model-unit voltages). Reading YAML, checking
it and reporting file/line errors is the job of ``chip.netlist``; placing it on circuits is the
job of ``chip.mapping``. Nothing here knows about codes, mismatch or routes.

Neuron model (model units, leak 0 and threshold 1 by default)::

    tau_mem dV/dt = -(V - v_leak) + I_exc - I_inh        tau_syn_x dI_x/dt = -I_x
    V >= theta  ->  spike, V <- v_reset, held for tau_ref
    LIF:  theta = v_threshold
    ALIF: theta = v_threshold + a,   tau_adapt da/dt = -a,   a <- a + adapt_increment at each spike

An input event on a synapse adds its weight (model units) to I_exc or I_inh of the target.
(Yin et al.'s ALIF threshold b0 + beta*b with tau_adp db/dt = -b + spikes is this model with
v_threshold = b0 and adapt_increment = beta / tau_adp.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..events import SpikeEvents
from ..profiles import ChipProfile

__all__ = [
    "NeuronParams",
    "Population",
    "InputSource",
    "Connectivity",
    "WeightInit",
    "Projection",
    "MembraneRecord",
    "Record",
    "Netlist",
    "NEURON_MODELS",
]

NEURON_MODELS = ("LIF", "ALIF")


@dataclass(frozen=True)
class NeuronParams:
    """Nominal neuron parameters (the targets the mapper turns into codes)."""

    tau_mem_us: float = 10.0
    tau_syn_exc_us: float = 5.0
    tau_syn_inh_us: float = 5.0
    tau_ref_us: float = 2.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    v_threshold: float = 1.0
    weight_full_scale: float = 1.0  # model units added to I by the top weight code
    tau_adapt_us: float = 100.0     # ALIF only
    adapt_increment: float = 0.0    # ALIF only: threshold jump per spike

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value):
                raise ValueError(f"{f.name} must be finite")
        for name in ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us", "tau_adapt_us", "weight_full_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.tau_ref_us < 0 or self.adapt_increment < 0:
            raise ValueError("tau_ref_us and adapt_increment must be >= 0")
        if self.v_threshold <= self.v_reset:
            raise ValueError("v_threshold must be above v_reset")


@dataclass(frozen=True)
class Population:
    name: str
    size: int
    model: str = "LIF"
    params: NeuronParams = field(default_factory=NeuronParams)
    # initial membrane: None (at the leak), a number, or (low, high, seed) for uniform draws per run
    v_init: float | tuple[float, float, int] | None = None

    def __post_init__(self):
        if self.size < 1:
            raise ValueError("size must be >= 1")
        if self.model not in NEURON_MODELS:
            raise ValueError(f"model must be one of {NEURON_MODELS}")


@dataclass(frozen=True, eq=False)
class InputSource:
    """Spikes injected from the host (through the FPGA links on real hardware).

    kind ``spikes``: ``spikes`` holds explicit events (same or per-sample trains);
    kind ``poisson``: independent Poisson trains at ``rate_hz`` in [start_us, stop_us), drawn per
    sample from ``seed``; kind ``file``: events read from an ``.npz`` (arrays batch, neuron,
    time_us), held in ``spikes``. ``spikes.batch_size`` of 1 means "same for every sample".
    """

    name: str
    size: int
    kind: str = "spikes"
    spikes: SpikeEvents | None = None
    rate_hz: float = 0.0
    start_us: float = 0.0
    stop_us: float | None = None
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Connectivity:
    """kind: all_to_all | one_to_one | probability (p, seed) | explicit (pairs: int (k, 2) pre, post)."""

    kind: str = "all_to_all"
    probability: float = 1.0
    seed: int = 0
    pairs: np.ndarray | None = None
    allow_self: bool = True


@dataclass(frozen=True, eq=False)
class WeightInit:
    """kind: constant (value) | normal (mean, std, seed) | uniform (low, high, seed) | file (array (pre, post))."""

    kind: str = "constant"
    value: float = 0.0
    mean: float = 0.0
    std: float = 0.0
    low: float = 0.0
    high: float = 0.0
    seed: int = 0
    array: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Projection:
    """Synapses from ``pre`` (a population or an input) onto ``post`` (a population).

    sign: excitatory | inhibitory | signed. A signed projection takes an excitatory and an
    inhibitory synapse row per presynaptic source, as on the real chip; weights then carry their
    sign. ``delay_us`` is added on top of the route's latency.
    """

    name: str
    pre: str
    post: str
    connectivity: Connectivity = field(default_factory=Connectivity)
    weights: WeightInit = field(default_factory=WeightInit)
    sign: str = "excitatory"
    delay_us: float = 0.0


@dataclass(frozen=True)
class MembraneRecord:
    """Membrane trace of chosen neurons through an ADC: ``cadc`` (parallel, one channel per
    column) or ``madc`` (few channels, fast). ``period_us`` is the requested sample period."""

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
    ``train`` are kept as plain data for the regression and training front ends.
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

    def line_of(self, path: str) -> int | None:
        """Best line for a dotted path: the path itself or its nearest recorded parent."""
        parts = path.split(".")
        while parts:
            key = ".".join(parts)
            if key in self.lines:
                return self.lines[key]
            parts.pop()
        return None

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
