"""NIR graph -> netlist, with a report of every assumption and every loss.

Mapping table (units and the weight formula: ``nir_units``)::

    NIR node                      netlist
    Input, shape (n,)             input source ``spikes`` of n channels, no events (give them at run time)
    CubaLIF                       population of LIF neurons; tau_mem, tau_syn (both exc and inh),
                                  v_leak, v_threshold, v_reset must be one value over its neurons;
                                  tau_ref from node metadata ``tau_ref`` if there, else the
                                  profile's shortest; weight_full_scale from metadata
                                  ``weight_full_scale`` if there, else the largest |chip weight|
                                  arriving (either clipped to the profile's range)
    [Delay] -> Linear/Affine      one projection (the Linear's name), weights by the formula;
      -> [Delay]                  excitatory, inhibitory or, for a mixed-sign matrix, signed (an
                                  excitatory and an inhibitory row per source); zero weights are
                                  not synapses; Affine only with a zero bias; Delay: one value
    source -> CubaLIF directly    one-to-one projection of weight 1 (through the formula)
    Output                        nothing: every population's spikes are recorded

Refused with one line naming the file and the node: unknown node types (LIF, Conv, subgraphs...),
arrays of the wrong shape, per-neuron values a chip population cannot hold, a Linear that feeds a
Linear or is fed by two nodes, cycles through non-neuron nodes, time constants outside the
chip's range (with the ``time_scale`` that would fit). A graph that does not fit the chip fails
with the mapping's resource error.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InterchangeError, MappingError
from ..netlist.model import (AllToAll, ArrayWeights, ExplicitPairs, LIFParams, Netlist, OneToOne, Population,
                             Projection, Record, SpikeInput)
from ..profiles import ChipProfile
from .nir_units import SPIKE_CONVENTIONS, detect_convention, require_nir, to_chip_us, weight_factor

__all__ = ["ImportReport", "ProjectionReport", "nir_to_netlist", "import_nir", "read_nir"]

_SUPPORTED = ("Input", "Output", "CubaLIF", "Affine", "Linear", "Delay")


@dataclass
class ProjectionReport:
    """What became of one projection's weights on the chip."""

    name: str
    pre: str
    post: str
    sign: str
    synapses: int
    weight_full_scale: float
    lsb: float | None            # model units per weight code (None: float weights)
    max_rounding_lsb: float      # largest |w - quantized w| of the synapses within range, in LSB
    rms_rounding: float          # model units
    saturated: int               # synapses beyond weight_full_scale (clipped to it)
    full_scale_wanted: float | None = None  # what the file asked for, where the profile's range clipped it


@dataclass
class ImportReport:
    file: str
    profile: str
    time_scale: float
    time_scale_source: str       # given, from the file's metadata (a chipctl export), or default
    convention: str
    dt_s: float | None
    convention_reason: str
    convention_hint: str | None = None  # a convention the file may have meant instead
    tau_ref_assumed: dict[str, float] = field(default_factory=dict)  # population -> µs, where none was given
    projections: list[ProjectionReport] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"spikes: {self.convention} — {self.convention_reason}"]
        if self.convention_hint:
            out.append(f"note: {self.convention_hint}")
        out.append(f"time: NIR seconds x 1e6 / {self.time_scale:g} = chip us ({self.time_scale_source})")
        for pop, tau in self.tau_ref_assumed.items():
            out.append(f"{pop}: no tau_ref in the file (NIR's CubaLIF has none); using {tau:g} us")
        for p in self.projections:
            if p.lsb is None:
                out.append(f"{p.name}: {p.pre} -> {p.post}, {p.sign}, {p.synapses} synapses, float weights "
                           f"(no rounding)")
            else:
                wanted = "" if p.full_scale_wanted is None else f" (of {p.full_scale_wanted:.4g} wanted)"
                out.append(f"{p.name}: {p.pre} -> {p.post}, {p.sign}, {p.synapses} synapses, full scale "
                           f"{p.weight_full_scale:.4g}{wanted}, LSB {p.lsb:.4g}: rounding max {p.max_rounding_lsb:.2f} LSB, "
                           f"rms {p.rms_rounding:.3g}; {p.saturated} saturated")
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fail(file, node, message):
    raise InterchangeError(message, file=file, node=node)


