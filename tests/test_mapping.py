"""Tests of chip.netlist.connectivity and chip.mapping (placement, synapse rows, routes, errors, reports).

Netlists are built directly as chip.netlist objects (no YAML): see ``make_netlist``.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict

import networkx as nx
import numpy as np
import pytest

from chip.netlist.connectivity import realize_connectivity, realize_pairs, realize_weights, realize_weights_at
from chip.errors import MappingError
from chip.events import SpikeEvents
from chip.host import HostInterface
from chip.mapping import MappedChip, graph_summary, map_netlist, write_graphml
from chip.netlist import (
    AllToAll,
    ArrayWeights,
    ConstantWeights,
    ExplicitPairs,
    MembraneRecord,
    Netlist,
    NormalWeights,
    OneToOne,
    Population,
    Projection,
    RandomConnectivity,
    Record,
    SpikeInput,
    UniformWeights,
)
from chip.profiles import get_profile

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

_DEFAULT_WEIGHT = {"excitatory": 0.5, "inhibitory": -0.5, "signed": 0.25}


def proj(name, pre, post, *, sign="excitatory", kind="all_to_all", p=1.0, seed=0, pairs=None,
         allow_self=True, weights=None, delay_us=0.0) -> Projection:
    conn = {"all_to_all": lambda: AllToAll(allow_self=allow_self),
            "one_to_one": OneToOne,
            "probability": lambda: RandomConnectivity(probability=p, seed=seed, allow_self=allow_self),
            "explicit": lambda: ExplicitPairs(pairs)}[kind]()
    if weights is None:
        weights = ConstantWeights(_DEFAULT_WEIGHT[sign])
    return Projection(name=name, pre=pre, post=post, connectivity=conn, weights=weights, sign=sign,
                      delay_us=delay_us)


def make_netlist(profile="bss2", *, populations: dict[str, int], inputs: dict[str, int] | None = None,
                 projections=(), membrane=(), source_path=None, lines=None, **overrides) -> Netlist:
    """A Netlist from plain sizes: populations/inputs map names to sizes, projections are Projection objects."""
    chip = get_profile(profile) if isinstance(profile, str) else profile
    if overrides:
        chip = chip.replace(**overrides)
    return Netlist(
        chip=chip,
        duration_us=100.0,
        populations={n: Population(name=n, size=s) for n, s in populations.items()},
        inputs={n: SpikeInput(name=n, size=s) for n, s in (inputs or {}).items()},
        projections={p.name: p for p in projections},
        record=Record(membrane=tuple(membrane)),
        source_path=source_path,
        lines=dict(lines or {}),
    )


def cuba_netlist(profile, n_exc=3200, n_inh=800, p=0.02) -> Netlist:
    """The 4000-neuron CUBA benchmark shape: 80/20 exc/inh, random connectivity p."""
    return make_netlist(
        profile,
        populations={"exc": n_exc, "inh": n_inh},
        projections=[
            proj("ee", "exc", "exc", kind="probability", p=p, seed=1, allow_self=False),
            proj("ei", "exc", "inh", kind="probability", p=p, seed=2),
            proj("ie", "inh", "exc", sign="inhibitory", kind="probability", p=p, seed=3),
            proj("ii", "inh", "inh", sign="inhibitory", kind="probability", p=p, seed=4, allow_self=False),
        ],
    )


def check_row_invariants(m: MappedChip) -> None:
    """Everything a valid synapse-row assignment must satisfy."""
    prof = m.profile
    nph = prof.neurons_per_half
    taken: dict[tuple[int, int, int], tuple] = {}        # (half, row, column) -> (projection, pre, i, post j)
    row_sources: dict[tuple[int, int], set] = defaultdict(set)
    assert set(m.bus_rows) == set(m.rows_used)
    for half, (n_exc, n_inh) in m.rows_used.items():
        assert n_exc + n_inh <= prof.rows_per_half
        assert len(m.bus_rows[half]) == prof.buses_per_half
        assert all(e + i <= prof.rows_per_bus for e, i in m.bus_rows[half])
        assert (sum(e for e, _ in m.bus_rows[half]), sum(i for _, i in m.bus_rows[half])) == (n_exc, n_inh)
    for p in m.projections.values():
        post = m.populations[p.post]
        # ids at the width the chip's id space needs (int32 below 2^31 synapses)
        total = prof.cores * prof.halves_per_core * prof.rows_per_half * prof.neurons_per_half
        id_type = np.int32 if total <= 1 << 31 else np.int64
        assert p.exc_synapse.dtype == id_type and p.inh_synapse.dtype == id_type
        # per-connection vectors in the row-major order of the mask
        assert p.exc_synapse.shape == p.inh_synapse.shape == (int(p.mask.sum()),) == (p.n_synapses,)
        ii, jj = np.nonzero(p.mask)
        assert np.array_equal(p.pre_index, ii) and np.array_equal(p.post_index, jj)
        # the presynaptic indices are kept as row pointers: the realized pairs, whole or in slices
        spec = m.netlist.projections[p.name]
        ri, rj = realize_pairs(spec.connectivity, *p.shape, same_population=spec.pre == spec.post)
        assert np.array_equal(p.pre_index, ri) and np.array_equal(p.post_index, rj)
        assert p.pre_index.dtype == p.post_index.dtype
        k = len(ri)
        for a, b in ((0, k), (k // 3, min(2 * k // 3 + 1, k)), (k // 2, k // 2), (max(k - 5, 0), k)):
            assert np.array_equal(p.pre_of(a, b), ri[a:b])
        for sign, ids in (("excitatory", p.exc_synapse), ("inhibitory", p.inh_synapse)):
            if p.sign not in (sign, "signed"):
                assert np.all(ids == -1), (p.name, sign)
                continue
            # signed projections get a synapse of each sign on every connection
            assert np.all(ids >= 0), (p.name, sign)
            half, row, col = m.decode_synapses(ids)
            circuits = post.offset + jj
            assert np.array_equal(half, circuits // nph)
            assert np.array_equal(col, circuits % nph)
            # rows bus by bus; on a bus its excitatory rows first, then its inhibitory rows
            bus, local = m.row_bus(row), row % prof.rows_per_bus
            n_exc = np.array([m.bus_rows[int(h)][b][0] for h, b in zip(half, bus)], dtype=np.int64)
            n_inh = np.array([m.bus_rows[int(h)][b][1] for h, b in zip(half, bus)], dtype=np.int64)
            if sign == "excitatory":
                assert np.all(local < n_exc)
            else:
                assert np.all((local >= n_exc) & (local < n_exc + n_inh))
            # a connection sits on a row of the bus its source's route enters that half on
            route_bus = [m.routes[(int(g), int(h))].bus for g, h in zip(p.pre_group[ii], half)]
            assert np.array_equal(bus, route_bus), (p.name, sign)
            if not p.pre_is_input:
                pre = m.populations[p.pre]
                assert np.array_equal(bus, (pre.offset + ii) % nph // prof.neurons_per_event_output
                                      % prof.buses_per_half)
            for h, r, c, i, j in zip(half.tolist(), row.tolist(), col.tolist(), ii.tolist(), jj.tolist()):
                key = (h, r, c)
                # one synapse per (row, column): no column hears two sources (or one source twice) on a row
                assert key not in taken, f"synapse {key} used by {taken[key]} and {(p.name, p.pre, i, j)}"
                taken[key] = (p.name, p.pre, i, j)
                row_sources[(h, r)].add((p.pre, i))
    for (h, r), sources in row_sources.items():
        assert len(sources) <= prof.labels_per_row, f"half {h} row {r} carries {len(sources)} labels"


# --------------------------------------------------------------------------------------------
# connectivity
# --------------------------------------------------------------------------------------------

def test_all_to_all_and_one_to_one():
    assert realize_connectivity(AllToAll(), 3, 4, same_population=False).all()
    m = realize_connectivity(AllToAll(allow_self=False), 4, 4, same_population=True)
    assert not m.diagonal().any() and m.sum() == 12
    # allow_self only matters within one population
    assert realize_connectivity(AllToAll(allow_self=False), 4, 4, same_population=False).all()
    assert np.array_equal(realize_connectivity(OneToOne(), 5, 5, same_population=False), np.eye(5))
    with pytest.raises(ValueError, match="equal sizes"):
        realize_connectivity(OneToOne(), 5, 6, same_population=False)


def test_probability_is_the_single_draw_and_deterministic():
    conn = RandomConnectivity(probability=0.3, seed=7)
    m = realize_connectivity(conn, 700, 1500, same_population=False)  # several draw blocks
    expected = np.random.default_rng(7).random((700, 1500)) < 0.3
    assert np.array_equal(m, expected)
    assert np.array_equal(m, realize_connectivity(conn, 700, 1500, same_population=False))
    no_self = realize_connectivity(RandomConnectivity(probability=0.9, seed=7, allow_self=False),
                                   50, 50, same_population=True)
    assert not no_self.diagonal().any()
    with pytest.raises(ValueError, match="probability"):
        RandomConnectivity(probability=1.5)


def test_explicit_pairs():
    pairs = np.array([[0, 1], [2, 0], [2, 0]])
    m = realize_connectivity(ExplicitPairs(pairs), 3, 2, same_population=False)
    assert m.sum() == 2 and m[0, 1] and m[2, 0]
    with pytest.raises(ValueError, match="out of range"):
        realize_connectivity(ExplicitPairs(np.array([[3, 0]])), 3, 2, same_population=False)
    with pytest.raises(ValueError, match="shape"):
        ExplicitPairs(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="unknown connectivity"):
        realize_connectivity("gaussian", 3, 2, same_population=False)


def test_weights_kinds_signs_and_mask():
    mask = np.random.default_rng(0).random((20, 30)) < 0.5
    w = realize_weights(ConstantWeights(0.3), mask, "excitatory")
    assert w.dtype == np.float64 and np.all(w[mask] == 0.3) and np.all(w[~mask] == 0)

    normal = NormalWeights(mean=0.1, std=0.5, seed=3)
    drawn = np.random.default_rng(3).normal(0.1, 0.5, size=mask.shape)
    w = realize_weights(normal, mask, "signed")
    assert np.array_equal(w[mask], drawn[mask]) and np.all(w[~mask] == 0)
    assert np.array_equal(w, realize_weights(normal, mask, "signed"))  # deterministic
    # a distribution crossing zero is clipped to the projection's sign
    w_exc = realize_weights(normal, mask, "excitatory")
    assert np.all(w_exc >= 0) and np.array_equal(w_exc[mask], np.maximum(drawn[mask], 0))
    w_inh = realize_weights(normal, mask, "inhibitory")
    assert np.all(w_inh <= 0) and np.array_equal(w_inh[mask], np.minimum(drawn[mask], 0))

    w = realize_weights(UniformWeights(low=-0.4, high=-0.1, seed=1), mask, "inhibitory")
    assert np.all(w[mask] <= -0.1) and np.all(w[mask] >= -0.4) and np.all(w[~mask] == 0)

    arr = np.arange(600, dtype=float).reshape(20, 30)
    w = realize_weights(ArrayWeights(arr), mask, "excitatory")
    assert np.array_equal(w[mask], arr[mask]) and np.all(w[~mask] == 0)
    with pytest.raises(ValueError, match="shape"):
        realize_weights(ArrayWeights(arr.T), mask, "excitatory")
    with pytest.raises(ValueError, match="inhibitory"):
        realize_weights(ConstantWeights(0.3), mask, "inhibitory")
    with pytest.raises(ValueError, match="excitatory"):
        realize_weights(ArrayWeights(-arr), mask, "excitatory")


def test_random_connections_are_numpys_draw_on_raw_outputs_in_any_chunking(monkeypatch):
    """The compiled draw reads PCG64's raw outputs: it must find exactly the k with
    ``default_rng(seed).random(n)[k] < p`` however the stream is cut and on any number of threads,
    including the edges of p (no hit, every hit, a p that is not a multiple of 2**-53)."""
    import chip.netlist.bernoulli as bernoulli

    # random() is one raw output per double, (x >> 11) * 2**-53: the identity the threshold rests on
    raw = np.random.default_rng(9).bit_generator.random_raw(1000)
    assert np.array_equal(np.random.default_rng(9).random(1000), (raw >> np.uint64(11)) * 2.0 ** -53)
    # the threshold on raw outputs agrees with the double comparison at and around the boundary
    for p in (0.02, 0.5, 1 / 3, 2.0 ** -53, 3 * 2.0 ** -54, 1 - 2.0 ** -53):
        limit = bernoulli.threshold_of(p)
        t = limit >> 11
        for k in (t - 1, t, t + 1):
            if 0 <= k < 2 ** 53:
                x = np.uint64(k << 11) | np.uint64(2047)
                assert ((k * 2.0 ** -53) < p) == (x < np.uint64(limit)), (p, k)
    assert bernoulli.threshold_of(1.0) is None and bernoulli.threshold_of(0.0) == 0
    monkeypatch.setattr(bernoulli, "_CHUNK", 997)  # many chunks, odd lengths, a short last one
    for seed, p, n in [(11, 0.02, 20_001), (3, 0.5, 5_000), (4, 0.5, 1), (5, 1e-9, 3_000), (6, 1.0, 2_000),
                       (7, 0.0, 2_000), ((1, 2), 1 / 3, 9_999)]:
        expected = np.flatnonzero(np.random.default_rng(seed).random(n) < p)
        for threads in (1, 3):
            got = bernoulli.bernoulli_flat(seed, p, n, threads=threads)
            assert got.dtype == np.int64 and np.array_equal(got, expected), (seed, p, n, threads)
    # numpy's draw in row blocks (used by commands that map without loading numba) agrees
    from chip.netlist.connectivity import _bernoulli_flat_numpy

    monkeypatch.setattr("chip.netlist.connectivity._DRAW_BLOCK_ELEMENTS", 1000)
    for seed, p, (n_pre, n_post) in [(11, 0.02, (301, 97)), (3, 0.5, (7, 5)), ((1, 2), 1 / 3, (40, 1001))]:
        expected = np.flatnonzero(np.random.default_rng(seed).random((n_pre, n_post)) < p)
        assert np.array_equal(_bernoulli_flat_numpy(seed, p, n_pre, n_post), expected)
        assert np.array_equal(bernoulli.bernoulli_flat(seed, p, n_pre * n_post), expected)
        # split into rows and columns by each chunk as it is drawn (chunks cross rows)
        for threads, dtype in ((1, np.int32), (3, np.int32), (2, np.int64)):
            pre, post = bernoulli.bernoulli_pairs(seed, p, n_pre, n_post, threads=threads, dtype=dtype)
            assert pre.dtype == post.dtype == dtype
            assert np.array_equal(pre, expected // n_post) and np.array_equal(post, expected % n_post)
    # as many threads as a run uses: CHIPCTL_THREADS (a sweep worker's 1), else up to two
    monkeypatch.setenv("CHIPCTL_THREADS", "1")
    assert bernoulli.default_threads() == 1
    monkeypatch.setenv("CHIPCTL_THREADS", "x")
    assert bernoulli.default_threads() == min(2, os.cpu_count() or 1)
    monkeypatch.delenv("CHIPCTL_THREADS")
    # a chunk with more hits than its first buffer holds takes the second pass
    monkeypatch.setattr(bernoulli, "_capacity", lambda count, p: 1)
    expected = np.flatnonzero(np.random.default_rng(8).random(3_000) < 0.3)
    assert np.array_equal(bernoulli.bernoulli_flat(8, 0.3, 3_000, threads=2), expected)
    pre, post = bernoulli.bernoulli_pairs(8, 0.3, 60, 50, threads=2)
    assert np.array_equal(pre, expected // 50) and np.array_equal(post, expected % 50)


def test_pairs_and_weights_at_are_the_dense_forms_without_the_matrix():
    """The mapper's sparse path (index pairs, weights per connection) gives exactly what the dense
    single draws give, over several draw blocks, for every kind."""
    n_pre, n_post = 700, 1500  # several draw blocks
    conn = RandomConnectivity(probability=0.05, seed=11)
    dense = np.random.default_rng(11).random((n_pre, n_post)) < 0.05
    pre, post = realize_pairs(conn, n_pre, n_post, same_population=False)
    assert pre.dtype == post.dtype == np.int32
    expected = np.nonzero(dense)
    assert np.array_equal(pre, expected[0]) and np.array_equal(post, expected[1])
    drawn = np.random.default_rng(5).normal(0.2, 0.3, size=(n_pre, n_post))
    w = realize_weights_at(NormalWeights(mean=0.2, std=0.3, seed=5), pre, post, (n_pre, n_post), "excitatory")
    assert np.array_equal(w, np.maximum(drawn[dense], 0))
    drawn = np.random.default_rng(6).uniform(-1, 1, size=(n_pre, n_post))
    w = realize_weights_at(UniformWeights(low=-1, high=1, seed=6), pre, post, (n_pre, n_post), "signed")
    assert np.array_equal(w, drawn[dense])
    for kind in (AllToAll(allow_self=False), OneToOne(), RandomConnectivity(probability=0.5, seed=2, allow_self=False),
                 ExplicitPairs(np.array([[4, 1], [0, 3], [4, 1], [2, 2]]))):
        mask = realize_connectivity(kind, 6, 6, same_population=True)
        pairs = realize_pairs(kind, 6, 6, same_population=True)
        assert np.array_equal(np.stack(pairs), np.stack(np.nonzero(mask)))


# --------------------------------------------------------------------------------------------
# placement
# --------------------------------------------------------------------------------------------

def test_placement_offsets_halves_and_groups():
    net = make_netlist(populations={"a": 300, "b": 300, "c": 10}, inputs={"in": 4}, cores=2,
                       projections=[proj("in_b", "in", "b"), proj("b_c", "b", "c", kind="probability", p=0.05)])
    m = map_netlist(net)
    a, b, c = (m.populations[n] for n in "abc")
    assert (a.offset, b.offset, c.offset) == (0, 300, 600)
    assert m.n_circuits == 610
    assert np.array_equal(b.circuits(), np.arange(300, 600))
    # 256 columns per half: circuits 300..511 on global half 1, 512..599 on half 2 (core 1, half 0)
    assert np.array_equal(b.halves(), np.r_[np.full(212, 1), np.full(88, 2)])
    assert np.all(a.halves()[:256] == 0) and np.all(a.halves()[256:] == 1)
    # a population has one group per (half, 32-column event output block) it occupies
    neuron_groups = [g for g in m.source_groups if not g.startswith("input:")]
    assert neuron_groups == ([f"a@half0.out{o}" for o in range(8)] + ["a@half1.out0", "a@half1.out1"]
                             + [f"b@half1.out{o}" for o in range(1, 8)] + [f"b@half2.out{o}" for o in range(3)]
                             + ["c@half2.out2", "c@half2.out3"])
    groups = {name: i for i, name in enumerate(m.source_groups)}
    pb = m.projections["b_c"]
    assert not pb.pre_is_input and m.projections["in_b"].pre_is_input
    # b: circuits 300..511 are columns 44..255 of half 1 (blocks 1..7), 512..599 columns 0..87 of half 2
    expected = [groups[f"b@half{(300 + j) // 256}.out{(300 + j) % 256 // 32}"] for j in range(300)]
    assert np.array_equal(pb.pre_group, expected)
    assert np.array_equal(pb.post_half, np.full(10, 2))
    # inputs come first, one group per combination of buses its neurons use on its target halves
    in_groups = m.projections["in_b"].pre_group
    assert all(m.source_groups[g].startswith("input:in@") for g in in_groups) and min(groups.values()) == 0
    assert m.group_node(int(in_groups[0])) == "input:in"
    assert m.group_node(groups["b@half1.out3"]) == "neurons:core0.half1"
    assert m.group_node(groups["b@half2.out0"]) == "neurons:core1.half0"
    assert m.half_name(3) == "core1.half1"
    check_row_invariants(m)


# --------------------------------------------------------------------------------------------
# synapse rows
# --------------------------------------------------------------------------------------------

def _random_netlist(rng: np.random.Generator) -> Netlist:
    """Small random nets on a tiny chip (8 columns per half in 4 event-output blocks of 2, so each
    block sends on its own bus; 3 labels per row)."""
    n_pops = int(rng.integers(1, 4))
    sizes = rng.integers(1, 12, size=n_pops)
    while sizes.sum() > 32:
        sizes = np.maximum(1, sizes // 2)
    populations = {f"p{k}": int(s) for k, s in enumerate(sizes)}
    inputs = {f"in{k}": int(rng.integers(1, 12)) for k in range(int(rng.integers(1, 3)))}
    sizes_of = {**populations, **inputs}
    projections = []
    for k in range(int(rng.integers(1, 8))):
        pre = str(rng.choice(list(sizes_of)))
        post = str(rng.choice(list(populations)))
        sign = str(rng.choice(["excitatory", "inhibitory", "signed"]))
        kind = str(rng.choice(["all_to_all", "probability", "one_to_one"]))
        if kind == "one_to_one" and sizes_of[pre] != sizes_of[post]:
            kind = "probability"
        projections.append(proj(f"x{k}", pre, post, sign=sign, kind=kind, p=float(rng.uniform(0.1, 0.9)),
                                seed=int(rng.integers(1 << 30)), allow_self=bool(rng.integers(2))))
    return make_netlist(populations=populations, inputs=inputs, projections=projections,
                        cores=2, neurons_per_core=16, neurons_per_event_output=2, labels_per_row=3)


@pytest.mark.parametrize("seed", range(40))
def test_row_assignment_invariants_random(seed):
    m = map_netlist(_random_netlist(np.random.default_rng(seed)))
    check_row_invariants(m)


def _placements(m: MappedChip):
    return (m.rows_used, m.bus_rows, {k: (r.links, r.latency_cycles, r.bus) for k, r in m.routes.items()},
            {name: (p.exc_synapse.tolist(), p.inh_synapse.tolist(), p.pre_group.tolist())
             for name, p in m.projections.items()})


def _mapped_with(packer, monkeypatch, net):
    from chip.mapping import rows

    with monkeypatch.context() as mp:
        mp.setattr(rows, "_pack_buses", packer)
        try:
            return _placements(map_netlist(net))
        except MappingError as exc:
            return str(exc)


def test_compiled_packing_places_as_the_python_packer(monkeypatch):
    """The compiled packer (chip.mapping.packing) gives the Python packer's rows, buses, ids and
    routes, and its errors, on random small nets, a recurrent bss2 net with inputs and duplicate
    projections, a nearly full bus and a bus that overflows past the compiled bitsets."""
    from chip.mapping import rows

    calls = {"compiled": 0, "fallback": 0}

    def compiled(profile, populations, exc, inh, inputs, half, input_buses):
        calls["compiled"] += 1
        if not rows._pack_buses_compiled(profile, populations, exc, inh, inputs, half, input_buses):
            calls["fallback"] += 1
            rows._pack_buses_python(profile, populations, exc, inh, inputs, half, input_buses)

    nets = [_random_netlist(np.random.default_rng(seed)) for seed in range(60)]
    nets.append(make_netlist(populations={"exc": 400, "inh": 100}, inputs={"in": 50, "in2": 7},
                             projections=[proj("in_exc", "in", "exc", sign="signed", kind="probability", p=0.1, seed=1),
                                          proj("in_exc2", "in", "exc", kind="probability", p=0.3, seed=9),
                                          proj("in2_inh", "in2", "inh", sign="inhibitory", kind="all_to_all"),
                                          proj("ee", "exc", "exc", kind="probability", p=0.02, seed=2),
                                          proj("ee2", "exc", "exc", kind="probability", p=0.02, seed=3),
                                          proj("ie", "inh", "exc", sign="inhibitory", kind="probability", p=0.05, seed=4),
                                          proj("ei", "exc", "inh", kind="probability", p=0.05, seed=5)]))
    # 60 inputs all-to-all onto 4 columns next to 60 rows of neurons on bus 0: the buses fill up
    nets.append(make_netlist(populations={"a": 60, "b": 4}, inputs={"in": 200},
                             projections=[proj("a_b", "a", "b"), proj("in_b", "in", "b", sign="signed")]))
    # 600 inputs onto 4 columns: 150 excitatory rows per bus, beyond the compiled bitsets (128)
    nets.append(make_netlist(populations={"a": 300, "b": 4}, inputs={"in": 600},
                             projections=[proj("in_b", "in", "b")]))
    for net in nets:
        assert _mapped_with(compiled, monkeypatch, net) == _mapped_with(rows._pack_buses_python, monkeypatch, net)
    assert calls["compiled"] > 60 and 1 <= calls["fallback"] < calls["compiled"]


def _random_ideal_netlist(rng: np.random.Generator) -> Netlist:
    """Small random nets on a small ideal chip (8 columns per half), some with few rows per half:
    populations share halves, sources reach a half through several projections of one sign, and
    some halves need more rows than they have."""
    sizes = rng.integers(1, 40, size=int(rng.integers(1, 4)))
    populations = {f"p{k}": int(s) for k, s in enumerate(sizes)}
    inputs = {f"in{k}": int(rng.integers(1, 30)) for k in range(int(rng.integers(0, 3)))}
    sizes_of = {**populations, **inputs}
    projections = []
    for k in range(int(rng.integers(1, 8))):
        pre, post = str(rng.choice(list(sizes_of))), str(rng.choice(list(populations)))
        kind = str(rng.choice(["all_to_all", "probability", "one_to_one", "probability"]))
        if kind == "one_to_one" and sizes_of[pre] != sizes_of[post]:
            kind = "probability"
        projections.append(proj(f"x{k}", pre, post, sign=str(rng.choice(["excitatory", "inhibitory", "signed"])),
                                kind=kind, p=float(rng.uniform(0.01, 0.9)), seed=int(rng.integers(1 << 30)),
                                allow_self=bool(rng.integers(2))))
    return make_netlist("ideal", populations=populations, inputs=inputs, projections=projections,
                        cores=int(rng.integers(7, 10)), neurons_per_core=16,
                        rows_per_half=int(rng.choice([8, 32, 128, 65536])))


def test_ideal_one_row_per_source_over_all_halves_places_as_the_packing_per_half(monkeypatch):
    """The ideal profile's array path (``rows._one_row_per_source``) gives the rows, ids and
    errors of packing each half on its own, on random nets (both paths and the halves it leaves
    to the packer exercised) and CUBA shapes whose populations share a half."""
    from chip.mapping import rows

    seen = {"fast": 0, "left": 0}
    real = rows._one_row_per_source

    def counted(netlist, populations, connections, occupied_halves, *rest):
        left = real(netlist, populations, connections, occupied_halves, *rest)
        seen["fast"] += len(occupied_halves) - len(left)
        seen["left"] += len(left)
        return left

    def per_half(netlist, populations, connections, occupied_halves, *rest):
        return list(occupied_halves)

    nets = [_random_ideal_netlist(np.random.default_rng(seed)) for seed in range(80)]
    nets += [cuba_netlist("ideal", 100, 37), cuba_netlist("ideal", 1000, 300)]
    for net in nets:
        ours = _mapped_with_rows(counted, monkeypatch, net)
        assert ours == _mapped_with_rows(per_half, monkeypatch, net)
        if not isinstance(ours, str):
            check_row_invariants(map_netlist(net))
    assert seen["fast"] > 100 and seen["left"] > 100


def _mapped_with_rows(fast_path, monkeypatch, net):
    from chip.mapping import rows

    with monkeypatch.context() as mp:
        mp.setattr(rows, "_one_row_per_source", fast_path)
        try:
            m = map_netlist(net)
        except MappingError as exc:
            return str(exc)
        return _placements(m), list(m.rows_used), {name: p.exc_synapse.dtype for name, p in m.projections.items()}


def test_row_assignment_invariants_bss2_recurrent():
    net = make_netlist(populations={"exc": 400, "inh": 100}, inputs={"in": 50},
                       projections=[proj("in_exc", "in", "exc", sign="signed", kind="probability", p=0.1, seed=1),
                                    proj("ee", "exc", "exc", kind="probability", p=0.02, seed=2),
                                    proj("ee2", "exc", "exc", kind="probability", p=0.02, seed=3),
                                    proj("ie", "inh", "exc", sign="inhibitory", kind="probability", p=0.05, seed=4),
                                    proj("ei", "exc", "inh", kind="probability", p=0.05, seed=5)])
    m = map_netlist(net)
    print("\nrows used (exc, inh) per half:", m.rows_used)
    check_row_invariants(m)


def test_sources_share_rows_up_to_label_capacity():
    # one_to_one: each source needs one column, so labels_per_row sources fit on one row of a bus;
    # inputs are spread over the 4 buses (ties go to the bus carrying fewer input neurons)
    m = map_netlist(make_netlist(populations={"a": 64}, inputs={"in": 64}, labels_per_row=16,
                                 projections=[proj("x", "in", "a", kind="one_to_one")]))
    assert m.rows_used == {0: (4, 0)} and m.bus_rows == {0: ((1, 0),) * 4}
    m = map_netlist(make_netlist(populations={"a": 65}, inputs={"in": 65}, labels_per_row=16,
                                 projections=[proj("x", "in", "a", kind="one_to_one")]))
    assert m.rows_used == {0: (5, 0)} and m.bus_rows == {0: ((2, 0),) + ((1, 0),) * 3}
    check_row_invariants(m)
    # one pooled bus: 64 sources (6-bit labels) on one row
    m = map_netlist(make_netlist(populations={"a": 65}, inputs={"in": 65}, buses_per_half=1,
                                 projections=[proj("x", "in", "a", kind="one_to_one")]))
    assert m.rows_used == {0: (2, 0)} and m.bus_rows == {0: ((2, 0),)}
    check_row_invariants(m)


def test_signed_projection_gets_both_rows_and_duplicates_get_their_own_synapse():
    net = make_netlist(populations={"a": 8}, inputs={"in": 3},
                       projections=[proj("s", "in", "a", sign="signed"),
                                    proj("e", "in", "a", sign="excitatory")])
    m = map_netlist(net)
    # all-to-all: every source needs every column, so one row per source and sign; the duplicate
    # excitatory projection from the same sources needs a second excitatory row per source
    assert m.rows_used == {0: (6, 3)}
    assert m.bus_rows == {0: ((2, 1), (2, 1), (2, 1), (0, 0))}  # one input per bus
    s = m.projections["s"]
    assert np.all(s.exc_synapse >= 0) and np.all(s.inh_synapse >= 0)
    check_row_invariants(m)


def test_too_many_rows_names_half_bus_projections_and_excess():
    # 300 inputs, signed all-to-all onto 4 columns: one row per input and sign, 75 inputs per bus
    net = make_netlist(populations={"a": 300, "b": 4}, inputs={"in": 300},
                       projections=[proj("in_b", "in", "b", sign="signed")],
                       source_path="net.yaml", lines={"projections.in_b": 12})
    with pytest.raises(MappingError) as info:
        map_netlist(net)
    err = info.value
    assert (err.file, err.line, err.field) == ("net.yaml", 12, "projections.in_b")
    assert str(err) == ("net.yaml:12: projections.in_b: core0.half1 (global half 1) bus 0 needs 150 synapse rows "
                        "(75 excitatory + 75 inhibitory) for projection in_b; a bus has 64 rows; 86 too many "
                        "(so do buses 1, 2, 3)")

    # tiny override (2 rows per bus), two projections on one half: inputs u0, u1, u2, v0, v1 go to
    # buses 0, 1, 2, 3, 0
    net = make_netlist(populations={"a": 4}, inputs={"u": 3, "v": 2}, rows_per_half=8,
                       projections=[proj("pu", "u", "a", sign="signed"), proj("pv", "v", "a", sign="signed")])
    with pytest.raises(MappingError, match=r"bus 0 needs 4 synapse rows \(2 excitatory \+ 2 inhibitory\) for "
                                           r"projections pu, pv; a bus has 2 rows; 2 too many$"):
        map_netlist(net)
    # with one pooled bus the half is the limit
    with pytest.raises(MappingError, match=r"core0.half0 \(global half 0\) needs 10 synapse rows .* projections "
                                           r"pu, pv; a half has 8 rows; 2 too many$"):
        map_netlist(make_netlist(populations={"a": 4}, inputs={"u": 3, "v": 2}, rows_per_half=8, buses_per_half=1,
                                 projections=[proj("pu", "u", "a", sign="signed"),
                                              proj("pv", "v", "a", sign="signed")]))


def test_a_bus_runs_out_of_rows_while_its_half_has_room():
    # a (columns 0..31) and c (columns 128..159) both send on bus 0: 64 + 32 rows on a bus of 64,
    # while the half uses 96 of 256 rows; the error points at the projections' line
    net = make_netlist(populations={"a": 32, "pad": 96, "c": 32, "b": 4},
                       projections=[proj("a_b", "a", "b", sign="signed"), proj("c_b", "c", "b")],
                       source_path="net.yaml", lines={"projections": 20, "projections.a_b": 21})
    with pytest.raises(MappingError) as info:
        map_netlist(net)
    assert (info.value.line, info.value.field) == (20, "projections")
    assert str(info.value) == ("net.yaml:20: projections: core0.half0 (global half 0) bus 0 needs 96 synapse rows "
                               "(64 excitatory + 32 inhibitory) for projections a_b, c_b; a bus has 64 rows; "
                               "32 too many")
    # the same sources with c one block further (columns 160..191, bus 1) fit
    m = map_netlist(make_netlist(populations={"a": 32, "pad": 128, "c": 32, "b": 4},
                                 projections=[proj("a_b", "a", "b", sign="signed"), proj("c_b", "c", "b")]))
    assert m.bus_rows == {0: ((32, 32), (32, 0), (0, 0), (0, 0))}
    check_row_invariants(m)


# --------------------------------------------------------------------------------------------
# resource errors
# --------------------------------------------------------------------------------------------

def test_too_many_neurons_names_resource_and_excess():
    net = make_netlist(populations={"a": 300, "b": 300}, source_path="net.yaml", lines={"populations": 3})
    with pytest.raises(MappingError) as info:
        map_netlist(net)
    err = info.value
    assert (err.file, err.line, err.field) == ("net.yaml", 3, "populations")
    assert str(err) == ("net.yaml:3: populations: needs 600 neuron circuits, the chip has 512 "
                        "(1 core × 512); 88 too many")
    with pytest.raises(MappingError, match=r"needs 1100 .* has 1024 \(2 cores × 512\); 76 too many"):
        map_netlist(make_netlist(populations={"a": 1100}, cores=2))


def test_madc_channels_per_core():
    rec = MembraneRecord(population="a", neurons=(0, 1), adc="madc", period_us=0.1)
    net = make_netlist(populations={"a": 10}, membrane=[rec], lines={"record.membrane": 30})
    with pytest.raises(MappingError) as info:
        map_netlist(net)
    assert info.value.field == "record.membrane.0" and info.value.line == 30
    assert "2 channels on core 0" in str(info.value) and "1 too many" in str(info.value)
    # channels are shared by all MADC records of a core; the overflowing record is blamed
    recs = [MembraneRecord("a", (0,), "madc", 0.1), MembraneRecord("a", (3,), "madc", 0.1)]
    with pytest.raises(MappingError, match="channels on core 0") as info:
        map_netlist(make_netlist(populations={"a": 10}, membrane=recs))
    assert info.value.field == "record.membrane.1"
    # one neuron per core is fine; the same neuron twice uses one channel; CADC has no channel limit
    ok = [MembraneRecord("a", (0,), "madc", 0.1), MembraneRecord("a", (0, 600), "madc", 0.1),
          MembraneRecord("a", tuple(range(700)), "cadc", 1.7)]
    map_netlist(make_netlist(populations={"a": 700}, cores=2, membrane=ok))


def test_record_period_below_adc_minimum():
    net = make_netlist(populations={"a": 10}, membrane=[MembraneRecord("a", (0,), "cadc", 1.0)])
    with pytest.raises(MappingError, match=r"period 1 us is below the CADC's minimum sample period 1.7 us") as info:
        map_netlist(net)
    assert info.value.field == "record.membrane.0"
    net = make_netlist(populations={"a": 10}, membrane=[MembraneRecord("a", (0,), "madc", 0.01)])
    with pytest.raises(MappingError, match="MADC's minimum sample period 0.033 us"):
        map_netlist(net)


def test_bad_connectivity_becomes_mapping_error_with_field():
    net = make_netlist(populations={"a": 3, "b": 4}, projections=[proj("ab", "a", "b", kind="one_to_one")],
                       source_path="n.yaml", lines={"projections.ab": 7})
    with pytest.raises(MappingError, match="equal sizes") as info:
        map_netlist(net)
    assert info.value.field == "projections.ab.connectivity" and info.value.line == 7


# --------------------------------------------------------------------------------------------
# routes and graph
# --------------------------------------------------------------------------------------------

def test_route_latencies_are_link_sums():
    prof = get_profile("bss2")
    net = make_netlist(populations={"a": 512, "b": 10}, inputs={"in": 5}, cores=2,
                       projections=[proj("in_a", "in", "a"), proj("in_b", "in", "b"),
                                    proj("a_b", "a", "b", kind="probability", p=0.1, seed=1),
                                    proj("a_a", "a", "a", kind="probability", p=0.05, seed=2),
                                    proj("b_a", "b", "a", sign="inhibitory")])
    m = map_netlist(net)
    groups = {name: i for i, name in enumerate(m.source_groups)}
    by_index = {link.index: link for link in m.links}
    for (g, h), route in m.routes.items():
        assert route.latency_cycles == sum(by_index[i].latency_cycles for i in route.links)
        # the links chain from the group's node through the route's bus to the half's drivers
        nodes = [by_index[route.links[0]].source] + [by_index[i].target for i in route.links]
        assert nodes[0] == m.group_node(g) and nodes[-2:] == [f"{m.half_name(h)}.bus{route.bus}",
                                                               m.half_name(h) + ".drivers"]
        assert all(by_index[a].target == by_index[b].source for a, b in zip(route.links, route.links[1:]))

    inp = int(m.projections["in_b"].pre_group[0])
    bus = m.routes[(inp, 2)].bus
    names = [by_index[i].name for i in m.routes[(inp, 2)].links]
    assert names == ["input:in->fpga", "fpga->core1.xbar", f"core1.xbar->core1.half0.bus{bus}",
                     f"core1.half0.bus{bus}->core1.half0.drivers"]
    assert m.routes[(inp, 0)].latency_cycles == prof.latency_input_cycles + prof.latency_crossbar_cycles
    cross = m.routes[(groups["a@half0.out5"], 2)]
    assert cross.latency_cycles == (prof.latency_neuron_out_cycles + prof.latency_core_link_cycles
                                    + prof.latency_crossbar_cycles)
    assert [by_index[i].name for i in cross.links] == [
        "neurons:core0.half0->core0.xbar", "core0.xbar->core1.xbar", "core1.xbar->core1.half0.bus1",
        "core1.half0.bus1->core1.half0.drivers"]
    assert m.routes[(groups["a@half1.out0"], 0)].latency_cycles == (prof.latency_neuron_out_cycles
                                                                    + prof.latency_crossbar_cycles)
    b_grp = groups["b@half2.out0"]
    assert m.routes[(b_grp, 1)].latency_cycles == 20
    # a route for every (pre group, post half) of every projection, whether connected or not
    # (the emulator looks them up per group and half); none to the empty half 3, b only feeds a
    in_groups = sorted(set(m.projections["in_a"].pre_group.tolist()))
    a_groups = [groups[f"a@half{h}.out{o}"] for h in (0, 1) for o in range(8)]
    assert (inp, 3) not in m.routes and (b_grp, 2) not in m.routes
    assert set(m.routes) == ({(g, h) for g in in_groups + a_groups for h in (0, 1, 2)}
                             | {(b_grp, 0), (b_grp, 1)})
    sparse = map_netlist(make_netlist(populations={"a": 300}, inputs={"in": 2},
                                      projections=[proj("x", "in", "a", kind="explicit", pairs=np.array([[0, 0]]))]))
    # half 1 has no synapse of x, still routed; input 1 has none at all and still gets a bus per half
    assert set(sparse.routes) == {(g, h) for g in set(sparse.projections["x"].pre_group.tolist()) for h in (0, 1)}
    # neuron-output links are shared per half; capacities come from the profile
    link = by_index[m.graph.edges["neurons:core0.half0", "core0.xbar"]["index"]]
    assert link.capacity_per_cycle == prof.neuron_output_capacity and link.queue_depth == prof.queue_depth
    assert m.graph.edges["fpga", "core0.xbar"]["capacity_per_cycle"] == prof.input_links * prof.input_link_capacity
    assert m.graph.edges["input:in", "fpga"]["capacity_per_cycle"] == math.inf
    # each bus is a FIFO of bus_capacity events per cycle; the crossbar only switches onto it
    bus_link = m.graph.edges["core0.half1.bus3", "core0.half1.drivers"]
    assert (bus_link["capacity_per_cycle"], bus_link["latency_cycles"]) == (1.0, prof.latency_crossbar_cycles)
    assert bus_link["queue_depth"] == prof.queue_depth
    switch = m.graph.edges["core0.xbar", "core0.half1.bus3"]
    assert (switch["capacity_per_cycle"], switch["latency_cycles"]) == (math.inf, 0)


def test_single_core_has_no_core_links():
    m = map_netlist(make_netlist(populations={"a": 10}, inputs={"in": 1}, projections=[proj("x", "in", "a")]))
    assert not any("xbar->core" in link.name and link.name.count("xbar") == 2 for link in m.links)
    buses = [f"core0.half{h}.bus{b}" for h in (0, 1) for b in range(4)]
    assert sorted(m.graph.nodes) == sorted(["input:in", "fpga", "core0.xbar", "neurons:core0.half0",
                                            "neurons:core0.half1", "core0.half0.drivers", "core0.half1.drivers"]
                                           + buses)


# --------------------------------------------------------------------------------------------
# buses
# --------------------------------------------------------------------------------------------

def test_population_events_take_the_bus_of_their_column_block():
    # "pre" sits on columns 20..131 of half 0: blocks 0..4 of 32 columns, buses 0, 1, 2, 3, 0; it
    # feeds a population on the same half and one on core 1
    net = make_netlist(populations={"pad": 20, "pre": 112, "near": 10, "gap": 626, "far": 10}, cores=2,
                       projections=[proj("pn", "pre", "near", kind="probability", p=0.3, seed=1),
                                    proj("pf", "pre", "far", sign="inhibitory", kind="probability", p=0.3, seed=2)])
    m = map_netlist(net)
    assert m.populations["far"].halves()[0] == 3
    groups = sorted(set(m.projections["pn"].pre_group.tolist()))
    assert [m.source_groups[g] for g in groups] == [f"pre@half0.out{o}" for o in range(5)]
    for o, g in enumerate(groups):
        for half in (0, 3):
            route = m.routes[(g, half)]
            assert route.bus == o % 4
            assert m.links[route.links[-1]].name == f"{m.half_name(half)}.bus{o % 4}->{m.half_name(half)}.drivers"
    # every neuron's group is its block's
    columns = (m.populations["pre"].offset + np.arange(112)) % 256
    assert np.array_equal(np.asarray(groups)[columns // 32], m.projections["pn"].pre_group)
    check_row_invariants(m)


def test_inputs_are_spread_over_buses_by_free_rows_then_load():
    # equal needs: each input takes the bus with the most rows left after it, ties to the bus
    # carrying fewer input neurons, then the lowest index -> round robin
    m = map_netlist(make_netlist(populations={"a": 8}, inputs={"x": 8},
                                 projections=[proj("xa", "x", "a", kind="one_to_one")]))
    assert [m.routes[(int(g), 0)].bus for g in m.projections["xa"].pre_group] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert m.source_groups[:4] == [f"input:x@bus{b}" for b in range(4)]

    # neurons come first on their fixed buses: h (columns 0..95) fills buses 0..2 with a signed row
    # pair each, so all inputs go to bus 3 even though they could share h's rows on bus 0
    net = make_netlist(populations={"h": 96, "o": 3}, inputs={"x": 10},
                       projections=[proj("xh", "x", "h", sign="signed"), proj("ho", "h", "o", sign="signed")])
    m = map_netlist(net)
    assert m.bus_rows == {0: ((32, 32), (32, 32), (32, 32), (10, 10))}
    assert {m.routes[(int(g), 0)].bus for g in m.projections["xh"].pre_group} == {3}
    check_row_invariants(m)

    # wider sources choose first: x4 needs all 8 columns and takes bus 0 although it comes last;
    # x0..x3 (one column each) then find a new row on bus 0 but share a row elsewhere: buses 1, 2, 3
    # by load, and x3 shares bus 1's row (buses 1..3 tie on rows and load, the lowest wins)
    pairs = np.array([[0, 0], [1, 1], [2, 2], [3, 3]] + [[4, j] for j in range(8)])
    m = map_netlist(make_netlist(populations={"a": 8}, inputs={"x": 5},
                                 projections=[proj("xa", "x", "a", kind="explicit", pairs=pairs)]))
    assert [m.routes[(int(g), 0)].bus for g in m.projections["xa"].pre_group] == [1, 2, 3, 1, 0]
    assert m.bus_rows == {0: ((1, 0), (1, 0), (1, 0), (1, 0))}

    # an input reaching two halves gets a bus on each, chosen per half
    m = map_netlist(make_netlist(populations={"h": 20, "pad": 236, "k": 8}, inputs={"x": 2},
                                 projections=[proj("xh", "x", "h"), proj("hk", "h", "k"),
                                              proj("xk", "x", "k", kind="explicit", pairs=np.array([[1, 0]]))]))
    # half 0: x0 -> bus 0, x1 -> bus 1. Half 1: h's 20 rows (columns of k) fill bus 0; x1 needs
    # one row (bus 1, ties by load and index), x0 has no synapse there and takes the emptiest bus
    # left, bus 2 (its events still reach the half)
    assert [m.source_groups[int(g)] for g in m.projections["xh"].pre_group] == [
        "input:x@half0.bus0+half1.bus2", "input:x@bus1"]
    assert m.bus_rows == {0: ((1, 0), (1, 0), (0, 0), (0, 0)), 1: ((20, 0), (1, 0), (0, 0), (0, 0))}
    check_row_invariants(m)


def _burst_run(host: HostInterface, senders: tuple[int, ...], n_events: int = 20):
    """Each input neuron in ``senders`` sends one event per clock cycle for ``n_events`` cycles."""
    clock = host.profile.clock_us
    burst = [1.0 + clock * k for k in range(n_events)]
    trains = [burst if i in senders else [] for i in range(8)]
    result = host.run({"x": SpikeEvents.from_lists(trains)}, duration_us=4.0)
    return result, {link.name: link for link in result.links}


def test_each_bus_is_a_fifo_of_one_event_per_cycle():
    # inputs 0..7 sit on buses 0, 1, 2, 3, 0, 1, 2, 3; the FPGA link passes 2 events per cycle
    net = make_netlist(populations={"p": 8}, inputs={"x": 8}, input_links=2,
                       projections=[proj("xp", "x", "p", kind="one_to_one", weights=ConstantWeights(0.01))])
    host = HostInterface(net)
    clock = host.profile.clock_us
    assert [host.mapped.routes[(int(g), 0)].bus for g in host.mapped.projections["xp"].pre_group][:5] == [0, 1, 2, 3, 0]
    bus = "core0.half0.bus{}->core0.half0.drivers"

    # inputs 0 and 4 share bus 0: 2 events per cycle into a bus serving 1; the queue grows by
    # half a cycle per event, the last of 40 waits 39 half cycles
    result, links = _burst_run(host, (0, 4))
    assert links[bus.format(0)].offered == 40 and links[bus.format(0)].dropped == 0
    assert links[bus.format(0)].max_wait_us == pytest.approx(39 * clock / 2)
    assert links["fpga->core0.xbar"].max_wait_us < clock  # the FPGA link keeps up
    # inputs 0 and 1 use buses 0 and 1: nothing waits on the buses
    result, links = _burst_run(host, (0, 1))
    for b in (0, 1):
        assert links[bus.format(b)].offered == 20 and links[bus.format(b)].max_wait_us < 1e-9
    assert result.dropped_events == 0

    # with a queue of 4 events the shared bus drops, the separate buses do not
    host = HostInterface(make_netlist(populations={"p": 8}, inputs={"x": 8}, input_links=2, queue_depth=4,
                                      projections=[proj("xp", "x", "p", kind="one_to_one",
                                                        weights=ConstantWeights(0.01))]))
    result, links = _burst_run(host, (0, 4))
    assert links[bus.format(0)].dropped > 0 and links["fpga->core0.xbar"].dropped == 0
    assert result.dropped_events == links[bus.format(0)].dropped
    assert all(link.offered == link.delivered + link.dropped for link in result.links)
    result, links = _burst_run(host, (0, 1))
    assert result.dropped_events == 0 and all(link.dropped == 0 for link in result.links)


def test_ideal_keeps_one_pooled_never_congesting_path():
    m = map_netlist(make_netlist("ideal", populations={"a": 300}, inputs={"in": 3},
                                 projections=[proj("x", "in", "a", sign="signed"), proj("aa", "a", "a", p=0.1,
                                                                                        kind="probability")]))
    assert [link.name for link in m.links] == [
        "input:in->fpga", "fpga->core0.xbar", "neurons:core0.half0->core0.xbar", "neurons:core0.half1->core0.xbar",
        "core0.xbar->core0.half0.drivers", "core0.xbar->core0.half1.drivers"]
    assert all(link.capacity_per_cycle == math.inf for link in m.links)
    # one group per input and per (population, half), every route on bus 0
    assert m.source_groups == ["input:in@bus0", "a@half0.out0", "a@half1.out0"]
    assert {route.bus for route in m.routes.values()} == {0}
    assert m.bus_rows == {h: (m.rows_used[h],) for h in m.rows_used}
    check_row_invariants(m)


def test_bus_fields_of_the_profile():
    bss2, ideal = get_profile("bss2"), get_profile("ideal")
    assert (bss2.buses_per_half, bss2.neurons_per_event_output, bss2.rows_per_bus) == (4, 32, 64)
    assert bss2.bus_capacity == 1.0  # events per cycle on each bus
    assert (ideal.buses_per_half, ideal.rows_per_bus, ideal.bus_capacity) == (1, 65536, math.inf)
    with pytest.raises(ValueError, match="rows_per_half .* buses_per_half"):
        bss2.replace(rows_per_half=250)
    with pytest.raises(ValueError, match="buses_per_half must be a positive integer"):
        bss2.replace(buses_per_half=0)


def test_ideal_fast_path():
    net = cuba_netlist("ideal")
    t0 = time.perf_counter()
    m = map_netlist(net)
    elapsed = time.perf_counter() - t0
    print(f"\nideal CUBA 4000 neurons: mapped in {elapsed:.3f} s")
    # only the 8 cores that hold neurons (of 64) appear in the graph
    cores = {d["core"] for _, d in m.graph.nodes(data=True) if "core" in d}
    assert cores == set(range(8))
    assert all(link.capacity_per_cycle == math.inf and link.latency_cycles == 0 for link in m.links)
    assert all(r.latency_cycles == 0 for r in m.routes.values())
    # one row per distinct source and sign on each half
    for half, (n_exc, n_inh) in m.rows_used.items():
        cols = slice(half * 256, (half + 1) * 256)
        exc_mask = np.hstack([m.projections["ee"].mask, m.projections["ei"].mask])[:, cols]
        inh_mask = np.hstack([m.projections["ie"].mask, m.projections["ii"].mask])[:, cols]
        assert n_exc == int(exc_mask.any(axis=1).sum()) and n_inh == int(inh_mask.any(axis=1).sum())
    ee = m.projections["ee"]
    _, rows, _ = m.decode_synapses(ee.exc_synapse)
    pre = np.nonzero(ee.mask)[0]
    halves = ee.post_half[np.nonzero(ee.mask)[1]]
    # a source's synapses on one half all share its row
    pairs = np.unique(np.stack([halves, pre, rows]), axis=1)
    assert pairs.shape[1] == np.unique(np.stack([halves, pre]), axis=1).shape[1]
    check_row_invariants(m)


def test_graph_summary_and_graphml(tmp_path):
    net = make_netlist(populations={"a": 600, "b": 20}, inputs={"in": 3}, cores=2,
                       projections=[proj("in_a", "in", "a"), proj("a_b", "a", "b", kind="probability", p=0.1)])
    m = map_netlist(net)
    s = graph_summary(m)
    # input, fpga, 2 x (xbar + 2 x (neurons + 4 buses + drivers))
    assert s["nodes"] == m.graph.number_of_nodes() == 28
    # input->fpga, fpga->xbar x 2, neurons->xbar x 4, 4 halves x (4 switches + 4 buses), core links x 2
    assert s["edges"] == len(s["links"]) == len(m.links) == 1 + 2 + 4 + 32 + 2
    assert s["circuits_used"] == 620 and s["circuits_available"] == 1024
    # routes: the input's groups to a's halves 0-2, and a's 19 groups (8 + 8 + 3 blocks) to b's half 2
    in_groups = set(m.projections["in_a"].pre_group.tolist())
    assert s["routes"] == len(m.routes) == 3 * len(in_groups) + 19
    assert s["source_groups"] == len(in_groups) + 19 + 2  # inputs, a, b (columns 88..107: blocks 2, 3)
    half0 = s["rows_used"][0]
    assert half0["excitatory"] == 3 and half0["available"] == 256
    # three all-to-all inputs: one row each, on buses 0, 1, 2; the load is the sources per bus
    assert half0["buses"] == [{"bus": b, "excitatory": e, "inhibitory": 0, "total": e, "available": 64,
                               "sources": n} for b, e, n in ((0, 1, 1), (1, 1, 1), (2, 1, 1), (3, 0, 0))]
    # on b's half each neuron of a sends on the bus of its column block (halves 0 and 1: 64 per bus;
    # half 2, columns 0..87: 32, 32, 24, 0), and the 3 inputs take bus 3, which has the most rows free
    assert [bus["sources"] for bus in s["rows_used"][2]["buses"]] == [160, 160, 152, 128 + 3]
    assert s["links"][0] == {"index": 0, "name": "input:in->fpga", "source": "input:in", "target": "fpga",
                             "capacity_per_cycle": math.inf, "latency_cycles": 0, "queue_depth": 256}
    assert s["max_route_latency_cycles"] == 20

    path = tmp_path / "route.graphml"
    write_graphml(m, path)
    g = nx.read_graphml(path)
    assert set(g.nodes) == set(m.graph.nodes) and g.number_of_edges() == m.graph.number_of_edges()
    assert g.edges["input:in", "fpga"]["capacity_per_cycle"] > 1e300
    assert g.nodes["neurons:core0.half1"]["groups"] == ",".join(f"a@half1.out{o}" for o in range(8))
    assert g.nodes["core1.half0.bus1"]["groups"].split(",") == [f"a@half{h}.out{o}" for h in (0, 1) for o in (1, 5)] \
        + ["a@half2.out1"]
    assert g.nodes["core1.half0.bus1"]["kind"] == "bus" and g.nodes["core1.half0.bus1"]["bus"] == 1
    assert m.graph.edges["input:in", "fpga"]["capacity_per_cycle"] == math.inf  # the mapping is untouched

    ideal = map_netlist(cuba_netlist("ideal", n_exc=80, n_inh=20, p=0.1))
    write_graphml(ideal, tmp_path / "ideal.graphml")
    assert nx.read_graphml(tmp_path / "ideal.graphml").number_of_nodes() == ideal.graph.number_of_nodes()


_BUSES_YAML = """\
name: buses
duration: 10 us
chip: {profile: bss2}
populations:
  h: {size: 96}
  o: {size: 3}
