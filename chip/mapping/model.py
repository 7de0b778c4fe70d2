"""The mapping's result types (placed populations and projections, links, routes, the mapped chip)
and the names of the chip's places (halves, neuron outputs, synapse drivers).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import MappingError
from ..netlist import Netlist
from ..netlist.validation import FieldReader
from ..profiles import ChipProfile


@dataclass(frozen=True, eq=False)
class PlacedPopulation:
    """A neuron population on circuits ``offset .. offset + size - 1`` (contiguous).

    ``neurons_per_half`` is the profile's, kept here so ``halves()`` needs no profile.
    """

    name: str
    offset: int
    size: int
    neurons_per_half: int = 256

    def circuits(self) -> np.ndarray:
        """Global circuit index of each neuron, int64 (size,)."""
        return np.arange(self.offset, self.offset + self.size, dtype=np.int64)

    def halves(self) -> np.ndarray:
        """Global half index (core * halves_per_core + half) of each neuron, int64 (size,)."""
        return self.circuits() // self.neurons_per_half


@dataclass(frozen=True, eq=False)
class PlacedProjection:
    """A projection with its realized mask, initial weights and synapse ids.

    Per-connection arrays are vectors over the connections, in the row-major order of ``mask``
    (``pre_index, post_index = np.nonzero(mask)``; ``dense[mask] = vector`` scatters one back).
    ``shape`` is (n_pre, n_post); the boolean ``mask`` of that shape is made on request from
    ``pre_index`` and ``post_index`` (it is not kept: memory grows with the connections present).
    ``post_index`` is int32 (int64 only for populations of 2^31 neurons or more); as the
    connections are in row-major order, the presynaptic indices are kept as row pointers
    (``pre_ptr``, n_pre + 1: row i's connections are ``pre_ptr[i]:pre_ptr[i + 1]``) and
    ``pre_index`` (same dtype as ``post_index``) is made on request; ``initial_weights`` of a constant initializer is a read-only broadcast of the value.
    The vectors: ``initial_weights`` (signed model units), ``exc_synapse`` / ``inh_synapse`` the global synapse
    id carrying each connection on an excitatory / inhibitory row, -1 where there is none (a signed
    projection has both). ``pre_group`` indexes ``MappedChip.source_groups``; ``post_half`` is the
    global half of each postsynaptic neuron. ``delay_us`` is the projection's own delay; route
    latency comes on top of it.
    """

    name: str
    pre: str
    post: str
    sign: str
    pre_is_input: bool
    shape: tuple[int, int]
    pre_ptr: np.ndarray
    post_index: np.ndarray
    initial_weights: np.ndarray
    exc_synapse: np.ndarray
    inh_synapse: np.ndarray
    delay_us: float
    pre_group: np.ndarray
    post_half: np.ndarray

    @property
    def n_synapses(self) -> int:
        return int(self.post_index.size)

    @property
    def pre_index(self) -> np.ndarray:
        """A new vector of each connection's presynaptic index (from ``pre_ptr``)."""
        return np.repeat(np.arange(self.shape[0], dtype=self.post_index.dtype), np.diff(self.pre_ptr))

    def pre_of(self, start: int, stop: int) -> np.ndarray:
        """``pre_index[start:stop]`` without the whole vector."""
        ptr = self.pre_ptr
        first = int(np.searchsorted(ptr, start, side="right")) - 1
        last = int(np.searchsorted(ptr, stop, side="left"))
        counts = np.minimum(ptr[first + 1:last + 1], stop) - np.maximum(ptr[first:last], start)
        return np.repeat(np.arange(first, last, dtype=self.post_index.dtype), counts)

    @property
    def mask(self) -> np.ndarray:
        """A new boolean (n_pre, n_post) connection mask."""
        mask = np.zeros(self.shape, dtype=bool)
        mask[self.pre_index, self.post_index] = True
        return mask

    def __repr__(self) -> str:  # the arrays would drown the interesting part
        return (f"PlacedProjection({self.name!r}: {self.pre} -> {self.post}, {self.sign}, "
                f"{self.n_synapses} of {self.shape[0] * self.shape[1]} pairs connected, delay {self.delay_us:g} us)")


@dataclass(frozen=True, eq=False)
class Link:
    """One directed event link of the routing graph (an edge)."""

    index: int
    name: str
    source: str
    target: str
    capacity_per_cycle: float  # events per clock cycle; math.inf never congests
    latency_cycles: int
    queue_depth: int


@dataclass(frozen=True, eq=False)
class Route:
    """Links (indices, in order) from a source group's node to a target half's synapse drivers,
    entering them through ``bus`` of that half."""

    links: tuple[int, ...]
    latency_cycles: int
    bus: int = 0


@dataclass(frozen=True, eq=False)
class MappedChip:
    """A netlist placed and routed on one chip profile.

    ``source_groups``: the sources whose events share one route to every target half. First the
    inputs, per input one group for each combination of buses its neurons were given on its target
    halves: "input:<name>@bus<b>" (bus b on every target half), "input:<name>@half<g>.bus<b>+..."
    (buses that differ between halves) or "input:<name>" (an input that feeds nothing); then
    "<population>@half<g>.out<o>" per (population, global half, event output o of that half) it
    occupies, whose route to any half enters bus ``o % buses_per_half``. ``routes[(group, half)]``:
    for every presynaptic group and every half its projections' postsynaptic populations occupy
    (connected or not). ``graph`` edges carry ``index`` (into ``links``), ``name``,
    ``capacity_per_cycle``, ``latency_cycles``, ``queue_depth``.

    Rows are numbered per half bus by bus: bus b owns rows ``b * rows_per_bus`` ..
    ``(b + 1) * rows_per_bus - 1``; ``bus_rows[half][b]`` = (excitatory, inhibitory) rows used on
    bus b, its excitatory rows first (``b * rows_per_bus`` .. ``+ e - 1``), its inhibitory rows
    after them (.. ``+ e + i - 1``). ``rows_used[half]`` = (excitatory, inhibitory) rows summed over
    the half's buses, on each half that holds neurons. With one bus per half (``ideal``) that is the
    plain layout: excitatory rows 0 .. e-1, inhibitory rows e .. e+i-1.
    """

    profile: ChipProfile
    netlist: Netlist
    populations: dict[str, PlacedPopulation]
    projections: dict[str, PlacedProjection]
    source_groups: list[str]
    links: list[Link]
    routes: dict[tuple[int, int], Route]
    network: "Network"
    rows_used: dict[int, tuple[int, int]]
    bus_rows: dict[int, tuple[tuple[int, int], ...]]
    n_circuits: int

    def __repr__(self) -> str:  # the default would print the netlist, every array and the graph
        return (f"MappedChip(profile={self.profile.name!r}, netlist={self.netlist.name!r}, "
                f"circuits={self.n_circuits}/{self.profile.total_neurons}, populations={len(self.populations)}, "
                f"projections={len(self.projections)}, links={len(self.links)}, routes={len(self.routes)})")

    @functools.cached_property
    def graph(self) -> "networkx.DiGraph":  # noqa: F821
        """The routing graph as a ``networkx.DiGraph`` (made on first use; a run never needs it)."""
        return self.network.to_networkx()

    def half_name(self, half: int) -> str:
        """'core{k}.half{h}' of a global half index."""
        return _half_name(self.profile, half)

    def group_node(self, group: int) -> str:
        """Graph node a source group's events start from ('input:<name>' or 'neurons:core{k}.half{h}')."""
        return _group_node(self.profile, self.source_groups[group])

    def decode_synapses(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global half, row, column) of global synapse ids."""
        ids = np.asarray(ids, dtype=np.int64)
        nph, rows = self.profile.neurons_per_half, self.profile.rows_per_half
        column = ids % nph
        half_row = ids // nph
        return half_row // rows, half_row % rows, column

    def row_bus(self, rows) -> np.ndarray:
        """Bus (of its half) of each synapse row, as ``decode_synapses`` numbers rows."""
        return np.asarray(rows, dtype=np.int64) // self.profile.rows_per_bus


# --------------------------------------------------------------------------------------------
# Naming helpers
# --------------------------------------------------------------------------------------------

def _half_name(profile: ChipProfile, half: int) -> str:
    core, h = divmod(int(half), profile.halves_per_core)
    return f"core{core}.half{h}"


def _neuron_node(profile: ChipProfile, half: int) -> str:
    return "neurons:" + _half_name(profile, half)


def _group_node(profile: ChipProfile, group_name: str) -> str:
    # "input:<name>[@...]" starts at the input's node; "<pop>@half<g>.out<o>" leaves through its
    # half's shared output link (names have no "@", so the first one ends the source's name)
    name, _, where = group_name.partition("@")
    if name.startswith("input:"):
        return name
    return _neuron_node(profile, int(where.split(".")[0][len("half"):]))


def _drivers_node(profile: ChipProfile, half: int) -> str:
    return _half_name(profile, half) + ".drivers"


def _bus_node(profile: ChipProfile, half: int, bus: int) -> str:
    return f"{_half_name(profile, half)}.bus{int(bus)}"


def _event_output(profile: ChipProfile, circuits) -> np.ndarray:
    """Event output (of its half) each neuron circuit's spikes leave through: its column block."""
    return (np.asarray(circuits, dtype=np.int64) % profile.neurons_per_half) // profile.neurons_per_event_output


def _neuron_bus(profile: ChipProfile, circuits) -> np.ndarray:
    """The bus, on every half, that each neuron circuit's events reach: its event output's."""
    return _event_output(profile, circuits) % profile.buses_per_half


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _error(netlist: Netlist, field: str, message: str) -> MappingError:
    """The mapper's error for a field of the netlist, located like every netlist error."""
    return FieldReader.for_netlist(netlist, error=MappingError).error(field, message)
