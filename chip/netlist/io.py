"""Reading and writing netlist YAML: the one place that knows the file format.

Job: turn a netlist file into a :class:`chip.netlist.Netlist` (hardware µs, Hz, a resolved
:class:`chip.profiles.ChipProfile`), reporting the first problem as a
:class:`chip.errors.NetlistError` that reads ``FILE:LINE: field.path: what is wrong``; and write a
``Netlist`` back out as YAML that loads to the same values.

Boundary: this module checks everything the file alone decides (field names and types, units,
ranges, references between names, sizes of explicit arrays and index ranges). Whether the netlist
fits a chip (neurons, synapse rows, ADC channels, periods) is the mapper's job (``chip.mapping``);
nothing here knows about codes, placement or routes. The one outside helper used is
``chip.netlist.connectivity.realize_connectivity``, so that a weight array's sign is judged on the entries
that become synapses, exactly as the weight initializer will.

How it reads: ``yaml.compose`` with ``yaml.SafeLoader`` gives a node tree with positions; the
values are built from the nodes here (never by unsafe loading), recording the 1-based line of every
mapping key and list item under its dotted path, so each later check can point at its node.

The JSON Schema returned by :func:`netlist_schema` is the single source of truth for field names:
the validator takes its allowed and required key sets from it, and the ``chip`` section's keys are
derived from ``dataclasses.fields(ChipProfile)`` (and ``params`` from ``NeuronParams``), so a new
profile field becomes a YAML key without touching the reader.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import NetlistError
from ..events import SpikeEvents
from .model import (
    NEURON_MODELS,
    Connectivity,
    InputSource,
    MembraneRecord,
    Netlist,
    NeuronParams,
    Population,
    Projection,
    Record,
    WeightInit,
)
from ..profiles import PROFILES, ChipProfile, Mismatch, get_profile
from ..units import (RATE_UNITS_HZ, TIME_UNITS_US, VOLTAGE_UNITS_V, UnitError, parse_rate_hz, parse_time_us,
                     parse_voltage_v, quantity_pattern, time_in)

__all__ = ["load_netlist", "load_netlist_text", "netlist_schema", "netlist_to_dict", "dump_netlist"]

# ---------------------------------------------------------------------------------------------
# Vocabulary of the format
# ---------------------------------------------------------------------------------------------

TIMESCALES = ("hardware", "biological")
INPUT_TYPES = ("spikes", "poisson", "file")
CONNECTIVITY_KINDS = ("all_to_all", "one_to_one")
SIGNS = ("excitatory", "inhibitory", "signed", "auto")
ADCS = ("cadc", "madc")
WEIGHT_FORMS = ("normal", "uniform", "file", "array")  # the keys that select a weights mapping's form

# Names become parts of dotted field paths, so they must not contain dots or spaces.
_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
_NAME_RE = re.compile(_NAME_PATTERN)

# --- chip section: keys derived from ChipProfile's fields ------------------------------------


@dataclasses.dataclass(frozen=True)
class _ChipKey:
    key: str            # YAML key
    field: str          # ChipProfile field
    kind: str           # int | seed | bits | number | pair | mismatch
    unit: str | None    # us | ns | V for quantities written with a unit, else None
    allow_inf: bool = False


_CHIP_RENAMES = {"noise_membrane": "noise"}
_SUFFIX_UNITS = {"_us": "us", "_ns": "ns", "_v": "V"}
_TYPE_KINDS = {"int": "int", "int | None": "bits", "float": "number", "tuple[float, float]": "pair"}


def _chip_key_table() -> dict[str, _ChipKey]:
    table: dict[str, _ChipKey] = {}
    for f in dataclasses.fields(ChipProfile):
        if f.name == "name":
            continue  # the profile is chosen by `profile:`
        if f.name == "mismatch":
            table["mismatch"] = _ChipKey("mismatch", "mismatch", "mismatch", None)
            continue
        typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = _TYPE_KINDS.get(typ)
        if kind is None:  # a new kind of profile field: fail loudly at import rather than misread it
            raise TypeError(f"netlist_io cannot read ChipProfile.{f.name} of type {typ}")
        key, unit = _CHIP_RENAMES.get(f.name, f.name), None
        for suffix, suffix_unit in _SUFFIX_UNITS.items():
            if f.name.endswith(suffix):
                key, unit = f.name[: -len(suffix)], suffix_unit
        if f.name.endswith("_seed"):
            kind = "seed"
        # inf is allowed exactly where a shipped profile uses it ("never congests" capacities).
        allow_inf = kind == "number" and any(
            not math.isfinite(getattr(p, f.name)) for p in PROFILES.values())
        if key in table:
            raise TypeError(f"two ChipProfile fields map to the YAML key {key!r}")
        table[key] = _ChipKey(key, f.name, kind, unit, allow_inf)
    return table


_CHIP_KEYS = _chip_key_table()

# --- neuron params: keys derived from NeuronParams' fields ------------------------------------

_PARAM_TIME_KEYS = {f.name[:-3]: f.name for f in dataclasses.fields(NeuronParams) if f.name.endswith("_us")}
_PARAM_NUMBER_KEYS = tuple(f.name for f in dataclasses.fields(NeuronParams) if not f.name.endswith("_us"))
_TAU_SYN_FIELDS = ("tau_syn_exc_us", "tau_syn_inh_us")  # `tau_syn` sets both

# ---------------------------------------------------------------------------------------------
# The JSON Schema (single source of truth for key names)
# ---------------------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _pair(item: dict) -> dict:
    return {"type": "array", "prefixItems": [item, item], "minItems": 2, "maxItems": 2}


def _obj(properties: dict, required=(), description: str | None = None, **extra) -> dict:
    out: dict[str, Any] = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = properties
    if required:
        out["required"] = list(required)
    out["additionalProperties"] = False
    out.update(extra)
    return out


def _chip_property_schema(spec: _ChipKey) -> dict:
    what = f"ChipProfile.{spec.field}"
    if spec.kind == "mismatch":
        return _ref("mismatch")
    if spec.kind == "seed":
        return {**_ref("seed"), "description": what}
    if spec.kind == "int":
        return {"type": "integer", "minimum": 0, "description": what}
    if spec.kind == "bits":
        return {"type": ["integer", "null"], "minimum": 1, "maximum": 24, "description": f"{what} (null = float)"}
    item = {"us": _ref("time"), "ns": _ref("time"), "V": _ref("voltage")}.get(spec.unit, {"type": "number", "minimum": 0})
    schema = _pair(item) if spec.kind == "pair" else dict(item)
    schema["description"] = what
    return schema


def _build_schema() -> dict:
    time, rate, seed, name = _ref("time"), _ref("rate"), _ref("seed"), _ref("name")
    number = {"type": "number"}
    trains = {"type": "array", "items": {"type": "array", "items": time},
              "description": "per-neuron lists of spike times"}
    spike_times = {"oneOf": [trains, _ref("spike_times_unit")]}
    names = {"type": "array", "items": name}

    params = {key: time for key in _PARAM_TIME_KEYS}
    params["tau_syn"] = {**time, "description": "sets tau_syn_exc and tau_syn_inh"}
    params.update({key: number for key in _PARAM_NUMBER_KEYS})

    chip = {"profile": {"enum": sorted(PROFILES), "default": "bss2"}}
    chip.update({key: _chip_property_schema(spec) for key, spec in _CHIP_KEYS.items()})

    input_common = {"size": {"type": "integer", "minimum": 1}}
    defs = {
        "time": {"type": "string", "pattern": quantity_pattern(TIME_UNITS_US),
                 "description": f"time with a unit ({', '.join(TIME_UNITS_US)})"},
        "rate": {"type": "string", "pattern": quantity_pattern(RATE_UNITS_HZ),
                 "description": f"rate with a unit ({', '.join(RATE_UNITS_HZ)})"},
        "voltage": {"type": "string", "pattern": quantity_pattern(VOLTAGE_UNITS_V),
                    "description": f"voltage with a unit ({', '.join(VOLTAGE_UNITS_V)})"},
        "seed": {"type": "integer", "minimum": 0},
        "name": {"type": "string", "pattern": _NAME_PATTERN},
        "chip": _obj(chip, description="chip profile and overrides of its fields"),
        "mismatch": {"oneOf": [{"enum": ["off", False]}, _ref("mismatch_fields")]},
        "mismatch_fields": _obj({f.name: {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
                                 for f in dataclasses.fields(Mismatch)},
                                description="relative one-sigma spread overriding the profile's"),
        "population": _obj({"size": {"type": "integer", "minimum": 1},
                            "model": {"enum": list(NEURON_MODELS), "default": "LIF"},
                            "params": _ref("params"), "v_init": _ref("v_init")}, required=["size"]),
        "v_init": {"oneOf": [number, _ref("v_init_uniform")],
                   "description": "initial membrane (model units); default: at the leak"},
        "v_init_uniform": _obj({"uniform": {"oneOf": [_pair(number), _ref("uniform")]}, "seed": seed},
                               required=["uniform"],
                               description="uniform draw per neuron, sample and run"),
        "params": _obj(params, **{"not": {"anyOf": [{"required": ["tau_syn", "tau_syn_exc"]},
                                                     {"required": ["tau_syn", "tau_syn_inh"]}]}}),
        "input": {"oneOf": [_ref("input_spikes"), _ref("input_poisson"), _ref("input_file")]},
        "input_spikes": _obj({**input_common, "type": {"const": "spikes"}, "times": spike_times,
                              "batches": {"type": "array", "minItems": 1, "items": spike_times}},
                             required=["size", "type"],
                             oneOf=[{"required": ["times"]}, {"required": ["batches"]}]),
        "input_poisson": _obj({**input_common, "type": {"const": "poisson"}, "rate": rate,
                               "start": time, "stop": time, "seed": seed},
                              required=["size", "type", "rate"]),
        "input_file": _obj({**input_common, "type": {"const": "file"},
                            "path": {"type": "string",
                                     "description": ".npz with arrays neuron, time_us (hardware µs), "
                                                    "optional batch; relative to the netlist file"}},
                           required=["size", "type", "path"]),
        "spike_times_unit": _obj({"unit": {"enum": list(TIME_UNITS_US)},
                                  "values": {"type": "array", "items": {"type": "array", "items": number}}},
                                 required=["unit", "values"]),
        "projection": _obj({"pre": name, "post": name, "connectivity": _ref("connectivity"),
                            "weights": _ref("weights"), "sign": {"enum": list(SIGNS), "default": "auto"},
                            "delay": time}, required=["pre", "post", "weights"]),
        "connectivity": {"oneOf": [{"enum": list(CONNECTIVITY_KINDS)}, _ref("connectivity_random"),
                                   _ref("connectivity_explicit")], "default": "all_to_all"},
        "connectivity_random": _obj({"probability": {"type": "number", "minimum": 0, "maximum": 1},
                                     "seed": seed, "allow_self": {"type": "boolean", "default": True}},
                                    required=["probability"]),
        "connectivity_explicit": _obj({"explicit": {"type": "array", "items": _pair({"type": "integer",
                                                                                      "minimum": 0})}},
                                      required=["explicit"]),
        "weights": {"oneOf": [number, _ref("weights_normal"), _ref("weights_uniform"), _ref("weights_file"),
                              _ref("weights_array")]},
        "weights_normal": _obj({"normal": _ref("normal"), "seed": seed}, required=["normal"]),
        "weights_uniform": _obj({"uniform": _ref("uniform"), "seed": seed}, required=["uniform"]),
        "weights_file": _obj({"file": {"type": "string", "description": ".npy array (n_pre, n_post)"}},
                             required=["file"]),
        "weights_array": _obj({"array": {"type": "array", "items": {"type": "array", "items": number}}},
                              required=["array"], description="inline (n_pre, n_post) matrix"),
        "normal": _obj({"mean": number, "std": {"type": "number", "minimum": 0}}, required=["mean", "std"]),
        "uniform": _obj({"low": number, "high": number}, required=["low", "high"]),
        "record": _obj({"spikes": {"oneOf": [{"const": "all"}, names], "default": "all"},
                        "membrane": {"type": "array", "items": _ref("membrane")},
                        "correlations": names}),
        "membrane": _obj({"population": name,
                          "neurons": {"oneOf": [{"const": "all"},
                                                {"type": "array", "items": {"type": "integer", "minimum": 0}}],
                                      "default": "all"},
                          "adc": {"enum": list(ADCS), "default": "cadc"},
                          "period": time}, required=["population"]),
    }
    named = {"type": "object", "propertyNames": name}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "chipctl netlist",
        "description": "A chipctl netlist. Times and rates carry units; with timescale: biological, "
                       "every time is biological and divided by the chip's speedup (rates multiplied).",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "timescale": {"enum": list(TIMESCALES), "default": "hardware"},
            "duration": time,
            "batch": {"type": "integer", "minimum": 1, "default": 1},
            "chip": _ref("chip"),
            "populations": {**named, "minProperties": 1, "additionalProperties": _ref("population")},
            "inputs": {**named, "additionalProperties": _ref("input")},
            "projections": {**named, "additionalProperties": _ref("projection")},
            "record": _ref("record"),
            "expect": {"type": "object", "description": "kept verbatim for the regression checks"},
            "train": {"type": "object", "description": "kept verbatim for the training front end"},
        },
        "required": ["duration", "populations"],
        "additionalProperties": False,
        "$defs": defs,
    }


_SCHEMA = _build_schema()


def _form_schemas(schema: dict) -> dict[str, dict]:
    """Every object form the validator checks keys of: the root and each $defs entry with properties."""
    forms = {"netlist": schema}
    forms.update({name: d for name, d in schema["$defs"].items() if "properties" in d})
    return forms


_FORMS = _form_schemas(_SCHEMA)
_FORM_KEYS = {name: tuple(d["properties"]) for name, d in _FORMS.items()}
_FORM_REQUIRED = {name: tuple(d.get("required", ())) for name, d in _FORMS.items()}


def netlist_schema() -> dict:
    """The JSON Schema (draft 2020-12) of the netlist format, as a fresh dict."""
    return copy.deepcopy(_SCHEMA)


# ---------------------------------------------------------------------------------------------
# YAML node tree -> plain values + line numbers
# ---------------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("null", "bool", "int", "float", "str")}
# YAML 1.1 reads "1e-3" as a string; YAML 1.2 and every user reads it as a number.
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


class _Tree:
    """Builds plain Python values from a composed node tree, recording lines by dotted path."""

    def __init__(self, file: str):
        self.file = file
        self.lines: dict[str, int] = {}   # every mapping key and list item (for error messages)
        self.public: dict[str, int] = {}  # mapping keys and list items that are mappings (Netlist.lines)
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
            child = _join(path, key)
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
            child = _join(path, i)
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


def _parse_yaml(text: str, file: str) -> tuple[Any, _Tree]:
    tree = _Tree(file)
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


# ---------------------------------------------------------------------------------------------
# Validation: plain values -> chip.netlist dataclasses
# ---------------------------------------------------------------------------------------------


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, options) -> str:
    options = list(options)
    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def _blame(message: str, candidates: list[tuple[tuple[str, ...], str]]) -> str | None:
    """The path whose field name appears first in a dataclass's ValueError message, if any."""
    best: tuple[int, str] | None = None
    for names, path in candidates:
        for name in names:
            match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), path)
    return best[1] if best else None