def read_nir(path: str | Path):
    """Read a NIR file; a file nir cannot read fails naming the node it stumbled on."""
    nir = require_nir()
    import h5py

    path = str(path)
    if not Path(path).is_file():
        raise InterchangeError("no such file", file=path)
    try:
        return nir.read(path, type_check=False)
    except Exception as exc:  # noqa: BLE001 - nir raises assertions, KeyErrors, ValueErrors: find the node
        first = exc
    try:
        with h5py.File(path, "r") as f:
            nodes = f["node"]["nodes"]
            for key in nodes:
                group = nodes[key]
                kind = group["type"][()] if "type" in group else b"?"
                kind = kind.decode() if isinstance(kind, bytes) else str(kind)
                if kind not in _SUPPORTED:
                    _fail(path, key, f"unsupported node type {kind} (chipctl reads {', '.join(_SUPPORTED)})")
                try:
                    nir.dict2NIRNode(nir.serialization.hdf2dict(group))
                except Exception as exc:  # noqa: BLE001
                    _fail(path, key, f"malformed {kind} node: {_reason(exc)}")
    except InterchangeError:
        raise
    except Exception:  # noqa: BLE001 - not even HDF5 with a node group
        pass
    raise InterchangeError(f"not a NIR graph nir can read: {_reason(first)}", file=path)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _vector(file, name, node, attr) -> np.ndarray:
    value = np.asarray(getattr(node, attr), dtype=np.float64)
    if value.ndim != 1 or value.size < 1:
        _fail(file, name, f"{attr} must be a 1-D array of one value per neuron, got shape {value.shape}")
    if not np.all(np.isfinite(value)):
        _fail(file, name, f"{attr} holds NaN or inf")
    return value


def _uniform(file, name, attr, value: np.ndarray) -> float:
    if not np.allclose(value, value[0], rtol=1e-9, atol=0):
        _fail(file, name, f"{attr} differs across neurons ({value.min():g} .. {value.max():g}); a chip population "
                          f"has one value (a file written with per-neuron values, e.g. --realized?)")
    return float(value[0])


def _shape_size(file, name, types: dict | None, key: str) -> int:
    shape = np.asarray((types or {}).get(key, []), dtype=np.int64).ravel()
    if shape.size != 1 or shape[0] < 1:
        _fail(file, name, f"{key} shape must be one positive length (n,), got {tuple(shape.tolist())}")
    return int(shape[0])


def _check_time(file, name, attr, us: float, allowed: tuple[float, float], time_scale: float, all_us, ranges):
    low, high = allowed
    if low <= us <= high:
        return
    hint = _suggest_time_scale(all_us, ranges, time_scale)
    _fail(file, name, f"{attr} = {us:g} us on the chip (time scale {time_scale:g}) is outside the chip's "
                      f"{low:g} .. {high:g} us{hint}")


def _suggest_time_scale(all_us, ranges, time_scale: float) -> str:
    """A --time-scale that puts every time constant in range, preferring 1000 (biological ms ->
    chip us) and powers of ten."""
    lo = max((us / high for us, (low, high) in zip(all_us, ranges)), default=0.0)  # factor f: us/f <= high
    hi = min((us / low if low > 0 else math.inf for us, (low, high) in zip(all_us, ranges)), default=math.inf)
    if not lo <= hi:
        return "; no single time scale fits all of the graph's time constants"
    for factor in [1000.0] + [10.0 ** k for k in range(-9, 10)]:
        if lo <= factor <= hi:
            return f"; try --time-scale {time_scale * factor:g}"
    return f"; try --time-scale {time_scale * math.sqrt(lo * (hi if math.isfinite(hi) else lo)):.3g}"


