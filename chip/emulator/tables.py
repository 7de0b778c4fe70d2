"""The compiled step loop's tables, and the one pure function that builds them from the chip.

Boundary: declares what the kernel (``chip.emulator.kernel``, ``.links``) reads and writes, as
named tuples of arrays with shapes and units, and builds the tables that depend only on the
mapped chip, the die, the configuration memory and the step (:func:`build_tables`); it holds no
state, and buffers that live for one run are made by ``chip.emulator.core``. The named tuples
live at module level so that numba's on-disk cache can name their types. Shapes use B samples,
N neurons, U delivery units, S sources, L links, G route groups, E events per step, R calendar
slots of C events each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..die import Die, Transfer
from ..state import ChipState

__all__ = ["StepConfig", "NeuronTable", "NeuronState", "SynapseTable", "Calendar", "LinkTable", "LinkRoutes",
           "Scratch", "SpikeBuffer", "TraceBuffer", "SensorTable", "DeliveryUnit", "ChipTables", "build_tables",
           "effective_params", "effective_weights", "link_table"]


class StepConfig(NamedTuple):
    """The scalars of a run: step and clock (µs), clock cycles per step, whether the slow path
    scans the clock grid (else bisects), whether any neuron adapts, whether links can congest,
    how many sources are populations (ids below that; inputs above), whether there is noise.

    The analog core's effects (see ``ChipTables``): ``adapt_current`` whether adaptation is a
    current (else it moves the threshold); ``saturation`` whether the synaptic inputs saturate
    (``NeuronTable.sat_scale_*``); ``rails`` whether the membrane is clipped to [``rail_lo``,
    ``rail_hi``] (model units)."""

    dt_us: float
    clock_us: float
    cycles_per_step: int
    grid: bool
    adaptive: bool
    link_model: bool
    n_pop_sources: int
    has_noise: bool
    adapt_current: bool = False
    saturation: bool = False
    rails: bool = False
    rail_lo: float = -math.inf
    rail_hi: float = math.inf


class NeuronTable(NamedTuple):
    """Effective (die-deviated) parameters and step propagators per neuron, each (N,) float64.

    ``decay_*`` are e^{−dt/τ}; ``kernel_exc``/``kernel_inh``/``kernel_adapt`` are κ(dt), the
    membrane's response at the step's end to a unit current at its start (with τ_syn or τ_adapt);
    ``coeff_exc``/``coeff_inh``/``coeff_adapt`` are τ/(τ − τm) (NaN where the two are too close for
    the difference formula); ``noise_scale`` the std of the membrane noise added per step;
    ``adapt_coupling`` the subthreshold adaptation a (used when adaptation is a current);
    ``sat_scale_exc``/``sat_scale_inh`` e^{dt/2τs}/I_sat of each saturating synaptic input (0:
    linear), which turns its end-of-step value into the argument of the saturation at mid-step."""

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
    adapt_coupling: np.ndarray
    kernel_adapt: np.ndarray
    coeff_adapt: np.ndarray
    sat_scale_exc: np.ndarray
    sat_scale_inh: np.ndarray


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
    sorted within a row; int32 below 2^31 circuits), ``w_exc``/``w_inh`` (effective amplitudes
    ≥ 0). Per unit (U,): post range ``unit_start``..``unit_end``, ``delay_us``, ``uniform`` (its
    post neurons share time constants), ``latency_base`` into ``latency_us`` (route latency per
    presynaptic index). Per source (S + 1,): ``source_ptr`` into ``source_units``, the units it
    feeds. Per neuron (N,): ``neuron_source`` (−1: feeds nothing) and ``neuron_index`` within its source."""

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
    the step's events sorted by sample; ``v_exc``/``v_inh`` (B, N): with synaptic saturation, the
    step's change of each membrane due to its excitatory / inhibitory input before the gain ((1, 1)
    placeholders otherwise)."""

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
    v_exc: np.ndarray
    v_inh: np.ndarray


class SpikeBuffer(NamedTuple):
    """Spikes (sample, global neuron, clock cycle), int64 arrays of the buffer's capacity; the
    first ``counters[C_SPIKES]`` are filled."""

    sample: np.ndarray
    neuron: np.ndarray
    cycle: np.ndarray


class TraceBuffer(NamedTuple):
    """ADC samples of the end-of-step membrane: column k samples ``neuron[k]`` every
    ``every_steps[k]`` steps into ``values[:, j, k]`` (B, rows, K), row j after step
    (j + 1)·every + ``late[j, k]`` (late: 0, or 1 for a sample taken one step after its time)."""

    neuron: np.ndarray
    every_steps: np.ndarray
    values: np.ndarray
    late: np.ndarray


class SensorTable(NamedTuple):
    """The correlation sensors of one run as the kernel accumulates them (see ``chip.readout``).

    A recorded projection q owns the sensors ``proj_base[q] + pre·proj_n_post[q] + post`` of the
    flat arrays (its connections in the row-major order of its (n_pre, n_post) mask, positions
    without a synapse included and masked out by ``mask``); per projection (K,): ``proj_base``,
    ``proj_n_pre``, ``proj_n_post``, ``proj_post0`` (global index of its post neuron 0). Per
    delivery unit (U,): ``unit_base`` the sensor base of its projection (−1: not recorded),
    ``unit_n_post``, ``unit_post0`` the same of that projection. Per sensor (S,): ``mask``,
    ``gain`` (amplitude factor), ``tau_us``. Per sample and sensor (B, S): the accumulators
    ``causal`` and ``acausal`` (pairs of the nominal amplitude) and ``last_pre_us``, the latest
    presynaptic arrival; per sample and neuron (B, N): ``last_post_us``, the latest spike, and
    ``spike_us``, this step's spike while the step is sensed (+inf otherwise). With no projection
    recorded every array is empty (K = S = 0) and the kernel skips the sensors."""

    proj_base: np.ndarray
    proj_n_pre: np.ndarray
    proj_n_post: np.ndarray
    proj_post0: np.ndarray
    unit_base: np.ndarray
    unit_n_post: np.ndarray
    unit_post0: np.ndarray
    mask: np.ndarray
    gain: np.ndarray
    tau_us: np.ndarray
    causal: np.ndarray
    acausal: np.ndarray
    last_pre_us: np.ndarray
    last_post_us: np.ndarray
    spike_us: np.ndarray


# ---------------------------------------------------------------------------------------------
# Built from the chip: what stays the same from run to run while the configuration does
# ---------------------------------------------------------------------------------------------


class LinkRoutes(NamedTuple):
    """The fixed part of a ``LinkTable`` (see there): predecessors, order, service, limit and
    latency per link, route groups of the source neurons, last links of the units' routes."""

    predecessor: np.ndarray
    order: np.ndarray
    service_us: np.ndarray
    limit_us: np.ndarray
    latency_us: np.ndarray
    group_base: np.ndarray
    group: np.ndarray
    last_link: np.ndarray


