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
    assert np.abs(codes).max() <= 63
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
