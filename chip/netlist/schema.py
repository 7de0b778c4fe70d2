"""The netlist format as JSON Schema: the one source of field names for every reader.

Job: build the JSON Schema (draft 2020-12) of a netlist file — including its ``train:`` and
``expect:`` blocks — and expose its object forms (``FORM_KEYS``, ``FORM_REQUIRED``: the allowed
and required keys of each form) so that every reader (the netlist reader, the expect reader, the
train parser, the task builder) accepts exactly the keys the schema names. The ``chip`` section's
keys are derived from ``dataclasses.fields(ChipProfile)`` (``CHIP_KEYS``) and a population's
``params`` from its model's dataclass (``PARAM_KEYS``), so a new profile field or neuron parameter
becomes a YAML key without touching a reader. Quantity patterns come from ``chip.units``.

Boundary: this module only describes; reading values, units and references and reporting errors
is ``chip.netlist.validation``'s and the readers'. It names the YAML spellings of the format —
the model's vocabularies (``chip.netlist.model``) plus the reader's input-only spellings such as
``sign: auto`` — and the vocabulary of the ``train:`` and ``expect:`` blocks, which the training
and regression front ends (outside ``chip``) import from here. Rule options
(``train.options.<rule>``) are free-form: rule plugins define them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from ..profiles import ADAPTATION_MECHANISMS, PROFILES, RESET_CIRCUITS, ChipProfile, Mismatch, Nonidealities
from ..units import RATE_UNITS_HZ, TIME_UNITS_US, VOLTAGE_UNITS_V, quantity_pattern
from .model import ADCS, INPUT_KINDS, NEURON_MODELS, PARAMS_BY_MODEL, RESETS, SIGNS, TIMESCALES

__all__ = [
    "netlist_schema",
    "FORM_KEYS",
    "FORM_REQUIRED",
    "CHIP_KEYS",
    "ChipKey",
    "PARAM_KEYS",
    "TAU_SYN_FIELDS",
    "params_form",
    "NAME_PATTERN",
    "SIGN_SPELLINGS",
    "CONNECTIVITY_NAMES",
    "CONNECTIVITY_FORMS",
    "WEIGHT_FORMS",
    "TRAIN_TASKS",
    "TRAIN_DECODERS",
    "EXPECT_SETTINGS",
    "EXPECT_CHECKS",
    "MEMBRANE_STATS",
]

# ---------------------------------------------------------------------------------------------
# Spellings of the format
# ---------------------------------------------------------------------------------------------

# Names become parts of dotted field paths, so they must not contain dots or spaces.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"

#: ``sign:`` as written: the model's SIGNS plus ``auto``, which the reader resolves from the weights
SIGN_SPELLINGS = SIGNS + ("auto",)
#: connectivity written as a plain string
CONNECTIVITY_NAMES = ("all_to_all", "one_to_one")
#: the key that selects a connectivity mapping's form
CONNECTIVITY_FORMS = ("all_to_all", "probability", "explicit")
#: the key that selects a weights mapping's form (a plain number is ConstantWeights; file and
#: array both give ArrayWeights)
WEIGHT_FORMS = ("normal", "uniform", "file", "array")

#: ``train.task``: the data sets the training front end builds
TRAIN_TASKS = ("yinyang", "memory", "shd", "digits", "mnist")
#: ``train.decode``: how the output population's activity becomes a class
TRAIN_DECODERS = ("first_spike", "spike_count", "max_membrane")

#: keys of the expect block that choose a run (shared at the top of ``expect`` or set per run)
EXPECT_SETTINGS = ("profile", "die_seed", "noise_seed", "duration", "batch")
#: keys of the expect block that hold checks
EXPECT_CHECKS = ("spikes", "first_spike", "events", "membrane", "golden")
#: statistics of a membrane check
MEMBRANE_STATS = ("mean", "std", "min", "max")


# --- chip section: keys derived from ChipProfile's fields ------------------------------------


@dataclasses.dataclass(frozen=True)
class ChipKey:
    key: str            # YAML key
    field: str          # ChipProfile field
    kind: str           # int | seed | bits | number | pair | choice | mismatch | switches
    unit: str | None    # us | ns | V for quantities written with a unit, else None
    allow_inf: bool = False
    choices: tuple[str, ...] = ()  # the allowed values of a choice


_CHIP_RENAMES = {"noise_membrane": "noise"}
_SUFFIX_UNITS = {"_us": "us", "_ns": "ns", "_v": "V"}
_TYPE_KINDS = {"int": "int", "int | None": "bits", "float": "number", "tuple[float, float]": "pair", "str": "choice"}
#: ChipProfile fields of type str -> their allowed values
_CHIP_CHOICES = {"adaptation": ADAPTATION_MECHANISMS, "reset_circuit": RESET_CIRCUITS}


def _chip_key_table() -> dict[str, ChipKey]:
    table: dict[str, ChipKey] = {}
    for f in dataclasses.fields(ChipProfile):
        if f.name == "name":
            continue  # the profile is chosen by `profile:`
        if f.name == "mismatch":
            table["mismatch"] = ChipKey("mismatch", "mismatch", "mismatch", None)
            continue
        if f.name == "nonidealities":
            table["nonidealities"] = ChipKey("nonidealities", "nonidealities", "switches", None)
            continue
        typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = _TYPE_KINDS.get(typ)
        if kind is None:  # a new kind of profile field: fail loudly at import rather than misread it
            raise TypeError(f"the netlist format cannot read ChipProfile.{f.name} of type {typ}")
        key, unit = _CHIP_RENAMES.get(f.name, f.name), None
        for suffix, suffix_unit in _SUFFIX_UNITS.items():
            if f.name.endswith(suffix):
                key, unit = f.name[: -len(suffix)], suffix_unit
        if f.name.endswith("_seed"):
            kind = "seed"
        choices = ()
        if kind == "choice":
            if f.name not in _CHIP_CHOICES:
                raise TypeError(f"the netlist format does not know the values of ChipProfile.{f.name}")
            choices = tuple(_CHIP_CHOICES[f.name])
        # inf is allowed exactly where a shipped profile uses it ("never congests" capacities).
        allow_inf = kind == "number" and any(
            not math.isfinite(getattr(p, f.name)) for p in PROFILES.values())
        if key in table:
            raise TypeError(f"two ChipProfile fields map to the YAML key {key!r}")
        table[key] = ChipKey(key, f.name, kind, unit, allow_inf, choices)
    return table


CHIP_KEYS = _chip_key_table()

# --- neuron params: keys derived from each model's parameter dataclass -----------------------


def _param_keys(cls) -> dict[str, str]:
    """YAML key -> dataclass field: times without their ``_us`` suffix, other fields as they are."""
    return {(f.name[:-3] if f.name.endswith("_us") else f.name): f.name for f in dataclasses.fields(cls)}


#: neuron model -> {YAML key: field of its parameter dataclass}
PARAM_KEYS = {model: _param_keys(cls) for model, cls in PARAMS_BY_MODEL.items()}
TAU_SYN_FIELDS = ("tau_syn_exc_us", "tau_syn_inh_us")  # `tau_syn` sets both


def params_form(model: str) -> str:
    """The schema form of a ``model`` population's ``params``."""
    return f"params_{model.lower()}"


