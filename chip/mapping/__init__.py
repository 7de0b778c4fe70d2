"""Place and route a logical netlist onto a chip profile.

The job: decide which neuron circuit runs each neuron, which synapse (half, row, column) carries
each connection, and which chain of event links (FPGA, crossbars, core links, buses, drivers)
each presynaptic source uses to reach each target half. The result, ``MappedChip``, is everything
the emulator needs to know about *where* things are; it says nothing about parameter codes,
mismatch, weight quantization or timing of events, which are the emulator's business. Reading the
netlist is ``chip.netlist``'s; realizing a projection's mask and weights is
``chip.netlist.connectivity``'s.

Geometry (profile sizes): circuit ``c`` sits on core ``c // neurons_per_core``, half
``(c % neurons_per_core) // neurons_per_half`` and column ``c % neurons_per_half``; its global half
index is ``c // neurons_per_half`` (= core * halves_per_core + half). Every half has
``rows_per_half`` synapse rows across its columns. A synapse is named by a global id
``((global_half * rows_per_half) + row) * neurons_per_half + column``.

Buses. Events reach a half's synapse drivers over ``buses_per_half`` buses, each owning
``rows_per_bus = rows_per_half / buses_per_half`` rows (``bss2``: driver d on bus d mod 4, 2 rows
per driver, 64 rows per bus). A neuron's spikes leave through the event output of its column
block (``column // neurons_per_event_output``), and output o reaches only bus
``o % buses_per_half`` of every half: a population's source group is (population, half, event
output) and its routes end on that bus. An input's events can be sent to any bus; each input
neuron is given one bus per half it reaches (see Rows). A half's rows are numbered bus by bus:
bus b owns rows ``b * rows_per_bus`` .. ``(b + 1) * rows_per_bus - 1``.

Rows. An event carries a 6-bit label, so one synapse row can serve up to ``labels_per_row``
distinct presynaptic sources, but each synapse (one per row and column) listens to one label:
a column can hear only one source per row. Each row is excitatory or inhibitory; a ``signed``
projection uses one synapse on an excitatory row and one on an inhibitory row per connection.
A source's synapses on a half sit on the rows of the bus its events arrive on. Per (half, sign,
bus), the distinct sources (same input or neuron, same sign, across projections) are packed onto
the bus's rows greedily, first fit in order of decreasing fan-in, with rows and columns kept as
bitsets (a source's blocked rows are the OR of its columns' occupancy, the first free row is the
lowest zero bit): in one compiled loop (``packing``) in a run, with the same placements as the
Python packer (``rows._pack_buses_python``, Python-int bitsets), which commands that map without
running use for small nets and which writes the error of a bus that overflows. Neurons, whose bus is fixed, are
packed first; then each input neuron, in order of decreasing width on the half (the columns its
synapses need, both signs; ties in netlist order, then by index), takes the bus with the most rows
left once its synapses are placed there, ties to the bus carrying fewer input neurons so far, then
to the lowest index; an input neuron without a synapse on a half still gets a bus there (its
events reach the half).
When two projections connect the same source to the same column with the same sign, the second
connection needs a second synapse; it is packed as an extra copy of the source (same label,
another row). On each bus, excitatory rows come first, inhibitory rows after them. A bus that
needs more rows than it owns is a mapping error naming the half, the bus, the projections and the
excess.

The ``ideal`` profile (unquantized weights, one bus of 65536 rows per half, one event output per
half) takes a fast path: each source gets its own row without any search (over all halves at once
with array operations, ``rows._one_row_per_source``; a half where a source arrives through two
projections of one sign is packed as above), and only cores that hold neurons appear in the
routing graph.
"""

from __future__ import annotations

import logging

import numpy as np

from .._malloc import keep_large_buffers_mapped
from ..netlist import Netlist
from ..netlist.connectivity import realize_pairs, realize_weights_at

from .model import Link, MappedChip, PlacedPopulation, PlacedProjection, Route, _error
from .placement import check_records, _check_references, _place_populations, _source_groups
from .report import graph_summary, write_graphml
from .rows import _assign_rows
from .routing import _build_graph, _projection_pairs, _routes

__all__ = [
    "PlacedPopulation",
    "PlacedProjection",
    "Link",
    "Route",
    "MappedChip",
    "map_netlist",
    "check_records",
    "graph_summary",
    "write_graphml",
]