class _Reader:
    """One validation pass over the plain values; raises NetlistError at the first problem."""

    def __init__(self, file: str, lines: dict[str, int], base_dir: Path):
        self.file = file
        self.lines = lines
        self.base_dir = base_dir
        self.speedup = 1.0
        self.biological = False
        self.seen: set[tuple[str, str]] = set()  # (form, key) pairs accepted, for the schema test
        self.batch: int | None = None            # declared or first per-sample input's batch size
        self.batch_path: str | None = None       # where that batch size came from (for messages)

    # --- errors ----------------------------------------------------------------------------
    def line(self, path: str) -> int | None:
        parts = path.split(".") if path else []
        while True:
            key = ".".join(parts)
            if key in self.lines:
                return self.lines[key]
            if not parts:
                return None
            parts.pop()

    def fail(self, path: str, message: str):
        raise NetlistError(message, file=self.file, line=self.line(path), field=path)

    # --- structure -------------------------------------------------------------------------
    def mapping(self, value, path: str, what: str = "a mapping") -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected {what}, got {_show(value)}")
        return value

    def keys(self, value, path: str, form: str, what: str = "a mapping") -> dict:
        """Check a mapping's keys against the schema form: unknown first, then missing."""
        value = self.mapping(value, path, what)
        allowed = _FORM_KEYS[form]
        for key in value:
            if key not in allowed:
                self.fail(_join(path, key), f"unknown field '{key}'{_suggest(key, allowed)}; "
                                            f"expected one of {', '.join(allowed)}")
            self.seen.add((form, key))
        for key in _FORM_REQUIRED[form]:
            if key not in value:
                self.fail(_join(path, key), f"missing required field '{key}'")
        return value

    def name(self, name: str, path: str, what: str):
        if not _NAME_RE.match(name):
            self.fail(path, f"{what} name '{name}' must start with a letter or '_' and contain only "
                            "letters, digits, '_' and '-'")

    # --- scalars ---------------------------------------------------------------------------
    def integer(self, value, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_show(value)}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum}, got {value}")
        return value

    def seed(self, value, path: str) -> int:
        return self.integer(value, path, minimum=0)

    def number(self, value, path: str, minimum: float | None = None, allow_inf: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {_show(value)}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            self.fail(path, f"must be a finite number, got {value}")
        if minimum is not None and value < minimum:
            self.fail(path, f"must be >= {minimum:g}, got {value:g}")
        return value

    def string(self, value, path: str) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_show(value)}")
        return value

    def boolean(self, value, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_show(value)}")
        return value

    def choice(self, value, path: str, options, what: str = "value") -> str:
        if not isinstance(value, str) or value not in options:
            self.fail(path, f"unknown {what} {_show(value)}{_suggest(value, options) if isinstance(value, str) else ''}; "
                            f"expected one of {', '.join(options)}")
        return value

    def time(self, value, path: str, *, minimum: float | None = 0.0, positive: bool = False) -> float:
        """A time in the netlist's timescale -> hardware µs."""
        try:
            us = parse_time_us(value)
        except UnitError as exc:
            self.fail(path, str(exc))
        if positive and not us > 0:
            self.fail(path, f"must be > 0, got {_show(value)}")
        if minimum is not None and us < minimum:
            self.fail(path, f"must be >= 0, got {_show(value)}")
        return us / self.speedup if self.biological else us

    def rate(self, value, path: str) -> float:
        """A rate in the netlist's timescale -> hardware Hz."""
        try:
            hz = parse_rate_hz(value)
        except UnitError as exc:
            self.fail(path, str(exc))
        if hz < 0:
            self.fail(path, f"must be >= 0, got {_show(value)}")
        return hz * self.speedup if self.biological else hz

    # --- sections --------------------------------------------------------------------------
    def netlist(self, raw, *, default_name: str, profile, die_seed, noise_seed, batch) -> Netlist:
        if raw is None:
            self.fail("", "the netlist is empty")
        raw = self.keys(raw, "", "netlist", "a mapping of netlist sections")

        name = self.string(raw["name"], "name") if "name" in raw else default_name
        description = self.string(raw["description"], "description") if "description" in raw else ""
        timescale = self.choice(raw.get("timescale", "hardware"), "timescale", TIMESCALES, "timescale")

        # Every time and rate written in the file, the chip section's included, is in the netlist's
        # timescale; chip() sets the speed-up first, since the chip section may change it.
        self.biological = timescale == "biological"
        chip = self.chip(raw.get("chip"), profile=profile, die_seed=die_seed, noise_seed=noise_seed)

        duration_us = self.time(raw["duration"], "duration", positive=True)

        # batch: the override, else the file's `batch`, else the first input with per-sample trains.
        if batch is not None:
            if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
                raise NetlistError(f"batch override must be an integer >= 1, got {batch!r}",
                                   file=self.file, field="batch")
            self.batch, self.batch_path = batch, "the batch override"
        elif "batch" in raw:
            self.batch, self.batch_path = self.integer(raw["batch"], "batch", minimum=1), "batch"

        populations = self.populations(raw["populations"])
        inputs = self.inputs(raw.get("inputs"), populations)
        projections = self.projections(raw.get("projections"), populations, inputs)
        record = self.record(raw.get("record"), populations, projections, chip)
        expect = self.verbatim(raw, "expect")
        train = self.verbatim(raw, "train")

        return Netlist(chip=chip, duration_us=duration_us, populations=populations, inputs=inputs,
                       projections=projections, record=record, batch=self.batch or 1, name=name,
                       description=description, timescale=timescale, expect=expect, train=train)

    def verbatim(self, raw: dict, key: str) -> dict | None:
        value = raw.get(key)
        if value is None:
            return None
        return self.mapping(value, key)

    # chip ------------------------------------------------------------------------------------
    def chip(self, raw, *, profile, die_seed, noise_seed) -> ChipProfile:
        raw = {} if raw is None else self.keys(raw, "chip", "chip")
        if profile is not None:
            if profile not in PROFILES:
                raise NetlistError(f"unknown chip profile {profile!r} (override); known: {', '.join(sorted(PROFILES))}",
                                   file=self.file, field="chip.profile")
            name = profile
        else:
            name = self.choice(raw.get("profile", "bss2"), "chip.profile", sorted(PROFILES), "chip profile")
        base = get_profile(name)
        self.speedup = base.speedup
        if "speedup" in raw:  # needed before any other chip time can be converted
            self.speedup = self.chip_value(_CHIP_KEYS["speedup"], raw["speedup"], "chip.speedup", base)
            if not self.speedup > 0:
                self.fail("chip.speedup", f"must be > 0, got {_show(raw['speedup'])}")

        changes: dict[str, Any] = {}
        paths: list[tuple[tuple[str, ...], str]] = []
        for key, value in raw.items():
            if key == "profile":
                continue
            spec = _CHIP_KEYS[key]
            path = f"chip.{key}"
            changes[spec.field] = self.chip_value(spec, value, path, base)
            paths.append(((spec.field, key), path))
        for field, override in (("die_seed", die_seed), ("noise_seed", noise_seed)):
            if override is not None:
                if isinstance(override, bool) or not isinstance(override, int) or override < 0:
                    raise NetlistError(f"{field} override must be an integer >= 0, got {override!r}",
                                       file=self.file, field=f"chip.{field}")
                changes[field] = override
        try:
            return base.replace(**changes)
        except (ValueError, TypeError) as exc:
            # ChipProfile checks combinations (step vs clock, ...): point at the field it names.
            hint = " (in hardware time: with timescale: biological, chip times are divided by the speedup too)"
            self.fail(_blame(str(exc), paths) or "chip", str(exc) + (hint if self.biological else ""))

    def chip_value(self, spec: _ChipKey, value, path: str, base: ChipProfile):
        if spec.kind == "mismatch":
            return self.mismatch(value, path, base.mismatch)
        if spec.kind == "seed":
            return self.seed(value, path)
        if spec.kind == "int":
            return self.integer(value, path, minimum=0)
        if spec.kind == "bits":
            return None if value is None else self.integer(value, path, minimum=1)
        if spec.kind == "pair":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, f"expected [low, high], got {_show(value)}")
            low, high = (self.chip_scalar(spec, v, f"{path}.{i}") for i, v in enumerate(value))
            if low > high:
                self.fail(path, f"low {low:g} is above high {high:g}")
            return (low, high)
        return self.chip_scalar(spec, value, path)

    def chip_scalar(self, spec: _ChipKey, value, path: str) -> float:
        try:
            if spec.unit == "V":
                return parse_voltage_v(value)
            if spec.unit in ("us", "ns"):
                result = time_in(value, spec.unit)
                if result < 0:
                    self.fail(path, f"must be >= 0, got {_show(value)}")
                return result / self.speedup if self.biological else result
        except UnitError as exc:
            self.fail(path, str(exc))
        return self.number(value, path, minimum=0.0, allow_inf=spec.allow_inf)

    def mismatch(self, value, path: str, base: Mismatch) -> Mismatch:
        if value is False or value == "off":  # YAML 1.1 reads a bare `off` as false
            return Mismatch()
        value = self.keys(value, path, "mismatch_fields", "'off' or a mapping of mismatch sigmas")
        sigmas = {}
        for key, sigma in value.items():
            sigma = self.number(sigma, f"{path}.{key}")
            if not 0.0 <= sigma < 1.0:
                self.fail(f"{path}.{key}", f"must be a relative sigma in [0, 1), got {sigma:g}")
            sigmas[key] = sigma
        try:
            return dataclasses.replace(base, **sigmas)
        except ValueError as exc:
            self.fail(path, str(exc))

    # populations -------------------------------------------------------------------------------
    def populations(self, raw) -> dict[str, Population]:
        raw = self.mapping(raw, "populations", "a mapping of population names to populations")
        if not raw:
            self.fail("populations", "at least one population is needed")
        out = {}
        for name, spec in raw.items():
            path = f"populations.{name}"
            self.name(name, path, "population")
            spec = self.keys(spec, path, "population")
            size = self.integer(spec["size"], f"{path}.size", minimum=1)
            model = self.choice(spec.get("model", "LIF"), f"{path}.model", NEURON_MODELS, "neuron model")
            params = self.params(spec.get("params"), f"{path}.params")
            extra = {}
            if "v_init" in spec:
                extra["v_init"] = self.v_init(spec["v_init"], f"{path}.v_init")
            try:
                out[name] = Population(name=name, size=size, model=model, params=params, **extra)
            except ValueError as exc:
                self.fail(path, str(exc))
        return out

    def v_init(self, raw, path: str) -> float | tuple[float, float, int]:
        """Initial membrane: a number, or (low, high, seed) for uniform draws."""
        if not isinstance(raw, dict):
            return self.number(raw, path)
        raw = self.keys(raw, path, "v_init_uniform", "a number or {uniform: [low, high], seed}")
        where = f"{path}.uniform"
        if isinstance(raw["uniform"], list):
            if len(raw["uniform"]) != 2:
                self.fail(where, f"expected [low, high], got {_show(raw['uniform'])}")
            low, high = (self.number(v, f"{where}.{i}") for i, v in enumerate(raw["uniform"]))
        else:
            dist = self.keys(raw["uniform"], where, "uniform", "[low, high] or {low, high}")
            low, high = self.number(dist["low"], f"{where}.low"), self.number(dist["high"], f"{where}.high")
        if low > high:
            self.fail(f"{path}.uniform.high", f"high {high:g} is below low {low:g}")
        return (low, high, self.seed(raw.get("seed", 0), f"{path}.seed"))

    def params(self, raw, path: str) -> NeuronParams:
        if raw is None:
            return NeuronParams()
        raw = self.keys(raw, path, "params")
        if "tau_syn" in raw:
            for key in ("tau_syn_exc", "tau_syn_inh"):
                if key in raw:
                    self.fail(f"{path}.tau_syn", f"tau_syn sets both tau_syn_exc and tau_syn_inh; "
                                                 f"do not give it together with {key}")
        values: dict[str, float] = {}
        blame: list[tuple[tuple[str, ...], str]] = []
        for key, value in raw.items():
            where = f"{path}.{key}"
            if key == "tau_syn":
                t = self.time(value, where, minimum=None)
                values.update(dict.fromkeys(_TAU_SYN_FIELDS, t))
                blame.append((_TAU_SYN_FIELDS + ("tau_syn",), where))
            elif key in _PARAM_TIME_KEYS:
                values[_PARAM_TIME_KEYS[key]] = self.time(value, where, minimum=None)
                blame.append(((_PARAM_TIME_KEYS[key], key), where))
            else:
                values[key] = self.number(value, where)
                blame.append(((key,), where))
        try:
            return NeuronParams(**values)
        except ValueError as exc:
            message = str(exc)
            for key, field in _PARAM_TIME_KEYS.items():  # speak the YAML's names
                message = re.sub(rf"\b{field}\b", key, message)
            self.fail(_blame(str(exc), blame) or path, message)

    # inputs --------------------------------------------------------------------------------------
    def inputs(self, raw, populations) -> dict[str, InputSource]:
        if raw is None:
            return {}
        raw = self.mapping(raw, "inputs", "a mapping of input names to inputs")
        out = {}
        for name, spec in raw.items():
            path = f"inputs.{name}"
            self.name(name, path, "input")
            if name in populations:
                self.fail(path, f"input '{name}' has the same name as a population; "
                                "names must be unique across populations and inputs")
            spec = self.mapping(spec, path)
            if "type" not in spec:
                self.fail(f"{path}.type", f"missing required field 'type' ({', '.join(INPUT_TYPES)})")
            kind = self.choice(spec["type"], f"{path}.type", INPUT_TYPES, "input type")
            own = _FORM_KEYS[f"input_{kind}"]
            for key in spec:  # a field of another input type: say so rather than just "unknown"
                others = [t for t in INPUT_TYPES if key not in own and key in _FORM_KEYS[f"input_{t}"]]
                if others:
                    self.fail(f"{path}.{key}", f"unknown field '{key}' for type {kind} (it belongs to type "
                                               f"{', '.join(others)}); expected one of {', '.join(own)}")
            spec = self.keys(spec, path, f"input_{kind}")
            size = self.integer(spec["size"], f"{path}.size", minimum=1)
            if kind == "spikes":
                out[name] = InputSource(name=name, size=size, kind=kind, spikes=self.spike_input(spec, path, size))
            elif kind == "poisson":
                start = self.time(spec.get("start", "0 us"), f"{path}.start")
                stop = None
                if "stop" in spec:
                    stop = self.time(spec["stop"], f"{path}.stop")
                    if stop <= start:
                        self.fail(f"{path}.stop", "stop must be after start")
                out[name] = InputSource(name=name, size=size, kind=kind,
                                        rate_hz=self.rate(spec["rate"], f"{path}.rate"), start_us=start,
                                        stop_us=stop, seed=self.seed(spec.get("seed", 0), f"{path}.seed"))
            else:
                out[name] = InputSource(name=name, size=size, kind=kind,
                                        spikes=self.spike_file(spec["path"], f"{path}.path", size))
        return out

    def spike_input(self, spec: dict, path: str, size: int) -> SpikeEvents:
        if ("times" in spec) == ("batches" in spec):
            self.fail(path, "give exactly one of 'times' (same trains for every sample) or "
                            "'batches' (one set of trains per sample)")
        if "times" in spec:
            trains = self.trains(spec["times"], f"{path}.times", size)
            return _events([(0, trains)], size, 1)
        where = f"{path}.batches"
        batches = spec["batches"]
        if not isinstance(batches, list) or not batches:
            self.fail(where, f"expected a non-empty list of per-sample spike trains, got {_show(batches)}")
        samples = [(b, self.trains(item, f"{where}.{b}", size)) for b, item in enumerate(batches)]
        self.per_sample(len(batches), where)
        return _events(samples, size, len(batches))

    def per_sample(self, samples: int, path: str):
        """An input with its own trains per sample fixes the batch size, or must match it."""
        if self.batch is None:
            self.batch, self.batch_path = samples, path
        elif samples != self.batch:
            source = f"batch is {self.batch}" + (f" (set by {self.batch_path})" if self.batch_path else "")
            self.fail(path, f"has {samples} samples but {source}")

    def trains(self, value, path: str, size: int) -> list[list[float]]:
        """Per-neuron spike times -> hardware µs. Lists of quantities, or {unit, values}."""
        if isinstance(value, dict):
            value = self.keys(value, path, "spike_times_unit")
            unit = self.choice(value["unit"], f"{path}.unit", list(TIME_UNITS_US), "time unit")
            factor = TIME_UNITS_US[unit]
            lists, where = value["values"], f"{path}.values"

            def convert(t, p):
                us = self.number(t, p, minimum=0.0) * factor
                return us / self.speedup if self.biological else us
        else:
            lists, where = value, path

            def convert(t, p):
                return self.time(t, p)
        if not isinstance(lists, list):
            self.fail(where, f"expected one list of spike times per neuron, got {_show(lists)}")
        if len(lists) != size:
            self.fail(where, f"has {len(lists)} spike trains but size is {size}")
        out = []
        for i, train in enumerate(lists):
            if not isinstance(train, list):
                self.fail(f"{where}.{i}", f"expected a list of spike times, got {_show(train)}")
            out.append([convert(t, f"{where}.{i}.{j}") for j, t in enumerate(train)])
        return out

    def _load_numpy(self, value, path: str, kind: str):
        """np.load a file named relative to the netlist; errors name the field and the file."""
        rel = self.string(value, path)
        full = self.base_dir / rel
        try:
            return rel, np.load(full, allow_pickle=False)
        except FileNotFoundError:
            self.fail(path, f"{kind} file '{rel}' not found (looked for {full})")
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            self.fail(path, f"cannot read {kind} file '{rel}': {exc}")

    def spike_file(self, value, path: str, size: int) -> SpikeEvents:
        rel, data = self._load_numpy(value, path, "spike")
        if not hasattr(data, "files"):
            self.fail(path, f"spike file '{rel}' must be an .npz with arrays neuron, time_us and optionally batch")
        with data:
            arrays = {key: np.asarray(data[key]) for key in data.files}
        for key in ("neuron", "time_us"):
            if key not in arrays:
                self.fail(path, f"spike file '{rel}' has no array '{key}' (has: {', '.join(sorted(arrays)) or 'none'})")
        n = arrays["time_us"].size
        batch = arrays.get("batch", np.zeros(n, dtype=np.int64))
        neuron, time_us = arrays["neuron"].ravel(), arrays["time_us"].ravel().astype(np.float64)
        batch = batch.ravel()
        if not (batch.size == neuron.size == n):
            self.fail(path, f"spike file '{rel}': batch, neuron and time_us must have the same length")
        for key, arr in (("batch", batch), ("neuron", neuron)):
            if n and not (np.issubdtype(arr.dtype, np.number) and np.all(arr == np.round(arr))):
                self.fail(path, f"spike file '{rel}': '{key}' must hold integers")
        batch, neuron = batch.astype(np.int64), neuron.astype(np.int64)
        if "size" in arrays and int(arrays["size"]) != size:
            self.fail(path, f"spike file '{rel}' is for {int(arrays['size'])} neurons but size is {size}")
        if n and (neuron.min() < 0 or neuron.max() >= size):
            self.fail(path, f"spike file '{rel}': neuron index out of range 0..{size - 1}")
        if n and not (np.all(np.isfinite(time_us)) and time_us.min() >= 0):
            self.fail(path, f"spike file '{rel}': time_us must be finite and >= 0")
        if n and batch.min() < 0:
            self.fail(path, f"spike file '{rel}': negative batch index")
        batch_size = int(arrays["batch_size"]) if "batch_size" in arrays else (int(batch.max()) + 1 if n else 1)
        if n and batch.max() >= batch_size:
            self.fail(path, f"spike file '{rel}': batch index out of range 0..{batch_size - 1}")
        if batch_size > 1:
            self.per_sample(batch_size, path)
        # time_us in the file is always hardware µs, whatever the netlist's timescale.
        return _canonical_events(batch, neuron, time_us, size, batch_size)

    # projections ----------------------------------------------------------------------------------
    def projections(self, raw, populations, inputs) -> dict[str, Projection]:
        if raw is None:
            return {}
        raw = self.mapping(raw, "projections", "a mapping of projection names to projections")
        out = {}
        for name, spec in raw.items():
            path = f"projections.{name}"
            self.name(name, path, "projection")
            spec = self.keys(spec, path, "projection")
            pre = self.string(spec["pre"], f"{path}.pre")
            if pre not in populations and pre not in inputs:
                known = list(populations) + list(inputs)
                self.fail(f"{path}.pre", f"unknown population or input '{pre}'{_suggest(pre, known)}; "
                                         f"known: {', '.join(known)}")
            post = self.string(spec["post"], f"{path}.post")
            if post in inputs:
                self.fail(f"{path}.post", f"'{post}' is an input; a projection must end on a population")
            if post not in populations:
                self.fail(f"{path}.post", f"unknown population '{post}'{_suggest(post, populations)}; "
                                          f"known: {', '.join(populations)}")
            n_pre = populations[pre].size if pre in populations else inputs[pre].size
            n_post = populations[post].size
            connectivity = self.connectivity(spec.get("connectivity", "all_to_all"), f"{path}.connectivity",
                                             pre, post, n_pre, n_post)
            weights, support = self.weights(spec["weights"], f"{path}.weights", n_pre, n_post)
            if weights.kind == "file":
                # Only connected entries become synapses (chip.netlist.connectivity ignores the rest), so
                # only they decide the sign.
                from .connectivity import realize_connectivity

                mask = realize_connectivity(connectivity, n_pre, n_post, same_population=pre == post)
                used = weights.array[mask]
                support = (float(used.min()), float(used.max())) if used.size else (0.0, 0.0)
            sign = self.sign(spec.get("sign", "auto"), f"{path}.sign", weights, support, f"{path}.weights")
            delay = self.time(spec["delay"], f"{path}.delay") if "delay" in spec else 0.0
            out[name] = Projection(name=name, pre=pre, post=post, connectivity=connectivity, weights=weights,
                                   sign=sign, delay_us=delay)
        return out

    def connectivity(self, raw, path, pre, post, n_pre, n_post) -> Connectivity:
        if isinstance(raw, str):
            kind = self.choice(raw, path, CONNECTIVITY_KINDS, "connectivity")
            if kind == "one_to_one" and n_pre != n_post:
                self.fail(path, f"one_to_one needs equal sizes, but pre '{pre}' has {n_pre} neurons "
                                f"and post '{post}' has {n_post}")
            return Connectivity(kind=kind)
        if not isinstance(raw, dict):
            self.fail(path, f"expected {', '.join(CONNECTIVITY_KINDS)} or a mapping with 'probability' "
                            f"or 'explicit', got {_show(raw)}")
        if "explicit" in raw:
            raw = self.keys(raw, path, "connectivity_explicit")
            return Connectivity(kind="explicit", pairs=self.pairs(raw["explicit"], f"{path}.explicit",
                                                                  n_pre, n_post))
        if "probability" not in raw:
            self.fail(path, "a connectivity mapping needs 'probability' (random) or 'explicit' (pairs)")
        raw = self.keys(raw, path, "connectivity_random")
        p = self.number(raw["probability"], f"{path}.probability")
        if not 0.0 <= p <= 1.0:
            self.fail(f"{path}.probability", f"must be in [0, 1], got {p:g}")
        return Connectivity(kind="probability", probability=p, seed=self.seed(raw.get("seed", 0), f"{path}.seed"),
                            allow_self=self.boolean(raw.get("allow_self", True), f"{path}.allow_self"))

    def pairs(self, raw, path, n_pre, n_post) -> np.ndarray:
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of [pre, post] index pairs, got {_show(raw)}")
        pairs: list[tuple[int, int]] = []
        for k, pair in enumerate(raw):
            where = f"{path}.{k}"
            if not isinstance(pair, list) or len(pair) != 2:
                self.fail(where, f"expected a [pre, post] index pair, got {_show(pair)}")
            i = self.integer(pair[0], f"{where}.0", minimum=0)
            j = self.integer(pair[1], f"{where}.1", minimum=0)
            if i >= n_pre:
                self.fail(where, f"pre index {i} out of range 0..{n_pre - 1}")
            if j >= n_post:
                self.fail(where, f"post index {j} out of range 0..{n_post - 1}")
            pairs.append((i, j))  # a pair listed twice is one synapse (chip.netlist.connectivity collapses them)
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    def weights(self, raw, path, n_pre, n_post) -> tuple[WeightInit, tuple[float, float]]:
        """The weight initializer and the (lowest, highest) weight it can produce."""
        if not isinstance(raw, dict):
            value = self.number(raw, path)
            return WeightInit(kind="constant", value=value), (value, value)
        forms = [key for key in WEIGHT_FORMS if key in raw]
        if len(forms) != 1:
            self.fail(path, f"a weights mapping needs exactly one of {', '.join(WEIGHT_FORMS)}"
                            + (f", got {', '.join(forms)}" if forms else ""))
        form = forms[0]
        raw = self.keys(raw, path, f"weights_{form}")
        where = f"{path}.{form}"
        if form == "normal":
            dist = self.keys(raw["normal"], where, "normal")
            mean = self.number(dist["mean"], f"{where}.mean")
            std = self.number(dist["std"], f"{where}.std", minimum=0.0)
            seed = self.seed(raw.get("seed", 0), f"{path}.seed")
            support = (mean, mean) if std == 0 else (-math.inf, math.inf)
            return WeightInit(kind="normal", mean=mean, std=std, seed=seed), support
        if form == "uniform":
            dist = self.keys(raw["uniform"], where, "uniform")
            low = self.number(dist["low"], f"{where}.low")
            high = self.number(dist["high"], f"{where}.high")
            if low > high:
                self.fail(f"{where}.high", f"high {high:g} is below low {low:g}")
            seed = self.seed(raw.get("seed", 0), f"{path}.seed")
            return WeightInit(kind="uniform", low=low, high=high, seed=seed), (low, high)
        if form == "file":
            array = self.weight_file(raw["file"], where)
        else:
            array = self.weight_array(raw["array"], where, n_pre)
        if array.shape != (n_pre, n_post):
            self.fail(where, f"weight array has shape {array.shape}, expected (n_pre, n_post) = ({n_pre}, {n_post})")
        return WeightInit(kind="file", array=array), (float(array.min()), float(array.max()))

    def weight_file(self, value, path) -> np.ndarray:
        rel, array = self._load_numpy(value, path, "weight")
        if not isinstance(array, np.ndarray):
            array.close()
            self.fail(path, f"weight file '{rel}' must be a .npy array, not an .npz archive")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
            self.fail(path, f"weight file '{rel}' must hold real numbers, got dtype {array.dtype}")
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            self.fail(path, f"weight file '{rel}' holds NaN or inf")
        return array

    def weight_array(self, raw, path, n_pre) -> np.ndarray:
        if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
            self.fail(path, "expected a list of rows (one per pre neuron) of numbers")
        rows = [[self.number(v, f"{path}.{i}.{j}") for j, v in enumerate(row)] for i, row in enumerate(raw)]
        lengths = {len(row) for row in rows}
        if len(lengths) > 1:
            self.fail(path, "rows of the weight array have different lengths")
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), lengths.pop() if lengths else 0)

    def sign(self, raw, path, weights: WeightInit, support, weights_path) -> str:
        """Resolve ``auto`` from what the weights can be, and refuse a sign the weights contradict.

        Weights given outright (constant, array, normal with std 0) must all have the projection's
        sign. Drawn weights (normal, uniform) that reach across zero are allowed, because the weight
        initializer clips them to 0 on the wrong side (chip.netlist.connectivity.realize_weights); a range
        lying entirely on the wrong side would leave every synapse silent, and is refused.
        """
        sign = self.choice(raw, path, SIGNS, "sign")
        low, high = support
        if sign == "auto":
            return "excitatory" if low >= 0 else "inhibitory" if high <= 0 else "signed"
        if sign == "signed":
            return sign
        drawn = weights.kind == "uniform" or (weights.kind == "normal" and weights.std > 0)
        if drawn:
            bad = high < 0 if sign == "excitatory" else low > 0
            if bad:
                side = "negative" if sign == "excitatory" else "positive"
                self.fail(weights_path, f"{weights.kind} weights in [{low:g}, {high:g}] are all {side}, so every "
                                        f"synapse of this {sign} projection would start at 0")
            return sign
        what = {"constant": "weight", "file": "weight array entry", "normal": "weight"}[weights.kind]
        if sign == "excitatory" and low < 0:
            self.fail(weights_path, f"excitatory projection with negative {what} {low:g}; "
                                    "excitatory weights must be >= 0 (use sign: signed for mixed signs)")
        if sign == "inhibitory" and high > 0:
            self.fail(weights_path, f"inhibitory projection with positive {what} {high:g}; "
                                    "inhibitory weights are written as negative values")
        return sign

    # record ---------------------------------------------------------------------------------------
    def record(self, raw, populations, projections, chip: ChipProfile) -> Record:
        if raw is None:
            return Record(spikes=tuple(populations))
        raw = self.keys(raw, "record", "record")
        spikes = raw.get("spikes", "all")
        if spikes == "all":
            spikes = tuple(populations)
        else:
            spikes = self.names(spikes, "record.spikes", populations, "population")
        membrane = []
        entries = raw.get("membrane", [])
        if not isinstance(entries, list):
            self.fail("record.membrane", f"expected a list of membrane recordings, got {_show(entries)}")
        for k, entry in enumerate(entries):
            path = f"record.membrane.{k}"
            entry = self.keys(entry, path, "membrane")
            pop = self.string(entry["population"], f"{path}.population")
            if pop not in populations:
                self.fail(f"{path}.population", f"unknown population '{pop}'{_suggest(pop, populations)}; "
                                                f"known: {', '.join(populations)}")
            size = populations[pop].size
            neurons = self.neurons(entry.get("neurons", "all"), f"{path}.neurons", size)
            adc = self.choice(entry.get("adc", "cadc"), f"{path}.adc", ADCS, "ADC")
            if "period" in entry:
                period = self.time(entry["period"], f"{path}.period", positive=True)
            else:
                # The ADC's fastest rate (hardware µs). A profile without a limit (ideal: 0) gets one
                # sample per emulation step, since the mapper needs a positive period.
                period = chip.cadc_min_period_us if adc == "cadc" else chip.madc_min_period_us
                if not period > 0:
                    period = chip.step_us
            membrane.append(MembraneRecord(population=pop, neurons=neurons, adc=adc, period_us=period))
        correlations = self.names(raw.get("correlations", []), "record.correlations", projections, "projection")
        return Record(spikes=spikes, membrane=tuple(membrane), correlations=correlations)

    def names(self, raw, path, known, what) -> tuple[str, ...]:
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of {what} names, got {_show(raw)}")
        out: list[str] = []
        for k, name in enumerate(raw):
            where = f"{path}.{k}"
            name = self.string(name, where)
            if name not in known:
                self.fail(where, f"unknown {what} '{name}'{_suggest(name, known)}; known: {', '.join(known)}")
            if name in out:
                self.fail(where, f"{what} '{name}' is listed twice")
            out.append(name)
        return tuple(out)

    def neurons(self, raw, path, size) -> tuple[int, ...]:
        if raw == "all":
            return tuple(range(size))
        if not isinstance(raw, list):
            self.fail(path, f"expected 'all' or a list of neuron indices, got {_show(raw)}")
        out: list[int] = []
        for k, index in enumerate(raw):
            where = f"{path}.{k}"
            index = self.integer(index, where, minimum=0)
            if index >= size:
                self.fail(where, f"neuron index {index} out of range 0..{size - 1}")
            if index in out:
                self.fail(where, f"neuron {index} is listed twice")
            out.append(index)
        return tuple(out)