# ---------------------------------------------------------------------------------------------
# The JSON Schema
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


def _chip_property_schema(spec: ChipKey) -> dict:
    what = f"ChipProfile.{spec.field}"
    if spec.kind == "mismatch":
        return _ref("mismatch")
    if spec.kind == "switches":
        return _ref("nonidealities")
    if spec.kind == "seed":
        return {**_ref("seed"), "description": what}
    if spec.kind == "int":
        return {"type": "integer", "minimum": 0, "description": what}
    if spec.kind == "bits":
        return {"type": ["integer", "null"], "minimum": 1, "maximum": 24, "description": f"{what} (null = float)"}
    if spec.kind == "choice":
        return {"enum": list(spec.choices), "description": what}
    item = {"us": _ref("time"), "ns": _ref("time"), "V": _ref("voltage")}.get(spec.unit, {"type": "number", "minimum": 0})
    schema = _pair(item) if spec.kind == "pair" else dict(item)
    schema["description"] = what
    return schema


def _params_schema(model: str) -> dict:
    time, number = _ref("time"), {"type": "number"}
    keys = PARAM_KEYS[model]
    # times first, then `tau_syn` (both synaptic time constants at once), then plain numbers
    properties: dict[str, Any] = {key: time for key, name in keys.items() if name.endswith("_us")}
    properties["tau_syn"] = {**time, "description": "sets tau_syn_exc and tau_syn_inh"}
    properties.update({key: number for key, name in keys.items() if not name.endswith("_us")})
    return _obj(properties, description=f"nominal parameters of a {model} neuron ({PARAMS_BY_MODEL[model].__name__})",
                **{"not": {"anyOf": [{"required": ["tau_syn", "tau_syn_exc"]},
                                     {"required": ["tau_syn", "tau_syn_inh"]}]}})


