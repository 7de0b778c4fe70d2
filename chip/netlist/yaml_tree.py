"""YAML text -> plain Python values plus the line of every key and list item.

Job: ``parse_yaml(text, file)`` composes the text with ``yaml.SafeLoader`` into a node tree with
positions and builds plain values (dicts, lists, str, int, float, bool, None) from the nodes here
— never by unsafe loading — recording the 1-based line of every mapping key and list item under
its dotted path ("projections.in_hidden.weights", "record.membrane.1"), so each later check can
point at its node. Keys stay the strings written (a key ``1`` or ``on`` is a name, not a number or
a boolean); ``1e-3`` is a number, as in YAML 1.2; a duplicate key, a recursive alias, a tag such as
``!!python/...`` and a syntax error are reported as ``NetlistError`` with their line.

Boundary: this module knows YAML, not the netlist format: which keys are allowed and what the
values mean is the readers' business (``chip.netlist.reader`` and the kit in
``chip.netlist.validation``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import NetlistError

__all__ = ["parse_yaml", "LineTree", "join_path"]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("null", "bool", "int", "float", "str")}
# YAML 1.1 reads "1e-3" as a string; YAML 1.2 and every user reads it as a number.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def join_path(path: str, key) -> str:
    """The dotted path of ``key`` (a mapping key or list index) under ``path``."""
    return f"{path}.{key}" if path else str(key)


class LineTree:
    """Builds plain Python values from a composed node tree, recording lines by dotted path.

    ``lines``: every mapping key and list item, and the document itself under "" (for error
    messages); ``public``: the mapping keys and the list items that are mappings (kept as
    ``Netlist.lines`` for later stages, without one entry per spike time or weight).
    """

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[str, int] = {}
        self.public: dict[str, int] = {}
        self._constructor = yaml.constructor.SafeConstructor()

    def _fail(self, node, path: str, message: str):
        raise NetlistError(message, file=self.file, line=node.start_mark.line + 1, field=path)

    def build(self, root) -> Any:
        if root is None:
            return None
        self.lines[""] = root.start_mark.line + 1
        return self._value(root, "", set())

    def _value(self, node, path: str, active: set[int]):
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in active:
            self._fail(node, path, "recursive YAML alias")
        active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, active)
            return self._sequence(node, path, active)
        finally:
            active.discard(id(node))

    def _mapping(self, node, path, active) -> dict:
        if node.tag != _TAG + "map":
            self._fail(node, path, f"unsupported YAML tag {node.tag}")
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(key_node, path, "mapping keys must be plain names")
            # The key's source text, so names stay strings even when they look like numbers or booleans.
            key = key_node.value
            child = join_path(path, key)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self._fail(key_node, child, f"duplicate key '{key}' (first given on line {first_line[key]})")
            first_line[key] = line
            self.lines[child] = self.public[child] = line
            out[key] = self._value(value_node, child, active)
        return out

    def _sequence(self, node, path, active) -> list:
        if node.tag != _TAG + "seq":
            self._fail(node, path, f"unsupported YAML tag {node.tag}")
        out = []
        for i, item in enumerate(node.value):
            child = join_path(path, i)
            self.lines[child] = item.start_mark.line + 1
            if isinstance(item, yaml.MappingNode):
                self.public[child] = self.lines[child]
            out.append(self._value(item, child, active))
        return out

    def _scalar(self, node, path):
        if node.tag == _TAG + "str" and node.style is None and _EXPONENT_FLOAT.match(node.value):
            return float(node.value)
        if node.tag not in _SCALAR_TAGS:
            self._fail(node, path, f"unsupported YAML value {node.value!r} ({node.tag}); "
                                   "quote it to make it a string")
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self._fail(node, path, f"cannot read value {node.value!r}: {exc}")


def parse_yaml(text: str, file: str) -> tuple[Any, LineTree]:
    """The plain value of a one-document YAML text and the tree holding its lines."""
    tree = LineTree(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(part) for part in (exc.problem, f"({exc.context})" if exc.context else None) if part)
        raise NetlistError(f"YAML syntax error: {what}", file=file,
                           line=mark.line + 1 if mark else None, field="") from None
    except yaml.YAMLError as exc:
        raise NetlistError(f"YAML syntax error: {exc}", file=file, field="") from None
    return tree.build(root), tree
