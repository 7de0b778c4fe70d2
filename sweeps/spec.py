"""The sweep spec: which netlist, which axes, what each point does — read and checked.

Job: :func:`read_spec` reads a sweep file (YAML) with the netlist validation kit
(:class:`chip.netlist.validation.FieldReader`), so every problem is one line
``FILE:LINE: field: what is wrong``, and :meth:`SweepSpec.points` expands its axes (a grid, or
lists zipped point by point) into :class:`Point` records. Seed lists written ``{count: N}`` are
derived from the spec's ``seed`` and the axis name alone, so a point's configuration — and so its
result — never depends on the order in which points are scheduled or on how many workers run them.

Boundary: a point's values are checked against the netlist only when the point runs
(``sweeps.point``): a value the netlist refuses fails that point alone, not the sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chip.errors import NetlistError
from chip.netlist.validation import FieldReader, did_you_mean, show_value
from chip.netlist.yaml_tree import parse_yaml

__all__ = ["SweepSpec", "Point", "read_spec", "ACTIONS", "SHORTHANDS", "MISMATCH_SCALE"]

#: what a point does: a run (spike summary), the netlist's expect: checks, or a training
ACTIONS = ("run", "test", "train")
#: axis names that stand for a netlist path
SHORTHANDS = {"die_seed": "chip.die_seed", "noise_seed": "chip.noise_seed", "profile": "chip.profile"}
#: the one axis that is not a netlist field: every mismatch sigma of the chip times this factor
MISMATCH_SCALE = "chip.mismatch.scale"
_KEYS = ("netlist", "do", "axes", "combine", "seed", "metric", "better", "epochs", "description")
_SEED_AXES = ("chip.die_seed", "chip.noise_seed", "train.seed")
_MAX_POINTS = 100_000


@dataclass(frozen=True)
class Point:
    """One configuration of the sweep: its index in the spec's order, and the value of each axis
    (netlist path -> value as written in the spec)."""

    index: int
    values: tuple[tuple[str, object], ...]

    @property
    def key(self) -> str:
        """The point's identity in the results table (its values, canonical JSON)."""
        return json.dumps(dict(self.values), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SweepSpec:
    """A checked sweep file. ``axes``: netlist path -> values; ``lines``: field path -> line."""

    file: str
    netlist: str                  # the base netlist, resolved against the spec's folder
    action: str
    axes: tuple[tuple[str, tuple], ...]
    combine: str = "grid"
    seed: int = 0
    metric: str | None = None
    better: str = "higher"
    epochs: int | None = None
    description: str = ""

    @property
    def axis_names(self) -> list[str]:
        return [name for name, _ in self.axes]

    def points(self) -> list[Point]:
        names = self.axis_names
        lists = [values for _, values in self.axes]
        combos = zip(*lists) if self.combine == "zip" else itertools.product(*lists)
        return [Point(i, tuple(zip(names, combo))) for i, combo in enumerate(combos)]

    def fingerprint(self) -> str:
        """What makes two sweeps the same sweep: the base netlist's text and the spec's content."""
        digest = hashlib.sha256()
        digest.update(Path(self.netlist).read_bytes() if Path(self.netlist).is_file() else b"")
        digest.update(json.dumps([self.action, self.axes, self.combine, self.seed, self.epochs],
                                 default=str).encode())
        return digest.hexdigest()[:16]


def derived_seeds(spec_seed: int, axis: str, count: int) -> tuple[int, ...]:
    """``count`` distinct seeds for ``axis`` from the spec's seed (31-bit, so any netlist field takes them)."""
    entropy = [spec_seed] + list(hashlib.sha256(axis.encode()).digest()[:8])
    seeds: list[int] = []
    state = np.random.SeedSequence(entropy).generate_state(4 * count + 8, dtype=np.uint32)
    for word in state:
        seed = int(word) >> 1
        if seed not in seeds:
            seeds.append(seed)
        if len(seeds) == count:
            break
    return tuple(seeds)


class _SpecReader(FieldReader):
    def spec(self, raw, file: str) -> SweepSpec:
        if raw is None:
            self.fail("", "the sweep file is empty")
        raw = self.mapping(raw, "", "a mapping of sweep fields")
        for key in raw:
            if key not in _KEYS:
                self.fail(str(key), f"unknown field '{key}'{did_you_mean(key, _KEYS)}; expected one of {', '.join(_KEYS)}")
        for key in ("netlist", "axes"):
            if key not in raw:
                self.fail(key, f"missing required field '{key}'")
        netlist = self.string(raw["netlist"], "netlist")
        resolved = (Path(file).resolve().parent / netlist) if not file.startswith("<") else Path(netlist)
        if not resolved.is_file():
            self.fail("netlist", f"netlist file '{netlist}' not found (looked for {resolved})")
        action = self.choice(raw.get("do", "run"), "do", ACTIONS, "action")
        combine = self.choice(raw.get("combine", "grid"), "combine", ("grid", "zip"), "combination")
        seed = self.seed(raw.get("seed", 0), "seed")
        better = self.choice(raw.get("better", "higher"), "better", ("higher", "lower"), "direction")
        metric = self.string(raw["metric"], "metric") if raw.get("metric") is not None else None
        epochs = self.integer(raw["epochs"], "epochs", minimum=1) if raw.get("epochs") is not None else None
        if epochs is not None and action != "train":
            self.fail("epochs", f"epochs applies to do: train only (this sweep does {action})")
        description = self.string(raw.get("description", ""), "description")
        if metric is not None:
            self.known_metric(metric, action, resolved)
        axes = self.axes(raw["axes"], seed)
        if combine == "zip":
            lengths = {name: len(values) for name, values in axes}
            if len(set(lengths.values())) > 1:
                self.fail("axes", "combine: zip needs axes of equal length, got "
                                  + ", ".join(f"{n} {k}" for n, k in lengths.items()))
        total = int(np.prod([len(v) for _, v in axes])) if combine == "grid" else len(axes[0][1])
        if total > _MAX_POINTS:
            self.fail("axes", f"{total} points; a sweep has at most {_MAX_POINTS}")
        return SweepSpec(file=file, netlist=str(resolved), action=action, axes=axes, combine=combine, seed=seed,
                         metric=metric, better=better, epochs=epochs, description=description)

    def known_metric(self, metric: str, action: str, netlist: Path) -> None:
        from .point import metric_names

        raw, _ = parse_yaml(netlist.read_text(encoding="utf-8"), str(netlist))
        populations = raw.get("populations") if isinstance(raw, dict) else None
        names = metric_names(action, list(populations) if isinstance(populations, dict) else [])
        if metric not in names:
            self.fail("metric", f"unknown metric '{metric}' for do: {action}{did_you_mean(metric, names)}; "
                                f"expected one of {', '.join(names)}")

    def axes(self, raw, seed: int) -> tuple[tuple[str, tuple], ...]:
        raw = self.mapping(raw, "axes", "a mapping of axis names (netlist paths) to lists of values")
        if not raw:
            self.fail("axes", "at least one axis is needed")
        out: list[tuple[str, tuple]] = []
        for name, values in raw.items():
            path = f"axes.{name}"
            if not isinstance(name, str) or not name or (name not in SHORTHANDS and "." not in name):
                self.fail(path, f"axis '{name}' is neither a netlist path (e.g. populations.hidden.params.tau_syn) "
                                f"nor one of {', '.join(SHORTHANDS)}")
            target = SHORTHANDS.get(name, name)
            if any(target == other for other, _ in out):
                self.fail(path, f"axis '{name}' sets {target}, which another axis sets too")
            if isinstance(values, dict):
                if set(values) != {"count"} or target not in _SEED_AXES:
                    self.fail(path, "a derived list is written {count: N} and only for seeds "
                                    f"({', '.join(_SEED_AXES)}); otherwise give a list of values")
                count = self.integer(values["count"], f"{path}.count", minimum=1)
                values = list(derived_seeds(seed, target, count))
            if not isinstance(values, list) or not values:
                self.fail(path, f"expected a non-empty list of values, got {show_value(values)}")
            for k, value in enumerate(values):
                if isinstance(value, (dict, list)) and target != "chip.mismatch":
                    self.fail(f"{path}.{k}", f"expected a plain value, got {show_value(value)}")
                if target in _SEED_AXES:
                    self.seed(value, f"{path}.{k}")
                if target == MISMATCH_SCALE:
                    self.number(value, f"{path}.{k}", minimum=0.0)
            if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
                self.fail(path, "a value is listed twice")
            out.append((target, tuple(values)))
        return tuple(out)


def read_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; raises ``NetlistError`` (``FILE:LINE: field: ...``)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetlistError("sweep file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlistError(f"cannot read sweep file: {getattr(exc, 'strerror', None) or exc}", file=file) from None
    raw, tree = parse_yaml(text, file)
    return _SpecReader(file, tree.lines).spec(raw, file)