# candidate (pre, post) pairs from which on a set-up counts as large for memory purposes
LARGE_SETUP_PAIRS = 1 << 24


def map_netlist(netlist: Netlist) -> MappedChip:
    """Place populations, realize and place projections on synapse rows, build routes.

    Raises ``MappingError`` (with the netlist's file, line and field path) when the netlist does
    not fit: too many neurons, too many synapse rows on a bus of a half, too many MADC channels on
    a core, or a membrane record faster than its ADC.
    """
    profile = netlist.chip
    _check_references(netlist)
    populations = _place_populations(netlist)
    # a large set-up frees many big buffers: have them leave the process (see chip._malloc). Small
    # netlists (training loops that map and run many times) keep malloc's own behaviour.
    if sum(netlist.size_of(p.pre) * populations[p.post].size
           for p in netlist.projections.values()) >= LARGE_SETUP_PAIRS:
        keep_large_buffers_mapped()
    n_circuits = sum(p.size for p in populations.values())
    check_records(netlist, populations)

    post_halves = {name: p.halves() for name, p in populations.items()}

    # each projection's connections, (pre index, post index) in the row-major order of its mask;
    # no (n_pre, n_post) matrix is made, so memory grows with the connections present
    connections: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shapes: dict[str, tuple[int, int]] = {}
    weights: dict[str, np.ndarray] = {}
    for name, proj in netlist.projections.items():
        n_pre, n_post = netlist.size_of(proj.pre), populations[proj.post].size
        shapes[name] = (int(n_pre), int(n_post))
        try:
            pre_index, post_index = realize_pairs(proj.connectivity, n_pre, n_post,
                                                  same_population=proj.pre == proj.post)
        except ValueError as exc:
            raise _error(netlist, f"projections.{name}.connectivity", str(exc)) from None
        # indices kept at the width the sizes need: half the memory of int64 for any real netlist
        index_type = np.int32 if max(n_pre, n_post) < 1 << 31 else np.int64
        connections[name] = (pre_index.astype(index_type), post_index.astype(index_type))
        del pre_index, post_index
        try:
            weights[name] = realize_weights_at(proj.weights, *connections[name], shapes[name], proj.sign)
        except ValueError as exc:
            raise _error(netlist, f"projections.{name}.weights", str(exc)) from None

    _check_ranges(netlist, connections, weights)

    occupied_halves = sorted({int(h) for p in populations.values() for h in np.unique(p.halves())})
    # the halves each input reaches: every half of every population it projects to
    input_halves = {name: sorted({int(h) for proj in netlist.projections.values() if proj.pre == name
                                  for h in np.unique(post_halves[proj.post])})
                    for name in netlist.inputs}
    input_halves = {name: halves for name, halves in input_halves.items() if halves}
    rows_used, bus_rows, exc_ids, inh_ids, input_buses = _assign_rows(
        netlist, populations, connections, occupied_halves, input_halves)
    source_groups, pre_groups, group_buses = _source_groups(netlist, populations, input_buses)

    graph, links = _build_graph(netlist, occupied_halves)
    pairs: set[tuple[int, int]] = set()
    for proj in netlist.projections.values():
        pairs |= _projection_pairs(pre_groups[proj.pre], post_halves[proj.post])
    routes = _routes(profile, graph, source_groups, group_buses, sorted(pairs))

    projections = {}
    for name, proj in netlist.projections.items():
        pre_index, post_index = connections.pop(name)  # row-major: kept as row pointers
        projections[name] = PlacedProjection(
            name=name,
            pre=proj.pre,
            post=proj.post,
            sign=proj.sign,
            pre_is_input=proj.pre not in netlist.populations,
            shape=shapes[name],
            pre_ptr=np.searchsorted(pre_index, np.arange(shapes[name][0] + 1)),
            post_index=post_index,
            initial_weights=weights[name],
            exc_synapse=exc_ids[name],
            inh_synapse=inh_ids[name],
            delay_us=float(proj.delay_us),
            pre_group=pre_groups[proj.pre],
            post_half=post_halves[proj.post],
        )
    return MappedChip(
        profile=profile,
        netlist=netlist,
        populations=populations,
        projections=projections,
        source_groups=source_groups,
        links=links,
        routes=routes,
        network=graph,
        rows_used=rows_used,
        bus_rows=bus_rows,
        n_circuits=n_circuits,
    )


