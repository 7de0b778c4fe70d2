"""The compiled step loop's tables: named tuples of arrays that numba accepts as arguments.

Boundary: this module only declares what the kernel (``chip.emulator.kernel``, ``.links``) reads
and writes, with shapes and units; it holds no state. The classes live at module level so that
numba's on-disk cache can name their types. Shapes use B samples, N neurons, U delivery units,
S sources, L links, G route groups, E events per step, R calendar slots of C events each.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["StepConfig", "NeuronTable", "NeuronState", "SynapseTable", "Calendar", "LinkTable",
           "Scratch", "SpikeBuffer", "TraceBuffer"]


class StepConfig(NamedTuple):
    """The scalars of a run: step and clock (µs), clock cycles per step, whether the slow path
    scans the clock grid (else bisects), whether any neuron adapts, whether links can congest,
    how many sources are populations (ids below that; inputs above), whether there is noise."""

    dt_us: float
    clock_us: float
    cycles_per_step: int
    grid: bool
    adaptive: bool
    link_model: bool
    n_pop_sources: int
    has_noise: bool


class NeuronTable(NamedTuple):
    """Effective (die-deviated) parameters and step propagators per neuron, each (N,) float64.

    ``decay_*`` are e^{−dt/τ}; ``kernel_exc``/``kernel_inh`` are κ(dt), the membrane's response at
    the step's end to a unit current at its start; ``coeff_exc``/``coeff_inh`` are τs/(τs − τm)
    (NaN where the two are too close for the difference formula); ``noise_scale`` the std of the
    membrane noise added per step."""

    v_leak: np.ndarray
    v_reset: np.ndarray
    v_threshold: np.ndarray
    tau_mem_us: np.ndarray
    tau_syn_exc_us: np.ndarray
    tau_syn_inh_us: np.ndarray
    tau_ref_us: np.ndarray
    tau_adapt_us: np.ndarray
    adapt_increment: np.ndarray
    decay_mem: np.ndarray
    decay_exc: np.ndarray
    decay_inh: np.ndarray
    decay_adapt: np.ndarray
    kernel_exc: np.ndarray
    kernel_inh: np.ndarray
    coeff_exc: np.ndarray
    coeff_inh: np.ndarray
    noise_scale: np.ndarray


class NeuronState(NamedTuple):
    """The state of every neuron in every sample, each (B, N) float64: membrane, synaptic currents,
    adaptation, the absolute time (µs) its refractoriness ends; and the ``*_next`` arrays the
    kernel writes the next step into (it swaps them and leaves the result in the first four)."""

    v: np.ndarray
    i_exc: np.ndarray
    i_inh: np.ndarray
    adapt: np.ndarray
    refractory_until_us: np.ndarray
    v_next: np.ndarray
    i_exc_next: np.ndarray
    i_inh_next: np.ndarray
    adapt_next: np.ndarray


class SynapseTable(NamedTuple):
    """The synapse table, one CSR row per (delivery unit, presynaptic index), non-zero synapses only.

    Row ``row_base[u] + pre`` spans ``indptr[row]:indptr[row + 1]`` of ``cols`` (global post neuron,
    sorted within a row), ``w_exc``/``w_inh`` (effective amplitudes ≥ 0). Per unit (U,): post range
    ``unit_start``..``unit_end``, ``delay_us``, ``uniform`` (its post neurons share time constants),
    ``latency_base`` into ``latency_us`` (route latency per presynaptic index). Per source (S + 1,):
    ``source_ptr`` into ``source_units``, the units it feeds. Per neuron (N,): ``neuron_source``
    (−1: feeds nothing) and ``neuron_index`` within its source."""

    row_base: np.ndarray
    indptr: np.ndarray
    cols: np.ndarray
    w_exc: np.ndarray
    w_inh: np.ndarray
    unit_start: np.ndarray
    unit_end: np.ndarray
    delay_us: np.ndarray
    uniform: np.ndarray
    latency_base: np.ndarray
    latency_us: np.ndarray
    source_ptr: np.ndarray
    source_units: np.ndarray
    neuron_source: np.ndarray
    neuron_index: np.ndarray


class Calendar(NamedTuple):
    """Where events wait for the step they act in.

    ``ring_*`` (R, C): a ring of step slots for events emitted during the run (unit, sample,
    presynaptic index, arrival time µs), ``ring_count`` (R,) events per slot. ``static_*``: input
    events sorted by arrival step, step s spans ``static_ptr[s]:static_ptr[s + 1]`` (used when links
    never congest). ``send_*``: input events sorted by the step they are sent in, with their source
    (used with the link model, which passes them through the links first)."""

    ring_unit: np.ndarray
    ring_sample: np.ndarray
    ring_index: np.ndarray
    ring_time_us: np.ndarray
    ring_count: np.ndarray
    static_ptr: np.ndarray
    static_unit: np.ndarray
    static_sample: np.ndarray
    static_index: np.ndarray
    static_time_us: np.ndarray
    send_ptr: np.ndarray
    send_source: np.ndarray
    send_sample: np.ndarray
    send_index: np.ndarray
    send_time_us: np.ndarray


class LinkTable(NamedTuple):
    """The link model (placeholders of the same types when links never congest).

    ``predecessor`` (G, L): per route group the link before each link of its routes (−1: first,
    −2: not on them); ``order``: the links in an order where each comes after its predecessors;
    per link (L,): ``service_us`` per event (0: never congests), ``limit_us`` (longest wait the
    queue holds), ``latency_us``; ``free_at_us`` (L, B) when each link's server is next free;
    counters per link ``offered``, ``dropped``, ``max_wait_us``; ``group_base`` (S,) into ``group``,
    the route group of each source neuron; ``last_link`` the last link of each unit's route per
    presynaptic index (indexed like ``SynapseTable.latency_us``; −1: none)."""

    predecessor: np.ndarray
    order: np.ndarray
    service_us: np.ndarray
    limit_us: np.ndarray
    latency_us: np.ndarray
    free_at_us: np.ndarray
    offered: np.ndarray
    dropped: np.ndarray
    max_wait_us: np.ndarray
    group_base: np.ndarray
    group: np.ndarray
    last_link: np.ndarray


class Scratch(NamedTuple):
    """Working arrays of one step. ``event_*`` (E,): the step's events (unit, sample, presynaptic
    index, arrival µs), left there after the step for the correlation sensors; ``slow_*`` (B·N,):
    neurons marked for the slow path; ``pair_*`` (E,): the events reaching one slow neuron (in-step
    arrival µs, amplitudes); ``event_by_sample`` (E,), ``sample_ptr`` (B + 1,), ``sample_fill`` (B,):
    the step's events sorted by sample."""

    event_unit: np.ndarray
    event_sample: np.ndarray
    event_index: np.ndarray
    event_time_us: np.ndarray
    slow_sample: np.ndarray
    slow_neuron: np.ndarray
    pair_time_us: np.ndarray
    pair_w_exc: np.ndarray
    pair_w_inh: np.ndarray
    event_by_sample: np.ndarray
    sample_ptr: np.ndarray
    sample_fill: np.ndarray


class SpikeBuffer(NamedTuple):
    """Spikes (sample, global neuron, clock cycle), int64 arrays of the buffer's capacity; the
    first ``counters[C_SPIKES]`` are filled."""

    sample: np.ndarray
    neuron: np.ndarray
    cycle: np.ndarray


class TraceBuffer(NamedTuple):
    """ADC samples of the end-of-step membrane: column k samples ``neuron[k]`` every
    ``every_steps[k]`` steps into ``values[:, j, k]`` (B, rows, K), row j after step (j + 1)·every."""

    neuron: np.ndarray
    every_steps: np.ndarray
    values: np.ndarray
