"""Tasks: where training data comes from and how samples become input spikes.

A task knows its data set (generated offline or read from the user's files, no downloads) and its
spike encoding; the trainer asks it for batches (``data(split)`` -> (x, labels), ``encode(x)`` ->
``SpikeEvents``, ``n_classes``). Built in: ``yinyang`` (Kriener et al., latency code with a bias
spike, :mod:`.yinyang`), ``memory`` (a pattern, a noisy delay, a cue; :mod:`.memory`) and ``shd``
(Spiking Heidelberg Digits from HDF5 files the user brings; :mod:`.shd`) and ``digits`` (scikit-learn's
8×8 digits for autoencoders, rate or latency code, the image as the target; :mod:`.digits`) and
``mnist`` (the same for MNIST from an ``mnist.npz`` the user brings, pooled to fit; :mod:`.mnist`). ``make_task`` builds the task a netlist's ``train:`` block names, reading the
task's fields with the netlist's validation kit, so its errors point at the block's lines.
"""

from __future__ import annotations

from chip.netlist.schema import TRAIN_TASKS
from chip.netlist.validation import FieldReader

from .digits import CODINGS, DigitsTask
from .memory import MemoryTask
from .mnist import POOLS, SIDE, MnistTask, read_mnist
from .shd import SHDTask
from .yinyang import YinYangTask

__all__ = ["YinYangTask", "MemoryTask", "SHDTask", "DigitsTask", "MnistTask", "make_task", "TASKS"]

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


def _sizes(train, reader, defaults):
    return {f"{key}_size": reader.integer(train[f"{key}_size"], f"train.{key}_size", minimum=1)
            for key in ("train", "test") if f"{key}_size" in train} or defaults


def _window(raw, path, reader, default):
    if raw is None:
        return default
    if not isinstance(raw, list) or len(raw) != 2:
        reader.fail(path, "expected [start, end]")
    t0, t1 = (reader.time(v, f"{path}.{i}") for i, v in enumerate(raw))
    if t1 <= t0:
        reader.fail(path, f"end {t1:g} us is not after start {t0:g} us")
    return (t0, t1)


def _memory(train: dict, netlist, reader: FieldReader) -> MemoryTask:
    spec = reader.keys(train.get("memory") or {}, "train.memory", "train_memory")
    size = netlist.inputs[train["input"]].size
    p = "train.memory"
    kw = {}
    for key in ("classes", "pattern_channels", "cue_channels"):
        if key in spec:
            kw[key] = reader.integer(spec[key], f"{p}.{key}", minimum=1)
    if "active" in spec:
        kw["active"] = reader.number(spec["active"], f"{p}.active", minimum=0.0)
    for key in ("rate", "noise_rate"):
        if key in spec:
            kw[f"{key}_hz"] = reader.rate(spec[key], f"{p}.{key}")
    if "seed" in spec:
        kw["seed"] = reader.seed(spec["seed"], f"{p}.seed")
    kw["pattern_us"] = _window(spec.get("pattern"), f"{p}.pattern", reader, MemoryTask.pattern_us)
    kw["cue_us"] = _window(spec.get("cue"), f"{p}.cue", reader, MemoryTask.cue_us)
    task = MemoryTask(input_size=size, duration_us=netlist.duration_us,
                      **_sizes(train, reader, {}), **kw)
    need = task.pattern_channels + task.cue_channels
    if need > size:
        reader.fail("train.input", f"the memory task needs pattern_channels + cue_channels = {need} input channels; "
                                   f"input {train['input']!r} has {size}")
    if task.classes > 2 ** task.pattern_channels - 1:
        reader.fail(f"{p}.classes", f"{task.classes} classes need more than {task.pattern_channels} pattern channels")
    return task


def _shd(train: dict, netlist, reader: FieldReader) -> SHDTask:
    from pathlib import Path

    spec = reader.keys(train.get("shd") or {}, "train.shd", "train_shd")
    base = Path(netlist.source_path).parent if getattr(netlist, "source_path", None) else Path.cwd()
    paths = {}
    for key in ("train", "test"):
        path = Path(reader.string(spec[key], f"train.shd.{key}"))
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            reader.fail(f"train.shd.{key}", f"no file {str(path)!r} (the SHD files are not shipped: bring your own)")
        paths[key] = str(path)
    kw = {}
    if "time_scale" in spec:
        kw["time_scale_us"] = reader.time(spec["time_scale"], "train.shd.time_scale", positive=True)
    if "t_max" in spec:
        kw["t_max_us"] = reader.time(spec["t_max"], "train.shd.t_max", positive=True)
    return SHDTask(input_size=netlist.inputs[train["input"]].size, train_path=paths["train"], test_path=paths["test"],
                   **_sizes(train, reader, {}), **kw)


