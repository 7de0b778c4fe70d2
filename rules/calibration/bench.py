"""The calibration bench: the netlist a calibration measures a chip with.

Job: one population on every circuit of the chip (or on the first ``size``), and a stimulus input
whose channels reach every neuron through one excitatory and one inhibitory synapse row each —
what the measurements of ``rules.calibration.measure`` drive the membranes with (PSPs, a lift of
the membrane before its decay). Boundary: only a netlist; the weights and parameters are the
measurements' to write.
"""

from __future__ import annotations

from chip.netlist import Netlist, load_netlist_text
from chip.profiles import ChipProfile, get_profile

__all__ = ["bench_netlist", "POPULATION", "STIMULUS", "EXCITATORY", "INHIBITORY", "STIMULUS_CHANNELS"]

POPULATION = "core"
STIMULUS = "stim"
EXCITATORY = "stim_exc"
INHIBITORY = "stim_inh"
STIMULUS_CHANNELS = 4


def bench_netlist(profile: str | ChipProfile = "bss2", *, die_seed: int | None = None,
                  noise_seed: int | None = None, size: int | None = None, params: dict | None = None,
                  calibration: str | None = None) -> Netlist:
    """The bench on a chip: ``profile`` by name (its die and noise seeds replaced when given) or a
    whole ``ChipProfile``; the population covers every circuit unless ``size`` says fewer, with
    the nominal ``params`` given (parameter -> value, e.g. a calibration's targets).

    Without a ``calibration`` (the bench a calibration measures with) a value beyond what the
    nominal codes span is written at the edge of that span: it only starts the search, and which
    circuits reach the target is the calibration's to find and report per circuit. With one (a
    calibration file), the values are written as given and the netlist names the file."""
    chip = get_profile(profile) if isinstance(profile, str) else profile
    changes = {k: v for k, v in (("die_seed", die_seed), ("noise_seed", noise_seed)) if v is not None}
    chip = chip.replace(**changes) if changes else chip
    n = chip.total_neurons if size is None else int(size)
    params = dict(params or {})
    if calibration is None:
        params = {name: min(max(value, chip.parameter_range(name)[0]), chip.parameter_range(name)[1])
                  for name, value in params.items()}
    empty = "[" + ", ".join("[]" for _ in range(STIMULUS_CHANNELS)) + "]"
    written = ", ".join(f"{name[:-3]}: {value!r} us" if name.endswith("_us") else f"{name}: {value!r}"
                        for name, value in params.items())
    text = f"""
name: calibration_bench
description: one population on the chip's circuits and a stimulus input reaching all of them
duration: 10 us
chip: {{profile: {chip.name}}}
populations:
  {POPULATION}: {{size: {n}, params: {{{written}}}}}
inputs:
  {STIMULUS}: {{size: {STIMULUS_CHANNELS}, type: spikes, times: {empty}}}
projections:
  {EXCITATORY}: {{pre: {STIMULUS}, post: {POPULATION}, connectivity: all_to_all, sign: excitatory, weights: 0}}
  {INHIBITORY}: {{pre: {STIMULUS}, post: {POPULATION}, connectivity: all_to_all, sign: inhibitory, weights: 0}}
record:
  spikes: [{POPULATION}]
"""
    netlist = load_netlist_text(text, filename="<calibration bench>")
    netlist = netlist.with_chip(chip)
    return netlist if calibration is None else netlist.replace(calibration=str(calibration))
