"""Reports of a mapping: a plain-data summary and the routing graph as GraphML.
"""

from __future__ import annotations

import math
import sys
from os import PathLike

import numpy as np

from .model import MappedChip, _bus_node, _half_name


def _bus_sources(mapped: MappedChip) -> dict[tuple[int, int], int]:
    """Source neurons (inputs and neurons) whose events enter each (half, bus), over all routes."""
    sizes = np.zeros(len(mapped.source_groups), dtype=np.int64)
    seen = set()
    for proj in mapped.projections.values():
        if proj.pre not in seen:
            seen.add(proj.pre)
            sizes += np.bincount(np.asarray(proj.pre_group), minlength=len(sizes))
    load: dict[tuple[int, int], int] = {}
    for (group, half), route in mapped.routes.items():
        load[(half, route.bus)] = load.get((half, route.bus), 0) + int(sizes[group])
    return load


def graph_summary(mapped: MappedChip) -> dict:
    """Plain-data overview of a mapping (for ``chipctl graph`` and logs).

    Capacities stay floats; ``math.inf`` marks links that never congest. ``rows_used`` has, per
    half, its rows and per bus the rows used and the load: how many source neurons (input
    neurons and neurons) send events into that bus of the half.
    """
    profile = mapped.profile
    load = _bus_sources(mapped)
    return {
        "profile": profile.name,
        "nodes": len(mapped.network.nodes),
        "edges": mapped.network.number_of_edges(),
        "links": [
            {"index": link.index, "name": link.name, "source": link.source, "target": link.target,
             "capacity_per_cycle": link.capacity_per_cycle, "latency_cycles": link.latency_cycles,
             "queue_depth": link.queue_depth}
            for link in mapped.links
        ],
        "rows_used": {
            half: {"name": _half_name(profile, half), "excitatory": exc, "inhibitory": inh,
                   "total": exc + inh, "available": profile.rows_per_half,
                   "buses": [{"bus": b, "excitatory": e, "inhibitory": i, "total": e + i,
                              "available": profile.rows_per_bus, "sources": load.get((half, b), 0)}
                             for b, (e, i) in enumerate(mapped.bus_rows[half])]}
            for half, (exc, inh) in mapped.rows_used.items()
        },
        "circuits_used": mapped.n_circuits,
        "circuits_available": profile.total_neurons,
        "source_groups": len(mapped.source_groups),
        "routes": len(mapped.routes),
        "max_route_latency_cycles": max((r.latency_cycles for r in mapped.routes.values()), default=0),
    }


def write_graphml(mapped: MappedChip, path: str | PathLike) -> None:
    """Write the routing graph as GraphML; infinite capacities become the largest float.

    GraphML has no infinity literal other tools agree on, so math.inf is written as
    ``sys.float_info.max`` (read it back as "unlimited"). Each neuron node lists the source
    groups sitting on it in a ``groups`` attribute, each bus node the groups whose routes enter
    it.
    """
    graph = mapped.graph.copy()
    for _, _, data in graph.edges(data=True):
        if math.isinf(data["capacity_per_cycle"]):
            data["capacity_per_cycle"] = sys.float_info.max
    on_half: dict[str, list[str]] = {}
    for i, name in enumerate(mapped.source_groups):
        if not name.startswith("input:"):
            on_half.setdefault(mapped.group_node(i), []).append(name)
    if mapped.profile.buses_per_half > 1:
        for (group, half), route in sorted(mapped.routes.items()):
            on_half.setdefault(_bus_node(mapped.profile, half, route.bus), []).append(mapped.source_groups[group])
    for node, names in on_half.items():
        if node in graph:
            graph.nodes[node]["groups"] = ",".join(names)
    from ..output import atomic_write

    import networkx as nx

    atomic_write(path, lambda fh: nx.write_graphml(graph, fh))
