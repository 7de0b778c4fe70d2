"""Reports of a mapping: a plain-data summary and the routing graph as GraphML.
"""

from __future__ import annotations

import math
import sys
from os import PathLike

import networkx as nx

from .model import MappedChip, _half_name


def graph_summary(mapped: MappedChip) -> dict:
    """Plain-data overview of a mapping (for ``chipctl map`` and logs).

    Capacities stay floats; ``math.inf`` marks links that never congest.
    """
    profile = mapped.profile
    return {
        "profile": profile.name,
        "nodes": mapped.graph.number_of_nodes(),
        "edges": mapped.graph.number_of_edges(),
        "links": [
            {"index": link.index, "name": link.name, "source": link.source, "target": link.target,
             "capacity_per_cycle": link.capacity_per_cycle, "latency_cycles": link.latency_cycles,
             "queue_depth": link.queue_depth}
            for link in mapped.links
        ],
        "rows_used": {
            half: {"name": _half_name(profile, half), "excitatory": exc, "inhibitory": inh,
                   "total": exc + inh, "available": profile.rows_per_half}
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
    groups sitting on it in a ``groups`` attribute.
    """
    graph = mapped.graph.copy()
    for _, _, data in graph.edges(data=True):
        if math.isinf(data["capacity_per_cycle"]):
            data["capacity_per_cycle"] = sys.float_info.max
    on_half: dict[str, list[str]] = {}
    for i, name in enumerate(mapped.source_groups):
        if not name.startswith("input:"):
            on_half.setdefault(mapped.group_node(i), []).append(name)
    for node, names in on_half.items():
        if node in graph:
            graph.nodes[node]["groups"] = ",".join(names)
    nx.write_graphml(graph, path)
