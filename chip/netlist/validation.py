"""The validation kit: one way to read a field of a netlist file and to say where it is wrong.

Job: :class:`FieldReader` reads plain values (what ``chip.netlist.yaml_tree`` built from the YAML)
field by field — mappings and their keys against a schema form, integers, seeds, numbers, strings,
booleans, choices, names and references to names, times, rates and voltages with their units —
and reports the first problem as one error ``FILE:LINE: field.path: what is wrong``, pointing at
the line recorded for the field or its nearest recorded parent. Every reader of netlist data
uses it: the netlist reader (``chip.netlist.reader``), the ``expect:`` reader
(``regression.expectations``), the ``train:`` parser (``rules.training.config``) and the task
builder (``rules.tasks``) subclass or compose it, and the mapper builds its ``MappingError``s
with it (``FieldReader.for_netlist(netlist, error=MappingError).error(path, message)``).

Boundary: the kit knows how to read and where to point, not what a section means: which keys a
form has comes from the JSON Schema (``chip.netlist.schema.FORM_KEYS``), units from
``chip.units``, the meaning of values from the readers. It never imports a reader.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Callable, Mapping, NoReturn

from ..errors import NetlistError
from ..units import UnitError, parse_rate_hz, parse_time_us, parse_voltage_v
from .model import nearest_line
from .schema import FORM_KEYS, FORM_REQUIRED, NAME_PATTERN
from .yaml_tree import join_path

__all__ = ["FieldReader", "show_value", "did_you_mean", "blame", "INT_MAX"]

#: the largest integer a netlist field may hold (int64)
INT_MAX = 2**63 - 1

_NAME_RE = re.compile(NAME_PATTERN)


def show_value(value) -> str:
    """``repr`` of a value as quoted in a message, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word, options) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` (case-insensitive), else ``""``."""
    options = list(options)
    lowered = {str(o).lower(): o for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def blame(message: str, where: Mapping[str, str]) -> str | None:
    """The path (a value of ``where``) whose name (its key) appears first in ``message``, if any."""
    best: tuple[int, str] | None = None
    for name, path in where.items():
        match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), path)
    return best[1] if best else None


class FieldReader:
    """Reads fields of plain data and raises at the first problem, pointing at its line.

    ``file`` names the file in messages (None: ``<netlist>``); ``lines`` maps dotted field paths
    to 1-based lines; ``error`` is the exception raised (``NetlistError`` or a subclass such as
    ``MappingError``). Times and rates are read in a timescale: with ``biological`` true they are
    converted to hardware time by ``speedup`` (times divided, rates multiplied); readers of data
    that stays in the netlist's own timescale leave it false. ``seen`` collects the (form, key)
    pairs ``keys`` accepted, so a test can check that an example exercises every key of the schema.
    """

    def __init__(self, file: str | None, lines: Mapping[str, int], *, error: type[NetlistError] = NetlistError,
                 speedup: float = 1.0, biological: bool = False):
        self.file = file
        self.lines = lines
        self.error_type = error
        self.speedup = speedup
        self.biological = biological
        self.seen: set[tuple[str, str]] = set()

    @staticmethod
    def netlist_args(netlist) -> dict[str, Any]:
        """Constructor arguments pointing into a loaded netlist's file, in its timescale."""
        return {"file": netlist.source_path, "lines": netlist.lines, "speedup": netlist.chip.speedup,
                "biological": netlist.timescale == "biological"}

    @classmethod
    def for_netlist(cls, netlist, **kwargs) -> "FieldReader":
        """A reader of fields of a loaded netlist (its ``train``/``expect`` data, its objects)."""
        return cls(**{**cls.netlist_args(netlist), **kwargs})

    # --- where -------------------------------------------------------------------------------
    def line(self, path: str) -> int | None:
        """The line of ``path``, or of its nearest parent with a recorded line."""
        return nearest_line(self.lines, path)

    def error(self, path: str, message: str) -> NetlistError:
        """The error for ``path`` (``FILE:LINE: path: message``), to raise or keep."""
        return self.error_type(message, file=self.file, line=self.line(path), field=path)

    def fail(self, path: str, message: str) -> NoReturn:
        raise self.error(path, message)

    # --- structure -----------------------------------------------------------------------------
    def mapping(self, value, path: str, what: str = "a mapping") -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected {what}, got {show_value(value)}")
        return value

    def keys(self, value, path: str, form: str, what: str = "a mapping") -> dict:
        """A mapping whose keys are checked against the schema form: unknown first, then missing."""
        value = self.mapping(value, path, what)
        allowed = FORM_KEYS[form]
        for key in value:
            if key not in allowed:
                self.fail(join_path(path, key), f"unknown field '{key}'{did_you_mean(key, allowed)}; "
                                                f"expected one of {', '.join(allowed)}")
            self.seen.add((form, key))
        for key in FORM_REQUIRED[form]:
            if key not in value:
                self.fail(join_path(path, key), f"missing required field '{key}'")
        return value

    def name(self, name: str, path: str, what: str) -> str:
        """A name of the netlist's own (population, input, projection): usable in field paths."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            self.fail(path, f"{what} name '{name}' must start with a letter or '_' and contain only "
                            "letters, digits, '_' and '-'")
        return name

    def reference(self, value, path: str, known, what: str) -> str:
        """A name that must be one of ``known`` (e.g. a population)."""
        value = self.string(value, path)
        if value not in known:
            self.fail(path, f"unknown {what} '{value}'{did_you_mean(value, known)}; known: {', '.join(known)}")
        return value

    def names(self, raw, path: str, known, what: str) -> tuple[str, ...]:
        """A list of distinct references to ``known`` names."""
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of {what} names, got {show_value(raw)}")
        out: list[str] = []
        for k, name in enumerate(raw):
            where = f"{path}.{k}"
            name = self.reference(name, where, known, what)
            if name in out:
                self.fail(where, f"{what} '{name}' is listed twice")
            out.append(name)
        return tuple(out)

    # --- scalars -------------------------------------------------------------------------------
    def integer(self, value, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {show_value(value)}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum}, got {show_value(value)}")
        if abs(value) > INT_MAX:  # every integer of a netlist must fit the 64-bit arrays it ends up in
            self.fail(path, f"out of range: at most {INT_MAX} (2**63 - 1), got {show_value(value)}")
        return value

    def seed(self, value, path: str) -> int:
        return self.integer(value, path, minimum=0)

    def number(self, value, path: str, minimum: float | None = None, allow_inf: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {show_value(value)}")
        try:
            value = float(value)
        except OverflowError:
            self.fail(path, f"number out of range: {show_value(value)}")
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            self.fail(path, f"must be a finite number, got {value}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum:g}, got {value:g}")
        return value

    def string(self, value, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {show_value(value)}")
        return value

    def boolean(self, value, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {show_value(value)}")
        return value

    def choice(self, value, path: str, options, what: str = "value") -> str:
        if not isinstance(value, str) or value not in options:
            hint = did_you_mean(value, options) if isinstance(value, str) else ""
            self.fail(path, f"unknown {what} {show_value(value)}{hint}; expected one of {', '.join(options)}")
        return value

    # --- quantities ----------------------------------------------------------------------------
    def hardware_us(self, us: float) -> float:
        """µs in the reader's timescale -> hardware µs."""
        return us / self.speedup if self.biological else us

    def time(self, value, path: str, *, minimum: float | None = 0.0, positive: bool = False) -> float:
        """A time with its unit, in the reader's timescale -> hardware µs."""
        try:
            us = parse_time_us(value)
        except UnitError as exc:
            self.fail(path, str(exc))
        if positive and not us > 0:
            self.fail(path, f"must be > 0, got {show_value(value)}")
        if minimum is not None and us < minimum:
            self.fail(path, f"must be >= {minimum:g}, got {show_value(value)}")
        return self.hardware_us(us)

    def rate(self, value, path: str) -> float:
        """A rate >= 0 with its unit, in the reader's timescale -> hardware Hz."""
        try:
            hz = parse_rate_hz(value)
        except UnitError as exc:
            self.fail(path, str(exc))
        if hz < 0:
            self.fail(path, f"must be >= 0, got {show_value(value)}")
        return hz * self.speedup if self.biological else hz

    def voltage(self, value, path: str) -> float:
        """A voltage with its unit -> V."""
        try:
            return parse_voltage_v(value)
        except UnitError as exc:
            self.fail(path, str(exc))

    # --- model objects -------------------------------------------------------------------------
    def construct(self, factory: Callable, path: str, where: Mapping[str, str] | None = None,
                  rename: Mapping[str, str] | None = None, **kwargs):
        """``factory(**kwargs)``, usually a model dataclass. Its own checks raise ``ValueError``
        naming a field: the error points at the path ``where`` gives for the first name in the
        message (else at ``path``), with each field name replaced by its YAML key from ``rename``."""
        try:
            return factory(**kwargs)
        except ValueError as exc:
            message = str(exc)
            target = blame(message, where or {}) or path
            for field, key in (rename or {}).items():
                message = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(field)}(?![A-Za-z0-9_])", key, message)
            self.fail(target, message)