_log = logging.getLogger("chip")


def _calibrated_parameters(netlist: Netlist) -> frozenset:
    """The parameters the netlist's calibration sets per circuit. Their nominal values may lie
    beyond what the nominal codes span: the calibration was searched for exactly those values (the
    host refuses it otherwise) and its file lists every circuit that does not reach them. A file
    that cannot be read is the host's to refuse, with its own message."""
    if netlist.calibration is None:
        return frozenset()
    from ..calibration import Calibration
    from ..errors import CalibrationError

    try:
        return frozenset(Calibration.load(netlist.calibration).targets)
    except CalibrationError:
        return frozenset()


def _check_ranges(netlist: Netlist, connections: dict, weights: dict) -> None:
    """Nothing the netlist asks for is clipped silently by the chip: every analog parameter lies in
    the profile's range, and on a profile with weight codes every initial weight within
    ±weight_full_scale of its post neuron (beyond half a weight code: rounding is not clipping).

    An error for parameters and for weights written as numbers (a constant, an array, bounds of a
    uniform draw): a clipped value is another experiment than the one written, and the fix (a
    smaller value or a larger weight_full_scale) is one line. A warning with the count for the
    tails of a normal draw: initializing wider than the synapse holds and letting the chip clip is
    common practice on hardware (the shipped yinyang_bss2 does it: 250 of 2500), so it is said,
    with how many, not refused."""
    from ..die import Transfer
    from ..netlist import NormalWeights
    from ..profiles import ANALOG_PARAMETERS

    profile = netlist.chip
    transfer = Transfer(profile)
    full_scale = {}
    calibrated = _calibrated_parameters(netlist)
    for name, pop in netlist.populations.items():
        for param in ANALOG_PARAMETERS:
            if not hasattr(pop.params, param) or param in calibrated:
                continue
            value = np.asarray(getattr(pop.params, param), dtype=np.float64)
            lo, hi = transfer._range(param)
            slack = 1e-9 * max(abs(lo), abs(hi), 1e-300)
            outside = (value < lo - slack) | (value > hi + slack)
            if np.any(outside):
                key = param.removesuffix("_us")
                shown = float(value[outside].flat[0]) if value.ndim else float(value)
                unit = " us" if param.endswith("_us") else ""
                raise _error(netlist, f"populations.{name}.params.{key}",
                             f"{shown:g}{unit} is outside what the {profile.name} chip can hold "
                             f"({lo:g}{unit} to {hi:g}{unit}); it would be clipped")
        wfs = np.broadcast_to(np.asarray(getattr(pop.params, "weight_full_scale", 1.0), dtype=np.float64),
                              (pop.size,))
        full_scale[name] = transfer.to_value("weight_full_scale", transfer.to_code("weight_full_scale", wfs))
    top = profile.weight_max_code
    if top is None:
        return
    for name, proj in netlist.projections.items():
        w = np.asarray(weights[name], dtype=np.float64)
        if not len(w):
            continue
        post = connections[name][1]
        limit = full_scale[proj.post][post] * (1 + 0.5 / top)
        over = np.abs(w) > limit
        if np.any(over):
            k = int(np.argmax(np.abs(w) - limit))
            what = (f"{int(over.sum())} of {len(w)} initial weights exceed the weight_full_scale of {proj.post!r} "
                    f"({full_scale[proj.post][post[k]]:g}; largest weight {w[k]:g})")
            if isinstance(proj.weights, NormalWeights):
                path = f"projections.{name}.weights"
                line = netlist.line_of(path)
                where = f"{netlist.source_path or '<netlist>'}" + (f":{line}" if line else "")
                _log.warning(f"warning: {where}: {path}: {what}: clipped to ±weight_full_scale on the "
                             f"{profile.name} chip")
                continue
            raise _error(netlist, f"projections.{name}.weights",
                         f"{what} and would be clipped on the {profile.name} chip; raise populations.{proj.post}."
                         f"params.weight_full_scale (up to {transfer._range('weight_full_scale')[1]:g}) or lower "
                         f"the weights")
