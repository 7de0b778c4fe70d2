"""chipctl's chip: netlists, their mapping onto the emulated core, the emulator and its host interface.

What is public — what rules, tests, the CLI and users may import:

- ``chip.host``: ``HostInterface`` (the one door to a loaded chip: run, read and write weights,
  parameters and codes, transactions, ``export_config`` / ``import_config``), ``RunResult``,
  ``Trace``, ``Correlation``, ``ProjectionInfo``;
- ``chip.netlist``: the logical model (one dataclass per kind) and ``load_netlist``,
  ``load_netlist_text``, ``dump_netlist``, ``netlist_to_dict``, ``netlist_schema``;
- ``chip.mapping``: ``map_netlist``, ``graph_summary``, ``write_graphml`` and the result types;
- ``chip.events`` (``SpikeEvents``), ``chip.errors``, ``chip.profiles``, ``chip.units``,
  ``chip.analysis`` (spike-train metrics) and ``chip.output`` (run summaries and files).

Internal — used by ``chip.host`` only, and kept so by an import-contract test:
``chip.emulator`` (tables, compiled kernel, event fabric, run loop), ``chip.state`` (the
configuration memory), ``chip.die`` (the die's deviations), ``chip.readout`` (ADC and sensor models)
and the submodules of ``chip.mapping``. Nothing is imported here, so ``import chip`` stays cheap.
"""
