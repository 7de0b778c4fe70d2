"""Property-based fuzzing (hypothesis): only chipctl's own errors, each one line at the command
line, and no partial writes.

- structure-aware mutations of the shipped netlists (a value replaced by a wrong type, an extreme
  number, a huge size; a key removed or added) through ``chipctl validate``: exit 0, or exit 2 and
  one line naming the file;
- the units parser: a finite number or a UnitError, for any text;
- host writes with NaN, inf, huge values and wrong shapes: a WriteError and nothing written, or
  the values written;
- rules whose hooks raise at random points, or return NaN gradients: a RuleError naming the rule,
  the chip and the optimizer as before the batch.

The default profile runs a bounded number of examples, derandomized (the same ones every time);
``--hypothesis-profile=slow`` runs many more with fresh draws (see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chip.errors import ChipctlError, RuleError, WriteError
from chip.host import PARAMETERS, HostInterface
from chip.netlist import load_netlist, load_netlist_text
from chip.units import UnitError, parse_number, parse_rate_hz, parse_time_us, parse_voltage_v

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["single_neuron.yaml", "yinyang_ideal.yaml", "yinyang_bss2.yaml", "overload.yaml"]
TREES = {name: yaml.safe_load((ROOT / "netlists" / name).read_text()) for name in SHIPPED}


# ---------------------------------------------------------------------- netlist mutations
def _paths(tree, prefix=()):
    """Every (path) into a nested dict/list tree, the root excluded."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        return
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


def _parent(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    return node


HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e400 us", "-1 us", "nan us", "inf Hz", "10 parsecs", "1e9 s", "1e30 Hz", "", "all", "0",
                     "1e308 s", "0.1 us", "∞", "\x00", "${HOME}", "../../etc/passwd", "100000000", "-0"]),
    st.text(max_size=20),
    st.lists(st.integers(-5, 5), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=3),
    st.just(10**9), st.just(2**31), st.just([[1e300, -1e300]]),
)


@st.composite
def mutated_netlist(draw):
    name = draw(st.sampled_from(SHIPPED))
    tree = copy.deepcopy(TREES[name])
    paths = list(_paths(tree))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(tree))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(tree, path)
        kind = draw(st.sampled_from(["replace", "remove", "add", "huge_size"]))
        if kind == "replace":
            parent[path[-1]] = draw(HOSTILE_VALUES)
        elif kind == "remove":
            del parent[path[-1]]
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "sizee", "weigths", "duration", "batch", "seed"]))] = \
                draw(HOSTILE_VALUES)
        elif kind == "huge_size":
            node = parent[path[-1]]
            if isinstance(node, dict):
                node[draw(st.sampled_from(["size", "batch", "rate", "duration"]))] = draw(
                    st.sampled_from([10**6, 10**9, 10**18, "1 MHz", "1e6 s", 2**62]))
    return name, tree


def _cli(args: list[str]) -> tuple[int, str, str]:
    from cli import app

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app(args=args, prog_name="chipctl")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_netlist())
def test_mutated_shipped_netlists_validate_or_fail_in_one_line(case):
    name, tree = case
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        # a file input stays reachable from the copy
        for npz in ("yinyang_batch.npz", "yinyang_batch_0to12.npz"):
            (Path(tmp) / npz).symlink_to(ROOT / "netlists" / npz)
        code, out, err = _cli(["validate", str(path)])
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith((str(path), "chipctl: ")), lines[0]
        assert out == ""


# ---------------------------------------------------------------------- units
UNITISH = st.one_of(
    st.text(max_size=30),
    st.builds(lambda n, u: f"{n} {u}", st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                               st.integers(-(10**400), 10**400), st.text(max_size=5)),
              st.sampled_from(["us", "µs", "ns", "ms", "s", "Hz", "kHz", "MHz", "V", "mV", "", "parsec"])),
    st.integers(-(10**400), 10**400), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2),
)


@given(UNITISH)
def test_units_parser_gives_a_finite_number_or_a_unit_error(value):
    for parse in (parse_time_us, parse_rate_hz, parse_voltage_v, parse_number):
        try:
            got = parse(value)
        except UnitError as exc:
            assert "\n" not in str(exc) or "\n" in repr(value)
            continue
        assert isinstance(got, float) and math.isfinite(got), (parse.__name__, value, got)


# ---------------------------------------------------------------------- host writes
HOST_TEXT = """
duration: 20 us
chip: {profile: bss2}
populations:
  out: {size: 3, params: {weight_full_scale: 2}}
inputs:
  stim: {size: 2, type: spikes, times: [[1 us], [2 us]]}
projections:
  stim_out: {pre: stim, post: out, sign: signed, weights: 0.5}
"""
_HOST = HostInterface(load_netlist_text(HOST_TEXT))

ELEMENT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(1e308), st.just(-1e308),
                    st.integers(-(2**40), 2**40))
SHAPES = st.sampled_from([(), (3,), (2,), (2, 3), (3, 2), (1, 3), (2, 3, 1), (0,), (6,)])