def _digits(train: dict, netlist, reader: FieldReader) -> DigitsTask:
    from .digits import PIXELS

    spec = reader.keys(train.get("digits") or {}, "train.digits", "train_digits")
    p = "train.digits"
    kw = {}
    if "coding" in spec:
        kw["coding"] = reader.choice(spec["coding"], f"{p}.coding", CODINGS, "coding")
    kw["window_us"] = _window(spec.get("window"), f"{p}.window", reader, DigitsTask.window_us)
    if "max_spikes" in spec:
        kw["max_spikes"] = reader.integer(spec["max_spikes"], f"{p}.max_spikes", minimum=1)
    if "seed" in spec:
        kw["seed"] = reader.seed(spec["seed"], f"{p}.seed")
    sizes = _sizes(train, reader, {})
    size = netlist.inputs[train["input"]].size
    if size != PIXELS:
        reader.fail("train.input", f"the digits task needs an input of {PIXELS} channels (8x8 pixels); "
                                   f"input {train['input']!r} has {size}")
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        reader.fail("train.task", "the digits task needs scikit-learn, which ships the 8x8 digits "
                                  "(pip install 'chipctl[digits]')")
    if sizes.get("train_size", 0) + sizes.get("test_size", DigitsTask.test_size) > 1797:
        reader.fail("train.train_size", "train_size + test_size exceed the 1797 digits")
    return DigitsTask(input_size=size, **sizes, **kw)


def _mnist(train: dict, netlist, reader: FieldReader) -> MnistTask:
    from pathlib import Path

    spec = reader.keys(train.get("mnist") or {}, "train.mnist", "train_mnist")
    p = "train.mnist"
    if "data" not in spec:
        reader.fail(p, "missing data: the mnist.npz you bring (MNIST is not shipped)")
    base = Path(netlist.source_path).parent if getattr(netlist, "source_path", None) else Path.cwd()
    path = Path(reader.string(spec["data"], f"{p}.data"))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        reader.fail(f"{p}.data", f"no file {str(path)!r} (MNIST is not shipped: bring your own mnist.npz)")
    kw = {}
    if "pool" in spec:
        kw["pool"] = reader.integer(spec["pool"], f"{p}.pool", minimum=1)
        if kw["pool"] not in POOLS:
            reader.fail(f"{p}.pool", f"expected a divisor of {SIDE} ({', '.join(map(str, POOLS))}), got {kw['pool']}")
    if "coding" in spec:
        kw["coding"] = reader.choice(spec["coding"], f"{p}.coding", CODINGS, "coding")
    kw["window_us"] = _window(spec.get("window"), f"{p}.window", reader, MnistTask.window_us)
    if "max_spikes" in spec:
        kw["max_spikes"] = reader.integer(spec["max_spikes"], f"{p}.max_spikes", minimum=1)
    sizes = _sizes(train, reader, {})
    size = netlist.inputs[train["input"]].size
    side = SIDE // kw.get("pool", MnistTask.pool)
    if size != side * side:
        reader.fail("train.input", f"the mnist task with pool {kw.get('pool', MnistTask.pool)} needs an input of "
                                   f"{side}x{side} = {side * side} channels; input {train['input']!r} has {size}")
    try:
        data = read_mnist(path)
    except ValueError as exc:
        reader.fail(f"{p}.data", str(exc))
    for key in ("train", "test"):
        if sizes.get(f"{key}_size", 0) > len(data[f"x_{key}"]):
            reader.fail(f"train.{key}_size", f"{sizes[f'{key}_size']} exceeds the {len(data[f'x_{key}'])} images "
                                            f"of x_{key} in {str(path)!r}")
    return MnistTask(input_size=size, path=str(path), **sizes, **kw)


#: task name -> builder (train block, netlist, reader) -> task
_BUILDERS = {"yinyang": _yinyang, "memory": _memory, "shd": _shd, "digits": _digits, "mnist": _mnist}
assert set(_BUILDERS) == set(TASKS), "every task name of the schema needs a builder"


def make_task(train: dict, netlist, *, reader: FieldReader | None = None, field_line=None):
    """Build the task named in ``train.task`` for this netlist; errors name the train field.

    ``reader``: the kit to read with (default: one for ``netlist``, in its timescale), so a caller
    that has read the rest of the block can pass its own. ``field_line`` is accepted for callers
    written against the earlier signature and not used: errors are located through the netlist.
    """
    reader = reader if reader is not None else FieldReader.for_netlist(netlist)
    name = reader.choice(train.get("task", TASKS[0]), "train.task", TASKS, "task")
    return _BUILDERS[name](train, netlist, reader)
