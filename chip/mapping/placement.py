"""Placement: populations onto contiguous circuits, source groups, and the checks of references and
membrane records against the chip's ADCs.
"""

from __future__ import annotations

import math

import numpy as np

from ..netlist import Netlist
from ..netlist.model import SIGNS
from .model import PlacedPopulation, _error, _event_output, _plural


def _check_references(netlist: Netlist) -> None:
    """The loader validates names; this only keeps a hand-built netlist from crashing later."""
    for name, proj in netlist.projections.items():
        field = f"projections.{name}"
        if proj.pre not in netlist.populations and proj.pre not in netlist.inputs:
            raise _error(netlist, field + ".pre", f"unknown presynaptic population or input {proj.pre!r}")
        if proj.post not in netlist.populations:
            raise _error(netlist, field + ".post", f"postsynaptic side {proj.post!r} is not a neuron population")
        if proj.sign not in SIGNS:
            raise _error(netlist, field + ".sign", f"unknown sign {proj.sign!r}; use one of {', '.join(SIGNS)}")
        if not (math.isfinite(proj.delay_us) and proj.delay_us >= 0):
            raise _error(netlist, field + ".delay", f"delay must be finite and >= 0 us, got {proj.delay_us!r}")


def _place_populations(netlist: Netlist) -> dict[str, PlacedPopulation]:
    """Populations in netlist order, contiguously from circuit 0: simple and deterministic."""
    profile = netlist.chip
    needed = sum(p.size for p in netlist.populations.values())
    available = profile.total_neurons
    if needed > available:
        raise _error(
            netlist, "populations",
            f"needs {needed} neuron circuits, the chip has {available} "
            f"({_plural(profile.cores, 'core')} × {profile.neurons_per_core}); {needed - available} too many")
    placed, offset = {}, 0
    for name, pop in netlist.populations.items():
        placed[name] = PlacedPopulation(name=name, offset=offset, size=pop.size,
                                        neurons_per_half=profile.neurons_per_half)
        offset += pop.size
    return placed


def check_records(netlist: Netlist, populations: dict[str, PlacedPopulation]) -> None:
    """Membrane records: neurons exist, the period is within the ADC, MADC channels suffice.

    MADC channels are a per-core resource shared by all MADC records, so neurons are counted
    across records (a neuron listed twice uses one channel); the record that overflows is blamed.
    """
    profile = netlist.chip
    madc_circuits: dict[int, set[int]] = {}
    for i, rec in enumerate(netlist.record.membrane):
        field = f"record.membrane.{i}"
        if rec.population not in populations:
            raise _error(netlist, field, f"unknown population {rec.population!r}")
        placed = populations[rec.population]
        neurons = np.asarray(rec.neurons, dtype=np.int64).ravel()
        if neurons.size and (neurons.min() < 0 or neurons.max() >= placed.size):
            raise _error(netlist, field, f"neuron indices must be in 0..{placed.size - 1} for {rec.population!r}")
        if rec.adc == "cadc":
            minimum, adc = profile.cadc_min_period_us, "CADC"
        elif rec.adc == "madc":
            minimum, adc = profile.madc_min_period_us, "MADC"
        else:
            raise _error(netlist, field, f"unknown ADC {rec.adc!r}; use cadc or madc")
        period = float(rec.period_us)
        if not (math.isfinite(period) and period > 0):
            raise _error(netlist, field, f"record period must be positive, got {rec.period_us!r} us")
        # tolerate float noise from unit conversion ("1.7 us" vs 1.7000000000000002)
        if period < minimum * (1 - 1e-9):
            raise _error(netlist, field,
                         f"period {period:g} us is below the {adc}'s minimum sample period {minimum:g} us")
        if rec.adc == "madc":
            circuits = placed.offset + neurons
            for core in np.unique(circuits // profile.neurons_per_core):
                used = madc_circuits.setdefault(int(core), set())
                used.update(int(c) for c in circuits[circuits // profile.neurons_per_core == core])
                if len(used) > profile.madc_channels_per_core:
                    raise _error(
                        netlist, field,
                        f"MADC records need {len(used)} channels on core {int(core)}, the core has "
                        f"{profile.madc_channels_per_core}; {len(used) - profile.madc_channels_per_core} too many "
                        "(record fewer neurons per core through the MADC, or use the CADC)")


def _source_groups(netlist: Netlist, populations: dict[str, PlacedPopulation],
                   input_buses: dict[str, dict[int, np.ndarray]]
                   ) -> tuple[list[str], dict[str, np.ndarray], list[int | dict[int, int]]]:
    """Source groups, per presynaptic name the group index of each of its neurons, and per group
    the bus its events enter on a target half (one for every half, or per half).

    A group is a set of sources whose events take the same links to every half they reach. A
    neuron population has one group per (half, event output) it occupies: a half's spikes leave
    through that half's output link, and an event output reaches one bus of every half. An input
    has one group per combination of buses its neurons were given on its target halves
    (``input_buses[name][half]``, one bus per neuron, from the row assignment).
    """
    profile = netlist.chip
    groups: list[str] = []
    buses_of: list[int | dict[int, int]] = []
    per_name: dict[str, np.ndarray] = {}
    for name, inp in netlist.inputs.items():
        buses = input_buses.get(name, {})
        halves = sorted(buses)
        if not halves:
            per_name[name] = np.full(inp.size, len(groups), dtype=np.int64)
            groups.append(f"input:{name}")
            buses_of.append(0)
            continue
        table = np.stack([buses[h] for h in halves], axis=1)  # (size, target halves)
        combos, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        # groups in order of the first neuron that uses them
        rank = np.empty(len(combos), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(combos))
        per_name[name] = len(groups) + rank[np.asarray(inverse).ravel()]
        for c in np.argsort(first, kind="stable"):
            combo = combos[c]
            if np.all(combo == combo[0]):
                groups.append(f"input:{name}@bus{int(combo[0])}")
                buses_of.append(int(combo[0]))
            else:
                groups.append(f"input:{name}@" + "+".join(f"half{h}.bus{int(b)}" for h, b in zip(halves, combo)))
                buses_of.append({h: int(b) for h, b in zip(halves, combo)})
    for name, placed in populations.items():
        circuits = placed.circuits()
        halves = placed.halves()
        outputs = _event_output(profile, circuits)
        index = np.empty(placed.size, dtype=np.int64)
        # circuits are contiguous, so (half, output) runs are contiguous and in order
        keys = halves * (profile.neurons_per_half + 1) + outputs
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], placed.size]):
            index[a:b] = len(groups)
            groups.append(f"{name}@half{int(halves[a])}.out{int(outputs[a])}")
            buses_of.append(int(outputs[a]) % profile.buses_per_half)
        per_name[name] = index
    return groups, per_name, buses_of