def _netlist_defs() -> dict:
    time, rate, seed, name = _ref("time"), _ref("rate"), _ref("seed"), _ref("name")
    number = {"type": "number"}
    trains = {"type": "array", "items": {"type": "array", "items": time},
              "description": "per-neuron lists of spike times"}
    spike_times = {"oneOf": [trains, _ref("spike_times_unit")]}
    names = {"type": "array", "items": name}

    chip = {"profile": {"enum": sorted(PROFILES), "default": "bss2"},
            "calibration": {"type": "string",
                            "description": "calibration file of this die (chipctl calibrate), relative to the netlist"}}
    chip.update({key: _chip_property_schema(spec) for key, spec in CHIP_KEYS.items()})

    default_model = NEURON_MODELS[0]
    params_by_model = [{"if": {"properties": {"model": {"const": m}}, "required": ["model"]},
                        "then": {"properties": {"params": _ref(params_form(m))}}} for m in NEURON_MODELS]
    params_by_model.append({"if": {"not": {"required": ["model"]}},
                            "then": {"properties": {"params": _ref(params_form(default_model))}}})

    input_common = {"size": {"type": "integer", "minimum": 1}}
    defs = {
        "time": {"type": "string", "pattern": quantity_pattern(TIME_UNITS_US),
                 "description": f"time with a unit ({', '.join(TIME_UNITS_US)})"},
        "rate": {"type": "string", "pattern": quantity_pattern(RATE_UNITS_HZ),
                 "description": f"rate with a unit ({', '.join(RATE_UNITS_HZ)})"},
        "voltage": {"type": "string", "pattern": quantity_pattern(VOLTAGE_UNITS_V),
                    "description": f"voltage with a unit ({', '.join(VOLTAGE_UNITS_V)})"},
        "seed": {"type": "integer", "minimum": 0},
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "chip": _obj(chip, description="chip profile and overrides of its fields"),
        "mismatch": {"oneOf": [{"enum": ["off", False]}, _ref("mismatch_fields")]},
        "nonidealities": {"oneOf": [{"enum": ["off", "on", False, True]}, _ref("nonideality_switches")]},
        "nonideality_switches": _obj({f.name: {"oneOf": [{"type": "boolean"}, {"enum": ["on", "off"]}]}
                                      for f in dataclasses.fields(Nonidealities)},
                                     description="effects to switch on or off, overriding the profile's"),
        "mismatch_fields": _obj({f.name: {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
                                 for f in dataclasses.fields(Mismatch)},
                                description="relative one-sigma spread overriding the profile's"),
        "population": _obj({"size": {"type": "integer", "minimum": 1},
                            "model": {"enum": list(NEURON_MODELS), "default": default_model},
                            "params": {"type": "object",
                                       "description": "nominal parameters: the keys of the model's params form"},
                            "v_init": _ref("v_init"),
                            "reset": {"enum": list(RESETS), "default": RESETS[0],
                                      "description": "hard: to v_reset; soft: u <- u - theta (Yin et al.; "
                                                     "needs reset_circuit: subtractive)"}},
                           required=["size"], allOf=params_by_model),
        **{params_form(m): _params_schema(m) for m in NEURON_MODELS},
        "v_init": {"oneOf": [number, _ref("v_init_uniform")],
                   "description": "initial membrane (model units); default: at the leak"},
        "v_init_uniform": _obj({"uniform": {"oneOf": [_pair(number), _ref("uniform")]}, "seed": seed},
                               required=["uniform"],
                               description="uniform draw per neuron, sample and run"),
        "input": {"oneOf": [_ref(f"input_{kind}") for kind in INPUT_KINDS]},
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
                            "weights": _ref("weights"),
                            "sign": {"enum": list(SIGN_SPELLINGS), "default": "auto",
                                     "description": "auto: from what the weights can be"},
                            "delay": time}, required=["pre", "post", "weights"]),
        "connectivity": {"oneOf": [{"enum": list(CONNECTIVITY_NAMES)}, _ref("connectivity_all_to_all"),
                                   _ref("connectivity_random"), _ref("connectivity_explicit")],
                         "default": "all_to_all"},
        "connectivity_all_to_all": _obj({"all_to_all": _ref("all_to_all")}, required=["all_to_all"]),
        "all_to_all": _obj({"allow_self": {"type": "boolean", "default": True}}),
        "connectivity_random": _obj({"probability": {"type": "number", "minimum": 0, "maximum": 1},
                                     "seed": seed, "allow_self": {"type": "boolean", "default": True}},
                                    required=["probability"]),
        "connectivity_explicit": _obj({"explicit": {"type": "array", "items": _pair({"type": "integer",
                                                                                      "minimum": 0})}},
                                      required=["explicit"]),
        "weights": {"oneOf": [number, *(_ref(f"weights_{form}") for form in WEIGHT_FORMS)]},
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
    return defs


