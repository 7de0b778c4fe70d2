"""Data that flows between the trainer and rule plugins (the hooks' arguments and results).

Small frozen dataclasses; numpy arrays inside. A rule author needs these and ``chip.host`` —
nothing else from chipctl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chip.events import SpikeEvents

__all__ = ["Batch", "RunRequest", "LossTerm", "Gradients", "RuleContext", "Rule"]


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch of a task: the input events per input source, the labels, the sample indices
    into the data set, whether it is a training or an evaluation batch, and, for tasks that have
    them (an autoencoder's), the targets a reconstruction is compared with ((batch, ...), or None)."""

    inputs: dict[str, SpikeEvents]
    labels: np.ndarray
    indices: np.ndarray
    training: bool = True
    targets: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class RunRequest:
    """What a rule needs from a run. ``membrane``: population -> neuron indices (CADC);
    ``correlations``: projections whose sensors to read; ``timer_us``: call chipctl_during_run
    this often (None: no timer); ``membrane_period_us``: the longest CADC sample period the rule
    can use (None: the ADC's minimum; the trainer takes the shortest any rule asks for)."""

    membrane: dict[str, tuple[int, ...]] = field(default_factory=dict)
    correlations: tuple[str, ...] = ()
    timer_us: float | None = None
    membrane_period_us: float | None = None


@dataclass(frozen=True, eq=False)
class LossTerm:
    """An additive loss term. ``grads`` maps (kind, population) to d term / d observable, kinds:
    "spike_counts" (batch, n), "membrane" (batch, samples, n of the recorded trace),
    "first_spike_times" (batch, n)."""

    name: str
    value: float
    grads: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Gradients:
    """d loss / d weight (projection -> (n_pre, n_post), model units) and d loss / d parameter
    ((population, parameter) -> (n,)), averaged over the batch; the batch loss and metrics
    (e.g. ``accuracy``, ``predictions``)."""

    loss: float
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class RuleContext:
    """Handed to every hook: the chip (``host``), this rule's options, a seeded generator, where
    training stands, the task's wiring (``input``, ``output`` names, ``train`` block), and a
    ``progress`` callback for long hooks (None when nobody listens)."""

    host: Any
    options: dict[str, Any]
    rng: np.random.Generator
    train: dict[str, Any]
    epoch: int = 0
    step: int = 0
    input: str | None = None
    output: str | None = None
    log: list = field(default_factory=list)
    progress: Any = None  # fn(fraction, status) a long hook may report to (chipctl calibrate's bar), or None


class Rule:
    """Optional base class: a rule is any object with hook implementations. Class attributes
    ``name``, ``description`` and ``options`` (name -> (default, help)) are shown by
    ``chipctl rules`` and used to fill ``context.options``."""

    name: str = ""
    description: str = ""
    options: dict[str, tuple[Any, str]] = {}