inputs:
  x: {size: 10, type: poisson, rate: 1 kHz}
projections:
  xh: {pre: x, post: h, sign: signed, weights: 0.1}
  ho: {pre: h, post: o, sign: signed, weights: 0.1}
"""


def test_chipctl_graph_prints_rows_and_load_per_bus(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    (tmp_path / "buses.yaml").write_text(_BUSES_YAML)
    result = CliRunner().invoke(app, ["graph", str(tmp_path / "buses.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    half = lines.index("rows_used:") + 1
    assert lines[half] == ("  0: {'name': 'core0.half0', 'excitatory': 106, 'inhibitory': 106, 'total': 212, "
                           "'available': 256}")
    # h (columns 0..95) fills buses 0..2, its 32 neurons per bus sending there; the 10 inputs take bus 3
    assert lines[half + 1:half + 5] == [
        f"    {{'bus': {b}, 'excitatory': {e}, 'inhibitory': {e}, 'total': {2 * e}, 'available': 64, "
        f"'sources': {e}}}" for b, e in ((0, 32), (1, 32), (2, 32), (3, 10))]


def test_projection_fields():
    w = NormalWeights(mean=0.2, std=0.1, seed=5)
    net = make_netlist(populations={"a": 20, "b": 30},
                       projections=[proj("ab", "a", "b", kind="probability", p=0.3, seed=9, weights=w,
                                         delay_us=1.5)])
    p = map_netlist(net).projections["ab"]
    mask = np.random.default_rng(9).random((20, 30)) < 0.3
    assert np.array_equal(p.mask, mask)
    # the seed's normal draws over the full (pre, post) matrix, clipped at 0 (excitatory), on the mask
    drawn = np.random.default_rng(5).normal(0.2, 0.1, size=(20, 30))
    assert np.array_equal(p.initial_weights, np.maximum(drawn, 0.0)[mask])
    assert (p.pre, p.post, p.sign, p.delay_us) == ("a", "b", "excitatory", 1.5)
    # same netlist, same mapping
    q = map_netlist(net).projections["ab"]
    assert np.array_equal(p.exc_synapse, q.exc_synapse)


def test_mapping_time_4000_neurons_bss2():
    """Timing print (not an assert): 4000 neurons, 2 % random connectivity, 8 bss2 cores."""
    net = cuba_netlist(get_profile("bss2").replace(cores=8))
    t0 = time.perf_counter()
    m = map_netlist(net)
    elapsed = time.perf_counter() - t0
    worst = max(e + i for e, i in m.rows_used.values())
    print(f"\nbss2 x8 CUBA 4000 neurons: mapped in {elapsed:.3f} s; busiest half uses {worst}/256 rows")
    assert worst <= 256


def test_freed_set_up_buffers_leave_the_process():
    """After mapping, a freed 20 MB block is unmapped even after a larger one was freed
    (glibc would otherwise have raised its mmap threshold and kept the block on the heap)."""
    import subprocess
    import sys

    code = (
        "import os, numpy as np\n"
        "from chip.mapping import map_netlist\n"
        "from chip._malloc import keep_large_buffers_mapped\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "set_up = os.environ['SET_UP'] == '1'\n"
        "print(keep_large_buffers_mapped() if set_up else False)\n"
        "a = np.ones(24 << 17); del a\n"  # 24 MB mapped and freed: glibc raises its threshold
        "before = rss(); b = np.ones(20 << 17); del b\n"
        "print((rss() - before) >> 20)\n")
    if not os.path.exists("/proc/self/statm") or not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("glibc on Linux only")
    kept = {}
    for set_up in ("0", "1"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "SET_UP": set_up}).stdout.split()
        kept[out[0]] = int(out[1])
    assert kept["False"] >= 12 and kept["True"] <= 1, kept


def test_small_set_up_leaves_malloc_alone(tmp_path):
    """Only a large set-up fixes malloc's threshold: a small netlist, mapped many times in a
    training loop, keeps the process's malloc as it was."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import chip._malloc as m\n"
        "from chip.netlist import load_netlist\n"
        "from chip.mapping import map_netlist\n"
        f"map_netlist(load_netlist({os.path.join(root, 'netlists', 'cuba.yaml')!r}))\n"
        "print(m._done)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False"


