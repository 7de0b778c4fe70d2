"""The kernel's tables as ``chip.emulator.tables.build_tables`` makes them from a chip."""

from __future__ import annotations

import numpy as np
import pytest

from chip.emulator.tables import build_tables, effective_params, effective_weights
from chip.host import HostInterface

from .conftest import layer_netlist


def _host(profile):
    host = HostInterface(layer_netlist(n_in=6, n_out=300, profile=profile, sign="signed"))
    # some synapses at zero: they must not enter the table
    w = host.read_weights("w")
    w[::2, ::3] = 0.0
    host.write_weights("w", w)
    return host


@pytest.mark.parametrize("chunk", [1 << 20, 7])
@pytest.mark.parametrize("profile", ["ideal", "bss2"])
def test_synapse_table_holds_exactly_the_non_zero_synapses_with_their_effective_weights(profile, chunk, monkeypatch):
    """Also when the table is filled in chunks of 7 connections (chunks cross rows and units)."""
    from chip.emulator import tables as tables_module

    monkeypatch.setattr(tables_module, "_CHUNK", chunk)
    host = _host(profile)
    tables = build_tables(host.mapped, host.die, host.state, host.profile.step_us)
    syn = tables.synapses
    proj = host.mapped.projections["w"]
    post = host.mapped.populations["out"]
    w_exc, w_inh = effective_weights(host.mapped, host.die, host.state, "w")
    dense_exc = np.zeros(proj.mask.shape)
    dense_inh = np.zeros(proj.mask.shape)
    dense_exc[proj.mask] = w_exc
    dense_inh[proj.mask] = w_inh
    assert np.count_nonzero(dense_exc + dense_inh) < proj.mask.sum()  # zeros were written

    # ideal: no link model and one route latency, so the projection is one delivery unit (filled
    # in one pass); bss2: one per half
    assert len(tables.units) == (1 if profile == "ideal" else len(np.unique(proj.post_half)))
    seen = np.zeros(proj.mask.shape, dtype=int)
    for u, unit in enumerate(tables.units):
        assert unit.projection == "w"
        assert syn.unit_start[u] == unit.post_start and syn.unit_end[u] == unit.post_start + unit.size
        for pre in range(proj.mask.shape[0]):
            row = syn.row_base[u] + pre
            cols = syn.cols[syn.indptr[row]:syn.indptr[row + 1]]
            assert np.all(np.diff(cols) > 0)  # sorted, no duplicates
            assert np.all((cols >= unit.post_start) & (cols < unit.post_start + unit.size))
            j = cols - post.offset
            seen[pre, j] += 1
            np.testing.assert_array_equal(syn.w_exc[syn.indptr[row]:syn.indptr[row + 1]], dense_exc[pre, j])
            np.testing.assert_array_equal(syn.w_inh[syn.indptr[row]:syn.indptr[row + 1]], dense_inh[pre, j])
    # every non-zero synapse exactly once, no other
    np.testing.assert_array_equal(seen, (dense_exc != 0) | (dense_inh != 0))
    assert syn.indptr[-1] == len(syn.cols) == np.count_nonzero((dense_exc != 0) | (dense_inh != 0))


def test_units_split_per_half_only_with_the_link_model():
    """300 neurons span two halves of 256: with congestible links (bss2) each half is its own
    unit, as events queue per route; without (ideal, same latency to both halves) one unit."""
    bss2 = build_tables(*_chip("bss2"))
    ideal = build_tables(*_chip("ideal"))
    assert bss2.link_model and not ideal.link_model
    assert [(u.post_start, u.size) for u in bss2.units] == [(0, 256), (256, 44)]
    assert [(u.post_start, u.size) for u in ideal.units] == [(0, 300)]
    assert bss2.units_of_source == {"in": (0, 1)} and ideal.units_of_source == {"in": (0,)}
    # the link model's route group of every source neuron, and each unit's last link per pre neuron
    assert len(bss2.links.group) == 6 and len(bss2.links.last_link) == 12
    assert np.all(bss2.links.last_link >= 0) and np.all(ideal.links.last_link == -1)


def _chip(profile):
    host = _host(profile)
    return host.mapped, host.die, host.state, host.profile.step_us


def test_neuron_table_propagators_and_purity():
    host = _host("bss2")
    before = host.state.copy()
    version = host.state.version
    dt = host.profile.step_us
    a = build_tables(host.mapped, host.die, host.state, dt)
    b = build_tables(host.mapped, host.die, host.state, dt)
    # nothing it reads changed, and the same inputs give the same tables
    assert host.state.version == version
    for name in before.codes:
        np.testing.assert_array_equal(host.state.codes[name], before.codes[name])
    for x, y in zip(a.neurons + a.synapses, b.neurons + b.synapses):
        np.testing.assert_array_equal(x, y)
    nrn = a.neurons
    eff = effective_params(host.die, host.state)
    np.testing.assert_array_equal(nrn.tau_mem_us, eff["tau_mem_us"])
    np.testing.assert_allclose(nrn.decay_mem, np.exp(-dt / nrn.tau_mem_us), rtol=1e-15)
    np.testing.assert_allclose(nrn.decay_exc, np.exp(-dt / nrn.tau_syn_exc_us), rtol=1e-15)
    # κ(dt) = c·(e^{−dt/τs} − e^{−dt/τm}) with c = τs/(τs − τm)
    np.testing.assert_allclose(nrn.kernel_exc, nrn.coeff_exc * (nrn.decay_exc - nrn.decay_mem), rtol=1e-9)
    assert np.all(nrn.noise_scale > 0)  # bss2 has membrane noise
    assert a.horizon_steps >= 3
