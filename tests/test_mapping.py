"""Tests of chip.netlist.connectivity and chip.mapping (placement, synapse rows, routes, errors, reports).

Netlists are built directly as chip.netlist objects (no YAML): see ``make_netlist``.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import networkx as nx
import numpy as np
import pytest

from chip.netlist.connectivity import realize_connectivity, realize_weights
from chip.errors import MappingError
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
    for half, (n_exc, n_inh) in m.rows_used.items():
        assert n_exc + n_inh <= prof.rows_per_half
    for p in m.projections.values():
        post = m.populations[p.post]
        assert p.exc_synapse.dtype == np.int64 and p.inh_synapse.dtype == np.int64
        # per-connection vectors in the row-major order of the mask
        assert p.exc_synapse.shape == p.inh_synapse.shape == (int(p.mask.sum()),) == (p.n_synapses,)
        ii, jj = np.nonzero(p.mask)
        assert np.array_equal(p.pre_index, ii) and np.array_equal(p.post_index, jj)
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
            n_exc = np.array([m.rows_used[int(h)][0] for h in half], dtype=np.int64)
            n_inh = np.array([m.rows_used[int(h)][1] for h in half], dtype=np.int64)
            if sign == "excitatory":
                assert np.all(row < n_exc)
            else:
                assert np.all((row >= n_exc) & (row < n_exc + n_inh))
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
    assert m.source_groups == ["input:in", "a@half0", "a@half1", "b@half1", "b@half2", "c@half2"]
    pb = m.projections["b_c"]
    assert not pb.pre_is_input and m.projections["in_b"].pre_is_input
    assert np.array_equal(pb.pre_group, np.r_[np.full(212, 3), np.full(88, 4)])
    assert np.array_equal(pb.post_half, np.full(10, 2))
    assert np.all(m.projections["in_b"].pre_group == 0)
    assert m.group_node(3) == "neurons:core0.half1" and m.group_node(4) == "neurons:core1.half0"
    assert m.half_name(3) == "core1.half1"
    check_row_invariants(m)


# --------------------------------------------------------------------------------------------
# synapse rows
# --------------------------------------------------------------------------------------------

def _random_netlist(rng: np.random.Generator) -> Netlist:
    """Small random nets on a tiny chip (8 columns per half, 3 labels per row)."""
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
                        cores=2, neurons_per_core=16, labels_per_row=3)


@pytest.mark.parametrize("seed", range(40))
def test_row_assignment_invariants_random(seed):
    m = map_netlist(_random_netlist(np.random.default_rng(seed)))
    check_row_invariants(m)


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
    # one_to_one: each source needs one column, so 64 sources (6-bit labels) fit on one row
    m = map_netlist(make_netlist(populations={"a": 64}, inputs={"in": 64},
                                 projections=[proj("x", "in", "a", kind="one_to_one")]))
    assert m.rows_used == {0: (1, 0)}
    m = map_netlist(make_netlist(populations={"a": 65}, inputs={"in": 65},
                                 projections=[proj("x", "in", "a", kind="one_to_one")]))
    assert m.rows_used == {0: (2, 0)}
    check_row_invariants(m)


def test_signed_projection_gets_both_rows_and_duplicates_get_their_own_synapse():
    net = make_netlist(populations={"a": 8}, inputs={"in": 3},
                       projections=[proj("s", "in", "a", sign="signed"),
                                    proj("e", "in", "a", sign="excitatory")])
    m = map_netlist(net)
    # all-to-all: every source needs every column, so one row per source and sign; the duplicate
    # excitatory projection from the same sources needs a second excitatory row per source
    assert m.rows_used == {0: (6, 3)}
    s = m.projections["s"]
    assert np.all(s.exc_synapse >= 0) and np.all(s.inh_synapse >= 0)
    check_row_invariants(m)


def test_too_many_rows_names_half_projections_and_excess():
    net = make_netlist(populations={"a": 300, "b": 4}, inputs={"in": 300},
                       projections=[proj("in_b", "in", "b", sign="signed")],
                       source_path="net.yaml", lines={"projections.in_b": 12})
    with pytest.raises(MappingError) as info:
        map_netlist(net)
    err = info.value
    assert (err.file, err.line, err.field) == ("net.yaml", 12, "projections.in_b")
    msg = str(err)
    assert "core0.half1" in msg and "600 synapse rows" in msg and "300 excitatory + 300 inhibitory" in msg
    assert "256 rows" in msg and "344 too many" in msg and "in_b" in msg

    # tiny override, two projections on one half
    net = make_netlist(populations={"a": 4}, inputs={"u": 3, "v": 2}, rows_per_half=8,
                       projections=[proj("pu", "u", "a", sign="signed"), proj("pv", "v", "a", sign="signed")])
    with pytest.raises(MappingError, match=r"needs 10 synapse rows .* projections pu, pv; .* 8 rows; 2 too many"):
        map_netlist(net)


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
                                    proj("a_a", "a", "a", kind="probability", p=0.1, seed=2),
                                    proj("b_a", "b", "a", sign="inhibitory")])
    m = map_netlist(net)
    groups = {name: i for i, name in enumerate(m.source_groups)}
    by_index = {link.index: link for link in m.links}
    for (g, h), route in m.routes.items():
        assert route.latency_cycles == sum(by_index[i].latency_cycles for i in route.links)
        # the links chain from the group's node to the half's drivers
        nodes = [by_index[route.links[0]].source] + [by_index[i].target for i in route.links]
        assert nodes[0] == m.group_node(g) and nodes[-1] == m.half_name(h) + ".drivers"
        assert all(by_index[a].target == by_index[b].source for a, b in zip(route.links, route.links[1:]))

    inp, b_grp = groups["input:in"], groups["b@half2"]
    names = [by_index[i].name for i in m.routes[(inp, 2)].links]
    assert names == ["input:in->fpga", "fpga->core1.xbar", "core1.xbar->core1.half0.drivers"]
    assert m.routes[(inp, 0)].latency_cycles == prof.latency_input_cycles + prof.latency_crossbar_cycles
    cross = m.routes[(groups["a@half0"], 2)]
    assert cross.latency_cycles == (prof.latency_neuron_out_cycles + prof.latency_core_link_cycles
                                    + prof.latency_crossbar_cycles)
    assert [by_index[i].name for i in cross.links][1] == "core0.xbar->core1.xbar"
    assert m.routes[(groups["a@half1"], 0)].latency_cycles == (prof.latency_neuron_out_cycles
                                                               + prof.latency_crossbar_cycles)
    assert m.routes[(b_grp, 1)].latency_cycles == 20
    # a route for every (pre group, post half) of every projection, whether connected or not
    # (the emulator looks them up per group and half); none to the empty half 3, b only feeds a
    assert (inp, 3) not in m.routes and (b_grp, 2) not in m.routes
    assert set(m.routes) == {(inp, 0), (inp, 1), (inp, 2), (groups["a@half0"], 0), (groups["a@half0"], 1),
                             (groups["a@half0"], 2), (groups["a@half1"], 0), (groups["a@half1"], 1),
                             (groups["a@half1"], 2), (b_grp, 0), (b_grp, 1)}
    sparse = map_netlist(make_netlist(populations={"a": 300}, inputs={"in": 2},
                                      projections=[proj("x", "in", "a", kind="explicit", pairs=np.array([[0, 0]]))]))
    assert set(sparse.routes) == {(0, 0), (0, 1)}  # half 1 has no synapse of x, still routed
    # neuron-output links are shared per half; capacities come from the profile
    link = by_index[m.graph.edges["neurons:core0.half0", "core0.xbar"]["index"]]
    assert link.capacity_per_cycle == prof.neuron_output_capacity and link.queue_depth == prof.queue_depth
    assert m.graph.edges["fpga", "core0.xbar"]["capacity_per_cycle"] == prof.input_links * prof.input_link_capacity
    assert m.graph.edges["input:in", "fpga"]["capacity_per_cycle"] == math.inf


def test_single_core_has_no_core_links():
    m = map_netlist(make_netlist(populations={"a": 10}, inputs={"in": 1}, projections=[proj("x", "in", "a")]))
    assert not any("xbar->core" in link.name and link.name.count("xbar") == 2 for link in m.links)
    assert sorted(m.graph.nodes) == sorted(["input:in", "fpga", "core0.xbar", "neurons:core0.half0",
                                            "neurons:core0.half1", "core0.half0.drivers", "core0.half1.drivers"])


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
    assert s["nodes"] == m.graph.number_of_nodes() == 12  # input, fpga, 2 x (xbar + 2 neurons + 2 drivers)
    assert s["edges"] == len(s["links"]) == len(m.links) == 1 + 2 + 4 + 4 + 2
    assert s["circuits_used"] == 620 and s["circuits_available"] == 1024
    # routes: the input to a's halves 0-2, and a's three groups to b's half 2
    assert s["routes"] == len(m.routes) == 6 and s["source_groups"] == 5  # input, a on halves 0-2, b
    assert s["rows_used"][0]["excitatory"] == 3 and s["rows_used"][0]["available"] == 256
    assert s["links"][0] == {"index": 0, "name": "input:in->fpga", "source": "input:in", "target": "fpga",
                             "capacity_per_cycle": math.inf, "latency_cycles": 0, "queue_depth": 256}
    assert s["max_route_latency_cycles"] == 20

    path = tmp_path / "route.graphml"
    write_graphml(m, path)
    g = nx.read_graphml(path)
    assert set(g.nodes) == set(m.graph.nodes) and g.number_of_edges() == m.graph.number_of_edges()
    assert g.edges["input:in", "fpga"]["capacity_per_cycle"] > 1e300
    assert g.nodes["neurons:core0.half1"]["groups"] == "a@half1"
    assert m.graph.edges["input:in", "fpga"]["capacity_per_cycle"] == math.inf  # the mapping is untouched

    ideal = map_netlist(cuba_netlist("ideal", n_exc=80, n_inh=20, p=0.1))
    write_graphml(ideal, tmp_path / "ideal.graphml")
    assert nx.read_graphml(tmp_path / "ideal.graphml").number_of_nodes() == ideal.graph.number_of_nodes()


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