@st.composite
def arrays(draw):
    shape = draw(SHAPES)
    n = int(np.prod(shape)) if shape else 1
    values = draw(st.lists(ELEMENT, min_size=n, max_size=n))
    return np.array(values, dtype=np.float64).reshape(shape)


def _state(host):
    return ({k: v.copy() for k, v in host.state.codes.items()},
            {k: v.copy() for k, v in host.state.exc_code.items()}, {k: v.copy() for k, v in host.state.inh_code.items()})


def _same(a, b):
    return all(a[i].keys() == b[i].keys() and all(np.array_equal(a[i][k], b[i][k]) for k in a[i]) for i in range(3))


@given(st.sampled_from(["weights", "params", "codes", "weight_codes"]), st.sampled_from(PARAMETERS), arrays(), arrays())
def test_host_writes_take_all_or_nothing(kind, param, values, other):
    host = _HOST
    before = _state(host)
    try:
        if kind == "weights":
            got = host.write_weights("stim_out", values)
        elif kind == "params":
            got = host.write_params("out", param, values)
        elif kind == "codes":
            got = host.write_codes("out", param, values)
        else:
            got = host.write_weight_codes("stim_out", values, other)
    except WriteError as exc:
        assert "\n" not in exc.one_line()
        assert _same(before, _state(host)), "a refused write changed the chip"
        return
    # accepted: only finite values of the right shape are, and what is stored is finite
    assert np.isfinite(values).all() and (kind != "weight_codes" or np.isfinite(other).all())
    for arr in (got if isinstance(got, tuple) else (got,)):
        assert np.all(np.isfinite(arr))
    # put the chip back for the next example
    host.state.codes.update(before[0])
    host.state.exc_code.update(before[1])
    host.state.inh_code.update(before[2])
    host.state.touch("test")


# ---------------------------------------------------------------------- rules that raise
TRAIN_TEXT = """
name: fuzz_train
duration: 30 us
chip: {profile: bss2}
populations:
  out: {size: 3, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 2}}
inputs:
  in: {size: 5, type: spikes, times: [[], [], [], [], []]}
projections:
  in_out: {pre: in, post: out, weights: {uniform: {low: 0.5, high: 1.5}, seed: 3}}
train:
  task: yinyang
  input: in
  output: out
  rules: [eventprop, "tests.test_fuzz:Saboteur"]
  encoding: {duplicate: 1}
  epochs: 1
  batch_size: 8
  train_size: 8
  test_size: 8
"""


class Saboteur:
    """A rule that raises in one chosen hook, or returns NaN gradients, when told to."""

    name = "saboteur"
    hook: str | None = None
    nan_gradients = False

    from rules import hookimpl as _hookimpl

    def _maybe(self, hook):
        if Saboteur.hook == hook:
            raise ZeroDivisionError(f"sabotage in {hook}")

    @_hookimpl
    def chipctl_run_request(self, context, batch):
        self._maybe("chipctl_run_request")

    @_hookimpl
    def chipctl_run_finished(self, context, batch, result):
        self._maybe("chipctl_run_finished")

    @_hookimpl
    def chipctl_loss_terms(self, context, batch, result):
        self._maybe("chipctl_loss_terms")

    @_hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        self._maybe("chipctl_gradients")
        if Saboteur.nan_gradients:
            from rules import Gradients

            return Gradients(loss=0.0, weights={"in_out": np.full((5, 3), np.nan)})
        return None

    @_hookimpl
    def chipctl_after_update(self, context, batch, written):
        self._maybe("chipctl_after_update")


@pytest.fixture(scope="module")
def trainer():
    from rules.training import Trainer

    return Trainer(load_netlist_text(TRAIN_TEXT))


HOOKS = ["chipctl_run_request", "chipctl_run_finished", "chipctl_loss_terms", "chipctl_gradients",
         "chipctl_after_update", "nan"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=12)
@given(hook=st.sampled_from(HOOKS), start=st.integers(0, 7))
def test_a_rule_that_raises_is_named_and_the_batch_leaves_no_trace(trainer, hook, start):
    Saboteur.hook, Saboteur.nan_gradients = (None, True) if hook == "nan" else (hook, False)
    try:
        before = _state(trainer.host)
        runs = trainer.host.runs_done
        adam = (copy.deepcopy(trainer.optimizer.m), copy.deepcopy(trainer.optimizer.v), trainer.optimizer.t)
        master = {k: v.copy() for k, v in trainer.master.items()}
        idx = np.arange(start, min(start + 4, len(trainer.y_train)))
        with pytest.raises(RuleError) as exc:
            trainer.train_step(trainer._batch(trainer.x_train, trainer.y_train, idx, training=True))
        assert exc.value.plugin == "saboteur", exc.value
        assert "\n" not in exc.value.one_line()
        if hook == "nan":
            assert "non-finite" in str(exc.value)
        assert _same(before, _state(trainer.host)), "the failed batch's writes stayed on the chip"
        assert trainer.host.runs_done == runs
        assert trainer.optimizer.t == adam[2] and trainer.master.keys() == master.keys()
        for key in master:
            np.testing.assert_array_equal(trainer.master[key], master[key])
    finally:
        Saboteur.hook, Saboteur.nan_gradients = None, False
