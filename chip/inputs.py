"""Turn a netlist's input sources into concrete spike events for one batch.

Explicit and file inputs are used as given (one set of trains for every sample when they hold a
single sample); Poisson inputs are drawn per sample from their own seed, so sample b of a batch is
the same whatever the batch size.
"""

from __future__ import annotations

import numpy as np

from .errors import RunError
from .events import SpikeEvents
from .netlist import FileInput, InputSource, PoissonInput, SpikeInput

__all__ = ["realize_input", "broadcast_batch"]


def broadcast_batch(events: SpikeEvents, batch: int, name: str) -> SpikeEvents:
    if events.batch_size == batch:
        return events
    if events.batch_size == 1:
        n = len(events)
        return SpikeEvents.from_arrays(
            np.repeat(np.arange(batch), n), np.tile(events.neuron, batch), np.tile(events.time_us, batch),
            events.size, batch)
    raise RunError(f"input {name!r} holds {events.batch_size} samples but the run has batch {batch}")


def _given(source: SpikeInput | FileInput, batch: int, duration_us: float) -> SpikeEvents:
    return broadcast_batch(source.spikes, batch, source.name)


def _poisson(source: PoissonInput, batch: int, duration_us: float) -> SpikeEvents:
    stop = duration_us if source.stop_us is None else min(source.stop_us, duration_us)
    span = max(stop - source.start_us, 0.0)
    bs, ns, ts = [], [], []
    for b in range(batch):
        rng = np.random.default_rng([source.seed, b])
        counts = rng.poisson(source.rate_hz * span * 1e-6, size=source.size)
        neuron = np.repeat(np.arange(source.size), counts)
        times = source.start_us + rng.random(len(neuron)) * span
        bs.append(np.full(len(neuron), b))
        ns.append(neuron)
        ts.append(times)
    return SpikeEvents.from_arrays(np.concatenate(bs), np.concatenate(ns), np.concatenate(ts), source.size, batch)


#: input type -> its events for a batch (one entry per kind of InputSource)
_REALIZE = {SpikeInput: _given, FileInput: _given, PoissonInput: _poisson}


def realize_input(source: InputSource, batch: int, duration_us: float) -> SpikeEvents:
    realize = _REALIZE.get(type(source))
    if realize is None:
        raise RunError(f"input {source.name!r}: unknown kind of input {type(source).__name__}")
    return realize(source, batch, duration_us)
