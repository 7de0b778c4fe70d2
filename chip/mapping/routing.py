"""Routing: the chip's event network (``Network``: nodes and links with their attributes, turned
into a networkx graph only when asked, as ``MappedChip.graph``), and the lowest-latency route of
every source group to every target half, entering it on the group's bus of that half.

A run does not import networkx (~0.25 s and ~20 MB per process): the routes come from
``Network.dijkstra_paths``, networkx's single-source Dijkstra step for step (same successor order,
same heap with an insertion counter, same rule for ties), so the same paths.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from itertools import count

import numpy as np

from ..netlist import Netlist
from ..profiles import ChipProfile
from .model import Link, Route, _bus_node, _drivers_node, _group_node, _neuron_node


class Network:
    """A directed graph as plain dicts, in insertion order: ``attrs`` (the graph's), ``nodes``
    (node -> attributes) and ``succ`` (node -> successor -> edge attributes), as networkx keeps them."""

    def __init__(self, **attrs):
        self.attrs = dict(attrs)
        self.nodes: dict[str, dict] = {}
        self.succ: dict[str, dict[str, dict]] = {}
        self._edges: list[tuple[str, str]] = []

    def add_node(self, node: str, **attrs) -> None:
        if node not in self.nodes:
            self.nodes[node] = {}
            self.succ[node] = {}
        self.nodes[node].update(attrs)

    def add_edge(self, source: str, target: str, **attrs) -> None:
        self.add_node(source)
        self.add_node(target)
        if target not in self.succ[source]:
            self.succ[source][target] = {}
            self._edges.append((source, target))
        self.succ[source][target].update(attrs)

    def number_of_edges(self) -> int:
        return len(self._edges)

    def to_networkx(self):
        """The same graph as a ``networkx.DiGraph`` (same node and edge order, same attributes)."""
        import networkx as nx

        graph = nx.DiGraph(**self.attrs)
        for node, attrs in self.nodes.items():
            graph.add_node(node, **attrs)
        for source, target in self._edges:
            graph.add_edge(source, target, **self.succ[source][target])
        return graph

    def topological_order(self) -> list:
        """``list(networkx.topological_sort(graph))``: generation by generation (the nodes whose
        predecessors all came before), each in node order, children as their last parent is
        reached; a cycle is a ValueError."""
        indegree: dict = {}
        for source, target in self._edges:
            indegree[target] = indegree.get(target, 0) + 1
        order, generation = [], [v for v in self.nodes if v not in indegree]
        while generation:
            order.extend(generation)
            following = []
            for node in generation:
                for child in self.succ[node]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        following.append(child)
                        del indegree[child]
            generation = following
        if indegree:
            raise ValueError("the graph has a cycle")
        return order

    def dijkstra_paths(self, source: str, weight) -> dict[str, list[str]]:
        """``networkx.single_source_dijkstra_path(graph, source, weight=weight)``: the same
        algorithm (networkx's ``_dijkstra_multisource`` with paths), so the same path where two
        are equally short. ``weight(u, v, attrs)`` >= 0."""
        succ = self.succ
        dist: dict[str, float] = {}
        seen = {source: 0}
        paths = {source: [source]}
        counter = count()
        fringe = [(0, next(counter), source)]
        while fringe:
            d, _, v = heappop(fringe)
            if v in dist:
                continue
            dist[v] = d
            for u, attrs in succ[v].items():
                vu_dist = d + weight(v, u, attrs)
                if u in dist:
                    if vu_dist < dist[u]:
                        raise ValueError("Contradictory paths found: negative weights?")
                elif u not in seen or vu_dist < seen[u]:
                    seen[u] = vu_dist
                    heappush(fringe, (vu_dist, next(counter), u))
                    paths[u] = paths[v] + [u]
        return paths


def _build_graph(netlist: Netlist, occupied_halves: list[int]) -> tuple[Network, list[Link]]:
    """The event network of the profile as a directed graph; links are indexed in creation order."""
    profile = netlist.chip
    hpc = profile.halves_per_core
    if profile.is_ideal:
        # 64 cores of an ideal chip would be mostly empty nodes: keep only cores holding neurons
        cores = sorted({h // hpc for h in occupied_halves})
    else:
        cores = list(range(profile.cores))
    graph = Network(profile=profile.name, netlist=netlist.name)
    links: list[Link] = []

    def add_link(source: str, target: str, capacity: float, latency: int) -> None:
        link = Link(index=len(links), name=f"{source}->{target}", source=source, target=target,
                    capacity_per_cycle=float(capacity), latency_cycles=int(latency),
                    queue_depth=int(profile.queue_depth))
        links.append(link)
        graph.add_edge(source, target, index=link.index, name=link.name,
                       capacity_per_cycle=link.capacity_per_cycle, latency_cycles=link.latency_cycles,
                       queue_depth=link.queue_depth)

    # nodes first, with attributes, so their order in the graph is readable
    for name in netlist.inputs:
        graph.add_node(f"input:{name}", kind="input")
    graph.add_node("fpga", kind="fpga")
    buses = profile.buses_per_half
    for k in cores:
        graph.add_node(f"core{k}.xbar", kind="crossbar", core=k)
        for h in range(hpc):
            graph.add_node(_neuron_node(profile, k * hpc + h), kind="neurons", core=k, half=h)
            if buses > 1:
                for b in range(buses):
                    graph.add_node(_bus_node(profile, k * hpc + h, b), kind="bus", core=k, half=h, bus=b)
            graph.add_node(_drivers_node(profile, k * hpc + h), kind="drivers", core=k, half=h)

    for name in netlist.inputs:
        add_link(f"input:{name}", "fpga", math.inf, 0)  # the host side never congests
    for k in cores:
        add_link("fpga", f"core{k}.xbar", profile.input_links * profile.input_link_capacity,
                 profile.latency_input_cycles)
    for k in cores:
        for h in range(hpc):
            add_link(_neuron_node(profile, k * hpc + h), f"core{k}.xbar", profile.neuron_output_capacity,
                     profile.latency_neuron_out_cycles)
    for k in cores:
        for h in range(hpc):
            half = k * hpc + h
            if buses == 1:  # one pooled path into the half's drivers
                add_link(f"core{k}.xbar", _drivers_node(profile, half), profile.bus_capacity,
                         profile.latency_crossbar_cycles)
                continue
            # the crossbar switches an event onto a bus (no queue of its own); the bus is the FIFO
            for b in range(buses):
                add_link(f"core{k}.xbar", _bus_node(profile, half, b), math.inf, 0)
            for b in range(buses):
                add_link(_bus_node(profile, half, b), _drivers_node(profile, half), profile.bus_capacity,
                         profile.latency_crossbar_cycles)
    if len(cores) > 1:
        for k in cores:
            for m in cores:
                if k != m:
                    add_link(f"core{k}.xbar", f"core{m}.xbar", profile.core_link_capacity,
                             profile.latency_core_link_cycles)
    return graph, links


def _projection_pairs(pre_group: np.ndarray, post_half: np.ndarray) -> set[tuple[int, int]]:
    """Every (source group, target half) pair of a projection, connected or not.

    The emulator and host look a route up for each presynaptic group and each half the
    postsynaptic population occupies, so a pair without any connection still gets its route
    (it costs one path lookup, and events only travel where synapses are).
    """
    halves = np.unique(post_half).tolist()
    return {(g, h) for g in np.unique(pre_group).tolist() for h in halves}


def _routes(profile: ChipProfile, graph: Network, source_groups: list[str],
            group_buses: list[int | dict[int, int]], pairs: list[tuple[int, int]]) -> dict[tuple[int, int], Route]:
    """Lowest-latency path per (group, half) through the group's bus of that half; ties go to
    fewer hops (ideal latencies are all 0)."""
    hop_scale = graph.number_of_edges() + 1  # latency dominates, hop count breaks ties

    def weight(u, v, data):
        return data["latency_cycles"] * hop_scale + 1

    paths_from: dict[str, dict[str, list[str]]] = {}
    routes: dict[tuple[int, int], Route] = {}
    found: dict[tuple[str, int, int], Route] = {}
    for group, half in pairs:
        source = _group_node(profile, source_groups[group])
        if source not in paths_from:
            paths_from[source] = graph.dijkstra_paths(source, weight)
        bus = group_buses[group]
        bus = bus if isinstance(bus, int) else bus[half]
        key = (source, half, bus)  # groups leaving through one node share their paths
        if key not in found:
            if profile.buses_per_half == 1:
                path = paths_from[source][_drivers_node(profile, half)]
            else:  # a bus node is entered from its core's crossbar only and leads to the drivers only
                path = paths_from[source][_bus_node(profile, half, bus)] + [_drivers_node(profile, half)]
            edges = [graph.succ[u][v] for u, v in zip(path[:-1], path[1:])]
            found[key] = Route(links=tuple(e["index"] for e in edges),
                               latency_cycles=sum(e["latency_cycles"] for e in edges), bus=bus)
        routes[(group, half)] = found[key]
    return routes
