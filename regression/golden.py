"""Golden files: the spikes of a netlist's reference runs, kept beside it for review in git.

Job: turn a run's spikes into a :class:`GoldenRun` (spike times as whole clock cycles, so they
are exact integers), write golden runs as ``<netlist>.golden.yaml`` beside the netlist, and read
them back. The text is deterministic (no timestamps; runs, populations and neurons sorted) and
line-oriented — one line per population and sample, ``sample: {neuron: [cycles]}`` — so a golden
updated on purpose shows a small diff that names the population, sample and neuron that changed.

A file holds one entry per run configuration, keyed by :func:`run_key`
(``profile/die<seed>/noise<seed>/<duration>us/batch<n>``), so the same netlist can keep golden
runs on several profiles, seeds or durations.

Boundary: no comparisons here (``expectations.py`` judges a run against its golden entry) and no
chip is run (``runner.py`` and ``chipctl run --update-golden`` pass a finished RunResult).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import yaml

from chip.errors import ChipctlError, NetlistError
from chip.netlist import Netlist

__all__ = ["GOLDEN_SUFFIX", "GoldenPopulation", "GoldenRun", "golden_path", "run_key", "golden_run",
           "read_golden", "format_golden", "write_golden_runs"]

GOLDEN_SUFFIX = ".golden.yaml"
FORMAT = 1


@dataclass(frozen=True)
class GoldenPopulation:
    """Spikes of one population: ``samples[b]`` maps neuron -> sorted spike cycles (only
    neurons that spiked)."""

    size: int
    samples: tuple[dict[int, tuple[int, ...]], ...]

    @property
    def count(self) -> int:
        return sum(len(c) for s in self.samples for c in s.values())

    def events(self, b: int) -> list[tuple[int, int]]:
        """Sample b's spikes as (cycle, neuron), in time order (ties by neuron)."""
        return sorted((c, n) for n, cycles in self.samples[b].items() for c in cycles)

    def first_spike_cycles(self) -> np.ndarray:
        """(batch, size) first spike cycle, inf where a neuron stayed silent."""
        out = np.full((len(self.samples), self.size), np.inf)
        for b, s in enumerate(self.samples):
            for n, cycles in s.items():
                if cycles:
                    out[b, n] = cycles[0]
        return out


@dataclass(frozen=True)
class GoldenRun:
    """One reference run: the configuration it ran with, event counters and spikes."""

    key: str
    profile: str
    die_seed: int
    noise_seed: int
    duration_us: float
    batch: int
    clock_ns: float
    offered: int
    dropped: int
    populations: dict[str, GoldenPopulation]


def golden_path(netlist: Netlist | str | Path) -> Path:
    """``netlists/x.yaml`` -> ``netlists/x.golden.yaml``."""
    source = netlist.source_path if isinstance(netlist, Netlist) else netlist
    if source is None:
        raise ChipctlError("a netlist read from text has no file to keep a golden beside; load it from a file")
    path = Path(source)
    return path.with_name(path.stem + GOLDEN_SUFFIX)