def _train_defs() -> dict:
    """The ``train:`` block (read by ``rules.training`` and ``rules.tasks``)."""
    count = {"type": "integer", "minimum": 1}
    optional = {"type": "null"}
    return {
        "train": _obj({
            "task": {"enum": list(TRAIN_TASKS), "default": TRAIN_TASKS[0], "description": "the data set and its encoding"},
            "input": {**_ref("name"), "description": "an input of the netlist; the task's samples replace its spikes"},
            "output": {**_ref("name"), "description": "the population whose spikes are decoded into a class"},
            "rules": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}],
                      "default": ["eventprop"], "description": "rule names or module:Class"},
            "options": {"oneOf": [optional, {"type": "object", "additionalProperties": {
                "oneOf": [optional, {"type": "object", "additionalProperties": True}],
                "description": "the rule's own options (free-form: the rule plugin defines them)"}}],
                "description": "rule name -> that rule's options"},
            "optimizer": {"oneOf": [optional, _ref("train_optimizer")]},
            "epochs": {**count, "default": 10},
            "batch_size": {**count, "default": 64, "description": "training samples per run"},
            "test_batch_size": {**count, "default": 250, "description": "samples per evaluation run"},
            "seed": {**_ref("seed"), "description": "data order per epoch and the rules' random generators"},
            "checkpoint": {"type": ["string", "null"], "description": "checkpoint directory"},
            "encoding": {"oneOf": [optional, _ref("train_encoding")]},
            "train_size": {**count, "default": 5000, "description": "training samples"},
            "test_size": {**count, "default": 1000, "description": "test samples"},
            "decode": {"enum": list(TRAIN_DECODERS), "default": TRAIN_DECODERS[0]},
            "decode_window": {**_pair(_ref("time")),
                              "description": "max_membrane: the samples decoded, [t0, t1] (default: all)"},
            "memory": {"oneOf": [optional, _ref("train_memory")]},
            "shd": {"oneOf": [optional, _ref("train_shd")]},
            "digits": {"oneOf": [optional, _ref("train_digits")]},
            "mnist": {"oneOf": [optional, _ref("train_mnist")]},
            "eval_every": {**count, "default": 1, "description": "evaluate every this many epochs"},
            "weight_clip": {"type": "boolean", "default": True,
                            "description": "clip written weights to ±weight_full_scale"},
        }, required=["input", "output"], description="in-the-loop training (chipctl train)"),
        "train_optimizer": _obj({
            "name": {"enum": ["adam"], "default": "adam"},
            "lr": {"type": "number", "minimum": 0, "default": 5e-3},
            "betas": {**_pair({"type": "number", "minimum": 0, "exclusiveMaximum": 1}), "default": [0.9, 0.999]},
            "eps": {"type": "number", "exclusiveMinimum": 0, "default": 1e-8},
            "gamma": {"type": "number", "minimum": 0, "default": 1.0, "description": "learning-rate factor per epoch"},
            "clip": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                     "description": "elementwise clip of each gradient to [-clip, clip] before Adam's moments "
                                    "(a heuristic, as optax.clip in jaxsnn's recipe; default: none)"},
            "ema": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1, "default": None,
                    "description": "weight averaging: test passes (and the trained chip) use an exponential "
                                   "moving average of the float master weights, updated after every batch with "
                                   "this decay and written quantized like any weight; training goes on from the "
                                   "master weights (default: none)"},
            "lr_params": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                          "description": "Adam's step for neuron parameters by name (tau_mem, tau_adapt: µs), "
                                         "instead of lr"},
        }, description="the host-side optimizer (Adam only)"),
        "train_encoding": _obj({
            "t_early": {**_ref("time"), "description": "spike time of feature value 0 (default 2 us)"},
            "t_late": {**_ref("time"), "description": "spike time of feature value 1 (default 22 us)"},
            "bias": {**_ref("time"), "description": "time of the bias spike (default 2 us)"},
            "duplicate": {**count, "description": "repetitions of the 5 channels (default: input size / 5)"},
        }, description="latency code of the yinyang task"),
        "train_memory": _obj({
            "classes": {**count, "description": "number of patterns (default 3)"},
            "pattern_channels": {**count, "description": "input channels the patterns use (default 16)"},
            "cue_channels": {**count, "description": "input channels of the cue, after them (default 4)"},
            "active": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                       "description": "fraction of the pattern channels a class drives (default 0.25)"},
            "pattern": {**_pair(_ref("time")), "description": "window of the pattern (default [0, 10] us)"},
            "cue": {**_pair(_ref("time")), "description": "window of the cue (default [70, 80] us)"},
            "rate": {**_ref("rate"), "description": "rate of pattern and cue channels (default 300 kHz)"},
            "noise_rate": {**_ref("rate"), "description": "rate of every channel in the delay (default 10 kHz)"},
            "seed": {**_ref("seed"), "description": "the patterns and the samples (default 0)"},
        }, description="the temporal-memory task (rules/tasks/memory.py)"),
        "train_shd": _obj({
            "train": {"type": "string", "description": "HDF5 file of the training split (relative: to the netlist)"},
            "test": {"type": "string", "description": "HDF5 file of the test split"},
            "time_scale": {**_ref("time"), "description": "hardware time per second of recording (default 1000 us)"},
            "t_max": {**_ref("time"), "description": "spikes after this are dropped (default 1000 us)"},
        }, required=["train", "test"], description="Spiking Heidelberg Digits from the user's files (needs h5py)"),
        "train_digits": _obj({
            "coding": {"enum": ["rate", "latency"], "default": "rate",
                       "description": "rate: round(v * max_spikes) evenly spaced spikes; latency: one spike, bright early"},
            "window": {**_pair(_ref("time")), "description": "where the input spikes lie (default [0, 20] us)"},
            "max_spikes": {**count, "description": "rate code: spikes of a white pixel (default 4)"},
            "seed": {**_ref("seed"), "description": "the fixed train/test split (default 0)"},
        }, description="scikit-learn's 8x8 digits for autoencoders (rules/tasks/digits.py; needs scikit-learn)"),
        "train_mnist": _obj({
            "data": {"type": "string", "description": "the mnist.npz you bring: x_train, y_train, x_test, y_test "
                                                      "(relative: to the netlist)"},
            "pool": {**count, "description": "average pool x pool pixel blocks: (28/pool)^2 input channels (default 4)"},
            "coding": {"enum": ["rate", "latency"], "default": "rate",
                       "description": "rate: round(v * max_spikes) evenly spaced spikes; latency: one spike, bright early"},
            "window": {**_pair(_ref("time")), "description": "where the input spikes lie (default [0, 20] us)"},
            "max_spikes": {**count, "description": "rate code: spikes of a white pixel (default 4)"},
        }, required=["data"], description="MNIST from the user's mnist.npz, for autoencoders (rules/tasks/mnist.py)"),
    }


