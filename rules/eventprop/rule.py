"""EventProp (Wunderlich & Pehle 2021) as a rule plugin, in the loop with the chip.

What the chip returns is what real hardware returns: clock-stamped spike times. The rule replays
them through the nominal model (the parameters it wrote, read back through the host interface, and
each projection's delay) to reconstruct the synaptic currents at every spike, runs the adjoint
backward on the host (``rules.eventprop.adjoint``) and returns exact gradients of the first-spike-time
loss for every projection on the path from the task's input to its output. Mismatch, quantization
and noise are not in the replay model — in-the-loop training absorbs them, as on hardware.

Assumptions of the replay model, checked at configure time: a feed-forward chain of populations,
leak and reset at 0, one synaptic time constant per population, no adaptation. With the option
``saturation: profile`` the replay and the adjoint take the chip's saturating synaptic inputs,
g(x) = I_sat tanh(x/I_sat) of each line's input (positive weights on the excitatory line, negative
on the inhibitory), with I_sat the profile's documented ``synaptic_saturation_exc`` / ``_inh`` (a
property of the kind of chip, read from ``host.profile``; nothing is read from the die); on a profile
whose inputs do not saturate it is the linear model.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from chip.errors import RuleError

from ..api import Gradients, Rule, RunRequest
from .adjoint import LIFParams, eventprop_gradients, first_spike_loss, padded_from_events
from .revive import fired_into, revive_silent_hidden, revive_silent_labels
from ..hookspecs import hookimpl

__all__ = ["EventProp"]


def _padded(events) -> np.ndarray:
    """A population's spikes over the batch as the adjoint's padded (batch, n, K) array."""
    return padded_from_events(events.batch, events.neuron, events.time_us, events.batch_size, events.size)


class EventProp(Rule):
    name = "eventprop"
    description = "Exact gradients from spike times (adjoint method), first-spike-time loss, in the loop."
    options = {
        "tau0": (None, "softmax temperature of the first-spike loss in µs (default: 0.1 tau_syn, "
                       "Wunderlich & Pehle's ratio)"),
        "tau1": (None, "time constant of the early-spike regulariser in µs (default: 1.28 tau_syn, their ratio)"),
        "alpha": (3e-3, "weight of the early-spike regulariser"),
        "margin": (0.0, "cross_entropy loss: additive margin in µs — the correct neuron's first-spike time "
                        "enters the softmax shifted later by it, so training keeps widening leads smaller "
                        "than the margin (against run-to-run jitter); the gradient stays the exact "
                        "gradient of that loss; 0 = Wunderlich & Pehle's loss"),
        "t_max": (None, "time (µs) assigned to silent output neurons (default: the run's duration)"),
        "min_drive": (1e-2, "clip of I - theta at spikes (relative to theta), guards grazing spikes"),
        "loss": ("cross_entropy", "cross_entropy (Wunderlich & Pehle, with their regulariser) or target_time "
                                  "(squared distance of first spikes to t_correct / t_wrong, as in jaxsnn)"),
        "t_correct": (None, "target_time loss: first-spike target of the correct neuron, µs (default 2 tau_syn)"),
        "t_wrong": (None, "target_time loss: first-spike target of the other neurons, µs (default 5 tau_syn)"),
        "saturation": ("linear", "synaptic input model of the replay and adjoint: linear (each line's input x "
                                 "drives the membrane as is) or profile (g(x) = I_sat tanh(x/I_sat) per line, "
                                 "excitatory and inhibitory apart, with the chip profile's documented I_sat when its "
                                 "synaptic_saturation is on, else linear); the gradient stays exact for that model"),
        "revive": (0.0, "heuristic, not part of the exact gradient: where the correct output neuron "
                        "stayed silent, push up its weights from active neurons (no gradient reaches it)"),
        "revive_hidden": (0.0, "heuristic, not part of the exact gradient (weight bumping, as in Goeltz et al. "
                               "2021 on BrainScaleS-2): a hidden neuron that stayed silent for the whole batch "
                               "gets no gradient; push up its weights from the pre neurons active in the batch"),
    }

    @hookimpl
    def chipctl_configure(self, context):
        host = context.host
        graph = nx.DiGraph()
        for name, proj in host.projections.items():
            graph.add_edge(proj.pre, proj.post, projection=name)
        try:
            path = nx.shortest_path(graph, context.input, context.output)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            raise RuleError(f"no chain of projections from {context.input!r} to {context.output!r}") from None
        self.layers = path[1:]
        self.projections = [graph.edges[a, b]["projection"] for a, b in zip(path[:-1], path[1:])]
        for pop in self.layers:
            for pname, want in (("v_leak", 0.0), ("v_reset", 0.0)):
                value = host.read_params(pop, pname)
                if np.max(np.abs(value - want)) > 0.05:
                    raise RuleError(f"population {pop!r}: EventProp's model needs {pname} = {want}, "
                                    f"the chip has {float(np.mean(value)):.3g}")
        tau_syn = float(np.mean(host.read_params(self.layers[0], "tau_syn_exc_us")))
        opts = context.options
        # Wunderlich & Pehle (Yin-Yang): tau0 = 0.5 ms, tau1 = 6.4 ms with tau_syn = 5 ms
        self.tau0 = float(opts["tau0"]) if opts["tau0"] is not None else 0.1 * tau_syn
        self.tau1 = float(opts["tau1"]) if opts["tau1"] is not None else 1.28 * tau_syn
        self.alpha = float(opts["alpha"])
        try:
            self.margin = float(opts["margin"])
        except (TypeError, ValueError):
            self.margin = float("nan")
        if not (np.isfinite(self.margin) and self.margin >= 0):
            raise RuleError(f"option margin must be a time >= 0 in µs, got {opts['margin']!r}")
        self.min_drive = float(opts["min_drive"])
        self.revive = float(opts["revive"])
        self.revive_hidden = float(opts["revive_hidden"])
        if self.revive < 0 or self.revive_hidden < 0:
            raise RuleError("options revive and revive_hidden must be >= 0")
        self.loss_kind = str(opts["loss"])
        if self.loss_kind not in ("cross_entropy", "target_time"):
            raise RuleError(f"option loss must be cross_entropy or target_time, got {self.loss_kind!r}")
        if self.margin and self.loss_kind != "cross_entropy":
            raise RuleError("option margin shifts the cross_entropy loss's softmax; the target_time loss has none")
        kind = str(opts["saturation"])
        if kind not in ("linear", "profile"):
            raise RuleError(f"option saturation must be linear or profile, got {opts['saturation']!r}")
        # a documented constant of the kind of chip, not a reading of the die
        self.saturation = host.profile.synaptic_saturation if kind == "profile" else None
        self.t_correct = float(opts["t_correct"]) if opts["t_correct"] is not None else 2.0 * tau_syn
        self.t_wrong = float(opts["t_wrong"]) if opts["t_wrong"] is not None else 5.0 * tau_syn

    def _model(self, host):
        params, delays = [], []
        for pop, proj in zip(self.layers, self.projections):
            params.append(LIFParams(tau_mem_us=float(np.mean(host.read_params(pop, "tau_mem_us"))),
                                    tau_syn_us=float(np.mean(host.read_params(pop, "tau_syn_exc_us"))),
                                    threshold=float(np.mean(host.read_params(pop, "v_threshold")))))
            delays.append(float(np.mean(host.projection(proj).delay_us)))
        weights = [host.read_weights(proj) for proj in self.projections]
        return params, delays, weights

    def _target_time_loss(self, out_first, labels, t_max):
        """mean_b Σ_k (t_bk − target_bk)² / (2 tau0²): the correct neuron aims at t_correct, the others
        at t_wrong — a finite time, so the loss never pushes a neuron towards silence. Silent neurons
        count as t_max in the value and carry no gradient."""
        n = out_first.shape[0]
        target = np.full(out_first.shape, self.t_wrong)
        target[np.arange(n), labels] = self.t_correct
        silent = ~np.isfinite(out_first)
        t = np.where(silent, t_max, out_first)
        diff = (t - target) / self.tau0
        loss = float(np.mean(np.sum(0.5 * diff ** 2, axis=1))) if n else 0.0
        grad = np.where(silent, 0.0, diff / self.tau0 / max(n, 1))
        return loss, grad

    @hookimpl
    def chipctl_run_request(self, context, batch):
        return RunRequest()  # spike times only: all the real chip gives

    @hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        host = context.host
        params, delays, weights = self._model(host)
        t_max = float(context.options["t_max"]) if context.options["t_max"] is not None else result.duration_us
        inputs = result.inputs[context.input]
        in_times = _padded(inputs)
        layer_spikes = [_padded(result.spikes[pop]) for pop in self.layers]
        out_first = result.spikes[self.layers[-1]].first_spike_times()
        if self.loss_kind == "cross_entropy":
            loss, dl_dt = first_spike_loss(out_first, batch.labels, self.tau0, self.tau1, self.alpha, t_max,
                                           margin_us=self.margin)
        else:
            loss, dl_dt = self._target_time_loss(out_first, batch.labels, t_max)
        extra = [t for t in loss_terms if ("first_spike_times", self.layers[-1]) in t.grads]
        for term in extra:
            dl_dt = dl_dt + np.where(np.isfinite(out_first), term.grads[("first_spike_times", self.layers[-1])], 0.0)
        revive = None
        if self.revive > 0:  # heuristics for silent neurons: rules/eventprop/revive.py
            last = len(self.layers) - 1
            dl_dt, revive = revive_silent_labels(dl_dt, out_first, batch.labels, self.revive,
                                                 fired=lambda: fired_into(result, self.layers, inputs, last))
        grads = eventprop_gradients(in_times, layer_spikes, weights, params, delays, dl_dt, min_drive=self.min_drive,
                                    saturation=self.saturation)
        if revive is not None:
            grads[-1] = grads[-1] - revive
        if self.revive_hidden > 0:
            revive_silent_hidden(grads, result, self.layers, inputs, self.revive_hidden)
        pred = np.argmin(out_first, axis=1)
        pred[~np.isfinite(out_first).any(axis=1)] = -1
        unused = sorted({kind for t in loss_terms for (kind, _) in t.grads} - {"first_spike_times"})
        metrics = {"accuracy": float(np.mean(pred == batch.labels))}
        if unused:
            metrics["ignored_loss_terms"] = unused
        return Gradients(loss=loss, weights=dict(zip(self.projections, grads)), metrics=metrics)
