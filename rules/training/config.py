"""The ``train:`` block of a netlist: its reader and the configuration it yields.

Job: :func:`parse_train` validates a netlist's ``train:`` block — its keys against the schema form
``train`` (and ``train_optimizer``) of ``chip.netlist.schema``, its values with the netlist's
validation kit (``chip.netlist.validation.FieldReader``) — and returns a :class:`TrainConfig`;
errors read ``FILE:LINE: train.path: what is wrong``. :func:`validate_train` also builds the task
(``rules.tasks.make_task``), which checks the task's own fields (``encoding``, sizes), so a typo
anywhere in the block is found without training (``chipctl validate``).

Boundary: no training here (``trainer.py``), no rule loading (``rules.manager``: rule names and
their options are checked when the rules are registered; ``train.options.<rule>`` is free-form).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chip.netlist import Netlist
from chip.profiles import ANALOG_PARAMETERS
from chip.netlist.schema import TRAIN_DECODERS, TRAIN_TASKS
from chip.netlist.validation import FieldReader, show_value

from ..tasks import make_task

__all__ = ["TrainConfig", "parse_train", "validate_train", "TrainReader", "DECODERS"]

DECODERS = TRAIN_DECODERS
#: neuron parameters as written in ``train.optimizer.lr_params`` -> the host's names
PARAM_NAMES = {(name[:-3] if name.endswith("_us") else name): name for name in ANALOG_PARAMETERS}


@dataclass(frozen=True)
class TrainConfig:
    task: str
    input: str
    output: str
    rules: tuple[str, ...]
    options: dict[str, dict]
    lr: float = 5e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    gamma: float = 1.0  # learning rate factor per epoch
    clip: float | None = None  # elementwise gradient clip before Adam
    ema: float | None = None  # decay of the moving average of the master weights used for testing
    epochs: int = 10
    batch_size: int = 64
    test_batch_size: int = 250
    seed: int = 0
    checkpoint: str | None = None
    decode: str = "first_spike"
    decode_window: tuple[float, float] | None = None
    lr_params: dict[str, float] = field(default_factory=dict)  # parameter (host name) -> Adam step
    eval_every: int = 1
    weight_clip: bool = True
    raw: dict = field(default_factory=dict)


class TrainReader(FieldReader):
    """Reads a netlist's ``train:`` block with the netlist kit (times in the netlist's timescale)."""

    def __init__(self, netlist: Netlist):
        super().__init__(**FieldReader.netlist_args(netlist))
        self.netlist = netlist

    def read(self) -> TrainConfig:
        nl = self.netlist
        if nl.train is None:
            self.fail("train", "this netlist has no train: block (see docs/writing-a-rule.md)")
        train = self.keys(nl.train, "train", "train", "a mapping (the train block)")
        task = self.choice(train.get("task", TRAIN_TASKS[0]), "train.task", TRAIN_TASKS, "task")
        input_name = self.reference(train["input"], "train.input", nl.inputs, "input")
        output = self.reference(train["output"], "train.output", nl.populations, "population")
        rules = train.get("rules", ["eventprop"])
        if isinstance(rules, str):
            rules = [rules]
        if isinstance(rules, list) and not rules:
            self.fail("train.rules", "no rules: training needs at least one rule (leave 'rules' out for eventprop)")
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            self.fail("train.rules", f"expected a list of rule names, got {show_value(train.get('rules'))}")
        options = self.mapping(train.get("options") or {}, "train.options", "a mapping rule -> options")
        for rule, opts in options.items():  # each rule's own options are free-form
            self.mapping(opts or {}, f"train.options.{rule}", "a mapping of the rule's options")
        opt = self.keys(train.get("optimizer") or {}, "train.optimizer", "train_optimizer")
        self.choice(opt.get("name", "adam"), "train.optimizer.name", ("adam",), "optimizer")
        betas = opt.get("betas", [0.9, 0.999])
        if not isinstance(betas, list) or len(betas) != 2:
            self.fail("train.optimizer.betas", f"expected [beta1, beta2], got {show_value(betas)}")
        betas = tuple(self.number(b, f"train.optimizer.betas.{i}", minimum=0.0) for i, b in enumerate(betas))

        def count(key: str, default: int, minimum: int = 1) -> int:
            return self.integer(train.get(key, default), f"train.{key}", minimum=minimum)

        lr_params = {}
        for key, value in self.mapping(opt.get("lr_params") or {}, "train.optimizer.lr_params",
                                       "a mapping parameter -> step").items():
            name = PARAM_NAMES.get(key)
            if name is None:
                self.fail(f"train.optimizer.lr_params.{key}", f"unknown neuron parameter {key!r}; expected one of "
                                                              f"{', '.join(PARAM_NAMES)}")
            lr_params[name] = self.number(value, f"train.optimizer.lr_params.{key}", minimum=0.0)
        window = train.get("decode_window")
        if window is not None:
            if not isinstance(window, list) or len(window) != 2:
                self.fail("train.decode_window", f"expected [t0, t1], got {show_value(window)}")
            window = tuple(self.time(v, f"train.decode_window.{i}") for i, v in enumerate(window))
            if window[1] <= window[0]:
                self.fail("train.decode_window", f"end {window[1]:g} us is not after start {window[0]:g} us")
        checkpoint = train.get("checkpoint")
        if checkpoint is not None:
            checkpoint = self.string(checkpoint, "train.checkpoint")
        return TrainConfig(
            task=task, input=input_name, output=output, rules=tuple(rules),
            options={k: dict(v or {}) for k, v in options.items()},
            lr=self.number(opt.get("lr", 5e-3), "train.optimizer.lr", minimum=0.0),
            betas=betas, eps=self.number(opt.get("eps", 1e-8), "train.optimizer.eps", minimum=0.0),
            gamma=self.number(opt.get("gamma", 1.0), "train.optimizer.gamma", minimum=0.0),
            clip=(None if opt.get("clip") is None
                  else self.number(opt["clip"], "train.optimizer.clip", minimum=0.0)),
            ema=(None if opt.get("ema") is None else self._decay(opt["ema"], "train.optimizer.ema")),
            epochs=count("epochs", 10),
            batch_size=count("batch_size", 64),
            test_batch_size=count("test_batch_size", 250),
            seed=self.seed(train.get("seed", 0), "train.seed"),
            checkpoint=checkpoint,
            decode=self.choice(train.get("decode", TRAIN_DECODERS[0]), "train.decode", TRAIN_DECODERS, "decoder"),
            decode_window=window, lr_params=lr_params,
            eval_every=count("eval_every", 1),
            weight_clip=self.boolean(train.get("weight_clip", True), "train.weight_clip"),
            raw=dict(train),
        )

    def _decay(self, value, path: str) -> float:
        value = self.number(value, path, minimum=0.0)
        if value >= 1.0:
            self.fail(path, f"must be < 1 (a decay per batch), got {value:g}")
        return value


def parse_train(netlist: Netlist) -> TrainConfig:
    """Validate the netlist's ``train:`` block; errors point at its file and line."""
    return TrainReader(netlist).read()


def validate_train(netlist: Netlist) -> TrainConfig:
    """The whole ``train:`` block: :func:`parse_train` and the task's own fields (``make_task``)."""
    reader = TrainReader(netlist)
    config = reader.read()
    make_task(config.raw, netlist, reader=reader)
    return config
