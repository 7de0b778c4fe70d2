"""Writing a netlist: a :class:`chip.netlist.Netlist` -> plain data or YAML in the file format.

Job: ``netlist_to_dict`` and ``dump_netlist`` write a netlist back in its own timescale, with
every default written out, so that ``load_netlist_text`` reads it back to the same values. Each
kind of connectivity, weight initializer and input is one entry of a table here (``_CONNECTIVITY``,
``_WEIGHTS``, ``_INPUTS``). Arrays read from files are written inline: a ``FileInput`` becomes
``type: spikes`` with its events, ``ArrayWeights`` from a ``.npy`` file become ``{array: [...]}``,
so the output stands alone. The chip section lists only the fields that differ from the named
profile.

Boundary: no validation (the netlist is valid by construction) and no reading; the chip key table
comes from ``chip.netlist.schema``. ``expect:`` and ``train:`` are written as they were read.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import numpy as np
import yaml

from ..profiles import PROFILES, ChipProfile, Mismatch, Nonidealities
from .model import (
    AllToAll,
    ArrayWeights,
    ConstantWeights,
    ExplicitPairs,
    FileInput,
    Netlist,
    NormalWeights,
    OneToOne,
    PoissonInput,
    RandomConnectivity,
    SpikeInput,
    UniformWeights,
)
from .schema import CHIP_KEYS

__all__ = ["netlist_to_dict", "dump_netlist", "chip_to_dict"]


def _quantity(value: float, unit: str) -> str:
    return f"{float(value)!r} {unit}"


def chip_to_dict(chip: ChipProfile, base: ChipProfile | None, time_factor: float = 1.0) -> dict:
    """The chip section: the profile name and the fields that differ from ``base`` (all when None);
    times are multiplied by ``time_factor`` (the speed-up for a biological netlist)."""
    out: dict[str, Any] = {"profile": chip.name}

    def quantity(value, unit):
        return _quantity(value * time_factor if unit in ("us", "ns") else value, unit)

    for key, spec in CHIP_KEYS.items():
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
        elif spec.kind == "switches":
            ref = base.nonidealities if base is not None else None
            if value.off or value == Nonidealities.all_on():
                out[key] = "off" if value.off else "on"
            else:
                out[key] = {f.name: "on" if getattr(value, f.name) else "off" for f in dataclasses.fields(Nonidealities)
                            if ref is None or getattr(value, f.name) != getattr(ref, f.name)}
        elif spec.kind == "pair":
            out[key] = [quantity(v, spec.unit) if spec.unit else float(v) for v in value]
        elif spec.unit:
            out[key] = quantity(value, spec.unit)
        elif spec.kind == "number":
            out[key] = float(value)
        elif spec.kind == "choice":
            out[key] = str(value)
        else:
            out[key] = value
    return out


class _Times:
    """Hardware µs and Hz -> the netlist's own timescale, as written quantities."""

    def __init__(self, netlist: Netlist):
        self.factor = netlist.chip.speedup if netlist.timescale == "biological" else 1.0

    def time(self, us: float) -> str:
        return _quantity(us * self.factor, "us")

    def rate(self, hz: float) -> str:
        return _quantity(hz / self.factor, "Hz")

    def trains(self, trains) -> dict:
        return {"unit": "us", "values": [[float(x) * self.factor for x in train] for train in trains]}


# --- one entry per kind ------------------------------------------------------------------------


def _spikes(src: SpikeInput | FileInput, times: _Times) -> dict:
    entry: dict[str, Any] = {"size": int(src.size), "type": "spikes"}
    spikes = src.spikes
    if spikes.batch_size == 1:
        entry["times"] = times.trains(spikes.trains(0))
    else:
        entry["batches"] = [times.trains(spikes.trains(b)) for b in range(spikes.batch_size)]
    return entry


def _poisson(src: PoissonInput, times: _Times) -> dict:
    entry: dict[str, Any] = {"size": int(src.size), "type": "poisson", "rate": times.rate(src.rate_hz),
                             "start": times.time(src.start_us)}
    if src.stop_us is not None:
        entry["stop"] = times.time(src.stop_us)
    entry["seed"] = int(src.seed)
    return entry


#: input type -> its entry (a file input is written inline, as explicit spikes)
_INPUTS: dict[type, Callable[[Any, _Times], dict]] = {SpikeInput: _spikes, FileInput: _spikes, PoissonInput: _poisson}


