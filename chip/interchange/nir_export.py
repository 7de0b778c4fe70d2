"""Netlist -> NIR graph: one ``CubaLIF`` per population, one ``Linear`` per projection.

Mapping table (units: ``nir_units``)::

    netlist                         NIR node / field
    input source (size n)           Input, shape (n,)
    population (LIF)                CubaLIF: tau_mem, tau_syn (s), v_leak, v_threshold, v_reset,
                                    r = 1, w_in = tau_syn (so a NIR weight is the chip weight)
    projection pre -> post          Linear, weight (n_post, n_pre) = signed chip weights, transposed,
                                    0 where there is no synapse
    projection delay_us > 0         Delay after the Linear, delay (n_post,) in s
    population with no projection   Output, shape (n,)  ("output", or "output_<name>" for several)
      leaving it

What NIR cannot carry is refused or written as metadata, never dropped silently:

* an adapting ALIF population (NIR has no adaptive neuron) and a population whose excitatory and
  inhibitory synaptic time constants differ (CubaLIF has one ``tau_syn``): refused;
* the refractory time: node metadata ``tau_ref`` (s, per neuron; NIR's CubaLIF has none), and the
  chip's weight scale: ``weight_full_scale`` (model units at the top weight code, per neuron);
* with ``realized``, mismatch makes each neuron's inhibitory ``tau_syn`` differ a little from its
  excitatory one: ``tau_syn`` is the excitatory one, metadata ``tau_syn_inh`` the other;
* profile, die seed, step, duration, spike convention and time unit: graph metadata; weight codes
  (quantized profiles): ``Linear`` metadata ``exc_code`` / ``inh_code`` (n_post, n_pre).
  Nothing in the graph needs them to be read.

Values: nominal by default (the netlist's parameters and initial weights, or a checkpoint's trained
ones); ``realized`` writes what this die does: per neuron parameters through its mismatch, weights
from their codes through the die's synapse gains. Not in the graph even then: temporal noise,
saturation of the synaptic inputs, routing latency and congestion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InterchangeError
from ..netlist.connectivity import realize_connectivity, realize_weights
from ..netlist.model import Netlist
from .nir_units import require_nir, to_nir_seconds

__all__ = ["netlist_to_nir", "export_nir", "GENERATOR"]

#: the graph metadata ``generator`` of files written here
GENERATOR = "chipctl"
_PARAMS = ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us", "tau_ref_us", "v_leak", "v_reset", "v_threshold",
           "weight_full_scale")


def _refuse_unsupported(netlist: Netlist) -> None:
    for name, pop in netlist.populations.items():
        p = pop.params
        if pop.model == "ALIF" and (p.adapt_increment > 0 or p.adapt_coupling > 0):
            raise InterchangeError("an adapting ALIF population cannot be written: NIR has no adaptive neuron "
                                   "(set adapt_increment and adapt_coupling to 0, or use model LIF)", node=name)
        if p.tau_syn_exc_us != p.tau_syn_inh_us:
            raise InterchangeError(f"tau_syn_exc {p.tau_syn_exc_us:g} us differs from tau_syn_inh "
                                   f"{p.tau_syn_inh_us:g} us: NIR's CubaLIF has one synaptic time constant",
                                   node=name)


def _population_values(netlist: Netlist, host, realized: bool) -> dict[str, dict[str, np.ndarray]]:
    """Per population, each parameter per neuron: the netlist's, the host's (a checkpoint), or
    the die's effective ones."""
    out = {}
    if realized:
        from ..emulator.tables import effective_params

        effective = effective_params(host.die, host.state)
    for name, pop in netlist.populations.items():
        if realized:
            placed = host.mapped.populations[name]
            sl = slice(placed.offset, placed.offset + placed.size)
            out[name] = {k: np.array(effective[k][sl], dtype=np.float64) for k in _PARAMS}
        elif host is not None:
            out[name] = {k: np.array(host.read_params(name, k), dtype=np.float64) for k in _PARAMS}
        else:
            out[name] = {k: np.full(pop.size, float(getattr(pop.params, k))) for k in _PARAMS}
    return out


def _projection_weights(netlist: Netlist, host, realized: bool) -> dict[str, np.ndarray]:
    """Per projection, the signed chip weights (n_pre, n_post), 0 where there is no synapse."""
    out = {}
    for name, proj in netlist.projections.items():
        if realized:
            from ..emulator.tables import effective_weights

            exc, inh = effective_weights(host.mapped, host.die, host.state, name)
            mask = host.projection(name).mask
            dense = np.zeros(mask.shape)
            dense[mask] = exc - inh
        elif host is not None:
            dense = np.array(host.read_weights(name), dtype=np.float64)
        else:
            n_pre, n_post = netlist.size_of(proj.pre), netlist.size_of(proj.post)
            mask = realize_connectivity(proj.connectivity, n_pre, n_post, same_population=proj.pre == proj.post)
            dense = np.where(mask, realize_weights(proj.weights, mask, proj.sign), 0.0)
        out[name] = dense
    return out


