"""What a run will cost, estimated from the netlist before anything is allocated, and its limits.

Job: from a netlist (or a run request: batch, duration, record, input events) estimate the steps,
the neuron-steps (steps × batch × neuron circuits) and the memory of one run, part by part, and
refuse a run that would exceed the limits with one line naming the field that makes it big and
what it would need. Boundary: pure arithmetic on the netlist and the mapped chip; the host calls
``check_run`` before it realizes inputs or the emulator allocates anything, ``chipctl validate``
calls it too.

What memory scales with (bytes, conservative): the neuron state (B × N × 8 × 24: the state, its
next-step copy and the step's scratch), recorded membrane samples (B × samples × neurons × 8 × 3:
the kernel's buffer, the copy read through the ADC, the result), input events (each event about
200 bytes per target of its source: the events, the calendar's sorted copy and sort temporaries —
a Poisson source sends rate × time × size × batch of them), the event calendar (its horizon in
steps × 256 events × 32 bytes) and the membrane noise drawn ahead (at most 4 Mi draws × 8 bytes
× 3 chunks in flight). Spikes are not estimated (a run cannot know them in advance); they are
moved out of the step loop in blocks and cost 24 bytes each.

The limits (``Limits``): memory 4 GiB, 2e8 steps (40 s of hardware time at bss2's 0.2 µs step, a few minutes of
CPU) and 1e11 neuron-steps per run by default; the
environment variables ``CHIPCTL_MAX_MEMORY`` (bytes, or with a suffix K, M, G, T),
``CHIPCTL_MAX_STEPS`` and ``CHIPCTL_MAX_NEURON_STEPS`` change them, and ``chipctl … --force``
lifts them for one command (the run may then fail for want of memory, which is reported in one
line too).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field

from .errors import NetlistError

__all__ = ["Limits", "RunEstimate", "BudgetError", "estimate_run", "check_run", "human_bytes", "unlimited"]

_GIB = 1 << 30
BYTES_PER_EVENT = 200          # per event and target: events, calendar copy, sort temporaries
STATE_ARRAYS = 24              # float64 arrays of B × N a run holds (state, next state, scratch)
RING_EVENTS_PER_SLOT = 256     # the calendar's initial events per step slot (chip.emulator.core)
NOISE_DRAWS = 1 << 22          # membrane noise drawn per chunk (chip.emulator.core)


class BudgetError(NetlistError):
    """A run that would exceed the limits; names the field and what it would need."""


def human_bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def _parse_size(text: str) -> float:
    text = text.strip().upper().removesuffix("B")
    factor = 1
    for suffix, f in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if text.endswith(suffix):
            text, factor = text[:-1], f
            break
    value = float(text) * factor
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class Limits:
    """Per-run limits; ``None`` means unlimited (``Limits.none()``, what ``--force`` gives)."""

    max_bytes: float | None = 4 * _GIB
    max_steps: float | None = 2e8
    max_neuron_steps: float | None = 1e11

    @classmethod
    def none(cls) -> "Limits":
        return cls(None, None, None)

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """The defaults, changed by CHIPCTL_MAX_MEMORY / _STEPS / _NEURON_STEPS where set (none at
        all inside ``unlimited()``)."""
        if _forced and environ is None:
            return cls.none()
        env = os.environ if environ is None else environ
        values = {}
        for key, attr in (("CHIPCTL_MAX_MEMORY", "max_bytes"), ("CHIPCTL_MAX_STEPS", "max_steps"),
                          ("CHIPCTL_MAX_NEURON_STEPS", "max_neuron_steps")):
            text = env.get(key)
            if text is None or text == "":
                continue
            try:
                values[attr] = _parse_size(text)
            except ValueError:
                raise NetlistError(f"{key}={text!r} is not a positive number (e.g. 8G, 2e9)",
                                   file="<environment>") from None
        return cls(**values)


_forced: list[bool] = []


@contextlib.contextmanager
def unlimited():
    """Inside the block, runs are not checked against the limits (``--force``)."""
    _forced.append(True)
    try:
        yield
    finally:
        _forced.pop()


@dataclass
class RunEstimate:
    """One run's estimated size: ``steps``, ``neuron_steps`` and ``parts`` (field, bytes, what)."""

    steps: int
    neuron_steps: float
    parts: list[tuple[str, float, str]] = field(default_factory=list)

    @property
    def bytes(self) -> float:
        return sum(b for _, b, _ in self.parts)

    def largest(self) -> tuple[str, float, str]:
        return max(self.parts, key=lambda p: p[1])


