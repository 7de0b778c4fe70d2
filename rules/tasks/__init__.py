"""Tasks: where training data comes from and how samples become input spikes.

A task knows its data set (generated offline, no downloads) and its spike encoding; the trainer
asks it for batches. Built in: ``yinyang`` (Kriener et al., latency code with a bias spike,
:mod:`.yinyang`). ``make_task`` builds the task a netlist's ``train:`` block names.
"""

from __future__ import annotations

from chip.errors import NetlistError

from .yinyang import YinYangTask

__all__ = ["YinYangTask", "make_task", "TASKS"]




TASKS = ("yinyang",)


def make_task(train: dict, netlist, *, field_line) -> YinYangTask:
    """Build the task named in ``train.task`` for this netlist; errors name the train field."""
    from chip.units import UnitError, parse_time_us

    name = train.get("task", "yinyang")
    if name not in TASKS:
        raise NetlistError(f"unknown task {name!r}; built in: {', '.join(TASKS)}", **field_line("train.task"))
    input_name = train["input"]
    size = netlist.inputs[input_name].size
    enc = dict(train.get("encoding") or {})
    factor = netlist.time_factor_us()

    def time_of(key, default_us):
        if key not in enc:
            return default_us
        try:
            return parse_time_us(enc[key]) * factor
        except UnitError as exc:
            raise NetlistError(str(exc), **field_line(f"train.encoding.{key}")) from None

    unknown = set(enc) - {"t_early", "t_late", "bias", "duplicate"}
    if unknown:
        raise NetlistError(f"unknown field {sorted(unknown)[0]!r}; expected t_early, t_late, bias, duplicate",
                           **field_line("train.encoding"))
    duplicate = int(enc.get("duplicate", max(1, size // 5)))
    if 5 * duplicate != size:
        raise NetlistError(f"the yinyang task needs an input of 5 × duplicate = {5 * duplicate} channels; "
                           f"input {input_name!r} has {size}", **field_line("train.input"))
    def count(key, default):
        value = train.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NetlistError(f"expected a whole number >= 1, got {value!r}", **field_line(f"train.{key}"))
        return value

    return YinYangTask(input_size=size, t_early_us=time_of("t_early", 2.0), t_late_us=time_of("t_late", 22.0),
                       bias_us=time_of("bias", 2.0), duplicate=duplicate,
                       train_size=count("train_size", 5000), test_size=count("test_size", 1000))
