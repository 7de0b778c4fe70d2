"""Reading a netlist file: YAML text -> a validated :class:`chip.netlist.Netlist`.

Job: ``load_netlist`` / ``load_netlist_text`` turn a netlist file into a ``Netlist`` in hardware
µs and Hz with a resolved ``ChipProfile``, reporting the first problem as a
:class:`chip.errors.NetlistError` that reads ``FILE:LINE: field.path: what is wrong``. The reader
checks everything the file alone decides: field names (from the schema's forms), types, units,
ranges (the model dataclasses' own checks, pointed at their field), references between names,
sizes of explicit arrays and index ranges; it resolves ``sign: auto`` and the timescale.

Boundary: YAML parsing is ``chip.netlist.yaml_tree``'s, field reading the kit's
(``chip.netlist.validation``), key names the schema's (``chip.netlist.schema``). Whether the
netlist fits a chip (neurons, synapse rows, ADC channels, periods) is the mapper's job
(``chip.mapping``). The ``expect:`` and ``train:`` blocks are only checked to be mappings and kept
as plain data: their readers live with their users (``regression.expectations``,
``rules.training.config``) and use the same kit. The one outside helper used is
``chip.netlist.connectivity.realize_connectivity``, so that a weight array's sign is judged on the
entries that become synapses, exactly as the weight initializer will.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetlistError
from ..events import SpikeEvents
from ..profiles import PROFILES, ChipProfile, Mismatch, Nonidealities, get_profile
from ..units import TIME_UNITS_US, UnitError, time_in
from .connectivity import realize_connectivity
from .model import (
    ADCS,
    INPUT_KINDS,
    NEURON_MODELS,
    PARAMS_BY_MODEL,
    RESETS,
    TIMESCALES,
    AllToAll,
    ArrayWeights,
    ConstantWeights,
    ExplicitPairs,
    FileInput,
    InputSource,
    LIFParams,
    MembraneRecord,
    Netlist,
    NormalWeights,
    OneToOne,
    PoissonInput,
    Population,
    Projection,
    RandomConnectivity,
    Record,
    SpikeInput,
    UniformWeights,
)
from .schema import (
    CHIP_KEYS,
    CONNECTIVITY_FORMS,
    CONNECTIVITY_NAMES,
    FORM_KEYS,
    PARAM_KEYS,
    SIGN_SPELLINGS,
    TAU_SYN_FIELDS,
    WEIGHT_FORMS,
    ChipKey,
    params_form,
)
from .validation import INT_MAX, FieldReader, blame, show_value
from .yaml_tree import MAX_DOCUMENT_CHARS, parse_yaml

__all__ = ["load_netlist", "load_netlist_text", "NetlistReader", "MAX_FILE_ARRAY_BYTES"]

#: the largest array a spike or weight file may hold
MAX_FILE_ARRAY_BYTES = 1 << 30


class NetlistReader(FieldReader):
    """One validation pass over the plain values of a netlist file; raises NetlistError at the
    first problem. Times and rates are converted to hardware time as soon as the chip section
    (which may change the speed-up) has been read."""

    def __init__(self, file: str, lines: dict[str, int], base_dir: Path):
        super().__init__(file, lines)
        self.base_dir = base_dir
        self.batch: int | None = None            # declared or first per-sample input's batch size
        self.batch_path: str | None = None       # where that batch size came from (for messages)

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
        calibration = self.calibration_file(raw.get("chip"))
        self.profile = chip

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
        expect = self.block(raw, "expect")
        train = self.block(raw, "train")

        return Netlist(chip=chip, duration_us=duration_us, populations=populations, inputs=inputs,
                       projections=projections, record=record, batch=self.batch or 1, name=name,
                       description=description, timescale=timescale, expect=expect, train=train,
                       calibration=calibration)

    def block(self, raw: dict, key: str) -> dict | None:
        """``expect:`` / ``train:``: a mapping, kept as written (its readers check it)."""
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
            self.speedup = self.chip_value(CHIP_KEYS["speedup"], raw["speedup"], "chip.speedup", base)
            if not self.speedup > 0:
                self.fail("chip.speedup", f"must be > 0, got {show_value(raw['speedup'])}")

        changes: dict[str, Any] = {}
        where: dict[str, str] = {}
        for key, value in raw.items():
            if key in ("profile", "calibration"):
                continue
            spec = CHIP_KEYS[key]
            path = f"chip.{key}"
            changes[spec.field] = self.chip_value(spec, value, path, base)
            where.update({spec.field: path, key: path})
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
            self.fail(blame(str(exc), where) or "chip", str(exc) + (hint if self.biological else ""))

    def calibration_file(self, raw) -> str | None:
        """``chip.calibration``: a calibration file (``chipctl calibrate``), relative to the
        netlist; it must exist. Whether it fits the chip is the host's check when it applies it."""
        if not isinstance(raw, dict) or raw.get("calibration") is None:
            return None
        rel = self.string(raw["calibration"], "chip.calibration")
        full = (self.base_dir / rel).resolve()
        if not full.is_file():
            self.fail("chip.calibration", f"calibration file '{rel}' not found (looked for {full})")
        return str(full)

    def chip_value(self, spec: ChipKey, value, path: str, base: ChipProfile):
        if spec.kind == "mismatch":
            return self.mismatch(value, path, base.mismatch)
        if spec.kind == "switches":
            return self.nonidealities(value, path, base.nonidealities)
        if spec.kind == "seed":
            return self.seed(value, path)
        if spec.kind == "int":
            return self.integer(value, path, minimum=0)
        if spec.kind == "bits":
            return None if value is None else self.integer(value, path, minimum=1)
        if spec.kind == "choice":
            return self.choice(value, path, spec.choices, spec.key.replace("_", " "))
        if spec.kind == "pair":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(path, f"expected [low, high], got {show_value(value)}")
            low, high = (self.chip_scalar(spec, v, f"{path}.{i}") for i, v in enumerate(value))
            if low > high:
                self.fail(path, f"low {low:g} is above high {high:g}")
            return (low, high)
        return self.chip_scalar(spec, value, path)

    def chip_scalar(self, spec: ChipKey, value, path: str) -> float:
        if spec.unit == "V":
            return self.voltage(value, path)
        if spec.unit in ("us", "ns"):
            try:
                result = time_in(value, spec.unit)  # exactly as written when the unit is the field's
            except UnitError as exc:
                self.fail(path, str(exc))
            if result < 0:
                self.fail(path, f"must be >= 0, got {show_value(value)}")
            return self.hardware_us(result)
        return self.number(value, path, minimum=0.0, allow_inf=spec.allow_inf)

    def switch(self, value, path: str) -> bool:
        """on/off (YAML 1.1 reads bare on/off as booleans; quoted ones arrive as strings)."""
        if isinstance(value, bool):
            return value
        if value in ("on", "off"):
            return value == "on"
        self.fail(path, f"expected on or off, got {show_value(value)}")

    def nonidealities(self, value, path: str, base: Nonidealities) -> Nonidealities:
        """All on or off at once, or a mapping of the switches to change from the profile's."""
        if not isinstance(value, dict):
            return Nonidealities.all_on() if self.switch(value, path) else Nonidealities()
        value = self.keys(value, path, "nonideality_switches", "on, off or a mapping of effects to on/off")
        return dataclasses.replace(base, **{key: self.switch(v, f"{path}.{key}") for key, v in value.items()})

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
            model = self.choice(spec.get("model", NEURON_MODELS[0]), f"{path}.model", NEURON_MODELS, "neuron model")
            params = self.params(spec.get("params"), f"{path}.params", model)
            extra = {}
            if "v_init" in spec:
                extra["v_init"] = self.v_init(spec["v_init"], f"{path}.v_init")
            if "reset" in spec:
                extra["reset"] = self.choice(spec["reset"], f"{path}.reset", RESETS, "reset")
                if extra["reset"] == "soft" and self.profile.reset_circuit != "subtractive":
                    self.fail(f"{path}.reset",
                              f"soft reset (u <- u - theta) needs a chip whose reset can subtract the threshold "
                              f"(reset_circuit: subtractive); the {self.profile.name} neuron resets to the "
                              f"potential v_reset (the nearest it can do: v_reset = v_leak and the shortest tau_ref)")
            out[name] = self.construct(Population, path, name=name, size=size, params=params, **extra)
        return out

    def v_init(self, raw, path: str) -> float | tuple[float, float, int]:
        """Initial membrane: a number, or (low, high, seed) for uniform draws."""
        if not isinstance(raw, dict):
            return self.number(raw, path)
        raw = self.keys(raw, path, "v_init_uniform", "a number or {uniform: [low, high], seed}")
        where = f"{path}.uniform"
        if isinstance(raw["uniform"], list):
            if len(raw["uniform"]) != 2:
                self.fail(where, f"expected [low, high], got {show_value(raw['uniform'])}")
            low, high = (self.number(v, f"{where}.{i}") for i, v in enumerate(raw["uniform"]))
        else:
            dist = self.keys(raw["uniform"], where, "uniform", "[low, high] or {low, high}")
            low, high = self.number(dist["low"], f"{where}.low"), self.number(dist["high"], f"{where}.high")
        if low > high:
            self.fail(f"{path}.uniform.high", f"high {high:g} is below low {low:g}")
        return (low, high, self.seed(raw.get("seed", 0), f"{path}.seed"))

    def params(self, raw, path: str, model: str) -> LIFParams:
        cls = PARAMS_BY_MODEL[model]
        if raw is None:
            return cls()
        form = params_form(model)
        own = FORM_KEYS[form]
        for key in self.mapping(raw, path):  # a parameter of another model: say so rather than just "unknown"
            others = [m for m in NEURON_MODELS if key not in own and key in FORM_KEYS[params_form(m)]]
            if others:
                self.fail(f"{path}.{key}", f"unknown field '{key}' for model {model} (it belongs to model "
                                           f"{', '.join(others)}); expected one of {', '.join(own)}")
        raw = self.keys(raw, path, form)
        if "tau_syn" in raw:
            for key in ("tau_syn_exc", "tau_syn_inh"):
                if key in raw:
                    self.fail(f"{path}.tau_syn", f"tau_syn sets both tau_syn_exc and tau_syn_inh; "
                                                 f"do not give it together with {key}")
        keys = PARAM_KEYS[model]
        values: dict[str, float] = {}
        where: dict[str, str] = {}
        for key, value in raw.items():
            here = f"{path}.{key}"
            if key == "tau_syn":
                t = self.time(value, here, minimum=None)
                values.update(dict.fromkeys(TAU_SYN_FIELDS, t))
                where.update({**dict.fromkeys(TAU_SYN_FIELDS, here), "tau_syn": here})
            elif keys[key].endswith("_us"):
                values[keys[key]] = self.time(value, here, minimum=None)
                where.update({keys[key]: here, key: here})
            else:
                values[key] = self.number(value, here)
                where[key] = here
        # speak the YAML's names: tau_mem, not tau_mem_us
        rename = {field: key for key, field in keys.items() if field != key}
        return self.construct(cls, path, where, rename, **values)

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
                self.fail(f"{path}.type", f"missing required field 'type' ({', '.join(INPUT_KINDS)})")
            kind = self.choice(spec["type"], f"{path}.type", INPUT_KINDS, "input type")
            own = FORM_KEYS[f"input_{kind}"]
            for key in spec:  # a field of another input type: say so rather than just "unknown"
                others = [t for t in INPUT_KINDS if key not in own and key in FORM_KEYS[f"input_{t}"]]
                if others:
                    self.fail(f"{path}.{key}", f"unknown field '{key}' for type {kind} (it belongs to type "
                                               f"{', '.join(others)}); expected one of {', '.join(own)}")
            spec = self.keys(spec, path, f"input_{kind}")
            size = self.integer(spec["size"], f"{path}.size", minimum=1)
            out[name] = self._INPUTS[kind](self, name, spec, path, size)
        return out

    def spike_input(self, name: str, spec: dict, path: str, size: int) -> SpikeInput:
        if ("times" in spec) == ("batches" in spec):
            self.fail(path, "give exactly one of 'times' (same trains for every sample) or "
                            "'batches' (one set of trains per sample)")
        if "times" in spec:
            trains = self.trains(spec["times"], f"{path}.times", size)
            return SpikeInput(name=name, size=size, spikes=_events([(0, trains)], size, 1))
        where = f"{path}.batches"
        batches = spec["batches"]
        if not isinstance(batches, list) or not batches:
            self.fail(where, f"expected a non-empty list of per-sample spike trains, got {show_value(batches)}")
        samples = [(b, self.trains(item, f"{where}.{b}", size)) for b, item in enumerate(batches)]
        self.per_sample(len(batches), where)
        return SpikeInput(name=name, size=size, spikes=_events(samples, size, len(batches)))

    def poisson_input(self, name: str, spec: dict, path: str, size: int) -> PoissonInput:
        start = self.time(spec.get("start", "0 us"), f"{path}.start")
        stop = self.time(spec["stop"], f"{path}.stop") if "stop" in spec else None
        where = {"start_us": f"{path}.start", "stop_us": f"{path}.stop", "rate_hz": f"{path}.rate",
                 "seed": f"{path}.seed"}
        rename = {"start_us": "start", "stop_us": "stop", "rate_hz": "rate"}
        return self.construct(PoissonInput, path, where, rename, name=name, size=size,
                              rate_hz=self.rate(spec["rate"], f"{path}.rate"), start_us=start, stop_us=stop,
                              seed=self.seed(spec.get("seed", 0), f"{path}.seed"))

    def file_input(self, name: str, spec: dict, path: str, size: int) -> FileInput:
        rel, spikes = self.spike_file(spec["path"], f"{path}.path", size)
        return FileInput(name=name, size=size, path=rel, spikes=spikes)

    #: input type -> reader of its spec (one entry per kind of InputSource)
    _INPUTS = {SpikeInput.kind: spike_input, PoissonInput.kind: poisson_input, FileInput.kind: file_input}

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
                return self.hardware_us(self.number(t, p, minimum=0.0) * factor)
        else:
            lists, where = value, path

            def convert(t, p):
                return self.time(t, p)
        if not isinstance(lists, list):
            self.fail(where, f"expected one list of spike times per neuron, got {show_value(lists)}")
        if len(lists) != size:
            self.fail(where, f"has {len(lists)} spike trains but size is {size}")
        out = []
        for i, train in enumerate(lists):
            if not isinstance(train, list):
                self.fail(f"{where}.{i}", f"expected a list of spike times, got {show_value(train)}")
            out.append([convert(t, f"{where}.{i}.{j}") for j, t in enumerate(train)])
        return out

    def _load_numpy(self, value, path: str, kind: str):
        """A .npy array or the arrays of an .npz (a dict) named relative to the netlist; errors
        name the field and the file. Each array's header is read first: one larger than
        MAX_FILE_ARRAY_BYTES (a compressed .npz can hold far more than its size) or holding
        Python objects is refused before it is read."""
        rel = self.string(value, path)
        full = self.base_dir / rel
        try:
            if not full.is_file():
                if full.exists():
                    self.fail(path, f"{kind} file '{rel}' is not a regular file")
                self.fail(path, f"{kind} file '{rel}' not found (looked for {full})")
            with open(full, "rb") as fh:
                zipped = fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")  # as np.load tells .npz from .npy
            if zipped:
                arrays = {}
                with zipfile.ZipFile(full) as archive:
                    for info in archive.infolist():
                        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                        with archive.open(info) as fh:
                            self._check_header(fh, path, rel, f"array '{name}'")
                        with archive.open(info) as fh:
                            arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
                return rel, arrays
            with open(full, "rb") as fh:
                self._check_header(fh, path, rel, "the array")
                fh.seek(0)
                return rel, np.lib.format.read_array(fh, allow_pickle=False)
        except NetlistError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            self.fail(path, f"cannot read {kind} file '{rel}': {exc}")

    def _check_header(self, fh, path: str, rel: str, what: str) -> None:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
        if dtype.hasobject:
            self.fail(path, f"file '{rel}': {what} holds Python objects; only numbers are read")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > MAX_FILE_ARRAY_BYTES:
            self.fail(path, f"file '{rel}': {what} of shape {shape} would take {nbytes / 2**30:.3g} GiB; "
                            f"at most {MAX_FILE_ARRAY_BYTES / 2**30:g} GiB per array")

    def spike_file(self, value, path: str, size: int) -> tuple[str, SpikeEvents]:
        rel, arrays = self._load_numpy(value, path, "spike")
        if not isinstance(arrays, dict):
            self.fail(path, f"spike file '{rel}' must be an .npz with arrays neuron, time_us and optionally batch")
        for key in ("neuron", "time_us"):
            if key not in arrays:
                self.fail(path, f"spike file '{rel}' has no array '{key}' (has: {', '.join(sorted(arrays)) or 'none'})")
        for key in ("neuron", "time_us", "batch"):  # one event per entry: a matrix is not flattened
            if key in arrays and arrays[key].ndim != 1:
                self.fail(path, f"spike file '{rel}': '{key}' must be a 1-D array (one entry per spike), "
                                f"got shape {arrays[key].shape}")
        for key in ("size", "batch_size"):
            value = arrays.get(key)
            if value is not None and not (value.ndim == 0 and np.issubdtype(value.dtype, np.integer)
                                          and 1 <= int(value) <= INT_MAX):
                self.fail(path, f"spike file '{rel}': '{key}' must be one integer >= 1, got "
                                f"{show_value(value.tolist())}")
        for key in ("neuron", "time_us", "batch"):
            if key in arrays and not (np.issubdtype(arrays[key].dtype, np.number) or arrays[key].dtype == bool):
                self.fail(path, f"spike file '{rel}': '{key}' must hold numbers, got dtype {arrays[key].dtype}")
        n = arrays["time_us"].size
        batch = arrays.get("batch", np.zeros(n, dtype=np.int64))
        neuron, time_us = arrays["neuron"], arrays["time_us"].astype(np.float64)
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
        return rel, _canonical_events(batch, neuron, time_us, size, batch_size)

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
            pre = self.reference(spec["pre"], f"{path}.pre", list(populations) + list(inputs), "population or input")
            post = self.string(spec["post"], f"{path}.post")
            if post in inputs:
                self.fail(f"{path}.post", f"'{post}' is an input; a projection must end on a population")
            post = self.reference(post, f"{path}.post", populations, "population")
            n_pre = populations[pre].size if pre in populations else inputs[pre].size
            n_post = populations[post].size
            connectivity = self.connectivity(spec.get("connectivity", "all_to_all"), f"{path}.connectivity",
                                             pre, post, n_pre, n_post)
            weights, support = self.weights(spec["weights"], f"{path}.weights", n_pre, n_post)
            if isinstance(weights, ArrayWeights):
                # Only connected entries become synapses (chip.netlist.connectivity ignores the rest), so
                # only they decide the sign.
                mask = realize_connectivity(connectivity, n_pre, n_post, same_population=pre == post)
                used = weights.array[mask]
                support = (float(used.min()), float(used.max())) if used.size else (0.0, 0.0)
            sign = self.sign(spec.get("sign", "auto"), f"{path}.sign", weights, support, f"{path}.weights")
            delay = self.time(spec["delay"], f"{path}.delay") if "delay" in spec else 0.0
            out[name] = Projection(name=name, pre=pre, post=post, connectivity=connectivity, weights=weights,
                                   sign=sign, delay_us=delay)
        return out

    def connectivity(self, raw, path, pre, post, n_pre, n_post):
        if isinstance(raw, str):
            kind = self.choice(raw, path, CONNECTIVITY_NAMES, "connectivity")
            if kind == "one_to_one":
                if n_pre != n_post:
                    self.fail(path, f"one_to_one needs equal sizes, but pre '{pre}' has {n_pre} neurons "
                                    f"and post '{post}' has {n_post}")
                return OneToOne()
            return AllToAll()
        if not isinstance(raw, dict):
            self.fail(path, f"expected {', '.join(CONNECTIVITY_NAMES)} or a mapping with "
                            f"{', '.join(repr(f) for f in CONNECTIVITY_FORMS)}, got {show_value(raw)}")
        forms = [key for key in CONNECTIVITY_FORMS if key in raw]
        if len(forms) != 1:
            self.fail(path, "a connectivity mapping needs exactly one of 'all_to_all' (options), "
                            "'probability' (random) or 'explicit' (pairs)" + (f", got {', '.join(forms)}" if forms else ""))
        return self._CONNECTIVITY[forms[0]](self, raw, path, n_pre, n_post)

    def all_to_all(self, raw, path, n_pre, n_post) -> AllToAll:
        raw = self.keys(raw, path, "connectivity_all_to_all")
        where = f"{path}.all_to_all"
        options = self.keys(raw["all_to_all"], where, "all_to_all", "a mapping of options ({allow_self: false})")
        return AllToAll(allow_self=self.boolean(options.get("allow_self", True), f"{where}.allow_self"))

    def random(self, raw, path, n_pre, n_post) -> RandomConnectivity:
        raw = self.keys(raw, path, "connectivity_random")
        where = {"probability": f"{path}.probability", "seed": f"{path}.seed", "allow_self": f"{path}.allow_self"}
        return self.construct(RandomConnectivity, path, where,
                              probability=self.number(raw["probability"], f"{path}.probability"),
                              seed=self.seed(raw.get("seed", 0), f"{path}.seed"),
                              allow_self=self.boolean(raw.get("allow_self", True), f"{path}.allow_self"))

    def explicit(self, raw, path, n_pre, n_post) -> ExplicitPairs:
        raw = self.keys(raw, path, "connectivity_explicit")
        return ExplicitPairs(self.pairs(raw["explicit"], f"{path}.explicit", n_pre, n_post))

    #: connectivity mapping form -> its reader (one entry per mapping-form kind of Connectivity)
    _CONNECTIVITY = {"all_to_all": all_to_all, "probability": random, "explicit": explicit}

    def pairs(self, raw, path, n_pre, n_post) -> np.ndarray:
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of [pre, post] index pairs, got {show_value(raw)}")
        pairs: list[tuple[int, int]] = []
        for k, pair in enumerate(raw):
            where = f"{path}.{k}"
            if not isinstance(pair, list) or len(pair) != 2:
                self.fail(where, f"expected a [pre, post] index pair, got {show_value(pair)}")
            i = self.integer(pair[0], f"{where}.0", minimum=0)
            j = self.integer(pair[1], f"{where}.1", minimum=0)
            if i >= n_pre:
                self.fail(where, f"pre index {i} out of range 0..{n_pre - 1}")
            if j >= n_post:
                self.fail(where, f"post index {j} out of range 0..{n_post - 1}")
            pairs.append((i, j))  # a pair listed twice is one synapse (chip.netlist.connectivity collapses them)
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    def weights(self, raw, path, n_pre, n_post):
        """The weight initializer and the (lowest, highest) weight it can produce."""
        if not isinstance(raw, dict):
            value = self.number(raw, path)
            return ConstantWeights(value), (value, value)
        forms = [key for key in WEIGHT_FORMS if key in raw]
        if len(forms) != 1:
            self.fail(path, f"a weights mapping needs exactly one of {', '.join(WEIGHT_FORMS)}"
                            + (f", got {', '.join(forms)}" if forms else ""))
        form = forms[0]
        raw = self.keys(raw, path, f"weights_{form}")
        return self._WEIGHTS[form](self, raw, path, f"{path}.{form}", n_pre, n_post)

    def normal_weights(self, raw, path, where, n_pre, n_post):
        dist = self.keys(raw["normal"], where, "normal")
        mean = self.number(dist["mean"], f"{where}.mean")
        std = self.number(dist["std"], f"{where}.std", minimum=0.0)
        seed = self.seed(raw.get("seed", 0), f"{path}.seed")
        support = (mean, mean) if std == 0 else (-math.inf, math.inf)
        return NormalWeights(mean=mean, std=std, seed=seed), support

    def uniform_weights(self, raw, path, where, n_pre, n_post):
        dist = self.keys(raw["uniform"], where, "uniform")
        low = self.number(dist["low"], f"{where}.low")
        high = self.number(dist["high"], f"{where}.high")
        seed = self.seed(raw.get("seed", 0), f"{path}.seed")
        init = self.construct(UniformWeights, where, {"high": f"{where}.high", "low": f"{where}.low"},
                              low=low, high=high, seed=seed)
        return init, (low, high)

    def file_weights(self, raw, path, where, n_pre, n_post):
        rel, array = self._load_numpy(raw["file"], where, "weight")
        if not isinstance(array, np.ndarray):
            self.fail(where, f"weight file '{rel}' must be a .npy array, not an .npz archive")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
            self.fail(where, f"weight file '{rel}' must hold real numbers, got dtype {array.dtype}")
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            self.fail(where, f"weight file '{rel}' holds NaN or inf")
        return self.weight_array(ArrayWeights(self.shaped(array, where, n_pre, n_post), path=rel))

    def inline_weights(self, raw, path, where, n_pre, n_post):
        rows = raw["array"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            self.fail(where, "expected a list of rows (one per pre neuron) of numbers")
        rows = [[self.number(v, f"{where}.{i}.{j}") for j, v in enumerate(row)] for i, row in enumerate(rows)]
        lengths = {len(row) for row in rows}
        if len(lengths) > 1:
            self.fail(where, "rows of the weight array have different lengths")
        array = np.asarray(rows, dtype=np.float64).reshape(len(rows), lengths.pop() if lengths else 0)
        return self.weight_array(ArrayWeights(self.shaped(array, where, n_pre, n_post)))

    def shaped(self, array: np.ndarray, where: str, n_pre: int, n_post: int) -> np.ndarray:
        if array.shape != (n_pre, n_post):
            self.fail(where, f"weight array has shape {array.shape}, expected (n_pre, n_post) = ({n_pre}, {n_post})")
        return array

    @staticmethod
    def weight_array(init: ArrayWeights):
        return init, (float(init.array.min()), float(init.array.max()))

    #: weights mapping form -> its reader (one entry per mapping form; a plain number is constant)
    _WEIGHTS = {"normal": normal_weights, "uniform": uniform_weights, "file": file_weights, "array": inline_weights}

    def sign(self, raw, path, weights, support, weights_path) -> str:
        """Resolve ``auto`` from what the weights can be, and refuse a sign the weights contradict.

        Weights given outright (constant, array, normal with std 0) must all have the projection's
        sign. Drawn weights (normal, uniform) that reach across zero are allowed, because the weight
        initializer clips them to 0 on the wrong side (chip.netlist.connectivity.realize_weights); a range
        lying entirely on the wrong side would leave every synapse silent, and is refused.
        """
        sign = self.choice(raw, path, SIGN_SPELLINGS, "sign")
        low, high = support
        if sign == "auto":
            return "excitatory" if low >= 0 else "inhibitory" if high <= 0 else "signed"
        if sign == "signed":
            return sign
        drawn = isinstance(weights, UniformWeights) or (isinstance(weights, NormalWeights) and weights.std > 0)
        if drawn:
            bad = high < 0 if sign == "excitatory" else low > 0
            if bad:
                side = "negative" if sign == "excitatory" else "positive"
                self.fail(weights_path, f"{weights.kind} weights in [{low:g}, {high:g}] are all {side}, so every "
                                        f"synapse of this {sign} projection would start at 0")
            return sign
        what = "weight array entry" if isinstance(weights, ArrayWeights) else "weight"
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
            self.fail("record.membrane", f"expected a list of membrane recordings, got {show_value(entries)}")
        for k, entry in enumerate(entries):
            path = f"record.membrane.{k}"
            entry = self.keys(entry, path, "membrane")
            pop = self.reference(entry["population"], f"{path}.population", populations, "population")
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

    def neurons(self, raw, path, size) -> tuple[int, ...]:
        if raw == "all":
            return tuple(range(size))
        if not isinstance(raw, list):
            self.fail(path, f"expected 'all' or a list of neuron indices, got {show_value(raw)}")
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
          profile=None, die_seed=None, noise_seed=None, batch=None) -> tuple[Netlist, NetlistReader]:
    raw, tree = parse_yaml(text, filename)
    reader = NetlistReader(filename, tree.lines, base_dir)
    netlist = reader.netlist(raw, default_name=default_name, profile=profile, die_seed=die_seed,
                             noise_seed=noise_seed, batch=batch)
    return netlist.replace(source_path=source_path, lines=dict(tree.public)), reader