def estimate_run(netlist, mapped=None, *, batch: int | None = None, duration_us: float | None = None,
                 record=None, given_inputs: dict | None = None) -> RunEstimate:
    """Estimate one run of ``netlist`` (with the run request's batch, duration, record and the
    input events given in place of the netlist's sources, where given)."""
    prof = netlist.chip
    B = int(netlist.batch if batch is None else batch)
    duration = float(netlist.duration_us if duration_us is None else duration_us)
    record = netlist.record if record is None else record
    given_inputs = given_inputs or {}
    dt = float(prof.step_us)
    steps_f = math.ceil(duration / dt - 1e-9) if math.isfinite(duration / dt) else math.inf
    N = mapped.n_circuits if mapped is not None else sum(p.size for p in netlist.populations.values())
    est = RunEstimate(steps=steps_f if steps_f == math.inf else int(steps_f), neuron_steps=float(steps_f) * B * N)
    batch_field = "batch"
    est.parts.append((batch_field, 8.0 * STATE_ARRAYS * B * max(N, 1), f"neuron state of batch {B} × {N} neurons"))

    for r, rec in enumerate(record.membrane):
        every = max(1, math.ceil(rec.period_us / dt - 1e-9))
        samples = float(steps_f) / every
        est.parts.append((f"record.membrane.{r}", 8.0 * 3 * B * samples * len(rec.neurons) + 8.0 * samples * len(rec.neurons),
                          f"{samples:.3g} membrane samples × {len(rec.neurons)} neurons × batch {B}"))

    targets: dict[str, int] = {}
    for proj in netlist.projections.values():
        targets[proj.pre] = targets.get(proj.pre, 0) + 1
    for name, source in netlist.inputs.items():
        per_event = BYTES_PER_EVENT * max(1, targets.get(name, 0))
        if name in given_inputs:
            ev = given_inputs[name]
            n = float(len(ev)) * (B if ev.batch_size == 1 else 1)
            est.parts.append((f"inputs.{name}", n * per_event, f"{n:.3g} input events"))
            continue
        kind = getattr(source, "kind", "")
        if kind == "poisson":
            stop = duration if source.stop_us is None else min(source.stop_us, duration)
            span = max(stop - source.start_us, 0.0)
            n = source.rate_hz * span * 1e-6 * source.size * B
            est.parts.append((f"inputs.{name}.rate", n * per_event,
                              f"about {n:.3g} Poisson events (rate × time × size {source.size} × batch {B})"))
        else:
            spikes = getattr(source, "spikes", None)
            if spikes is not None:
                n = float(len(spikes)) * (B if spikes.batch_size == 1 else 1)
                est.parts.append((f"inputs.{name}", n * per_event, f"{n:.3g} input events"))

    reach = max((float(p.delay_us) for p in netlist.projections.values()), default=0.0)
    horizon = reach / dt + 3
    est.parts.append(("projections", horizon * RING_EVENTS_PER_SLOT * 32.0,
                      f"an event calendar of {horizon:.3g} steps (the longest delay)"))
    if getattr(prof, "noise_membrane", 0) > 0:
        est.parts.append(("chip", 8.0 * 3 * min(NOISE_DRAWS, float(steps_f) * B * N), "membrane noise drawn ahead"))
    return est


def check_run(netlist, mapped=None, *, limits: Limits | None = None, batch: int | None = None,
              duration_us: float | None = None, record=None, given_inputs: dict | None = None,
              batch_field: str = "batch", duration_field: str = "duration") -> RunEstimate:
    """Raise ``BudgetError`` (file, line, field) when one run would exceed ``limits``; return the
    estimate otherwise."""
    limits = Limits.from_env() if limits is None else limits
    est = estimate_run(netlist, mapped, batch=batch, duration_us=duration_us, record=record, given_inputs=given_inputs)
    hint = "raise the limit (CHIPCTL_MAX_{}) or pass --force"

    def fail(path: str, message: str):
        line = netlist.line_of(path) if path else None
        raise BudgetError(message, file=netlist.source_path, line=line, field=path or None)

    dt = netlist.chip.step_us
    if limits.max_steps is not None and est.steps > limits.max_steps:
        fail(duration_field, f"a run of {est.steps:.3g} steps of {dt:g} us; the limit is {limits.max_steps:.3g} "
                             f"steps per run — shorten it, or {hint.format('STEPS')}")
    if limits.max_neuron_steps is not None and est.neuron_steps > limits.max_neuron_steps:
        B = netlist.batch if batch is None else batch
        path = batch_field if B > 1 else duration_field
        fail(path, f"a run of {est.steps:.3g} steps × batch {B} × {est.neuron_steps / max(est.steps, 1) / max(B, 1):.0f} "
                   f"neurons = {est.neuron_steps:.3g} neuron-steps; the limit is {limits.max_neuron_steps:.3g} — "
                   f"make it smaller, or {hint.format('NEURON_STEPS')}")
    if limits.max_bytes is not None and est.bytes > limits.max_bytes:
        path, size, what = est.largest()
        B = netlist.batch if batch is None else batch
        if path == "batch" or (B > 1 and est.bytes / B <= limits.max_bytes):
            # everything scales with the batch, and one sample would fit
            path, size, what = batch_field, est.bytes, f"batch {B}"
        fail(path, f"the run would need about {human_bytes(est.bytes)} of memory ({what}: {human_bytes(size)}); "
                   f"the limit is {human_bytes(limits.max_bytes)} — make it smaller, or {hint.format('MEMORY')}")
    return est
