"""Quantities with explicit units, as written in netlists ("12 us", "5 kHz", "8 ns").

Internally chipctl keeps hardware time in microseconds (``*_us``) and rates in hertz of hardware
time (``*_hz``). Netlists may speak biological time (``timescale: biological``); the conversion by
the chip's speed-up factor happens in the netlist loader, never here.
"""

from __future__ import annotations

import re

__all__ = ["TIME_UNITS_US", "RATE_UNITS_HZ", "parse_time_us", "parse_rate_hz", "UnitError"]

TIME_UNITS_US = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}
RATE_UNITS_HZ = {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ]+)\s*$")


class UnitError(ValueError):
    """A quantity whose number or unit cannot be read; the message says what was expected."""


def _split(text, kind: str, table: dict[str, float]) -> tuple[float, str]:
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
    return value, unit


def parse_time_us(text) -> float:
    """'12 us' -> 12.0, '20 ms' -> 20000.0, '8 ns' -> 0.008. Bare numbers are refused."""
    value, unit = _split(text, "time", TIME_UNITS_US)
    return value * TIME_UNITS_US[unit]


def parse_rate_hz(text) -> float:
    """'5 kHz' -> 5000.0. Bare numbers are refused."""
    value, unit = _split(text, "rate", RATE_UNITS_HZ)
    return value * RATE_UNITS_HZ[unit]