def _read_text(path: Path, file: str) -> str:
    """The text of a netlist file: a regular file of at most MAX_DOCUMENT_CHARS characters, read
    no further than that (a device or a pipe is refused before anything is read)."""
    try:
        if not path.is_file():
            if not path.exists():
                raise NetlistError("netlist file not found", file=file)
            raise NetlistError("not a regular file (a netlist is a YAML file)", file=file)
        with open(path, "rb") as fh:
            data = fh.read(4 * MAX_DOCUMENT_CHARS + 1)  # UTF-8: at most 4 bytes a character
        if len(data) > 4 * MAX_DOCUMENT_CHARS:
            raise NetlistError(f"the netlist is larger than {4 * MAX_DOCUMENT_CHARS} bytes; a netlist has at most "
                               f"{MAX_DOCUMENT_CHARS} characters", file=file)
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NetlistError(f"cannot read netlist: not UTF-8 text ({exc.reason} at byte {exc.start})", file=file) from None
    except OSError as exc:
        raise NetlistError(f"cannot read netlist: {exc.strerror or exc}", file=file) from None


def load_netlist(path, *, profile: str | None = None, die_seed: int | None = None,
                 noise_seed: int | None = None, batch: int | None = None) -> Netlist:
    """Read and validate a netlist file.

    Keyword arguments override the file: ``profile`` (chip.profile), ``die_seed`` and
    ``noise_seed`` (chip.die_seed, chip.noise_seed) and ``batch``. Relative file paths inside the
    netlist (spike and weight files) are taken relative to the netlist's directory. Raises
    NetlistError (``FILE:LINE: field: message``) at the first problem.
    """
    file = str(path)
    text = _read_text(Path(path), file)
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