def _canonical_events(batch, neuron, time_us, size: int, batch_size: int) -> SpikeEvents:
    """Events ordered by time, then sample, then neuron, whatever order they were given in, so
    the same spikes always give the same arrays (and a dumped netlist reloads to equal arrays)."""
    batch, neuron = np.asarray(batch, dtype=np.int64), np.asarray(neuron, dtype=np.int64)
    time_us = np.asarray(time_us, dtype=np.float64)
    order = np.lexsort((neuron, batch, time_us))
    return SpikeEvents.from_arrays(batch[order], neuron[order], time_us[order], size, batch_size)


def _events(samples: list[tuple[int, list[list[float]]]], size: int, batch_size: int) -> SpikeEvents:
    batch, neuron, times = [], [], []
    for b, trains in samples:
        for i, train in enumerate(trains):
            batch.extend([b] * len(train))
            neuron.extend([i] * len(train))
            times.extend(train)
    return _canonical_events(batch, neuron, times, size, batch_size)


# ---------------------------------------------------------------------------------------------
# Public loading API
# ---------------------------------------------------------------------------------------------


def _read(text: str, *, filename: str, source_path: str | None, base_dir: Path, default_name: str,
          profile=None, die_seed=None, noise_seed=None, batch=None) -> tuple[Netlist, _Reader]:
    raw, tree = _parse_yaml(text, filename)
    reader = _Reader(filename, tree.lines, base_dir)
    netlist = reader.netlist(raw, default_name=default_name, profile=profile, die_seed=die_seed,
                             noise_seed=noise_seed, batch=batch)
    return netlist.replace(source_path=source_path, lines=dict(tree.public)), reader


