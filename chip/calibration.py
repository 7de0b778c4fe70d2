"""A calibration: the per-circuit parameter codes that cancel one die's mismatch, as a file.

Job: the calibration file's format, reading it (every problem one line that starts with the
file), writing it, checking that it belongs to a chip, and applying it to a host through the
host's public code writes (``write_codes``). A file says what it is for, the way
``HostInterface.export_config`` does: the kind of chip (the profile's name and the fingerprint of
the fields that give codes their meaning), the die (seed and mismatch sigmas), the number of
circuits, the targets; and a checksum of all of it, so that a damaged or edited file is refused
rather than half applied.

Codes are kept per circuit — a circuit's index is its place on the chip (``host.circuits``), which
is what its deviations belong to — for every circuit of the chip, so one calibration serves every
netlist on that die whose populations use the calibrated values.

Boundary: finding the codes (measuring the chip) is a calibration plugin's job
(``chipctl_calibrate``, e.g. ``rules.calibration``); this module neither measures nor reads the
die.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CalibrationError
from .profiles import ANALOG_PARAMETERS

__all__ = ["Calibration", "CALIBRATION_FORMAT", "parameter_key", "load_calibration"]

CALIBRATION_FORMAT = 1
"""Version of the file layout; a file of another version is refused."""

_KIND = "chipctl calibration"


def parameter_key(name: str) -> str:
    """The netlist's spelling of an analog parameter (``tau_mem_us`` -> ``tau_mem``)."""
    return name[:-3] if name.endswith("_us") else name


def _show(name: str, value: float) -> str:
    return f"{value:g} us" if name.endswith("_us") else f"{value:g}"