def _expect_defs() -> dict:
    """The ``expect:`` block (read by ``regression.expectations``)."""
    seed, name, number = _ref("seed"), _ref("name"), {"type": "number"}
    bound = _ref("bound")
    per_population = {"type": "object", "minProperties": 1, "propertyNames": name}
    settings = {
        "profile": {"enum": sorted(PROFILES), "description": "run on this chip (default: the netlist's)"},
        "die_seed": seed,
        "noise_seed": seed,
        "duration": {**_ref("time"), "description": "run length, netlist timescale"},
        "batch": {"type": "integer", "minimum": 1},
    }
    checks = {
        "spikes": {**per_population, "additionalProperties": _ref("expect_spikes")},
        "first_spike": {**per_population, "additionalProperties": _ref("expect_first_spike")},
        "events": _ref("expect_events"),
        "membrane": {**per_population, "additionalProperties": _ref("expect_membrane")},
        "golden": {"oneOf": [{"const": True}, _ref("expect_golden")]},
    }
    assert tuple(settings) == EXPECT_SETTINGS and tuple(checks) == EXPECT_CHECKS
    index = {"type": "integer", "minimum": 0}
    return {
        "bound": {"anyOf": [number, {"type": "string"},
                            _pair({"oneOf": [number, {"type": "string"}, {"type": "null"}]})],
                  "description": "a value, [low, high] (null: open), '> x', '<= x', 'x ± tol' or 'x ± n%'; "
                                 "rates and times with a unit"},
        "expect": _obj({"runs": {"type": "array", "minItems": 1, "items": _ref("expect_run")}, **settings, **checks},
                       description="expected behaviour: top-level keys are shared by every run"),
        "expect_run": _obj({"name": {"type": "string"}, "slow": {"type": "boolean", "default": False},
                            **settings, **checks}, description="one run: its settings and checks"),
        "expect_spikes": _obj({"count": bound, "rate": bound, "active": bound},
                              description="per population: spike count, rate per neuron and sample, active fraction"),
        "expect_first_spike": _obj({
            "order": {"type": "array", "items": {"oneOf": [index, {"type": "array", "items": index}]}},
            "class": {"oneOf": [index, {"type": "null"}, {"type": "array", "items": {"type": ["integer", "null"]}}]},
            "labels": {"oneOf": [{"type": "string", "description": ".npy, or .npz with 'labels'"},
                                 {"type": "array", "minItems": 1, "items": index}]},
            "accuracy": bound,
            "golden_agreement": bound,
        }),
        "expect_events": _obj({"offered": bound, "dropped": bound, "dropped_fraction": bound,
                               "conservation": {"type": "boolean"}}),
        "expect_membrane": _obj({"adc": {"enum": list(ADCS)}, "neuron": index,
                                 **{stat: bound for stat in MEMBRANE_STATS}}),
        "expect_golden": _obj({"populations": {"type": "array", "minItems": 1, "items": name},
                               "max_distance": {"type": "number", "minimum": 0, "default": 0},
                               "tau": _ref("time"),
                               "count_tolerance": {"type": ["number", "string"], "default": 0}}),
    }