def load_netlist(path, *, profile: str | None = None, die_seed: int | None = None,
                 noise_seed: int | None = None, batch: int | None = None) -> Netlist:
    """Read and validate a netlist file.

    Keyword arguments override the file: ``profile`` (chip.profile), ``die_seed`` and
    ``noise_seed`` (chip.die_seed, chip.noise_seed) and ``batch``. Relative file paths inside the
    netlist (spike and weight files) are taken relative to the netlist's directory. Raises
    NetlistError (``FILE:LINE: field: message``) at the first problem.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetlistError("netlist file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlistError(f"cannot read netlist: {exc}", file=file) from None
    netlist, _ = _read(text, filename=file, source_path=file, base_dir=Path(path).resolve().parent,
                       default_name=Path(path).stem, profile=profile, die_seed=die_seed,
                       noise_seed=noise_seed, batch=batch)
    return netlist


def load_netlist_text(text: str, *, filename: str = "<string>", profile: str | None = None,
                      die_seed: int | None = None, noise_seed: int | None = None,
                      batch: int | None = None) -> Netlist:
    """Like :func:`load_netlist` for YAML text; ``filename`` is used in messages and, unless it
    is a placeholder like ``<string>``, as the base for relative file paths and the default name."""
    placeholder = filename.startswith("<")
    base_dir = Path.cwd() if placeholder else Path(filename).resolve().parent
    netlist, _ = _read(text, filename=filename, source_path=None if placeholder else filename,
                       base_dir=base_dir, default_name="netlist" if placeholder else Path(filename).stem,
                       profile=profile, die_seed=die_seed, noise_seed=noise_seed, batch=batch)
    return netlist


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _quantity(value: float, unit: str) -> str:
    return f"{float(value)!r} {unit}"


def _chip_to_dict(chip: ChipProfile, base: ChipProfile | None, time_factor: float = 1.0) -> dict:
    """The chip section: the profile name and the fields that differ from ``base`` (all when None);
    times are multiplied by ``time_factor`` (the speed-up for a biological netlist)."""
    out: dict[str, Any] = {"profile": chip.name}

    def quantity(value, unit):
        return _quantity(value * time_factor if unit in ("us", "ns") else value, unit)

    for key, spec in _CHIP_KEYS.items():
        value = getattr(chip, spec.field)
        if base is not None and value == getattr(base, spec.field):
            continue
        if spec.kind == "mismatch":
            ref = base.mismatch if base is not None else None
            if value.off and (ref is None or not ref.off):
                out[key] = "off"
            else:
                out[key] = {f.name: float(getattr(value, f.name)) for f in dataclasses.fields(Mismatch)
                            if ref is None or getattr(value, f.name) != getattr(ref, f.name)}
        elif spec.kind == "pair":
            out[key] = [quantity(v, spec.unit) if spec.unit else float(v) for v in value]
        elif spec.unit:
            out[key] = quantity(value, spec.unit)
        elif spec.kind == "number":
            out[key] = float(value)
        else:
            out[key] = value
    return out


def netlist_to_dict(netlist: Netlist) -> dict:
    """Plain data in the file format that :func:`load_netlist_text` reads back to the same values.

    Times are written in the netlist's timescale. Arrays read from files are written inline: a
    file input becomes ``type: spikes`` with its events, file weights become ``{array: [...]}``.
    The chip section holds the profile name and only the fields that differ from that profile
    (a profile whose name is not in PROFILES is written against ``bss2``; its name is lost).
    """
    speedup = netlist.chip.speedup
    biological = netlist.timescale == "biological"

    def t(us: float) -> str:
        return _quantity(us * speedup if biological else us, "us")

    def time_lists(trains) -> dict:
        factor = speedup if biological else 1.0
        return {"unit": "us", "values": [[float(x) * factor for x in train] for train in trains]}

    out: dict[str, Any] = {"name": netlist.name}
    if netlist.description:
        out["description"] = netlist.description
    out["timescale"] = netlist.timescale
    out["duration"] = t(netlist.duration_us)
    out["batch"] = int(netlist.batch)
    base = PROFILES.get(netlist.chip.name, PROFILES["bss2"])
    chip = _chip_to_dict(netlist.chip, base, speedup if biological else 1.0)
    chip["profile"] = base.name
    out["chip"] = chip

    pops: dict[str, Any] = {}
    for name, pop in netlist.populations.items():
        params: dict[str, Any] = {}
        for f in dataclasses.fields(NeuronParams):
            value = getattr(pop.params, f.name)
            params[f.name[:-3] if f.name.endswith("_us") else f.name] = t(value) if f.name.endswith("_us") else float(value)
        pops[name] = {"size": int(pop.size), "model": pop.model, "params": params}
        v_init = getattr(pop, "v_init", None)
        if isinstance(v_init, tuple):
            low, high, seed = v_init
            pops[name]["v_init"] = {"uniform": [float(low), float(high)], "seed": int(seed)}
        elif v_init is not None:
            pops[name]["v_init"] = float(v_init)
    out["populations"] = pops

    inputs: dict[str, Any] = {}
    for name, src in netlist.inputs.items():
        entry: dict[str, Any] = {"size": int(src.size)}
        if src.kind == "poisson":
            entry["type"] = "poisson"
            entry["rate"] = _quantity(src.rate_hz / speedup if biological else src.rate_hz, "Hz")
            entry["start"] = t(src.start_us)
            if src.stop_us is not None:
                entry["stop"] = t(src.stop_us)
            entry["seed"] = int(src.seed)
        else:
            entry["type"] = "spikes"
            spikes = src.spikes if src.spikes is not None else SpikeEvents.empty(src.size)
            if spikes.batch_size == 1:
                entry["times"] = time_lists(spikes.trains(0))
            else:
                entry["batches"] = [time_lists(spikes.trains(b)) for b in range(spikes.batch_size)]
        inputs[name] = entry
    if inputs:
        out["inputs"] = inputs

    projections: dict[str, Any] = {}
    for name, proj in netlist.projections.items():
        conn = proj.connectivity
        if conn.kind in CONNECTIVITY_KINDS:
            connectivity: Any = conn.kind
        elif conn.kind == "probability":
            connectivity = {"probability": float(conn.probability), "seed": int(conn.seed),
                            "allow_self": bool(conn.allow_self)}
        else:
            pairs = conn.pairs if conn.pairs is not None else np.zeros((0, 2), dtype=np.int64)
            connectivity = {"explicit": np.asarray(pairs, dtype=np.int64).tolist()}
        w = proj.weights
        if w.kind == "constant":
            weights: Any = float(w.value)
        elif w.kind == "normal":
            weights = {"normal": {"mean": float(w.mean), "std": float(w.std)}, "seed": int(w.seed)}
        elif w.kind == "uniform":
            weights = {"uniform": {"low": float(w.low), "high": float(w.high)}, "seed": int(w.seed)}
        else:
            weights = {"array": np.asarray(w.array, dtype=np.float64).tolist()}
        projections[name] = {"pre": proj.pre, "post": proj.post, "connectivity": connectivity,
                             "weights": weights, "sign": proj.sign, "delay": t(proj.delay_us)}
    if projections:
        out["projections"] = projections

    rec = netlist.record
    out["record"] = {
        "spikes": list(rec.spikes),
        "membrane": [{"population": m.population, "neurons": [int(i) for i in m.neurons], "adc": m.adc,
                      "period": t(m.period_us)} for m in rec.membrane],
        "correlations": list(rec.correlations),
    }
    if netlist.expect is not None:
        out["expect"] = copy.deepcopy(netlist.expect)
    if netlist.train is not None:
        out["train"] = copy.deepcopy(netlist.train)
    return out


class _Dumper(yaml.SafeDumper):
    """Mappings in block style, lists of scalars inline (one spike train or weight row per line)."""


def _represent_dict(dumper, data):
    return dumper.represent_mapping(_TAG + "map", data, flow_style=False)


def _represent_list(dumper, data):
    leaf = not any(isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence(_TAG + "seq", data, flow_style=leaf)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_netlist(netlist: Netlist) -> str:
    """The netlist as YAML text (see :func:`netlist_to_dict`)."""
    return yaml.dump(netlist_to_dict(netlist), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
