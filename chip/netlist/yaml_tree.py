"""YAML text -> plain Python values plus the line of every key and list item.

Job: ``parse_yaml(text, file)`` composes the text with ``yaml.SafeLoader`` into a node tree with
positions and builds plain values (dicts, lists, str, int, float, bool, None) from the nodes here
— never by unsafe loading — recording the 1-based line of every mapping key and list item under
its dotted path ("projections.in_hidden.weights", "record.membrane.1"), so each later check can
point at its node. Keys stay the strings written (a key ``1`` or ``on`` is a name, not a number or
a boolean); ``1e-3`` is a number, as in YAML 1.2; a duplicate key, a recursive alias, a tag such as
``!!python/...`` and a syntax error are reported as ``NetlistError`` with their line.

Limits, enforced before anything is built: a document of at most ``MAX_DOCUMENT_CHARS``
characters, nested at most ``MAX_DEPTH`` deep, that expands to at most ``MAX_NODES`` nodes with
every alias counted as often as it is used (so an "alias bomb" of a few lines is refused at once).
They are checked on the parser's event stream, which takes no recursion and keeps no tree; the
tree is then composed by libyaml where PyYAML has it (the pure-Python composer otherwise). A text
that does not parse is parsed again by the pure-Python parser, whose messages the docs show.

Boundary: this module knows YAML, not the netlist format: which keys are allowed and what the
values mean is the readers' business (``chip.netlist.reader`` and the kit in
``chip.netlist.validation``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import NetlistError

__all__ = ["parse_yaml", "LineTree", "join_path", "MAX_DOCUMENT_CHARS", "MAX_DEPTH", "MAX_NODES"]

#: the longest netlist text read (characters); big data belongs in .npz / .npy files
MAX_DOCUMENT_CHARS = 4 * 1024 * 1024
#: the deepest nesting of mappings and lists
MAX_DEPTH = 64
#: the most nodes (keys, values, list items) a document may expand to, each alias counted as
#: often as it is used
MAX_NODES = 200_000
#: where the big-data advice points
_BIG_DATA = "put large spike trains and weight matrices in .npz / .npy files (type: file, weights: {file: ...})"

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
        # a plain scalar has no style (None from PyYAML's composer, "" from libyaml's)
        if node.tag == _TAG + "str" and not node.style and _EXPONENT_FLOAT.match(node.value):
            return float(node.value)
        if node.tag not in _SCALAR_TAGS:
            self._fail(node, path, f"unsupported YAML value {node.value!r} ({node.tag}); "
                                   "quote it to make it a string")
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self._fail(node, path, f"cannot read value {show(node.value)}: {exc}")
        except ValueError:  # an integer of more digits than Python converts
            self._fail(node, path, f"cannot read value {show(node.value)}: a number of {len(node.value)} characters "
                                   "is out of range")


def show(text: str) -> str:
    """A scalar as quoted in a message, cut to 40 characters."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _syntax_error(exc: yaml.YAMLError, file: str) -> NetlistError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(part) for part in (exc.problem, f"({exc.context})" if exc.context else None) if part)
        return NetlistError(f"YAML syntax error: {what}", file=file, line=mark.line + 1 if mark else None, field="")
    return NetlistError(f"YAML syntax error: {exc}", file=file, field="")


def _check_limits(text: str, file: str, loader) -> None:
    """Walk the parser's events (no tree, no recursion) and refuse a document nested deeper than
    MAX_DEPTH or expanding to more than MAX_NODES nodes, each alias counted as the size of what
    it names. An alias of a collection still open (a recursive alias) counts once here; the tree
    builder names it."""
    sizes: dict[str, int] = {}
    open_: list[tuple[str | None, int]] = []
    total = 0

    def fail(event, message):
        raise NetlistError(message, file=file, line=event.start_mark.line + 1 if event.start_mark else None, field="")

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            total += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_.append((event.anchor, total))
            total += 1
            if len(open_) > MAX_DEPTH:
                fail(event, f"YAML nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, before = open_.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        else:
            continue
        if total > MAX_NODES:
            fail(event, f"the YAML expands to more than {MAX_NODES} nodes (aliases count each time they are used); "
                        + _BIG_DATA)


_FAST = getattr(yaml, "CSafeLoader", None)


def parse_yaml(text: str, file: str) -> tuple[Any, LineTree]:
    """The plain value of a one-document YAML text and the tree holding its lines."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise NetlistError(f"the netlist is {len(text)} characters long, more than the {MAX_DOCUMENT_CHARS} "
                           f"a netlist may have; {_BIG_DATA}", file=file, field="")
    tree = LineTree(file)
    try:
        _check_limits(text, file, _FAST or yaml.SafeLoader)
        root = yaml.compose(text, Loader=_FAST or yaml.SafeLoader)
    except yaml.YAMLError as exc:
        if _FAST is None:
            raise _syntax_error(exc, file) from None
        # libyaml's words differ from PyYAML's: let the pure-Python parser say what is wrong
        # (it reads the same limits first, so its composer never recurses deeper than MAX_DEPTH)
        try:
            _check_limits(text, file, yaml.SafeLoader)
            yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as python_exc:
            raise _syntax_error(python_exc, file) from None
        raise _syntax_error(exc, file) from None
    return tree.build(root), tree