@dataclass(frozen=True, eq=False)
class DeliveryUnit:
    """The synapses of one projection onto one contiguous run of post neurons with one route set
    (its rows in the synapse table are ``row_base[u] .. row_base[u] + n_pre``)."""

    projection: str
    pre: str
    post_start: int           # global index of the first post neuron of this unit
    size: int
    latency_us: np.ndarray    # (n_pre,) route latency to this unit's half
    last_link: np.ndarray     # (n_pre,) last link of each pre neuron's route (-1: no link model)
    delay_us: float


@dataclass(frozen=True, eq=False)
class ChipTables:
    """Everything the kernel reads that follows from mapping, die, configuration and step:
    ``units[u]`` describes unit u of ``synapses``; ``units_of_source[name]`` the units a source
    (population or input) feeds; ``source_ids[name]`` its id (populations first, below
    ``n_pop_sources``); ``horizon_steps`` how far ahead of its emission step an event can act;
    ``link_model`` whether links can congest (then ``links`` describes them).

    The analog core's effects, from the profile: ``adapt_current`` (adaptation is a current, and
    some neuron adapts), ``saturation`` (I_sat of the excitatory and inhibitory synaptic inputs, or
    None: linear), ``rails`` (the membrane's range in model units, or None: unbounded);
    ``input_delay_us`` the die's extra delay of every event the host sends (setup variation)."""

    dt_us: float
    neurons: NeuronTable
    synapses: SynapseTable
    units: tuple[DeliveryUnit, ...]
    units_of_source: dict[str, tuple[int, ...]]
    source_ids: dict[str, int]
    n_pop_sources: int
    horizon_steps: int
    link_model: bool
    links: LinkRoutes
    adaptive: bool
    adapt_current: bool = False
    saturation: tuple[float, float] | None = None
    rails: tuple[float, float] | None = None
    input_delay_us: float = 0.0