def _unique(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}_{i}", i + 1
    taken.add(candidate)
    return candidate


def netlist_to_nir(netlist: Netlist, *, config: dict | None = None, realized: bool = False,
                   time_scale: float = 1.0, source: str | None = None):
    """The NIR graph of ``netlist``: nominal values, a chip configuration's (``config``, from a
    checkpoint) or, with ``realized``, what this die does. ``time_scale``: see ``nir_units``."""
    nir = require_nir()
    if not time_scale > 0:
        raise InterchangeError(f"time scale must be positive, got {time_scale!r}")
    _refuse_unsupported(netlist)
    host = None
    if config is not None or realized or not netlist.chip.is_ideal:
        from ..host import HostInterface

        host = HostInterface(netlist)
        if config is not None:
            host.import_config(config)
    values = _population_values(netlist, host if (config is not None or realized) else None, realized)
    weights = _projection_weights(netlist, host if (config is not None or realized) else None, realized)

    def seconds(us):
        return to_nir_seconds(us, time_scale)

    nodes, edges = {}, []
    taken = set(netlist.inputs) | set(netlist.populations)
    for name, src in netlist.inputs.items():
        nodes[name] = nir.Input(input_type={"input": np.array([src.size])})
    for name, pop in netlist.populations.items():
        v = values[name]
        tau_syn = seconds(v["tau_syn_exc_us"])
        metadata = {"tau_ref": seconds(v["tau_ref_us"]), "weight_full_scale": v["weight_full_scale"]}
        if realized and not np.array_equal(v["tau_syn_exc_us"], v["tau_syn_inh_us"]):
            metadata["tau_syn_inh"] = seconds(v["tau_syn_inh_us"])
        nodes[name] = nir.CubaLIF(tau_syn=tau_syn, tau_mem=seconds(v["tau_mem_us"]), r=np.ones(pop.size),
                                  v_leak=v["v_leak"], v_threshold=v["v_threshold"], v_reset=v["v_reset"],
                                  w_in=tau_syn.copy(), metadata=metadata)
    for name, proj in netlist.projections.items():
        linear = _unique(name, taken)
        metadata = {"sign": proj.sign}
        if host is not None and netlist.chip.weight_max_code is not None:
            exc, inh = host.read_weight_codes(name)
            metadata["exc_code"], metadata["inh_code"] = exc.T.astype(np.int64), inh.T.astype(np.int64)
        nodes[linear] = nir.Linear(weight=np.ascontiguousarray(weights[name].T), metadata=metadata)
        edges.append((proj.pre, linear))
        if proj.delay_us > 0:
            delay = _unique(f"{name}_delay", taken)
            nodes[delay] = nir.Delay(delay=np.full(netlist.size_of(proj.post), float(seconds(proj.delay_us))))
            edges += [(linear, delay), (delay, proj.post)]
        else:
            edges.append((linear, proj.post))
    sinks = [p for p in netlist.populations if not any(pr.pre == p for pr in netlist.projections.values())]
    for pop in sinks:
        out = _unique("output" if len(sinks) == 1 else f"output_{pop}", taken)
        nodes[out] = nir.Output(output_type={"output": np.array([netlist.populations[pop].size])})
        edges.append((pop, out))

    chip = netlist.chip
    metadata = {"generator": GENERATOR, "netlist": netlist.name, "profile": chip.name, "die_seed": int(chip.die_seed),
                "values": "realized" if realized else "nominal", "time_unit": "s", "time_scale": float(time_scale),
                "spike_convention": "dirac: w_in = tau_syn, r = 1, a NIR weight is the chip weight",
                "step": float(seconds(chip.step_us)), "duration": float(seconds(netlist.duration_us))}
    if source:
        metadata["checkpoint"] = source
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(netlist: Netlist, out: str | Path, *, config: dict | None = None, realized: bool = False,
               time_scale: float = 1.0, source: str | None = None) -> dict:
    """Write ``netlist`` as a NIR file; with ``config`` (the chip configuration a training
    checkpoint holds, ``source`` naming it) the trained weights and parameters. Returns a summary
    (nodes by type, values, profile)."""
    nir = require_nir()
    graph = netlist_to_nir(netlist, config=config, realized=realized, time_scale=time_scale, source=source)
    try:
        nir.write(str(out), graph)
    except OSError as exc:
        raise InterchangeError(f"cannot write: {exc.strerror or exc}", file=str(out)) from None
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
    return {"file": str(out), "nodes": kinds, "edges": len(graph.edges), "values": graph.metadata["values"],
            "profile": netlist.chip.name, "die_seed": int(netlist.chip.die_seed), "time_scale": float(time_scale)}
