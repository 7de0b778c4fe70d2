"""Netlist-level regression tests: a netlist plus its expected behaviour is a test.

A netlist's ``expect:`` section names runs (chip profile, seeds, duration) and the checks each
must pass — spike counts and rates, first-spike order and class, event drops, membrane
statistics, and distance to the golden spikes kept beside the netlist in ``<netlist>.golden.yaml``.
``pytest FOLDER`` collects such netlists through the plugin in :mod:`.pytest_plugin`;
``chipctl test PATHS`` runs them without pytest. See docs/regression-tests.md.

Modules: :mod:`.bounds` (quantities and bounds), :mod:`.checks` (what each check judges),
:mod:`.expectations` (the expect block: runs and their checks), :mod:`.golden` (golden files),
:mod:`.runner` (find, run, report, update goldens), :mod:`.pytest_plugin` (the pytest front end).
The chip is used through ``chip.host`` only; spike metrics come from ``chip.analysis``.
"""

from __future__ import annotations

import importlib

# name -> module; resolved on first use, so that loading the pytest plugin (every pytest session
# where chipctl is installed) does not import the emulator
_EXPORTS = {
    "Bound": "bounds",
    "Failure": "checks",
    "RunSpec": "expectations",
    "parse_expect": "expectations",
    "GoldenRun": "golden",
    "golden_path": "golden",
    "read_golden": "golden",
    "write_golden": "runner",
    "RunOutcome": "runner",
    "discover": "runner",
    "run_netlist": "runner",
    "summary_line": "runner",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(list(globals()) + __all__)