def _all_to_all(conn: AllToAll) -> Any:
    return "all_to_all" if conn.allow_self else {"all_to_all": {"allow_self": False}}


_CONNECTIVITY: dict[type, Callable[[Any], Any]] = {
    AllToAll: _all_to_all,
    OneToOne: lambda conn: "one_to_one",
    RandomConnectivity: lambda conn: {"probability": float(conn.probability), "seed": int(conn.seed),
                                      "allow_self": bool(conn.allow_self)},
    ExplicitPairs: lambda conn: {"explicit": np.asarray(conn.pairs, dtype=np.int64).tolist()},
}

_WEIGHTS: dict[type, Callable[[Any], Any]] = {
    ConstantWeights: lambda w: float(w.value),
    NormalWeights: lambda w: {"normal": {"mean": float(w.mean), "std": float(w.std)}, "seed": int(w.seed)},
    UniformWeights: lambda w: {"uniform": {"low": float(w.low), "high": float(w.high)}, "seed": int(w.seed)},
    ArrayWeights: lambda w: {"array": np.asarray(w.array, dtype=np.float64).tolist()},
}


def _entry(table: dict[type, Callable], obj, *args):
    write = table.get(type(obj))
    if write is None:
        raise TypeError(f"cannot write {type(obj).__name__}: not a kind of the netlist format")
    return write(obj, *args)


def netlist_to_dict(netlist: Netlist) -> dict:
    """Plain data in the file format that :func:`load_netlist_text` reads back to the same values.

    Times are written in the netlist's timescale. Arrays read from files are written inline: a
    file input becomes ``type: spikes`` with its events, file weights become ``{array: [...]}``.
    The chip section holds the profile name and only the fields that differ from that profile
    (a profile whose name is not in PROFILES is written against ``bss2``; its name is lost).
    """
    times = _Times(netlist)
    out: dict[str, Any] = {"name": netlist.name}
    if netlist.description:
        out["description"] = netlist.description
    out["timescale"] = netlist.timescale
    out["duration"] = times.time(netlist.duration_us)
    out["batch"] = int(netlist.batch)
    base = PROFILES.get(netlist.chip.name, PROFILES["bss2"])
    chip = chip_to_dict(netlist.chip, base, times.factor)
    chip["profile"] = base.name
    if netlist.calibration is not None:
        chip["calibration"] = netlist.calibration  # resolved, so the output stands alone
    out["chip"] = chip

    pops: dict[str, Any] = {}
    for name, pop in netlist.populations.items():
        params: dict[str, Any] = {}
        for f in dataclasses.fields(pop.params):
            value = getattr(pop.params, f.name)
            if f.name.endswith("_us"):
                params[f.name[:-3]] = times.time(value)
            else:
                params[f.name] = float(value)
        pops[name] = {"size": int(pop.size), "model": pop.model, "params": params}
        v_init = pop.v_init
        if isinstance(v_init, tuple):
            low, high, seed = v_init
            pops[name]["v_init"] = {"uniform": [float(low), float(high)], "seed": int(seed)}
        elif v_init is not None:
            pops[name]["v_init"] = float(v_init)
        if pop.reset != "hard":
            pops[name]["reset"] = pop.reset
    out["populations"] = pops

    inputs = {name: _entry(_INPUTS, src, times) for name, src in netlist.inputs.items()}
    if inputs:
        out["inputs"] = inputs

    projections: dict[str, Any] = {}
    for name, proj in netlist.projections.items():
        projections[name] = {"pre": proj.pre, "post": proj.post,
                             "connectivity": _entry(_CONNECTIVITY, proj.connectivity),
                             "weights": _entry(_WEIGHTS, proj.weights), "sign": proj.sign,
                             "delay": times.time(proj.delay_us)}
    if projections:
        out["projections"] = projections

    rec = netlist.record
    out["record"] = {
        "spikes": list(rec.spikes),
        "membrane": [{"population": m.population, "neurons": [int(i) for i in m.neurons], "adc": m.adc,
                      "period": times.time(m.period_us)} for m in rec.membrane],
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
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)


def _represent_list(dumper, data):
    leaf = not any(isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=leaf)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_netlist(netlist: Netlist) -> str:
    """The netlist as YAML text (see :func:`netlist_to_dict`)."""
    return yaml.dump(netlist_to_dict(netlist), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
