"""The host interface: writes are quantized and clipped, NaN is refused, transactions roll back."""

from __future__ import annotations

import numpy as np
import pytest

from chip.errors import RunError, WriteError
from chip.events import SpikeEvents
from chip.host import HostInterface

from .conftest import layer_netlist


@pytest.fixture
def host():
    return HostInterface(layer_netlist(n_in=4, n_out=8, profile="bss2"))


def test_weight_writes_come_back_quantized_to_six_bits(host, rng):
    wanted = rng.uniform(-1.0, 1.0, (4, 8))
    written = host.write_weights("w", wanted)
    step = host.weight_step("w")  # model units per code, per post neuron
    codes = written / step[None, :]
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-9)
    assert np.abs(np.rint(codes)).max() <= 63
    assert np.max(np.abs(written - wanted)) <= step.max() / 2 + 1e-12
    np.testing.assert_array_equal(host.read_weights("w"), written)


def test_weights_are_clipped_to_the_full_scale(host):
    written = host.write_weights("w", np.full((4, 8), 5.0))
    np.testing.assert_allclose(written, host.read_params("out", "weight_full_scale")[None, :].repeat(4, 0))


def test_ideal_profile_stores_floats(rng):
    host = HostInterface(layer_netlist(n_in=4, n_out=8, profile="ideal"))
    wanted = rng.uniform(-1.0, 1.0, (4, 8))
    np.testing.assert_array_equal(host.write_weights("w", wanted), wanted)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_and_old_weights_stay(host, bad):
    before = host.read_weights("w")
    values = before.copy()
    values[1, 2] = bad
    with pytest.raises(WriteError, match="non-finite"):
        host.write_weights("w", values)
    np.testing.assert_array_equal(host.read_weights("w"), before)


def test_wrong_shape_and_unknown_names_are_refused(host):
    with pytest.raises(WriteError, match="shape"):
        host.write_weights("w", np.zeros((3, 8)))
    with pytest.raises(WriteError, match="unknown projection"):
        host.write_weights("nope", np.zeros((4, 8)))
    with pytest.raises(WriteError, match="unknown parameter"):
        host.write_params("out", "tau_nope", 1.0)


def test_parameter_writes_are_quantized_to_codes(host):
    written = host.write_params("out", "tau_mem_us", 7.3)
    codes = host.read_codes("out", "tau_mem_us")
    assert np.all(codes == np.rint(codes)) and codes.max() <= 1022
    assert np.all(np.abs(written - 7.3) / 7.3 < 0.005)  # log-spaced 10-bit codes: < 0.5 % steps
    with pytest.raises(WriteError):
        host.write_params("out", "v_threshold", np.full(8, np.nan))


def test_parameter_writes_change_the_dynamics(host):
    a = host.run().spikes["out"]
    host.write_params("out", "v_threshold", 2.5)
    b = host.run().spikes["out"]
    assert len(b) < len(a)


def test_a_raising_transaction_leaves_weights_and_parameters_as_before(host, rng):
    w_before = host.read_weights("w")
    p_before = host.read_params("out", "tau_syn_exc_us")
    runs_before = host.runs_done
    with pytest.raises(RuntimeError):
        with host.transaction():
            host.write_weights("w", rng.uniform(-1, 1, (4, 8)))
            host.write_params("out", "tau_syn_exc_us", 3.0)
            host.run()
            raise RuntimeError("rule failed")
    np.testing.assert_array_equal(host.read_weights("w"), w_before)
    np.testing.assert_array_equal(host.read_params("out", "tau_syn_exc_us"), p_before)
    assert host.runs_done == runs_before
    # and the emulator sees the restored configuration too
    np.testing.assert_array_equal(host.run().spikes["out"].time_us, HostInterface(host.netlist).run().spikes["out"].time_us)


def test_a_successful_transaction_keeps_its_writes(host, rng):
    with host.transaction():
        written = host.write_weights("w", rng.uniform(-1, 1, (4, 8)))
    np.testing.assert_array_equal(host.read_weights("w"), written)


