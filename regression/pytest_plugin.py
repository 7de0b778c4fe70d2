"""The pytest plugin: a netlist with an ``expect:`` section is a test.

Job: registered through the ``pytest11`` entry point (``chipctl = "regression.pytest_plugin"``),
it makes ``pytest some/folder`` collect every ``*.yaml``/``*.yml`` file with a top-level
``expect:`` key as a :class:`NetlistFile` with one :class:`NetlistItem` per expectation run
(``file.yaml::bss2``), following pytest's "Working with non-python tests" pattern. Collection reads
the text and parses the YAML only (no validation, no spike files, no mapping); the netlist is
loaded and run when the item runs. A failure prints the runner's report: which expectation,
expected vs actual, and where the spikes first diverge from the golden ones.

Boundary: a thin front over :func:`regression.runner.run_netlist`; nothing here runs a chip
or judges a result. Options: ``--chipctl-update-golden`` rewrites the golden entries of the
collected runs instead of failing on them. Items carry the marker ``netlist`` (and ``slow`` for
runs with ``slow: true``).
"""

from __future__ import annotations

import pytest

__all__ = ["NetlistFile", "NetlistItem", "NetlistRegressionFailure"]

_SUFFIXES = (".yaml", ".yml")
_GOLDEN_SUFFIX = ".golden.yaml"  # regression.golden.GOLDEN_SUFFIX, not imported to keep startup light


def pytest_addoption(parser):
    group = parser.getgroup("chipctl", "chipctl netlist regression tests")
    group.addoption("--chipctl-update-golden", action="store_true", default=False,
                    help="Write each collected netlist run's spikes as its golden entry (then check).")


def pytest_configure(config):
    config.addinivalue_line("markers", "netlist: a netlist regression test (a YAML netlist with expect:)")


def pytest_collect_file(parent, file_path):
    if file_path.suffix not in _SUFFIXES or file_path.name.endswith(_GOLDEN_SUFFIX):
        return None
    from .runner import expect_line

    line = expect_line(file_path)
    if line is None:
        return None
    return NetlistFile.from_parent(parent, path=file_path, expect_line=line)


class NetlistRegressionFailure(Exception):
    """Raised by an item whose run failed; carries the runner's outcome."""

    def __init__(self, outcome):
        super().__init__(outcome.first_problem())
        self.outcome = outcome


class NetlistFile(pytest.File):
    """A netlist with expectations: one item per expectation run."""

    def __init__(self, *, expect_line: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.expect_line = expect_line

    def collect(self):
        import yaml

        from .expectations import run_headers

        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raw = None
        headers = run_headers(raw)
        if not headers:
            # too malformed to name its runs: one item that reports the loader's FILE:LINE message
            item = NetlistItem.from_parent(self, name="expect", run=None)
            item.add_marker("netlist")
            yield item
            return
        for name, slow in headers:
            item = NetlistItem.from_parent(self, name=name, run=name)
            item.add_marker("netlist")
            if slow:
                item.add_marker("slow")
            yield item


class NetlistItem(pytest.Item):
    """One expectation run of a netlist, run on the emulator when the test runs."""

    def __init__(self, *, run: str | None, **kwargs):
        super().__init__(**kwargs)
        self.run = run

    def runtest(self):
        from .runner import run_netlist

        update = self.config.getoption("chipctl_update_golden", default=False)
        outcomes = run_netlist(self.path, runs=None if self.run is None else [self.run], update_golden=update)
        for outcome in outcomes:
            if not outcome.passed:
                raise NetlistRegressionFailure(outcome)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, NetlistRegressionFailure):
            # the first line is what pytest's short summary shows after the test id
            outcome = excinfo.value.outcome
            return f"{outcome.headline()}\n{outcome.report()}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, self.parent.expect_line - 1, f"netlist {self.path.name}, run {self.name}"