def _plain(value):
    """JSON's view of a value (numpy scalars and arrays as Python numbers and lists)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if isinstance(o, np.generic) else
                                 (o.tolist() if isinstance(o, np.ndarray) else list(o))))


@dataclass(frozen=True, eq=False)
class Calibration:
    """Per-circuit codes of one die for one set of targets.

    ``profile``: the kind of chip (``chip.host.profile_identity``: ``name``, ``fingerprint``,
    ``fields``); ``die``: ``seed`` and ``mismatch`` (``chip.host.die_identity``); ``circuits``:
    how many circuits the codes cover (every circuit of the chip); ``targets``: parameter ->
    the value its codes make each circuit measure (model units, µs for times); ``codes``:
    parameter -> (circuits,) codes; ``unreached``: parameter -> the circuits that could not be
    brought to the target, each ``{circuit, target, reached, code}``; ``report``: what the
    calibration measured (spreads before and after, free-form); ``made_by``: who made it and how
    (free-form); ``source``: the file it was read from, if any.
    """

    profile: dict
    die: dict
    circuits: int
    targets: dict[str, float]
    codes: dict[str, np.ndarray]
    unreached: dict[str, list] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    made_by: dict = field(default_factory=dict)
    source: str | None = None

    # ------------------------------------------------------------------ making and writing
    @classmethod
    def for_chip(cls, chip_profile, *, targets: dict, codes: dict, unreached: dict | None = None,
                 report: dict | None = None, made_by: dict | None = None) -> "Calibration":
        """A calibration of the chip ``chip_profile`` describes (its kind and its die)."""
        from .host import die_identity, profile_identity

        return cls(profile=profile_identity(chip_profile), die=die_identity(chip_profile),
                   circuits=int(chip_profile.total_neurons),
                   targets={k: float(v) for k, v in targets.items()},
                   codes={k: np.asarray(v, dtype=np.float64).copy() for k, v in codes.items()},
                   unreached=_plain(unreached or {}), report=_plain(report or {}), made_by=_plain(made_by or {}))

    def _content(self) -> dict:
        return _plain({
            "kind": _KIND, "format": CALIBRATION_FORMAT, "profile": self.profile, "die": self.die,
            "circuits": self.circuits, "targets": self.targets,
            "codes": {k: [int(c) if float(c).is_integer() else float(c) for c in v] for k, v in self.codes.items()},
            "unreached": self.unreached, "report": self.report, "made_by": self.made_by})

    def to_dict(self) -> dict:
        """The file's content: everything above and its ``checksum``."""
        content = self._content()
        return {**content, "checksum": _checksum(content)}

    def dump(self, path: str | Path) -> Path:
        """Write the calibration as YAML (lists of codes in flow style, one line each)."""
        import yaml

        path = Path(path)
        text = ("# Per-circuit parameter codes of one die (chipctl calibrate). Name it in a netlist as\n"
                "# chip: {calibration: " + path.name + "}. The checksum covers everything: do not edit.\n")
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=1 << 20,
                               allow_unicode=True)
        from .output import atomic_write  # whole or not at all; an unwritable path is one line

        return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """Read a calibration file; any problem is one ``CalibrationError`` naming the file."""
        import yaml

        file = str(path)

        def fail(message: str):
            raise CalibrationError(message, file=file)

        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            fail("calibration file not found")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the calibration: {' '.join(str(exc).split())}")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            fail(f"corrupted calibration: not YAML{where}")
        if not isinstance(raw, dict) or raw.get("kind") != _KIND:
            fail("not a chipctl calibration (made by chipctl calibrate)")
        if raw.get("format") != CALIBRATION_FORMAT:
            fail(f"calibration of format {raw.get('format')!r}; this chipctl reads format {CALIBRATION_FORMAT}")
        content = {k: v for k, v in raw.items() if k != "checksum"}
        if raw.get("checksum") != _checksum(_plain(content)):
            fail("corrupted calibration: its content does not match its checksum")
        try:
            circuits = int(raw["circuits"])
            targets = {str(k): float(v) for k, v in raw["targets"].items()}
            codes = {str(k): np.asarray(v, dtype=np.float64) for k, v in raw["codes"].items()}
            profile, die = dict(raw["profile"]), dict(raw["die"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            fail(f"corrupted calibration: {type(exc).__name__} reading {exc}")
        for name, values in codes.items():
            if name not in ANALOG_PARAMETERS:
                fail(f"corrupted calibration: unknown parameter {name!r}")
            if name not in targets:
                fail(f"corrupted calibration: codes of {parameter_key(name)} without a target")
            if values.shape != (circuits,) or not np.all(np.isfinite(values)) or np.any(values < 0):
                fail(f"corrupted calibration: {parameter_key(name)} needs {circuits} codes >= 0")
        return cls(profile=profile, die=die, circuits=circuits, targets=targets, codes=codes,
                   unreached=raw.get("unreached") or {}, report=raw.get("report") or {},
                   made_by=raw.get("made_by") or {}, source=file)

    # ------------------------------------------------------------------ fitting a chip
    def _fail(self, message: str):
        raise CalibrationError(message, file=self.source or "<calibration>")

    def check_chip(self, chip_profile) -> None:
        """Refuse (one line) a chip of another kind, another die or another size."""
        from .host import _profile_difference, die_identity, profile_identity

        problem = _profile_difference(self.profile, profile_identity(chip_profile))
        if problem:
            self._fail(problem.replace("the configuration is for", "calibration made for"))
        mine = die_identity(chip_profile)
        if self.die.get("seed") != mine["seed"]:
            self._fail(f"calibration made for die seed {self.die.get('seed')}, this chip is die seed {mine['seed']}")
        if _plain(self.die.get("mismatch")) != mine["mismatch"]:
            self._fail(f"calibration made for a die with mismatch {_brief(self.die.get('mismatch'))}, "
                       f"this chip has {_brief(mine['mismatch'])}")
        if self.circuits != chip_profile.total_neurons:
            self._fail(f"calibration made for {self.circuits} circuits, this chip has {chip_profile.total_neurons}")

    def check_netlist(self, netlist) -> None:
        """Refuse (one line) a netlist with a population whose value of a calibrated parameter is
        not the calibration's target: those codes would make its circuits measure something else."""
        for pop_name, pop in netlist.populations.items():
            for name, target in self.targets.items():
                value = float(getattr(pop.params, name))
                if not math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-12):
                    self._fail(f"population {pop_name!r} has {parameter_key(name)} {_show(name, value)}, "
                               f"the calibration was made for {_show(name, target)} "
                               "(calibrate with --targets for these values)")

    def reached(self, name: str) -> np.ndarray:
        """(circuits,) bool: the circuits whose codes for ``name`` reach its target (all but the
        ones in ``unreached``)."""
        cache = self.__dict__.setdefault("_reached", {})
        if name not in cache:
            mask = np.ones(self.circuits, dtype=bool)
            for entry in self.unreached.get(name, []) or []:
                circuit = int(entry["circuit"])
                if 0 <= circuit < self.circuits:
                    mask[circuit] = False
            cache[name] = mask
        return cache[name]

    def apply(self, host, populations=None) -> list[tuple[str, str]]:
        """Write this calibration's codes for the circuits of ``populations`` (all of the host's by
        default), through ``host.write_codes``; returns the (population, parameter) pairs written."""
        written = []
        for pop in (host.populations if populations is None else populations):
            circuits = host.circuits(pop)
            for name, codes in self.codes.items():
                host.write_codes(pop, name, codes[circuits])
                written.append((pop, name))
        return written


def load_calibration(path: str | Path) -> Calibration:
    return Calibration.load(path)


def _checksum(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _brief(mismatch: Any) -> str:
    if not isinstance(mismatch, dict):
        return repr(mismatch)
    on = {k: v for k, v in mismatch.items() if v}
    return "off" if not on else ", ".join(f"{k} {v:g}" for k, v in sorted(on.items()))
