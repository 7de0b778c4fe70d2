"""Quantities with explicit units, as written in netlists ("12 us", "5 kHz", "8 ns", "0.45 V").

Job: the one parser of written quantities and plain numbers — times, rates, voltages, the "time in
unit X exactly as written" helper, plain numbers given as text — and the regular expressions that
the netlist's JSON Schema uses for them, so the schema and the parser accept the same spellings.
Errors are :class:`UnitError` (a ``ValueError``) whose message says what was expected.

Boundary: nothing here knows about netlists, fields or files. Internally chipctl keeps hardware
time in microseconds (``*_us``) and rates in hertz of hardware time (``*_hz``); netlists may speak
biological time (``timescale: biological``), and that conversion by the chip's speed-up factor is
the netlist reader's, never this module's.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "TIME_UNITS_US",
    "RATE_UNITS_HZ",
    "VOLTAGE_UNITS_V",
    "NUMBER_PATTERN",
    "quantity_pattern",
    "parse_time_us",
    "parse_rate_hz",
    "parse_voltage_v",
    "time_in",
    "parse_number",
    "UnitError",
]

TIME_UNITS_US = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}
RATE_UNITS_HZ = {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6}
VOLTAGE_UNITS_V = {"V": 1.0, "mV": 1e-3}

#: a decimal number as written in a quantity: sign, digits with an optional point, exponent
NUMBER_PATTERN = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

_QUANTITY = re.compile(rf"^\s*({NUMBER_PATTERN})\s*([A-Za-zµ]+)\s*$")


def quantity_pattern(units) -> str:
    """Regular expression (for a JSON Schema ``pattern``) of a number followed by one of ``units``."""
    return rf"^\s*{NUMBER_PATTERN}\s*(?:{'|'.join(re.escape(u) for u in units)})\s*$"


class UnitError(ValueError):
    """A quantity whose number or unit cannot be read; the message says what was expected."""


def _split(text, kind: str, table: dict[str, float]) -> tuple[float, str]:
    """(number, unit) of a written quantity; the unit is checked against ``table``."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected a {kind} like '10 {next(iter(table))}', got {text!r}")
    if isinstance(text, (int, float)):
        units = ", ".join(table)
        raise UnitError(f"{text!r} has no unit: write it as '{text} <unit>' with unit one of {units}")
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(f"expected a {kind} like '10 {next(iter(table))}', got {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    if unit not in table:
        raise UnitError(f"unknown {kind} unit {unit!r} in {text!r}; use one of {', '.join(table)}")
    _finite(value * table[unit], text)
    return value, unit


def _finite(value: float, text) -> float:
    """A number that overflowed (``1e400 us``, ``1e308 s`` in µs) is out of range, not infinite."""
    if not math.isfinite(value):
        raise UnitError(f"number out of range in {text!r}")
    return value


def parse_time_us(text) -> float:
    """'12 us' -> 12.0, '20 ms' -> 20000.0, '8 ns' -> 0.008. Bare numbers are refused."""
    value, unit = _split(text, "time", TIME_UNITS_US)
    return value * TIME_UNITS_US[unit]


def parse_rate_hz(text) -> float:
    """'5 kHz' -> 5000.0. Bare numbers are refused."""
    value, unit = _split(text, "rate", RATE_UNITS_HZ)
    return value * RATE_UNITS_HZ[unit]


def parse_voltage_v(text) -> float:
    """'0.45 V' -> 0.45, '450 mV' -> 0.45. Bare numbers are refused."""
    value, unit = _split(text, "voltage", VOLTAGE_UNITS_V)
    return value * VOLTAGE_UNITS_V[unit]


def time_in(text, unit: str) -> float:
    """A time in ``unit`` (a key of TIME_UNITS_US). When the text already uses that unit, its
    number is returned as written, so '8 ns' is exactly 8.0 ns (no round trip through µs)."""
    value, written = _split(text, "time", TIME_UNITS_US)
    if written.replace("µ", "u") == unit.replace("µ", "u"):
        return value
    return value * TIME_UNITS_US[written] / TIME_UNITS_US[unit]


def parse_number(value) -> float:
    """A plain finite number, or text holding one ('5', ' 0.5 '); booleans, NaN, infinities and
    anything else are refused."""
    if isinstance(value, bool):
        raise UnitError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise UnitError(f"number out of range: {value!r}") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UnitError(f"expected a number, got {value!r}") from None
    else:
        raise UnitError(f"expected a number, got {value!r}")
    if not math.isfinite(number):
        # 'nan', 'inf' and '1e400' read as floats; none of them is a number a netlist can mean
        raise UnitError(f"expected a finite number, got {value!r}")
    return number
