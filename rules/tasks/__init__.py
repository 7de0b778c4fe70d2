"""Tasks: where training data comes from and how samples become input spikes.

A task knows its data set (generated offline, no downloads) and its spike encoding; the trainer
asks it for batches. Built in: ``yinyang`` (Kriener et al., latency code with a bias spike,
:mod:`.yinyang`). ``make_task`` builds the task a netlist's ``train:`` block names, reading the
task's fields with the netlist's validation kit, so its errors point at the block's lines.
"""

from __future__ import annotations

from chip.netlist.schema import TRAIN_TASKS
from chip.netlist.validation import FieldReader

from .yinyang import YinYangTask

__all__ = ["YinYangTask", "make_task", "TASKS"]

#: the task names ``train.task`` accepts (the schema's)
TASKS = TRAIN_TASKS


def _yinyang(train: dict, netlist, reader: FieldReader) -> YinYangTask:
    input_name = train["input"]
    size = netlist.inputs[input_name].size
    enc = reader.keys(train.get("encoding") or {}, "train.encoding", "train_encoding")

    def time_of(key, default_us):
        # hardware µs; negative times are not refused here (they were never)
        return reader.time(enc[key], f"train.encoding.{key}", minimum=None) if key in enc else default_us

    duplicate = reader.integer(enc.get("duplicate", max(1, size // 5)), "train.encoding.duplicate", minimum=1)
    if 5 * duplicate != size:
        reader.fail("train.input", f"the yinyang task needs an input of 5 × duplicate = {5 * duplicate} channels; "
                                   f"input {input_name!r} has {size}")

    def count(key, default):
        return reader.integer(train.get(key, default), f"train.{key}", minimum=1)

    return YinYangTask(input_size=size, t_early_us=time_of("t_early", 2.0), t_late_us=time_of("t_late", 22.0),
                       bias_us=time_of("bias", 2.0), duplicate=duplicate,
                       train_size=count("train_size", 5000), test_size=count("test_size", 1000))


#: task name -> builder (train block, netlist, reader) -> task
_BUILDERS = {"yinyang": _yinyang}
assert set(_BUILDERS) == set(TASKS), "every task name of the schema needs a builder"


def make_task(train: dict, netlist, *, reader: FieldReader | None = None, field_line=None) -> YinYangTask:
    """Build the task named in ``train.task`` for this netlist; errors name the train field.

    ``reader``: the kit to read with (default: one for ``netlist``, in its timescale), so a caller
    that has read the rest of the block can pass its own. ``field_line`` is accepted for callers
    written against the earlier signature and not used: errors are located through the netlist.
    """
    reader = reader if reader is not None else FieldReader.for_netlist(netlist)
    name = reader.choice(train.get("task", TASKS[0]), "train.task", TASKS, "task")
    return _BUILDERS[name](train, netlist, reader)
