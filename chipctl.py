"""``import chipctl``: the public Python API in one namespace.

Job: re-export, by name, what a Python user of chipctl needs — loading a netlist
(``load_netlist``, ``load_netlist_text``), the host interface (``HostInterface``, ``RunResult``,
``Trace``, ``Correlation``, ``ProjectionInfo``), ``SpikeEvents``, the errors, the ``Trainer``,
the rule-author names of ``rules`` and the pictures (``plot_run``, ``run_figure``, ...).
Boundary: nothing is defined here; each name is imported from its home module on first use, so
``import chipctl`` stays cheap (no emulator, no numba, no matplotlib) until a name that needs them
is touched.

    import chipctl

    host = chipctl.HostInterface(chipctl.load_netlist("netlists/single_neuron.yaml"))
    print(len(host.run().spikes["neuron"]))
"""

from __future__ import annotations

import importlib

# name -> home module; resolved on first use
_EXPORTS = {
    # netlists
    "load_netlist": "chip.netlist",
    "load_netlist_text": "chip.netlist",
    # the host interface and what it returns
    "HostInterface": "chip.host",
    "RunResult": "chip.host",
    "Trace": "chip.host",
    "Correlation": "chip.host",
    "ProjectionInfo": "chip.host",
    "SpikeEvents": "chip.events",
    # errors
    "ChipctlError": "chip.errors",
    "NetlistError": "chip.errors",
    "MappingError": "chip.errors",
    "WriteError": "chip.errors",
    "RunError": "chip.errors",
    "RuleError": "chip.errors",
    "CheckpointError": "chip.errors",
    # training and rule plugins
    "Trainer": "rules.training",
    "hookimpl": "rules",
    "hookspec": "rules",
    "Rule": "rules",
    "RuleContext": "rules",
    "RunRequest": "rules",
    "Batch": "rules",
    "Gradients": "rules",
    "LossTerm": "rules",
    "RuleSet": "rules",
    "check_rule": "rules",
    # pictures (need the plot extra: matplotlib is imported when one is drawn)
    "plot_run": "pictures",
    "plot_training": "pictures",
    "plot_chip": "pictures",
    "run_figure": "pictures",
    "training_figure": "pictures",
    "chip_figure": "pictures",
    "load_run": "pictures",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