def link_table(routes: LinkRoutes, batch: int) -> LinkTable:
    """The link model for one run: the fixed routes with fresh servers (free since −∞) and counters."""
    n = routes.service_us.shape[0]
    return LinkTable(routes.predecessor, routes.order, routes.service_us, routes.limit_us, routes.latency_us,
                     np.full((n, batch), -np.inf), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                     np.zeros(n), routes.group_base, routes.group, routes.last_link)


def effective_params(die: Die, state: ChipState) -> dict[str, np.ndarray]:
    """Effective (die-deviated) model value of every analog parameter, per circuit."""
    transfer = Transfer(die.profile)
    circuits = np.arange(len(state.adaptive))
    out = {name: die.effective(transfer, name, code, circuits) for name, code in state.codes.items()}
    out["adapt_increment"] = np.where(state.adaptive, out["adapt_increment"], 0.0)
    out["adapt_coupling"] = np.where(state.adaptive, out["adapt_coupling"], 0.0)
    if state.soft_reset is not None:
        # u <- u - theta at the crossing, where u = theta: the membrane goes to its own leak
        out["v_reset"] = np.where(state.soft_reset, out["v_leak"], out["v_reset"])
    return out


def effective_weights(mapped, die: Die, state: ChipState, projection: str, *, exc: bool = True,
                      inh: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Effective amplitudes (exc ≥ 0, inh ≥ 0) of a projection's connections, as vectors over
    its connections (see ``chip.mapping.PlacedProjection``); ``exc=False`` or ``inh=False``
    skips that side (None in its place)."""
    transfer = Transfer(die.profile)
    proj = mapped.projections[projection]
    post = mapped.populations[proj.post]
    sl = slice(post.offset, post.offset + post.size)
    wfs = die.effective(transfer, "weight_full_scale", state.codes["weight_full_scale"][sl],
                        np.arange(post.offset, post.offset + post.size))[proj.post_index]
    wfs *= die.setup().weight_gain  # the die's global synaptic strength (1 without setup variation)
    scale = float(die.profile.weight_max_code or 1)
    result = []
    for want, codes, ids in ((exc, state.exc_code[projection], proj.exc_synapse),
                             (inh, state.inh_code[projection], proj.inh_synapse)):
        if not want:
            result.append(None)
            continue
        w = codes / scale  # in place from here: one vector per side at millions of synapses
        w *= wfs
        gain = die.synapse_gain(ids)
        if gain is not None:
            w *= gain
        result.append(w)
    return result[0], result[1]


#: connections per chunk when the synapse table is filled (2 MB per float vector)
_CHUNK = 1 << 18


def _effective_weights_by_chunk(mapped, die: Die, state: ChipState, projection: str):
    """``effective_weights`` of a projection's connections ``c0:c1``, as a function of (c0, c1):
    the same values (the same operations per element, in the same order), without vectors over
    the whole projection. A side the projection lacks is None."""
    transfer = Transfer(die.profile)
    proj = mapped.projections[projection]
    post = mapped.populations[proj.post]
    sl = slice(post.offset, post.offset + post.size)
    # per post neuron, then gathered per connection: wfs[post] * gain is what the per-connection
    # product gives
    wfs = die.effective(transfer, "weight_full_scale", state.codes["weight_full_scale"][sl],
                        np.arange(post.offset, post.offset + post.size))
    wfs = wfs * die.setup().weight_gain
    scale = float(die.profile.weight_max_code or 1)
    sides = ((proj.sign != "inhibitory", state.exc_code[projection], proj.exc_synapse),
             (proj.sign != "excitatory", state.inh_code[projection], proj.inh_synapse))

    def at(c0: int, c1: int):
        result = []
        for want, codes, ids in sides:
            if not want:
                result.append(None)
                continue
            w = codes[c0:c1] / scale
            w *= wfs[proj.post_index[c0:c1]]
            gain = die.synapse_gain(ids[c0:c1])
            if gain is not None:
                w *= gain
            result.append(w)
        return result

    return at


def _fill_one_unit(proj, weights_at, chunks, post_offset: int, start: int, cols_all: np.ndarray,
                   we_all: np.ndarray, wi_all: np.ndarray) -> np.ndarray:
    """A projection that is one delivery unit into the synapse table from ``start``: its synapses
    with a non-zero effective weight, in connection order (rows in order, each row's columns
    sorted), post neurons as circuits. Returns the synapses per pre row (int64)."""
    per_row = np.diff(proj.pre_ptr).astype(np.int64)  # all connections, less the zero ones below
    at = start
    for c0, c1 in chunks:
        w_exc, w_inh = weights_at(c0, c1)
        keep = np.zeros(c1 - c0, dtype=bool)
        for w in (w_exc, w_inh):
            if w is not None:
                keep |= w != 0
        k = int(np.count_nonzero(keep))
        if k < c1 - c0:
            per_row -= np.bincount(proj.pre_of(c0, c1)[~keep], minlength=per_row.size)
            select = keep
        else:
            select = slice(None)
        np.add(proj.post_index[c0:c1][select], post_offset, out=cols_all[at:at + k])
        if w_exc is not None:
            we_all[at:at + k] = w_exc[select]
        if w_inh is not None:
            wi_all[at:at + k] = w_inh[select]
        at += k
    return per_row


def _kernel(h, tau_syn, tau_mem):
    """κ(h) = τs/(τs − τm)·(e^{−h/τs} − e^{−h/τm}), with its limit h/τm·e^{−h/τm} when τs ≈ τm."""
    h = np.asarray(h, dtype=np.float64)
    es = np.exp(-h / tau_syn)
    em = np.exp(-h / tau_mem)
    diff = tau_syn - tau_mem
    close = np.abs(diff) < 1e-9 * np.maximum(tau_syn, tau_mem)
    with np.errstate(divide="ignore", invalid="ignore"):
        general = tau_syn / np.where(close, 1.0, diff) * (es - em)
    limit = h / tau_mem * em
    return np.where(close, limit, general)


def _kernel_coeff(tau_syn, tau_mem):
    """τs/(τs − τm) per neuron, NaN where the two are too close for the difference formula."""
    diff = tau_syn - tau_mem
    close = np.abs(diff) < 1e-6 * np.maximum(tau_syn, tau_mem)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(close, np.nan, tau_syn / np.where(close, 1.0, diff))


def _neuron_table(die: Die, state: ChipState, dt: float, noise_sigma: float) -> NeuronTable:
    p = effective_params(die, state)
    f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    tm, te, ti, ta = f64(p["tau_mem_us"]), f64(p["tau_syn_exc_us"]), f64(p["tau_syn_inh_us"]), f64(p["tau_adapt_us"])
    am = np.exp(-dt / tm)
    noise_scale = noise_sigma * np.sqrt(1.0 - am ** 2) if noise_sigma > 0 else np.zeros(len(tm))
    sat_exc, sat_inh = die.profile.synaptic_saturation or (math.inf, math.inf)
    return NeuronTable(
        v_leak=f64(p["v_leak"]), v_reset=f64(p["v_reset"]), v_threshold=f64(p["v_threshold"]),
        tau_mem_us=tm, tau_syn_exc_us=te, tau_syn_inh_us=ti, tau_ref_us=f64(p["tau_ref_us"]), tau_adapt_us=ta,
        adapt_increment=f64(p["adapt_increment"]),
        decay_mem=am, decay_exc=np.exp(-dt / te), decay_inh=np.exp(-dt / ti), decay_adapt=np.exp(-dt / ta),
        kernel_exc=f64(_kernel(dt, te, tm)), kernel_inh=f64(_kernel(dt, ti, tm)),
        coeff_exc=_kernel_coeff(te, tm), coeff_inh=_kernel_coeff(ti, tm), noise_scale=noise_scale,
        adapt_coupling=f64(p["adapt_coupling"]), kernel_adapt=f64(_kernel(dt, ta, tm)),
        coeff_adapt=_kernel_coeff(ta, tm), sat_scale_exc=np.exp(0.5 * dt / te) / sat_exc,
        sat_scale_inh=np.exp(0.5 * dt / ti) / sat_inh)


def _analog_core(profile, neurons: NeuronTable):
    """The profile's analog-core effects as the kernel takes them: (adaptation is a current and
    some neuron adapts, I_sat pair or None, rails in model units or None); see ``ChipTables``."""
    adaptive = bool(np.any(neurons.adapt_increment > 0))
    adapt_current = profile.adaptation == "current" and (adaptive or bool(np.any(neurons.adapt_coupling > 0)))
    rails = None
    if profile.nonidealities.membrane_rails:
        span = profile.v_model_one_v - profile.v_model_zero_v
        rails = tuple(float((v - profile.v_model_zero_v) / span) for v in profile.membrane_rails_v)
    return adapt_current, profile.synaptic_saturation, rails


def _route_latency(mapped, proj, half) -> np.ndarray:
    """Route latency (cycles) of each pre neuron of ``proj`` to ``half``: one route lookup per
    source group, not per neuron."""
    groups, inverse = np.unique(np.asarray(proj.pre_group), return_inverse=True)
    per_group = np.array([mapped.routes[(int(g), int(half))].latency_cycles for g in groups])
    return per_group[np.asarray(inverse).ravel()] if len(groups) else np.zeros(0, dtype=np.int64)


def _route_of(mapped, proj, half, link_model: bool) -> tuple[np.ndarray, np.ndarray]:
    """Route latency (cycles) and last link (−1: none) of each pre neuron of ``proj`` to ``half``."""
    groups = np.asarray(proj.pre_group)
    lat = np.empty(len(groups))
    last = np.full(len(groups), -1, dtype=np.int64)
    for g in np.unique(groups):
        route = mapped.routes[(int(g), int(half))]
        sel = groups == g
        lat[sel] = route.latency_cycles
        if link_model and route.links:
            last[sel] = route.links[-1]
    return lat, last


def _max_link_wait_us(mapped) -> float:
    """Longest time an event can spend in the links of a route, queueing included."""
    clock = mapped.profile.clock_us
    worst = 0.0
    for route in mapped.routes.values():
        total = 0.0
        for i in route.links:
            link = mapped.links[i]
            service = clock / link.capacity_per_cycle if math.isfinite(link.capacity_per_cycle) else 0.0
            total += (link.queue_depth + 1) * service + link.latency_cycles * clock
        worst = max(worst, total)
    return worst


def _link_routes(mapped, link_model: bool, group_base, group, last_link) -> LinkRoutes:
    """The link model as the kernel reads it; placeholders of the same types when links cannot
    congest (then routes are plain latencies)."""
    i64 = np.int64
    if not link_model:
        return LinkRoutes(np.full((1, 1), -2, dtype=i64), np.zeros(0, dtype=i64), np.zeros(1), np.zeros(1),
                          np.zeros(1), group_base, group, last_link)
    clock = mapped.profile.clock_us
    n_links = len(mapped.links)
    # per source group: each link of its routes (a tree) with its predecessor, -1 for the first
    pred = np.full((len(mapped.source_groups), n_links), -2, dtype=i64)
    for (g, _half), route in mapped.routes.items():
        prev = -1
        for link in route.links:
            if pred[g, link] == -2:
                pred[g, link] = prev
            prev = link
    # a global order in which every link comes after all of its predecessors (any group)
    from ..mapping.routing import Network  # networkx's topological sort, without networkx

    order_graph = Network()
    for g, link in zip(*np.nonzero(pred != -2)):
        order_graph.add_node(int(link))
        if pred[g, link] >= 0:
            order_graph.add_edge(int(pred[g, link]), int(link))
    order = np.array(order_graph.topological_order(), dtype=i64)
    service = np.array([clock / link.capacity_per_cycle if math.isfinite(link.capacity_per_cycle) else 0.0
                        for link in mapped.links])
    limit = np.array([link.queue_depth for link in mapped.links], dtype=np.float64) * service
    latency = np.array([link.latency_cycles * clock for link in mapped.links], dtype=np.float64)
    return LinkRoutes(pred, order, service, limit, latency, group_base, group, last_link)


def build_tables(mapped, die: Die, state: ChipState, dt: float) -> ChipTables:
    """The kernel's tables for a mapped chip on a die with a configuration, at step ``dt`` µs.

    A delivery unit is one projection onto a run of post neurons that share routes: per half when
    links can congest (events queue per route), else split only where the route latency changes.
    Only synapses with a non-zero effective weight enter the synapse table. Pure: reads its
    arguments, changes none of them.
    """
    profile = mapped.profile
    clock = profile.clock_us
    n = mapped.n_circuits
    link_model = any(math.isfinite(link.capacity_per_cycle) for link in mapped.links)
    neurons = _neuron_table(die, state, dt, profile.noise_membrane)
    pop_offset = {name: p.offset for name, p in mapped.populations.items()}
    pop_size = {name: p.size for name, p in mapped.populations.items()}

    units: list[DeliveryUnit] = []
    rows_per_unit, counts_per_unit = [], []
    # the synapse table is filled in place (no per-unit pieces joined at the end, which held it
    # twice); a weight array's entries of a sign a projection lacks stay untouched zeros
    bound = sum(proj.n_synapses for proj in mapped.projections.values())
    # post neurons as int32 (any chip below 2^31 circuits): 4 bytes less per synapse in the run
    cols_all = np.empty(bound, dtype=np.int32 if n < 1 << 31 else np.int64)
    we_all, wi_all = np.zeros(bound), np.zeros(bound)
    filled = 0
    for name, proj in mapped.projections.items():
        weights_at = _effective_weights_by_chunk(mapped, die, state, name)
        post = mapped.populations[proj.post]
        halves = np.asarray(proj.post_half)
        boundaries = [0]
        for j in range(1, post.size):
            if halves[j] == halves[j - 1]:
                continue
            if link_model or not np.array_equal(_route_latency(mapped, proj, halves[j]),
                                                _route_latency(mapped, proj, halves[j - 1])):
                boundaries.append(j)
        boundaries.append(post.size)
        n_pre, n_syn = proj.shape[0], proj.n_synapses
        n_units = len(boundaries) - 1
        starts = np.asarray(boundaries[1:-1], dtype=np.int64)  # post index where the next unit starts
        chunks = [(c, min(c + _CHUNK, n_syn)) for c in range(0, n_syn, _CHUNK)]

        def unit_of(c0: int, c1: int, keep: np.ndarray) -> np.ndarray:
            return np.searchsorted(starts, proj.post_index[c0:c1][keep], side="right")

        if n_units == 1:
            # one unit: its synapses are the projection's non-zero ones in connection order, so
            # each chunk's go straight after the previous chunk's, in one pass
            per_row = _fill_one_unit(proj, weights_at, chunks, post.offset, filled, cols_all, we_all, wi_all)
            filled += int(per_row.sum())
            rows_per_unit.append(per_row)
            lat_cycles, last = _route_of(mapped, proj, int(halves[0]), link_model)
            units.append(DeliveryUnit(projection=name, pre=proj.pre, post_start=post.offset, size=post.size,
                                      latency_us=lat_cycles * clock, last_link=last, delay_us=proj.delay_us))
            counts_per_unit.append(n_pre)
            continue
        # the weights are made chunk by chunk straight into the table (no projection-long
        # vectors), twice: first which synapses are non-zero and how many per (unit, pre row),
        # then each chunk's synapses, grouped by unit, at the end of their unit's part so far
        nonzero = np.zeros(n_syn, dtype=bool)
        per_row = np.zeros(n_units * n_pre, dtype=np.int64)
        for c0, c1 in chunks:
            keep = nonzero[c0:c1]
            for w in weights_at(c0, c1):
                if w is not None:
                    keep |= w != 0
            key = proj.pre_of(c0, c1)[keep].astype(np.int64)
            if n_units > 1:
                key += unit_of(c0, c1, keep) * n_pre
            per_row += np.bincount(key, minlength=n_units * n_pre)
        per_row = per_row.reshape(n_units, n_pre)
        per_unit = per_row.sum(axis=1)
        cursor = filled + np.concatenate(([0], np.cumsum(per_unit)[:-1])).astype(np.int64)
        filled += int(per_unit.sum())
        # connections are in row-major order and chunks are taken in order, so each unit's rows
        # come out in order, each row's columns sorted
        for c0, c1 in chunks:
            keep = nonzero[c0:c1]
            w_exc, w_inh = weights_at(c0, c1)
            if n_units > 1:
                units_here = unit_of(c0, c1, keep)
                order = np.argsort(units_here, kind="stable")
                counts = np.bincount(units_here, minlength=n_units).tolist()
            else:
                order, counts = slice(None), [int(np.count_nonzero(keep))]
            cols = proj.post_index[c0:c1][keep][order]
            w_exc = w_exc[keep][order] if w_exc is not None else None
            w_inh = w_inh[keep][order] if w_inh is not None else None
            done = 0
            for u, k in enumerate(counts):
                if not k:
                    continue
                at, part = slice(cursor[u], cursor[u] + k), slice(done, done + k)
                np.add(cols[part], post.offset, out=cols_all[at])
                if w_exc is not None:
                    we_all[at] = w_exc[part]
                if w_inh is not None:
                    wi_all[at] = w_inh[part]
                cursor[u] += k
                done += k
        for u, (a, b) in enumerate(zip(boundaries[:-1], boundaries[1:])):
            rows_per_unit.append(per_row[u])
            lat_cycles, last = _route_of(mapped, proj, int(halves[a]), link_model)
            units.append(DeliveryUnit(projection=name, pre=proj.pre, post_start=post.offset + a, size=b - a,
                                      latency_us=lat_cycles * clock, last_link=last, delay_us=proj.delay_us))
            counts_per_unit.append(n_pre)
    units_of_source: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        units_of_source.setdefault(unit.pre, []).append(i)

    # synapses with zero weight were left out: the tail past ``filled`` was never written, so it
    # takes no memory pages, and a leading slice stays contiguous
    cols_all, we_all, wi_all = cols_all[:filled], we_all[:filled], wi_all[:filled]
    U = len(units)
    i64 = np.int64
    cat = lambda parts, dtype: (np.ascontiguousarray(np.concatenate(parts), dtype=dtype)  # noqa: E731
                                if parts else np.zeros(0, dtype=dtype))
    row_base = np.zeros(U, dtype=i64)
    if U:
        row_base[1:] = np.cumsum(np.array(counts_per_unit, dtype=i64))[:-1]
    per_row = np.concatenate(rows_per_unit) if U else np.zeros(0, dtype=i64)
    indptr = np.zeros(len(per_row) + 1, dtype=i64)
    np.cumsum(per_row, out=indptr[1:])
    tm, te, ti = neurons.tau_mem_us, neurons.tau_syn_exc_us, neurons.tau_syn_inh_us

    def uniform(a: int, b: int) -> bool:
        return bool(b > a and all(np.all(x[a:b] == x[a]) for x in (tm, te, ti)))

    latency_base = np.zeros(U, dtype=i64)
    if U:
        latency_base[1:] = np.cumsum([len(u.latency_us) for u in units])[:-1]

    # sources: the populations that feed a unit (ids 0 .. n_pop_sources - 1, in placement
    # order), then the inputs that do; per neuron its source id (-1: feeds nothing) and index
    neuron_source = np.full(n, -1, dtype=i64)
    neuron_index = np.zeros(n, dtype=i64)
    source_ptr, source_units, group_parts = [0], [], []
    source_ids: dict[str, int] = {}
    names = [pop for pop in pop_offset if pop in units_of_source]
    n_pop_sources = len(names)
    names += [name for name in units_of_source if name not in pop_offset]
    for name in names:
        sid = len(source_ptr) - 1
        source_ids[name] = sid
        ids = units_of_source[name]
        if name in pop_offset:
            offset, size = pop_offset[name], pop_size[name]
            neuron_source[offset:offset + size] = sid
            neuron_index[offset:offset + size] = np.arange(size)
        source_units.extend(ids)
        source_ptr.append(len(source_units))
        # the route group of each source neuron (the same in every projection from it)
        group_parts.append(np.asarray(mapped.projections[units[ids[0]].projection].pre_group, dtype=i64))
    group = np.concatenate(group_parts) if group_parts else np.zeros(0, dtype=i64)
    group_base = np.zeros(len(group_parts), dtype=i64)
    if group_parts:
        group_base[1:] = np.cumsum([len(g) for g in group_parts])[:-1]

    synapses = SynapseTable(
        row_base=row_base, indptr=indptr, cols=cols_all, w_exc=we_all, w_inh=wi_all,
        unit_start=np.array([u.post_start for u in units], dtype=i64),
        unit_end=np.array([u.post_start + u.size for u in units], dtype=i64),
        delay_us=np.array([u.delay_us for u in units], dtype=np.float64),
        uniform=np.array([uniform(u.post_start, u.post_start + u.size) for u in units], dtype=np.bool_),
        latency_base=latency_base, latency_us=cat([u.latency_us for u in units], np.float64),
        source_ptr=np.array(source_ptr, dtype=i64), source_units=np.array(source_units, dtype=i64),
        neuron_source=neuron_source, neuron_index=neuron_index)
    links = _link_routes(mapped, link_model, group_base, group, cat([u.last_link for u in units], i64))

    # how far ahead of its emission step an event can act: the calendar's length
    reach = max((float(u.latency_us.max(initial=0.0)) + u.delay_us for u in units), default=0.0)
    if link_model:
        reach += _max_link_wait_us(mapped)
    adapt_current, saturation, rails = _analog_core(profile, neurons)
    return ChipTables(
        dt_us=dt, neurons=neurons, synapses=synapses, units=tuple(units),
        units_of_source={k: tuple(v) for k, v in units_of_source.items()}, source_ids=source_ids,
        n_pop_sources=n_pop_sources, horizon_steps=int(math.ceil(reach / dt)) + 3, link_model=link_model,
        links=links, adaptive=bool(np.any(neurons.adapt_increment > 0)) or adapt_current,
        adapt_current=adapt_current, saturation=saturation, rails=rails,
        input_delay_us=die.setup().input_delay_us)