def _num(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def run_key(netlist: Netlist, duration_us: float, batch: int) -> str:
    """The key of a run configuration: ``bss2/die1/noise1/60us/batch1`` (duration in hardware µs)."""
    chip = netlist.chip
    return f"{chip.name}/die{chip.die_seed}/noise{chip.noise_seed}/{_num(duration_us)}us/batch{batch}"


def golden_run(netlist: Netlist, result, populations: Iterable[str] | None = None) -> GoldenRun:
    """A finished run in golden form; ``populations`` limits what is kept (default: all recorded)."""
    clock_us = netlist.chip.clock_us
    names = sorted(result.spikes) if populations is None else sorted(set(populations))
    pops = {}
    for name in names:
        ev = result.spikes[name]
        cycles = np.rint(ev.time_us / clock_us).astype(np.int64)
        samples = []
        for b in range(ev.batch_size):
            keep = ev.batch == b
            trains: dict[int, list[int]] = {}
            for n, c in zip(ev.neuron[keep].tolist(), cycles[keep].tolist()):
                trains.setdefault(int(n), []).append(int(c))
            samples.append({n: tuple(sorted(trains[n])) for n in sorted(trains)})
        pops[name] = GoldenPopulation(size=ev.size, samples=tuple(samples))
    return GoldenRun(key=run_key(netlist, result.duration_us, result.batch), profile=netlist.chip.name,
                     die_seed=netlist.chip.die_seed, noise_seed=netlist.chip.noise_seed,
                     duration_us=float(result.duration_us), batch=int(result.batch),
                     clock_ns=float(netlist.chip.clock_ns), offered=int(result.offered_events),
                     dropped=int(result.dropped_events), populations=pops)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key(text: str) -> str:
    """A mapping key as YAML: plain when it reads back as the same string, else double-quoted."""
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _sample_line(trains: dict[int, tuple[int, ...]]) -> str:
    return "{" + ", ".join(f"{n}: [{', '.join(str(c) for c in cycles)}]" for n, cycles in trains.items()) + "}"


def format_golden(netlist_name: str, runs: dict[str, GoldenRun]) -> str:
    """The golden file's text: deterministic, one line per population and sample."""
    out = [
        f"# Golden spikes of the netlist {netlist_name} beside this file: its `expect:` checks compare against them.",
        "# Written by `chipctl run --update-golden` or `chipctl test --update-golden`; review a change",
        "# like code (docs/regression-tests.md). Spike times are clock cycles of hardware time;",
        "# under `spikes`, one line per sample: {neuron: [cycles]} for the neurons that spiked.",
        f"format: {FORMAT}",
        f"netlist: {_key(netlist_name)}",
        "runs:",
    ]
    for key in sorted(runs):
        run = runs[key]
        out += [
            f"  {_key(key)}:",
            f"    profile: {_key(run.profile)}",
            f"    die_seed: {run.die_seed}",
            f"    noise_seed: {run.noise_seed}",
            f"    duration_us: {_num(run.duration_us)}",
            f"    batch: {run.batch}",
            f"    clock_ns: {_num(run.clock_ns)}",
            f"    events: {{offered: {run.offered}, dropped: {run.dropped}}}",
            "    populations:",
        ]
        for name in sorted(run.populations):
            pop = run.populations[name]
            out += [f"      {_key(name)}:", f"        size: {pop.size}", f"        count: {pop.count}",
                    "        spikes:"]
            out += [f"          {b}: {_sample_line(s)}" for b, s in enumerate(pop.samples)]
    return "\n".join(out) + "\n"


def read_golden(path: str | Path) -> dict[str, GoldenRun]:
    """The runs of a golden file ({} when there is no file). Raises NetlistError (with the file)
    when it is not a golden file this version can read."""
    path = Path(path)
    if not path.exists():
        return {}
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise NetlistError(f"cannot read golden file: {' '.join(str(exc).split())}", file=file) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("runs"), dict):
        raise NetlistError(f"not a chipctl golden file of format {FORMAT}; rewrite it with "
                           "chipctl test --update-golden", file=file)
    runs = {}
    for key, entry in raw["runs"].items():
        try:
            pops = {}
            for name, pop in entry["populations"].items():
                samples = tuple({int(n): tuple(int(c) for c in cycles) for n, cycles in (s or {}).items()}
                                for _, s in sorted(pop["spikes"].items()))
                pops[str(name)] = GoldenPopulation(size=int(pop["size"]), samples=samples)
            runs[str(key)] = GoldenRun(
                key=str(key), profile=str(entry["profile"]), die_seed=int(entry["die_seed"]),
                noise_seed=int(entry["noise_seed"]), duration_us=float(entry["duration_us"]),
                batch=int(entry["batch"]), clock_ns=float(entry["clock_ns"]),
                offered=int(entry["events"]["offered"]), dropped=int(entry["events"]["dropped"]), populations=pops)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NetlistError(f"malformed golden run {key!r} ({type(exc).__name__}: {exc}); rewrite it with "
                               "chipctl test --update-golden", file=file, field=f"runs.{key}") from None
    return runs


def write_golden_runs(path: str | Path, netlist_name: str, runs: dict[str, GoldenRun], *,
                      replace_all: bool = False) -> Path:
    """Write golden runs into ``path``: merged with the runs already there (same key: replaced),
    or replacing them all. Atomic (a temporary file, then a rename)."""
    path = Path(path)
    merged = {} if replace_all else read_golden(path)
    merged.update(runs)
    text = format_golden(netlist_name, merged)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path

