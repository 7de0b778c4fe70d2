"""One exception hierarchy for everything chipctl raises on purpose.

The CLI turns any ``ChipctlError`` into a one-line message and exit code 2; anything else is a bug
and keeps its traceback. Errors that come from a netlist carry the file, line and field path so the
message reads ``FILE:LINE: field.path: what is wrong``.
"""

from __future__ import annotations

__all__ = [
    "ChipctlError",
    "NetlistError",
    "MappingError",
    "WriteError",
    "RunError",
    "RuleError",
    "CheckpointError",
    "InterchangeError",
    "OutputError",
    "CalibrationError",
]


class ChipctlError(Exception):
    """Base of every error chipctl raises deliberately (bad input, impossible request)."""

    def one_line(self) -> str:
        return " ".join(str(self).split())


class NetlistError(ChipctlError):
    """A netlist that cannot be read or does not validate.

    ``file`` and ``line`` locate the offending node (line is 1-based, or None when unknown);
    ``field`` is the dotted path, e.g. ``projections.in_hidden.weights``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = self.file or "<netlist>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class MappingError(NetlistError):
    """The netlist is valid but does not fit the chip (names the resource and by how much)."""


class WriteError(ChipctlError):
    """A host-interface write was refused (NaN/inf, wrong shape, unknown target); nothing was written."""


class RunError(ChipctlError):
    """A run request that the chip cannot serve (bad input shape, unknown source, ...)."""


class RuleError(ChipctlError):
    """A learning-rule plugin failed; the message names the plugin and the hook."""

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None):
        self.plugin = plugin
        self.hook = hook
        prefix = ""
        if plugin:
            prefix = f"rule {plugin!r}"
            if hook:
                prefix += f" in {hook}"
            prefix += ": "
        super().__init__(prefix + message)


class CheckpointError(ChipctlError):
    """A checkpoint that is missing, incomplete or does not match the netlist."""


class InterchangeError(ChipctlError):
    """A file of another format (NIR) that cannot be read or does not fit a netlist; the message
    names the file and the node: ``FILE: node 'NAME': what is wrong``."""

    def __init__(self, message: str, *, file: str | None = None, node: str | None = None):
        self.message = message
        self.file = file
        self.node = node
        where = file or "<nir>"
        what = f" node {node!r}:" if node else ""
        super().__init__(f"{where}:{what} {message}")


class OutputError(ChipctlError):
    """An output file or folder that cannot be written (checked before the run where possible)."""


class CalibrationError(ChipctlError):
    """A calibration file that cannot be read, is corrupted, or belongs to another die or kind of
    chip (or does not fit the netlist it is named in); the message starts with the file."""

    def __init__(self, message: str, *, file: str | None = None):
        self.file = file
        self.message = message
        super().__init__(f"{file}: {message}" if file else message)
