"""Quantities and bounds of the expect format: how a check's values are read from YAML, compared
and shown (counts, rates, fractions, membrane values; `<= x`, `a ± b`, ranges)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from chip.units import UnitError, parse_number, parse_rate_hz

if TYPE_CHECKING:
    pass


__all__ = ["Bound", "COUNT", "NUMBER", "FRACTION", "RATE", "fmt_time"]


# ---------------------------------------------------------------------------------------------
# Quantities and bounds
# ---------------------------------------------------------------------------------------------


def _fmt_num(x: float) -> str:
    if x is None:
        return "none"
    if isinstance(x, (int, np.integer)) or (math.isfinite(x) and float(x).is_integer() and abs(x) < 1e15):
        return str(int(x))
    return f"{x:.6g}"


def _spikes(n: int) -> str:
    return f"{n} spike" + ("" if n == 1 else "s")


def _fmt_rate(hz: float) -> str:
    for unit, scale in (("MHz", 1e6), ("kHz", 1e3)):
        if abs(hz) >= scale:
            return f"{hz / scale:.6g} {unit}"
    return f"{hz:.6g} Hz"


def fmt_time(us: float) -> str:
    """A time in µs (of whatever timescale), shown in the most readable unit."""
    if abs(us) >= 1e6:
        return f"{us / 1e6:.6g} s"
    if abs(us) >= 1e3:
        return f"{us / 1e3:.6g} ms"
    return f"{us:.6g} us"


@dataclass(frozen=True)
class _Kind:
    """What a bound measures: how its values are read from YAML and shown."""

    name: str
    read: Callable[[Any], float]
    show: Callable[[float], str]


def _read_fraction(value) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        return parse_number(value.strip()[:-1]) / 100.0
    return parse_number(value)


COUNT = _Kind("count", parse_number, _fmt_num)
NUMBER = _Kind("number (model units)", parse_number, lambda x: f"{x:.6g}")
FRACTION = _Kind("fraction", _read_fraction, lambda x: f"{x:.4g}")
RATE = _Kind("rate", parse_rate_hz, _fmt_rate)

_COMPARE = re.compile(r"^\s*(<=|>=|==|<|>|≤|≥)\s*(\S.*?)\s*$")
_PLUS_MINUS = re.compile(r"^\s*(\S.*?)\s*(?:±|\+/-|\+-)\s*(\S.*?)\s*$")


@dataclass(frozen=True)
class Bound:
    """An allowed interval for one measured value: ``lo ≤ x ≤ hi`` (either side open, strict
    when ``lo_strict``/``hi_strict``). ``text`` is how the netlist wrote it, for messages."""

    text: str
    lo: float | None = None
    hi: float | None = None
    lo_strict: bool = False
    hi_strict: bool = False

    def holds(self, x: float) -> bool:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        # a relative slack of 1e-9 so that a rate of 6.000000000001 Hz meets "== 6 Hz"
        slack = 1e-9 * max(1.0, abs(x))
        if self.lo is not None and (x <= self.lo - slack if not self.lo_strict else x <= self.lo):
            return False
        if self.hi is not None and (x >= self.hi + slack if not self.hi_strict else x >= self.hi):
            return False
        return True

    @classmethod
    def parse(cls, value, kind: _Kind) -> "Bound":
        """Read a bound: ``5`` / ``"5 Hz"`` (exactly), ``[lo, hi]`` (inclusive; ``null`` for an open
        side), ``"> 0"`` / ``">= 3 Hz"`` / ``"< 0.5"`` / ``"== 0"``, or ``"6 Hz ± 50%"`` /
        ``"6 Hz +- 1 Hz"`` / ``"10 ± 2"``. Raises UnitError with what was expected."""
        if isinstance(value, list):
            if len(value) != 2:
                raise UnitError(f"a range is [low, high], got {len(value)} entries")
            lo = None if value[0] is None else kind.read(value[0])
            hi = None if value[1] is None else kind.read(value[1])
            if lo is not None and hi is not None and lo > hi:
                raise UnitError(f"empty range: low {value[0]!r} is above high {value[1]!r}")
            text = f"[{'none' if lo is None else kind.show(lo)}, {'none' if hi is None else kind.show(hi)}]"
            return cls(text, lo, hi)
        if isinstance(value, str):
            match = _COMPARE.match(value)
            if match:
                op, x = match.group(1), kind.read(match.group(2))
                op = {"≤": "<=", "≥": ">="}.get(op, op)
                text = f"{op} {kind.show(x)}"
                if op == "==":
                    return cls(text, x, x)
                if op[0] == ">":
                    return cls(text, lo=x, lo_strict=op == ">")
                return cls(text, hi=x, hi_strict=op == "<")
            match = _PLUS_MINUS.match(value)
            if match:
                centre = kind.read(match.group(1))
                tol_text = match.group(2)
                if tol_text.endswith("%"):
                    tol = abs(centre) * parse_number(tol_text[:-1]) / 100.0
                else:
                    tol = kind.read(tol_text)
                if tol < 0:
                    raise UnitError(f"tolerance must be >= 0, got {tol_text!r}")
                return cls(f"{kind.show(centre)} ± {tol_text}", centre - tol, centre + tol)
        if isinstance(value, (dict, bool)) or value is None:
            raise UnitError(f"expected a {kind.name} bound: a value, [low, high], '> x', '<= x' or "
                            f"'x ± tol', got {value!r}")
        x = kind.read(value)
        return cls(kind.show(x), x, x)

    def describe(self) -> str:
        return self.text