def _step_for(profile: ChipProfile, step_us: float | None) -> ChipProfile:
    if step_us is None or not step_us > 0:
        return profile
    try:
        return profile.replace(step_us=float(step_us))
    except ValueError:
        return profile


def nir_to_netlist(graph, profile: ChipProfile, *, file: str = "<nir>", time_scale: float | None = None,
                   spikes: str = "auto", dt_s: float | None = None, duration_us: float | None = None,
                   name: str | None = None) -> tuple[Netlist, ImportReport]:
    """The netlist of a NIR graph on ``profile``, and what was assumed and lost (see the module).
    ``time_scale`` None: the one a chipctl export wrote into the graph's metadata, else 1."""
    nir = require_nir()
    meta = getattr(graph, "metadata", None) or {}
    if not isinstance(meta, dict):
        meta = {}
    time_scale_source = "given"
    if time_scale is None:
        written = _meta_number(meta, "time_scale") if _meta_text(meta, "generator") == "chipctl" else None
        if written is not None and written > 0:
            time_scale, time_scale_source = written, "from the file's metadata"
        else:
            time_scale, time_scale_source = 1.0, "default"
    if not time_scale > 0:
        raise InterchangeError(f"time scale must be positive, got {time_scale!r}", file=file)
    if spikes not in ("auto",) + SPIKE_CONVENTIONS:
        raise InterchangeError(f"spike convention must be auto, {' or '.join(SPIKE_CONVENTIONS)}, got {spikes!r}",
                               file=file)
    nodes = dict(graph.nodes)
    for key, node in nodes.items():
        kind = type(node).__name__
        if kind not in _SUPPORTED:
            hint = " (a subgraph: flatten it first)" if isinstance(node, nir.NIRGraph) else ""
            _fail(file, key, f"unsupported node type {kind}{hint} (chipctl reads {', '.join(_SUPPORTED)})")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    succs: dict[str, list[str]] = {k: [] for k in nodes}
    for edge in graph.edges:
        if len(edge) != 2:
            _fail(file, None, f"malformed edge {edge!r}")
        a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
        for end in (a, b):
            if end not in nodes:
                _fail(file, end, f"an edge {a} -> {b} names a node the graph does not have")
        preds[b].append(a)
        succs[a].append(b)

    neurons = {k: n for k, n in nodes.items() if isinstance(n, nir.CubaLIF)}
    inputs = {k: n for k, n in nodes.items() if isinstance(n, nir.Input)}
    if not neurons:
        _fail(file, None, "the graph has no CubaLIF node: nothing to put on the chip")

    # --- spike convention
    if spikes == "auto":
        convention, dt, reason = detect_convention(neurons)
    elif spikes == "step":
        if dt_s is None:
            convention, dt, reason = detect_convention(neurons)
            if convention != "step":
                raise InterchangeError("the step convention needs the exporter's time step (--dt): the graph's "
                                       "w_in and r do not give it", file=file)
        convention, dt, reason = "step", dt_s if dt_s is not None else dt, "given: a spike has area dt"
        if not dt > 0:
            raise InterchangeError(f"dt must be positive, got {dt!r}", file=file)
        reason = f"given: a spike is a one-step pulse of area dt = {dt:g} s"
    elif spikes == "jump":
        convention, dt, reason = "jump", None, "given: a spike adds w_in * w to the current (Norse's LIFCell)"
    else:
        convention, dt, reason = "dirac", None, "given: NIR's unit-area spikes"
    hint = None
    if spikes == "auto" and convention == "dirac" and _meta_text(meta, "generator") != "chipctl" and all(
            np.all(np.asarray(n.w_in) == 1) for n in neurons.values()):
        hint = ("w_in = 1 everywhere: NIR's definition divides each weight by tau_syn; a file from Norse, "
                "whose neurons add w per spike, wants --spikes jump")

    # --- neurons -> populations
    sizes: dict[str, int] = {}
    params: dict[str, dict[str, float]] = {}
    factors: dict[str, np.ndarray] = {}
    tau_ref_assumed: dict[str, float] = {}
    times, ranges = [], []
    for key, node in neurons.items():
        arrays = {a: _vector(file, key, node, a) for a in ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold",
                                                           "v_reset", "w_in")}
        n = arrays["tau_mem"].size
        for a, v in arrays.items():
            if v.size != n:
                _fail(file, key, f"{a} has {v.size} values but tau_mem has {n}")
        if np.any(arrays["tau_mem"] <= 0) or np.any(arrays["tau_syn"] <= 0):
            _fail(file, key, "tau_mem and tau_syn must be positive")
        sizes[key] = n
        p = {a: _uniform(file, key, a, arrays[a]) for a in ("tau_mem", "tau_syn", "v_leak", "v_threshold", "v_reset")}
        node_meta = getattr(node, "metadata", None) or {}
        if "weight_full_scale" in node_meta:
            p["weight_full_scale"] = _uniform(file, key, "weight_full_scale (metadata)",
                                              np.atleast_1d(np.asarray(node_meta["weight_full_scale"], dtype=np.float64)))
        if "tau_ref" in node_meta:
            p["tau_ref"] = _uniform(file, key, "tau_ref (metadata)", np.atleast_1d(np.asarray(node_meta["tau_ref"],
                                                                                              dtype=np.float64)))
        params[key] = p
        factors[key] = weight_factor(node, convention, dt)
        times += [float(to_chip_us(p["tau_mem"], time_scale)), float(to_chip_us(p["tau_syn"], time_scale))]
        ranges += [profile.tau_range_us, profile.tau_syn_range_us]
    pops: dict[str, Population] = {}
    full_scale_given: dict[str, float] = {}
    for key, p in params.items():
        tau_mem = _us(p["tau_mem"], time_scale)
        tau_syn = _us(p["tau_syn"], time_scale)
        _check_time(file, key, "tau_mem", tau_mem, profile.tau_range_us, time_scale, times, ranges)
        _check_time(file, key, "tau_syn", tau_syn, profile.tau_syn_range_us, time_scale, times, ranges)
        if "tau_ref" in p:
            tau_ref = _us(p["tau_ref"], time_scale)
            _check_time(file, key, "tau_ref", tau_ref, profile.tau_ref_range_us, time_scale, times, ranges)
        else:
            tau_ref = float(profile.tau_ref_range_us[0])
            tau_ref_assumed[key] = tau_ref
        if "weight_full_scale" in p:
            full_scale_given[key] = p["weight_full_scale"]
        params[key] = dict(tau_mem_us=tau_mem, tau_syn_exc_us=tau_syn, tau_syn_inh_us=tau_syn, tau_ref_us=tau_ref,
                           v_leak=p["v_leak"], v_reset=p["v_reset"], v_threshold=p["v_threshold"])

    # --- inputs
    for key, node in inputs.items():
        sizes[key] = _shape_size(file, key, node.input_type, "input")

    # --- the chains into each population: source -> [Delay] -> [Linear/Affine] -> [Delay] -> neuron
    projections: dict[str, tuple[str, str, np.ndarray, float]] = {}  # name -> (pre, post, w_chip, delay_us)
    used = set()
    for post, node in neurons.items():
        for first in preds[post]:
            chain, at, seen = [], first, set()
            while not (at in neurons or at in inputs):
                if at in seen:
                    _fail(file, at, "a cycle through non-neuron nodes (only a neuron may close a loop)")
                seen.add(at)
                kind = type(nodes[at]).__name__
                if kind == "Output":
                    _fail(file, at, "an Output node feeds another node")
                if len(preds[at]) != 1:
                    _fail(file, at, f"{kind} node has {len(preds[at])} inputs; chipctl maps one source per weight "
                                    f"matrix")
                chain.append(at)
                at = preds[at][0]
            pre = at
            linears = [c for c in chain if type(nodes[c]).__name__ in ("Linear", "Affine")]
            delays = [c for c in chain if type(nodes[c]).__name__ == "Delay"]
            if len(linears) > 1:
                _fail(file, linears[0], "a Linear/Affine that feeds another one; chipctl maps one weight matrix per "
                                        "projection (multiply them first)")
            n_pre, n_post = sizes[pre], sizes[post]
            if linears:
                lin_name = linears[0]
                lin = nodes[lin_name]
                weight = np.asarray(lin.weight, dtype=np.float64)
                if weight.shape != (n_post, n_pre):
                    _fail(file, lin_name, f"weight has shape {weight.shape} but maps {pre!r} ({n_pre}) onto {post!r} "
                                          f"({n_post}): expected ({n_post}, {n_pre})")
                if not np.all(np.isfinite(weight)):
                    _fail(file, lin_name, "weight holds NaN or inf")
                bias = np.asarray(getattr(lin, "bias", 0.0), dtype=np.float64)
                if np.any(bias != 0):
                    _fail(file, lin_name, "a nonzero bias: the chip's neurons take no constant input current")
                proj_name = lin_name
            else:
                if n_pre != n_post:
                    _fail(file, post, f"fed directly by {pre!r} of {n_pre} neurons but has {n_post}")
                weight = np.eye(n_post)
                proj_name = f"{pre}_{post}"
            delay_us = 0.0
            for d in delays:
                value = _vector(file, d, nodes[d], "delay")
                size = n_post if chain.index(d) < (chain.index(linears[0]) if linears else len(chain)) else n_pre
                if value.size != size:
                    _fail(file, d, f"delay has {value.size} values, the signal it delays has {size}")
                delay_us += _us(_uniform(file, d, "delay", value), time_scale)
            if delay_us < 0:
                _fail(file, delays[0], "a negative delay")
            base, i = proj_name, 1
            while proj_name in projections or proj_name in used:
                proj_name, i = f"{base}_{i}", i + 1
            used.add(proj_name)
            w_chip = (weight * factors[post][:, None]).T  # (n_pre, n_post)
            projections[proj_name] = (pre, post, w_chip, delay_us)
    for key, node in nodes.items():  # non-neuron nodes that reach no neuron
        if type(node).__name__ in ("Linear", "Affine", "Delay") and not _reaches_neuron(key, succs, neurons, nodes):
            _fail(file, key, "leads to no CubaLIF; chipctl outputs are the spikes of neurons")

    # --- weights: full scale per population, signs, connectivity, the rounding report
    reports = []
    top = profile.weight_max_code
    low_fs, high_fs = profile.weight_full_scale_range
    full_scale, wanted = {}, {}
    for key in neurons:
        largest = max((float(np.abs(w).max()) for (_, post, w, _) in projections.values() if post == key and w.size),
                      default=0.0)
        chosen = full_scale_given.get(key, largest if largest > 0 else 1.0)
        full_scale[key] = float(np.clip(chosen, low_fs, high_fs))
        wanted[key] = None if full_scale[key] == chosen else float(chosen)
    for key in neurons:
        pops[key] = Population(key, sizes[key], _params(file, key, params[key], full_scale[key]))
    proj_objs = {}
    for pname, (pre, post, w, delay_us) in projections.items():
        nonzero = w != 0
        sign = "signed" if (w > 0).any() and (w < 0).any() else ("inhibitory" if (w < 0).any() else "excitatory")
        if nonzero.all():
            conn = AllToAll()
        elif pre != post and np.array_equal(nonzero, np.eye(*w.shape, dtype=bool)):
            conn = OneToOne()
        else:
            conn = ExplicitPairs(np.argwhere(nonzero)) if nonzero.any() else AllToAll()
        fs = full_scale[post]
        if top is not None:
            # beyond the full scale the chip's synapse holds its top code: the netlist says so in
            # its weights, and the report counts them (a netlist whose weights would be clipped
            # silently is refused by the mapping)
            w = np.clip(w, -fs, fs)
        proj_objs[pname] = Projection(pname, pre, post, conn, ArrayWeights(w), sign, delay_us)
        values = np.abs(projections[pname][2][nonzero]) if nonzero.any() else np.abs(projections[pname][2].ravel())
        if top is None:
            reports.append(ProjectionReport(pname, pre, post, sign, int(values.size), fs, None, 0.0, 0.0, 0))
            continue
        lsb = fs / top
        codes = np.clip(np.rint(values / lsb), 0, top)
        saturated = int(np.count_nonzero(values > fs * (1 + 1e-12)))
        inside = values <= fs * (1 + 1e-12)
        err = values - codes * lsb
        reports.append(ProjectionReport(pname, pre, post, sign, int(values.size), fs, lsb,
                                        float(np.abs(err[inside]).max() / lsb) if inside.any() else 0.0,
                                        float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0, saturated,
                                        wanted[post]))

    step_us = _meta_time(meta, "step", time_scale)
    chip = _step_for(profile, step_us) if _meta_text(meta, "profile") == profile.name else profile
    if duration_us is None:
        duration_us = _meta_time(meta, "duration", time_scale)
    if duration_us is None or not duration_us > 0:
        duration_us = float(10 * max(p["tau_mem_us"] for p in params.values()))
    netlist = Netlist(chip=chip, duration_us=float(duration_us), populations=pops,
                      inputs={k: SpikeInput(k, sizes[k]) for k in inputs}, projections=proj_objs,
                      record=Record(spikes=tuple(pops)), name=name or _meta_text(meta, "netlist") or Path(file).stem,
                      description=f"imported from NIR ({Path(file).name})", source_path=None)
    try:
        from ..mapping import map_netlist

        map_netlist(netlist)
    except MappingError as exc:
        raise MappingError(exc.message, file=file, field=exc.field) from None
    report = ImportReport(file=file, profile=profile.name, time_scale=float(time_scale),
                          time_scale_source=time_scale_source, convention=convention,
                          dt_s=dt, convention_reason=reason, convention_hint=hint, tau_ref_assumed=tau_ref_assumed, projections=reports)
    return netlist, report