def test_network_routes_and_order_are_networkx_own():
    """chip.mapping.routing.Network stands in for networkx in a run: its Dijkstra gives networkx's
    paths (ties included: ideal latencies are all 0 and many paths are equally long), its
    topological order networkx's, and ``MappedChip.graph`` the same DiGraph (nodes, edges and
    attributes, in order) as building it with networkx."""
    from chip.mapping.routing import Network

    cuba = cuba_netlist("ideal", 2000, 500, p=0.01)
    nets = [cuba, make_netlist("bss2", populations={"exc": 2000, "inh": 500}, projections=cuba.projections.values(),
                               cores=5),
            make_netlist(populations={"a": 40, "b": 300}, inputs={"in": 20, "in2": 3},
                         projections=[proj("x", "in", "b", sign="signed"), proj("y", "a", "b"),
                                      proj("z", "in2", "a", sign="inhibitory")], cores=3)]
    nets += [_random_netlist(np.random.default_rng(seed)) for seed in range(10)]
    for net in nets:
        m = map_netlist(net)
        graph = m.graph
        assert isinstance(graph, nx.DiGraph) and m.graph is graph
        assert list(graph.nodes(data=True)) == list(m.network.nodes.items())
        assert list(graph.edges(data=True)) == [(u, v, d) for u in m.network.nodes for v, d in m.network.succ[u].items()]
        assert [list(graph.predecessors(v)) for v in graph] == [
            [u for u, w in m.network._edges if w == v] for v in m.network.nodes]
        assert graph.graph == m.network.attrs
        hop_scale = graph.number_of_edges() + 1

        def weight(u, v, data):
            return data["latency_cycles"] * hop_scale + 1

        for source in graph.nodes:
            assert m.network.dijkstra_paths(source, weight) == nx.single_source_dijkstra_path(graph, source,
                                                                                             weight=weight)
            # all weights equal: every tie is left to the traversal order
            assert m.network.dijkstra_paths(source, lambda u, v, d: 1) == nx.single_source_dijkstra_path(
                graph, source, weight=lambda u, v, d: 1)
    # topological order of link trees, as the link model builds them
    rng = np.random.default_rng(5)
    for _ in range(50):
        net, ref = Network(), nx.DiGraph()
        for _ in range(int(rng.integers(1, 40))):
            a, b = (int(x) for x in rng.integers(0, 30, size=2))
            if rng.random() < 0.3:
                net.add_node(a)
                ref.add_node(a)
            elif a < b:
                net.add_edge(a, b)
                ref.add_edge(a, b)
        assert net.topological_order() == list(nx.topological_sort(ref))