def _build_schema() -> dict:
    time, name = _ref("time"), _ref("name")
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
            "expect": {"oneOf": [{"type": "null"}, _ref("expect")],
                       "description": "expected behaviour for the regression checks"},
            "train": {"oneOf": [{"type": "null"}, _ref("train")],
                      "description": "in-the-loop training with rule plugins"},
        },
        "required": ["duration", "populations"],
        "additionalProperties": False,
        "$defs": {**_netlist_defs(), **_train_defs(), **_expect_defs()},
    }


_SCHEMA = _build_schema()


def _form_schemas(schema: dict) -> dict[str, dict]:
    """Every object form whose keys a reader checks: the root and each $defs entry with properties."""
    forms = {"netlist": schema}
    forms.update({name: d for name, d in schema["$defs"].items() if "properties" in d})
    return forms


_FORMS = _form_schemas(_SCHEMA)
#: form -> its allowed keys, in the schema's order (the order error messages list them in)
FORM_KEYS: dict[str, tuple[str, ...]] = {name: tuple(d["properties"]) for name, d in _FORMS.items()}
#: form -> its required keys
FORM_REQUIRED: dict[str, tuple[str, ...]] = {name: tuple(d.get("required", ())) for name, d in _FORMS.items()}


def netlist_schema() -> dict:
    """The JSON Schema (draft 2020-12) of the netlist format, as a fresh dict."""
    return copy.deepcopy(_SCHEMA)