def _reaches_neuron(key, succs, neurons, nodes, seen=None) -> bool:
    seen = seen or set()
    for nxt in succs[key]:
        if nxt in neurons:
            return True
        if nxt not in seen and type(nodes[nxt]).__name__ in ("Linear", "Affine", "Delay"):
            seen.add(nxt)
            if _reaches_neuron(nxt, succs, neurons, nodes, seen):
                return True
    return False


def _params(file, key, p: dict, full_scale: float) -> LIFParams:
    try:
        return LIFParams(**p, weight_full_scale=full_scale)
    except ValueError as exc:
        _fail(file, key, str(exc))


def _meta_text(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
        value = value.decode() if isinstance(value, bytes) else value
    return value if isinstance(value, str) else None


def _meta_number(meta: dict, key: str) -> float | None:
    try:
        value = float(np.asarray(meta[key], dtype=np.float64))
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _meta_time(meta: dict, key: str, time_scale: float) -> float | None:
    value = _meta_number(meta, key)
    return None if value is None else _us(value, time_scale)


def _us(seconds: float, time_scale: float) -> float:
    """Chip µs of a NIR time, to 12 significant digits: the s -> µs product leaves one-ulp noise
    (6e-06 s is 5.999999999999999 µs) that would show in every netlist written."""
    return float(f"{float(to_chip_us(seconds, time_scale)):.12g}")


def import_nir(path: str | Path, profile: ChipProfile, **options) -> tuple[Netlist, ImportReport]:
    """Read a NIR file and turn it into a netlist (``nir_to_netlist``'s options)."""
    graph = read_nir(path)
    return nir_to_netlist(graph, profile, file=str(path), **options)