def test_run_inputs_are_checked(host):
    with pytest.raises(RunError, match="unknown input"):
        host.run({"nope": SpikeEvents.empty(4)})
    with pytest.raises(RunError, match="channels"):
        host.run({"in": SpikeEvents.empty(3)})


def test_projection_info_reports_delay(host):
    info = host.projection("w")
    assert info.shape == (4, 8) and info.sign == "signed"
    assert np.all(info.delay_us > 0)  # bss2 routes have latency


# ---------------------------------------------------------------- copies, nested and parallel runs


def _spikes(result):
    return {name: (ev.batch, ev.neuron, ev.time_us) for name, ev in result.spikes.items()}


def _assert_same_spikes(a, b):
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)


def test_a_pickled_host_runs_like_the_original_before_and_after_a_run():
    import pickle

    host = HostInterface(layer_netlist(n_in=8, n_out=32, profile="bss2", rate_hz=4e5, duration_us=40.0))
    fresh = pickle.loads(pickle.dumps(host))
    first = host.run()
    assert len(first.spikes["out"]) > 20
    _assert_same_spikes(_spikes(fresh.run()), _spikes(first))
    host.write_weights("w", host.read_weights("w") * 1.5)
    after = pickle.loads(pickle.dumps(host))  # after a run and a write: same configuration and run count
    assert after.runs_done == host.runs_done == 1
    _assert_same_spikes(_spikes(after.run()), _spikes(host.run()))


def test_a_run_started_from_a_timer_callback_leaves_the_outer_run_intact():
    """A run started inside another run's timer callback on the same host has its own calendar,
    buffers and correlation sensors: the outer run's spikes and sensor readings are those of the
    same run without the nested one, and the nested run is the host's next run."""
    from chip.netlist import Record

    nl = layer_netlist(n_in=8, n_out=16, profile="bss2", rate_hz=4e5, duration_us=30.0)
    record = Record(spikes=("out",), correlations=("w",))

    reference = HostInterface(nl)
    ref_reads = []
    ref_outer = reference.run(record=record, timer=(10.0, lambda t: ref_reads.append(
        reference.read_correlations("w").causal.copy())))
    ref_next = reference.run(record=record)

    host = HostInterface(nl)
    reads, nested = [], []

    def timer(t):
        if not nested:
            nested.append(host.run(record=record))
        reads.append(host.read_correlations("w").causal.copy())

    outer = host.run(record=record, timer=(10.0, timer))
    assert len(ref_outer.spikes["out"]) > 10 and len(reads) == len(ref_reads) == 3
    _assert_same_spikes(_spikes(outer), _spikes(ref_outer))
    for a, b in zip(reads, ref_reads):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outer.correlations["w"].causal, ref_outer.correlations["w"].causal)
    _assert_same_spikes(_spikes(nested[0]), _spikes(ref_next))
    np.testing.assert_array_equal(nested[0].correlations["w"].acausal, ref_next.correlations["w"].acausal)
    assert host.runs_done == 2
    with pytest.raises(RunError, match="no sensors"):
        host.read_correlations("w")  # no run in progress any more


def test_two_threads_running_one_host_do_not_disturb_each_other():
    from concurrent.futures import ThreadPoolExecutor

    host = HostInterface(layer_netlist(n_in=8, n_out=64, profile="ideal", rate_hz=4e5, duration_us=60.0))
    # a progress callback makes each run many calls of the kernel, so the two runs interleave
    jobs = [dict(batch=2, duration_us=60.0), dict(batch=3, duration_us=45.0)] * 3
    expected = [_spikes(host.run(noise_seed=5, progress=lambda f: None, **job)) for job in jobs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda job: _spikes(host.run(noise_seed=5, progress=lambda f: None, **job)), jobs))
    for a, b in zip(got, expected):
        _assert_same_spikes(a, b)
