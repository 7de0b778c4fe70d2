"""STDP weight transport (Gierlich et al. 2025, "spike-based alignment learning") as a rule plugin.

The weight-transport problem: error feedback in a physical network travels on its own synapses B,
which nobody can copy from the forward synapses W. Here B learns W from spike timing alone. In
*alignment phases* the network fires stochastically, driven by Poisson background on every
neuron; a plasticity timer reads each feedback projection's causal / acausal correlation sensors
(``host.read_correlations``, then ``host.reset_correlations``) and moves B by

    ΔB = η(t) · (a_acausal · acausal + a_causal · causal − decay · B)        (batch mean)

with a Hebbian acausal term (a_acausal > 0) and an anti-Hebbian causal term (a_causal < 0). For a
feedback synapse B[j, i] (pre j, post i) that mirrors W[i, j] (pre i, post j), an acausal pair is
"i fired, then j": the footprint of W[i, j] driving j. The causal term cancels the pairs that
independent firing produces anyway (as many causal as acausal), leaving B[j, i] ∝ W[i, j]. The
drive's common mode is removed first (``center``: over the projection, or per forward post neuron,
whose excitability scales all its footprints alike; ``normalize: post`` equalizes those neurons). The
rule keeps a float shadow copy of B (the plasticity processor's memory) and writes it to the chip
quantized (6-bit, signed through row pairs on ``bss2``) after every timer tick. A homeostatic
controller sets the background rate of each population so that it fires at ``target_rate``.

Each synapse's sensor has its own fixed gain on the chip. Before the first phase the rule
calibrates them (``calibrate``): bursts on the noise inputs make the layers fire in a known
order at a few lags, the sensors are read, and each synapse's reading is compared with what a
nominal sensor would hold for the recorded spikes (``pair_sums``); the fit
(``fit_sensor_spread``) gives its amplitude gain, which the phases divide the readings by.

Between phases the feedback synapses are switched off (their weights written as 0 and kept by the
rule), so they do not disturb the task's forward runs; the values the chip stored at the end of the
last phase are what the error feedback uses.

The learning setup: a feed-forward chain input → hidden … → output trained on the task. Each
neuron's activation is read from its first spike (a = 1 − t/T, 0 when silent; inputs the same);
the output error e = a − target (``a_correct`` for the label's neuron, ``a_wrong`` for the others:
an early and a later first spike) is sent down through B, not Wᵀ:

    δ_L = e ⊙ g_L,     δ_l = (δ_{l+1} · B_{l+1}) ⊙ g_l,
    dL/dW_l[i, j] = Σ_samples a_i · [t_i + delay < t_j] · δ_j / batch

(g: 1 where the neuron fired, ``silent_gate`` where it did not; the bracket, ``causal_eligibility``,
keeps the samples in which the presynaptic first spike could have moved the postsynaptic one). ``mode`` chooses B: ``backprop``
writes Wᵀ to the feedback synapses before every batch (copied weights, the upper bound),
``feedback_alignment`` keeps the netlist's random B, ``stdp_alignment`` learns B in the phases.

The rule reads only what the host interface exposes: spikes, correlation sensors, and weights
it or the trainer wrote.
"""

from __future__ import annotations

import json

import networkx as nx
import numpy as np

from chip.errors import RuleError
from chip.events import SpikeEvents
from chip.netlist import Record

from ..api import Gradients, Rule, RunRequest
from ..eventprop.adjoint import LIFParams, eventprop_gradients, first_spike_loss, padded_from_events
from ..eventprop.revive import fired_into, revive_silent_hidden, revive_silent_labels
from ..hookspecs import hookimpl

__all__ = ["WeightTransport", "MODES", "alignment_angle", "stdp_update"]

MODES = ("stdp_alignment", "feedback_alignment", "backprop")


def alignment_angle(w: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between vec(W) (n_pre, n_post) and vec(Bᵀ), B being (n_post, n_pre);
    90 when either is all zeros."""
    w = np.asarray(w, dtype=np.float64).ravel()
    bt = np.asarray(b, dtype=np.float64).T.ravel()
    nw, nb = np.linalg.norm(w), np.linalg.norm(bt)
    if nw == 0 or nb == 0:
        return 90.0
    return float(np.degrees(np.arccos(np.clip(w @ bt / (nw * nb), -1.0, 1.0))))


CENTERS = ("projection", "post", "both", "none")
NORMALIZE = ("none", "post")


def stdp_update(causal: np.ndarray, acausal: np.ndarray, b: np.ndarray, *, eta: float, a_causal: float,
                a_acausal: float, decay: float, center: bool | str = False, normalize: str = "none") -> np.ndarray:
    """ΔB from one read of the sensors (batch, n_pre, n_post): the batch mean of
    a_acausal · acausal + a_causal · causal, minus decay · B, times eta.

    ``center`` removes a common mode from the drive before that: ``projection`` (or true) its mean
    over all the projection's synapses, ``post`` its mean over each row (the synapses of one
    feedback pre neuron, i.e. one post neuron of the forward projection: how readily that neuron
    fires moves all of them alike), ``both`` the row and the column means (double centring: the
    column mean is a lead or lag of one forward pre neuron), ``none`` (or false) nothing.
    ``normalize: post`` then scales each row to the drive's overall rms (each forward post
    neuron's footprints weighted alike, whatever its gain)."""
    drive = (a_acausal * np.asarray(acausal) + a_causal * np.asarray(causal)).mean(axis=0)
    mode = ("projection" if center else "none") if isinstance(center, bool) else center
    if mode == "projection":
        drive = drive - drive.mean()
    elif mode == "post":
        drive = drive - drive.mean(axis=1, keepdims=True)
    elif mode == "both":
        drive = drive - drive.mean(axis=1, keepdims=True) - drive.mean(axis=0, keepdims=True) + drive.mean()
    elif mode != "none":
        raise ValueError(f"center must be one of {', '.join(CENTERS)}, got {center!r}")
    if normalize == "post":
        rms = np.sqrt((drive ** 2).mean(axis=1, keepdims=True))
        total = np.sqrt((drive ** 2).mean())
        drive = np.where(rms > 0, drive * total / np.where(rms > 0, rms, 1.0), 0.0)
    elif normalize != "none":
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    return eta * (drive - decay * b)


def pair_sums(pre: SpikeEvents, post: SpikeEvents, delay_us: np.ndarray, taus_us) -> np.ndarray:
    """Σ over samples of the causal + acausal sums that nearest-neighbour sensors of amplitude 1
    would hold for every synapse, from the spikes alone, for each time constant in ``taus_us``:
    (len(taus_us), n_pre, n_post). A post spike pairs with the latest presynaptic arrival
    (spike + delay) strictly before it, an arrival with the latest post spike strictly before it."""
    taus = np.atleast_1d(np.asarray(taus_us, dtype=np.float64))
    total = np.zeros((taus.size, pre.size, post.size))
    for b in range(pre.batch_size):
        arrivals = [t + d for t, d in zip(pre.trains(b), delay_us)]
        spikes = post.trains(b)
        for j, p in enumerate(arrivals):
            if len(p) == 0:
                continue
            for i, q in enumerate(spikes):
                if len(q) == 0:
                    continue
                k = np.searchsorted(p, q, side="left") - 1  # latest arrival strictly before each post spike
                m = np.searchsorted(q, p, side="left") - 1  # latest post spike strictly before each arrival
                lags = np.concatenate([(q - p[k])[k >= 0], (p - q[m])[m >= 0]])
                if lags.size:
                    total[:, j, i] += np.exp(-lags[None, :] / taus[:, None]).sum(axis=1)
    return total


def nominal_pairs(pre: SpikeEvents, post: SpikeEvents, delay_us: np.ndarray, tau_us: float) -> np.ndarray:
    """``pair_sums`` for one time constant (n_pre, n_post): what ideal sensors would hold."""
    return pair_sums(pre, post, delay_us, [tau_us])[0]


def fit_sensor_spread(sensed: list[np.ndarray], yardsticks: list[np.ndarray], grid: np.ndarray,
                      min_pairs: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-synapse (amplitude gain, time-constant gain) of sensors from readings at several lags.

    ``sensed[c]`` (n_pre, n_post): what the sensors read in condition c (summed over samples);
    ``yardsticks[c]`` (len(grid), n_pre, n_post): what a sensor of amplitude 1 and time constant
    τ·grid[k] would have read for the same spikes. For each synapse the time-constant gain is the
    grid value whose readings are most nearly proportional to the measured ones (least squares in
    log), the amplitude gain the ratio of the sums at it. Synapses with fewer than ``min_pairs``
    nominal pairs in some condition keep (1, 1)."""
    s = np.stack(sensed)                           # (C, n_pre, n_post)
    y = np.stack(yardsticks, axis=1)               # (K, C, n_pre, n_post)
    enough = (y[np.argmin(np.abs(np.log(grid)))] >= min_pairs).all(axis=0) & (s > 0).all(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s = np.log(np.where(s > 0, s, 1.0))
        log_y = np.log(np.where(y > 0, y, 1e-12))
        resid = log_s[None] - log_y                 # (K, C, ...): log gain implied by each condition
        spread = ((resid - resid.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        best = np.argmin(spread, axis=0)           # (n_pre, n_post)
        pick = np.take_along_axis(y, best[None, None], axis=0)[0]  # (C, n_pre, n_post)
        gain = s.sum(axis=0) / pick.sum(axis=0)
    tau_gain = grid[best]
    return np.where(enough, gain, 1.0), np.where(enough, tau_gain, 1.0)


class WeightTransport(Rule):
    name = "weight_transport"
    description = ("Feedback synapses learn the forward weights from correlation sensors in noise-driven "
                   "phases (STDP weight transport); hidden layers learn from errors sent back through them.")
    options = {
        "mode": ("stdp_alignment", "stdp_alignment (B learned by this rule), feedback_alignment (B fixed, as "
                                   "in the netlist) or backprop (B = Wᵀ copied before every batch)"),
        "feedback": (None, "feedback projection -> the forward projection it mirrors (required), e.g. "
                           "{h2_h1: h1_h2, out_h2: h2_out}"),
        "noise": (None, "population -> Poisson input that drives it in the alignment phases (required for "
                        "stdp_alignment), e.g. {h1: bg_h1}"),
        "learn_forward": (True, "return gradients for the forward chain (false: only align B, W stays)"),
        "initial_phases": (40, "alignment phases before the first epoch"),
        "phases_per_epoch": (2, "alignment phases at the start of every epoch after that; a list gives them "
                                "epoch by epoch (the first entry for epoch 1, the last repeated), e.g. [8, 8, 6, 4, 2]"),
        "phase_every": (0, "also run one alignment phase before every this many training batches (0: never), "
                           "so that B follows W within an epoch"),
        "phase_duration": (1000.0, "length of one alignment phase, µs"),
        "phase_batch": (16, "independent noise realisations run side by side in a phase"),
        "period": (500.0, "plasticity timer: read, reset and update every this many µs (on bss2 a pair is half a "
                           "CADC code: a read must gather many pairs to rise above the read noise)"),
        "eta": (0.02, "learning rate of B per timer tick (model units per pair)"),
        "eta_halflife": (10.0, "phases after which eta has halved (eta / (1 + phase / halflife)); 0: constant"),
        "eta_min": (0.0, "floor of eta: B keeps following W while W learns"),
        "a_causal": (-1.0, "amplitude of the causal (pre before post) term: anti-Hebbian, < 0"),
        "a_acausal": (1.0, "amplitude of the acausal (post before pre) term: Hebbian, > 0"),
        "decay": (2.0, "weight decay of B per tick, relative to its drive (pulls B towards 0)"),
        "max_ratio": (0.15, "cap of |B| / |W| (Frobenius norms): B is scaled down to it after an update; "
                            "aligned feedback closes positive loops W·B, which run away when B grows too "
                            "strong (none: no cap)"),
        "calibrate_sensors": (True, "before the first phase, measure each feedback synapse's sensor in a dedicated "
                                    "run of scheduled pairings and divide its readings by the measured amplitude "
                                    "gain (the chip's sensors differ by a fixed factor each)"),
        "calibration_lags": ([0.5, 3.0, 8.0], "the pairings' lags (µs) of the calibration runs, one run each: two or more "
                                         "separate the sensors' amplitude from their time constant"),
        "calibration_burst": (10, "input events (0.25 µs apart) that make a neuron fire in a calibration run"),
        "calibration_duration": (1500.0, "length of one calibration run, µs"),
        "calibration_batch": (128, "samples side by side in a calibration run"),
        "calibration_signal_lag": (0.0, "lag (µs) at which a synapse's measured gain is taken: 0 divides by the "
                                        "amplitude gain alone, > 0 also by the measured time constant's effect on "
                                        "a pair at that lag"),
        "center": (True, "common mode removed from the drive each tick: true / projection (the mean over the "
                          "projection's synapses: a lead or lag of whole populations moves every B alike and says "
                          "nothing about single weights), post (the mean over each forward post neuron's synapses), "
                          "both (post and forward pre neurons' means), false / none"),
        "normalize": ("none", "none, or post: scale each forward post neuron's drive to the projection's rms "
                              "(after centring), so that neurons that fire more readily do not dominate B"),
        "target_rate": (50.0, "homeostasis: firing rate (kHz) each population is driven to in the phases"),
        "background_rate": (0.23, "initial Poisson rate per background channel, events per µs"),
        "homeostasis_gain": (0.2, "exponent of the multiplicative rate controller"),
        "homeostasis_phases": (None, "phases during which the controller adapts at homeostasis_gain, then at "
                                   "homeostasis_late_gain (none: at homeostasis_gain in every phase)"),
        "homeostasis_late_gain": (0.05, "exponent of the controller after homeostasis_phases: small, so that it "
                                        "follows slow changes of W without oscillating with the W·B loops"),
        "gradient": ("activation", "how the error reaches the weights: activation (first-spike activations, the "
                                   "error sent down through B, loss mse or cross_entropy below) or adjoint (the "
                                   "EventProp adjoint on the recorded spikes, first-spike cross-entropy with tau0, "
                                   "tau1, alpha; B in place of Wᵀ wherever it crosses a layer downwards)"),
        "tau0": (None, "adjoint: softmax temperature over negative first output spike times, µs (default 0.1 tau_syn)"),
        "tau1": (None, "adjoint: time constant of the early-spike term, µs (default 1.28 tau_syn)"),
        "alpha": (3e-3, "adjoint: weight of the early-spike term (pushes the correct neuron's first spike earlier)"),
        "min_drive": (0.2, "adjoint: clip of I − θ at spikes (relative to θ), guards grazing spikes"),
        "revive": (0.0, "adjoint, heuristic (not a gradient, as EventProp's option): where the correct output neuron "
                        "stayed silent, drop the sample's push on the outputs and raise the correct neuron's weights "
                        "from the neurons that fired by this much (no gradient reaches a silent neuron)"),
        "revive_hidden": (0.0, "adjoint, heuristic (not a gradient): a hidden neuron silent over a whole batch gets "
                               "its weights from the pre neurons that fired raised by this much (× their firing share)"),
        "loss": ("mse", "output error: mse (activations against a_correct / a_wrong) or cross_entropy (softmax "
                        "of softmax_scale · activation against the label; silent outputs count 0)"),
        "softmax_scale": (8.0, "inverse temperature of the cross-entropy softmax over output activations"),
        "a_correct": (0.6, "target activation of the correct output neuron (a first spike at 0.4 of the run)"),
        "a_wrong": (0.3, "target activation of the other output neurons (a later first spike, not silence)"),
        "causal_eligibility": (True, "a weight's gradient counts only samples where its presynaptic first "
                                     "spike came before the postsynaptic one (false: every sample)"),
        "silent_gate": (0.3, "error gate of a neuron that did not fire (1 for one that did)"),
    }

    # ------------------------------------------------------------------ configuration
    @hookimpl
    def chipctl_configure(self, context):
        host, opt = context.host, context.options
        self.mode = str(opt["mode"])
        if self.mode not in MODES:
            raise RuleError(f"option mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        feedback = opt["feedback"]
        if not isinstance(feedback, dict) or not feedback:
            raise RuleError("option feedback: expected a mapping feedback projection -> forward projection")
        self.pairs: dict[str, str] = {}
        for b, w in feedback.items():
            for name in (b, w):
                if name not in host.projections:
                    raise RuleError(f"option feedback: unknown projection {name!r}; the netlist has "
                                    f"{', '.join(host.projections)}")
            pb, pw = host.projection(b), host.projection(w)
            if (pb.pre, pb.post) != (pw.post, pw.pre):
                raise RuleError(f"option feedback: {b!r} ({pb.pre} -> {pb.post}) does not run back along "
                                f"{w!r} ({pw.pre} -> {pw.post})")
            if pb.sign != "signed":
                raise RuleError(f"option feedback: {b!r} must be a signed projection (sign: signed)")
            self.pairs[str(b)] = str(w)
        self.noise: dict[str, str] = {}
        if self.mode == "stdp_alignment":
            noise = opt["noise"]
            if not isinstance(noise, dict) or not noise:
                raise RuleError("option noise: stdp_alignment needs a mapping population -> Poisson input")
            for pop, src in noise.items():
                if pop not in host.populations:
                    raise RuleError(f"option noise: unknown population {pop!r}")
                if src not in host.inputs:
                    raise RuleError(f"option noise: unknown input {src!r}")
                if host.inputs[src] != host.populations[pop]:
                    raise RuleError(f"option noise: input {src!r} has {host.inputs[src]} channels, "
                                    f"population {pop!r} has {host.populations[pop]}")
                self.noise[str(pop)] = str(src)
        if opt["gradient"] not in ("activation", "adjoint"):
            raise RuleError(f"option gradient must be activation or adjoint, got {opt['gradient']!r}")
        if opt["gradient"] == "adjoint":
            for pop in self._chain(context)[0]:
                for pname in ("v_leak", "v_reset"):
                    if np.max(np.abs(host.read_params(pop, pname))) > 0.05:
                        raise RuleError(f"option gradient adjoint: population {pop!r} needs {pname} = 0 "
                                        f"(the replay model's), the chip has {float(np.mean(host.read_params(pop, pname))):.3g}")
        if not isinstance(opt["center"], bool) and opt["center"] not in CENTERS:
            raise RuleError(f"option center must be true, false or one of {', '.join(CENTERS)}, got {opt['center']!r}")
        if opt["normalize"] not in NORMALIZE:
            raise RuleError(f"option normalize must be one of {', '.join(NORMALIZE)}, got {opt['normalize']!r}")
        if opt["loss"] not in ("mse", "cross_entropy"):
            raise RuleError(f"option loss must be mse or cross_entropy, got {opt['loss']!r}")
        sched = opt["phases_per_epoch"]
        entries = sched if isinstance(sched, (list, tuple)) else [sched]
        if not entries or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in entries):
            raise RuleError(f"option phases_per_epoch: expected a count or a non-empty list of counts >= 0, got {sched!r}")
        if isinstance(opt["phase_every"], bool) or not isinstance(opt["phase_every"], int) or opt["phase_every"] < 0:
            raise RuleError(f"option phase_every: expected a number of batches >= 0, got {opt['phase_every']!r}")
        if float(opt["period"]) <= 0 or float(opt["phase_duration"]) <= 0:
            raise RuleError("options period and phase_duration must be positive")
        self.layers, self.projections = self._chain(context)
        missing = [w for w in self.projections[1:] if w not in self.pairs.values()]
        if bool(opt["learn_forward"]) and missing:
            raise RuleError(f"option feedback: no feedback projection for {', '.join(missing)}; every "
                            "forward projection above the first needs one")
        self.rng = np.random.default_rng(context.rng.integers(2 ** 63))
        # B as the chip stored it at the end of the last phase (what the error feedback uses), and
        # the plasticity processor's float copy of it
        self.b_chip = {b: host.read_weights(b) for b in self.pairs}
        self.shadow = {b: v.copy() for b, v in self.b_chip.items()}
        self.rates = {pop: np.full(host.populations[pop], float(opt["background_rate"])) for pop in self.noise}
        self.phases_done = 0
        self.batches_seen = 0  # training batches, for phase_every
        self.angle_log: list[dict] = []
        # sensor calibration: per-synapse amplitude and time-constant gains, measured once
        self.calibrated = False
        self.gain = {b: np.ones(host.projection(b).shape) for b in self.pairs}
        self.tau_gain = {b: np.ones(host.projection(b).shape) for b in self.pairs}
        if self.mode == "backprop":
            self._copy_forward(host)
        self._log_angles(host, "configure")
        self._gate_off(host)

    def _chain(self, context):
        host = context.host
        graph = nx.DiGraph()
        back = set(self.pairs)
        for name, proj in host.projections.items():
            if name not in back:
                graph.add_edge(proj.pre, proj.post, projection=name)
        try:
            path = nx.shortest_path(graph, context.input, context.output)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            raise RuleError(f"no chain of forward projections from {context.input!r} to {context.output!r}") from None
        return path[1:], [graph.edges[a, b]["projection"] for a, b in zip(path[:-1], path[1:])]

    # ------------------------------------------------------------------ B on the chip
    def _gate_off(self, host):
        """Feedback synapses off between phases: the values stay in the rule (``b_chip``)."""
        for b in self.pairs:
            host.write_weights(b, np.zeros_like(self.b_chip[b]))

    def _copy_forward(self, host):
        for b, w in self.pairs.items():
            self.b_chip[b] = host.write_weights(b, host.read_weights(w).T)
            self.shadow[b] = self.b_chip[b].copy()

    def angles(self, host) -> dict[str, float]:
        """Forward projection -> angle (degrees) between vec(W) and vec(Bᵀ), B as last stored."""
        return {w: alignment_angle(host.read_weights(w), self.b_chip[b]) for b, w in self.pairs.items()}

    def _log_angles(self, host, when):
        self.angle_log.append({"phase": self.phases_done, "when": when, "angles_deg": self.angles(host)})

    # ------------------------------------------------------------------ alignment phases
    def _background(self, host, opt, batch, duration):
        out = {}
        for pop, src in self.noise.items():
            rate = self.rates[pop]
            n = self.rng.poisson(rate[None, :] * duration, size=(batch, rate.size))
            b = np.repeat(np.repeat(np.arange(batch), rate.size), n.ravel())
            nn = np.repeat(np.tile(np.arange(rate.size), batch), n.ravel())
            t = self.rng.uniform(0.0, duration, len(b))
            out[src] = SpikeEvents.from_arrays(b, nn, t, rate.size, batch)
        for src, size in host.inputs.items():  # the task's inputs stay silent in a phase
            out.setdefault(src, SpikeEvents.empty(size, batch))
        return out

    def run_phase(self, context) -> dict:
        """One alignment phase on the chip: background noise, B updated on the timer. Returns the
        rates (kHz per population) and the angles after it."""
        host, opt = context.host, context.options
        batch, duration = int(opt["phase_batch"]), float(opt["phase_duration"])
        halflife = float(opt["eta_halflife"])
        eta = max(float(opt["eta"]) / (1.0 + self.phases_done / halflife if halflife > 0 else 1.0),
                  float(opt["eta_min"]))
        calibrate = bool(opt["calibrate_sensors"])
        if calibrate and not self.calibrated:
            self.calibrate(context)
        for b in self.pairs:  # feedback synapses on, at the shadow's quantized values
            self.b_chip[b] = host.write_weights(b, self.shadow[b])
        gains = {b: self.sensor_gain(b, float(opt["calibration_signal_lag"]), float(host.profile.correlation_tau_us))
                 for b in self.pairs} if calibrate else {}

        def tick(t_us):
            for b in self.pairs:
                corr = host.read_correlations(b)
                host.reset_correlations(b)
                causal, acausal = corr.causal, corr.acausal
                if calibrate:
                    causal, acausal = causal / gains[b], acausal / gains[b]
                self.shadow[b] = self.shadow[b] + stdp_update(
                    causal, acausal, self.shadow[b], eta=eta, a_causal=float(opt["a_causal"]),
                    a_acausal=float(opt["a_acausal"]), decay=float(opt["decay"]),
                    center=opt["center"], normalize=str(opt["normalize"]))
                if opt["max_ratio"] is not None:
                    cap = float(opt["max_ratio"]) * np.linalg.norm(host.read_weights(self.pairs[b]))
                    norm = np.linalg.norm(self.shadow[b])
                    if norm > cap > 0:
                        self.shadow[b] = self.shadow[b] * (cap / norm)
                fs = host.read_params(host.projection(b).post, "weight_full_scale")[None, :]
                self.shadow[b] = np.clip(self.shadow[b], -fs, fs)
                self.b_chip[b] = host.write_weights(b, self.shadow[b])

        pops = tuple(self.noise)
        record = Record(spikes=tuple(host.populations), correlations=tuple(self.pairs))
        res = host.run(self._background(host, opt, batch, duration), batch=batch, duration_us=duration,
                       record=record, timer=(float(opt["period"]), tick))
        rates = {}
        for pop in pops:
            r = res.spikes[pop].counts().mean(axis=0) / duration  # per µs
            rates[pop] = float(r.mean() * 1e3)
            early = opt["homeostasis_phases"] is None or self.phases_done < int(opt["homeostasis_phases"])
            gain = float(opt["homeostasis_gain"] if early else opt["homeostasis_late_gain"])
            if gain > 0:
                target = float(opt["target_rate"]) / 1e3
                self.rates[pop] = np.clip(self.rates[pop] * (target / np.maximum(r, 0.2 * target)) ** gain, 0.0, 5.0)
        self.phases_done += 1
        self._gate_off(host)
        self._log_angles(host, "phase")
        return {"rates_khz": rates, "angles_deg": self.angle_log[-1]["angles_deg"]}

    def calibrate(self, context) -> dict:
        """Measure every feedback synapse's correlation sensor before any phase, as a hardware
        user calibrates fixed-pattern spread through the host interface: with the feedback
        synapses off and no background, bursts on the noise inputs make the layers fire in a
        schedule, every cycle once upwards (output first, each layer ``lag`` later: causal pairs
        on every feedback synapse) and once downwards (acausal pairs). One run per lag; the
        sensors are read at its end and compared, synapse by synapse, with what sensors of
        amplitude 1 and time constant τ·h (τ the profile's nominal value, h on a grid) would hold
        for the recorded spikes. Two lags or more separate the amplitude gain from h. Returns a
        summary (median and spread of the measured gains)."""
        host, opt = context.host, context.options
        batch, duration = int(opt["calibration_batch"]), float(opt["calibration_duration"])
        burst = np.arange(int(opt["calibration_burst"])) * 0.25
        lags = [float(x) for x in opt["calibration_lags"]]
        if not lags or min(lags) <= 0:
            raise RuleError("option calibration_lags: expected one or more positive lags in µs")
        tau = float(host.profile.correlation_tau_us)
        grid = np.exp(np.linspace(-1.2, 1.2, 49))
        order = [pop for pop in (context.input, *self.layers) if pop in self.noise]  # lowest first
        for b in self.pairs:
            for pop in (host.projection(b).pre, host.projection(b).post):
                if pop not in self.noise:
                    raise RuleError(f"option noise: calibrating the sensors of {b!r} needs a noise input on {pop!r}")
        sensed = {b: [] for b in self.pairs}
        yard = {b: [] for b in self.pairs}
        for b in self.pairs:
            host.write_weights(b, np.zeros_like(self.b_chip[b]))
        for lag in lags:
            n = len(order)
            half = max(25.0, (n - 1) * lag + 5 * tau + burst[-1] + 5.0)
            cycle = 2 * half
            starts = np.arange(0.0, duration - cycle + 1e-9, cycle)
            events = {}
            for pos, pop in enumerate(order):
                size = host.populations[pop]
                # upwards (output first): causal pairs on B; downwards: acausal pairs
                onsets = np.concatenate([starts + (n - 1 - pos) * lag, starts + half + pos * lag])
                t = (onsets[:, None] + burst[None, :]).ravel()
                tt = np.tile(np.repeat(t[None, :], size, axis=0).ravel(), batch)
                nn = np.tile(np.repeat(np.arange(size), t.size), batch)
                bb = np.repeat(np.arange(batch), size * t.size)
                events[self.noise[pop]] = SpikeEvents.from_arrays(bb, nn, tt, size, batch)
            for src, size in host.inputs.items():
                events.setdefault(src, SpikeEvents.empty(size, batch))
            record = Record(spikes=tuple(host.populations), correlations=tuple(self.pairs))
            res = host.run(events, batch=batch, duration_us=duration, record=record)
            for b in self.pairs:
                pb = host.projection(b)
                corr = res.correlations[b]
                sensed[b].append((corr.causal + corr.acausal).sum(axis=0))
                yard[b].append(pair_sums(res.spikes[pb.pre], res.spikes[pb.post], pb.delay_us, tau * grid))
        summary = {}
        for b in self.pairs:
            if len(lags) > 1:
                self.gain[b], self.tau_gain[b] = fit_sensor_spread(sensed[b], yard[b], grid)
            else:  # one lag: amplitude gain at the nominal τ
                self.gain[b], _ = fit_sensor_spread(sensed[b], [y[[np.argmin(np.abs(np.log(grid)))]]
                                                                 for y in yard[b]], np.ones(1))
            self.gain[b] = np.clip(self.gain[b], 0.1, 10.0)
            lg = np.log(self.gain[b])
            summary[b] = {"median_gain": float(np.exp(np.median(lg))), "sigma_log_gain": float(lg.std()),
                          "sigma_log_tau_gain": float(np.log(self.tau_gain[b]).std())}
        self.calibrated = True
        self._gate_off(host)
        return summary

    def sensor_gain(self, b: str, lag_us: float = 0.0, tau_us: float = 5.0) -> np.ndarray:
        """A feedback synapse's sensor gain for a pair at ``lag_us`` against a nominal sensor (time
        constant ``tau_us``), from the calibration (1 before it): g·e^{−lag/(τh)} / e^{−lag/τ}."""
        return self.gain[b] * np.exp(-lag_us / tau_us * (1.0 / self.tau_gain[b] - 1.0))

    @staticmethod
    def phases_for_epoch(schedule, epoch: int) -> int:
        """Alignment phases at the start of ``epoch`` (0-based) from ``phases_per_epoch``: a number,
        or a list whose last entry repeats."""
        if isinstance(schedule, (list, tuple)):
            return int(schedule[min(epoch, len(schedule) - 1)])
        return int(schedule)

    @hookimpl
    def chipctl_epoch_started(self, context, epoch):
        if self.mode != "stdp_alignment":
            return
        n = self.phases_for_epoch(context.options["phases_per_epoch"], epoch)
        if self.phases_done == 0:
            n += int(context.options["initial_phases"])
        for _ in range(n):
            self.run_phase(context)

    # ------------------------------------------------------------------ learning through B
    @hookimpl
    def chipctl_run_request(self, context, batch):
        if self.mode == "backprop":
            self._copy_forward(context.host)
            self._gate_off(context.host)
        every = int(context.options["phase_every"])
        if self.mode == "stdp_alignment" and every > 0 and batch.training:
            self.batches_seen += 1
            if self.batches_seen % every == 0:
                self.run_phase(context)
        return None

    @staticmethod
    def _activation(events: SpikeEvents, t_window: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        first = events.first_spike_times()
        fired = np.isfinite(first)
        act = np.where(fired, np.clip(1.0 - np.where(fired, first, 0.0) / t_window, 0.0, 1.0), 0.0)
        return act, fired, np.where(fired, first, np.inf)

    def _adjoint_gradients(self, context, batch, result):
        """EventProp's adjoint on the recorded spikes, with the error crossing each layer downwards
        through the feedback synapses B (as stored on the chip) instead of Wᵀ."""
        host, opt = context.host, context.options
        params, delays, weights, back = [], [], [], []
        by_forward = {w: b for b, w in self.pairs.items()}
        for k, (pop, proj) in enumerate(zip(self.layers, self.projections)):
            params.append(LIFParams(tau_mem_us=float(np.mean(host.read_params(pop, "tau_mem_us"))),
                                    tau_syn_us=float(np.mean(host.read_params(pop, "tau_syn_exc_us"))),
                                    threshold=float(np.mean(host.read_params(pop, "v_threshold")))))
            delays.append(float(np.mean(host.projection(proj).delay_us)))
            weights.append(host.read_weights(proj))
            # the first layer's adjoint goes down to the inputs only, which learn nothing
            back.append(self.b_chip[by_forward[proj]].T if k > 0 else np.zeros_like(weights[-1]))
        tau_syn = params[0].tau_syn_us
        tau0 = float(opt["tau0"]) if opt["tau0"] is not None else 0.1 * tau_syn
        tau1 = float(opt["tau1"]) if opt["tau1"] is not None else 1.28 * tau_syn

        def padded(ev):
            return padded_from_events(ev.batch, ev.neuron, ev.time_us, ev.batch_size, ev.size)

        out_first = result.spikes[self.layers[-1]].first_spike_times()
        loss, dl_dt = first_spike_loss(out_first, batch.labels, tau0, tau1, float(opt["alpha"]), result.duration_us)
        inputs = result.inputs[context.input]
        revive_out = None
        if float(opt["revive"]) > 0:  # EventProp's heuristics for silent neurons (rules/eventprop/revive.py)
            last = len(self.layers) - 1
            dl_dt, revive_out = revive_silent_labels(dl_dt, out_first, batch.labels, float(opt["revive"]),
                                                     fired=lambda: fired_into(result, self.layers, inputs, last))
        grads = eventprop_gradients(padded(inputs), [padded(result.spikes[p]) for p in self.layers],
                                    weights, params, delays, dl_dt, min_drive=float(opt["min_drive"]), feedback=back)
        if revive_out is not None:
            grads[-1] = grads[-1] - revive_out
        if float(opt["revive_hidden"]) > 0:
            revive_silent_hidden(grads, result, self.layers, inputs, float(opt["revive_hidden"]))
        pred = np.argmin(out_first, axis=1)
        pred[~np.isfinite(out_first).any(axis=1)] = -1
        return Gradients(loss=loss, weights=dict(zip(self.projections, grads)),
                         metrics={"accuracy": float(np.mean(pred == batch.labels))})

    @hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        if not bool(context.options["learn_forward"]):
            return None
        opt = context.options
        if opt["gradient"] == "adjoint":
            return self._adjoint_gradients(context, batch, result)
        t_window = result.duration_us
        a_in, _, t_in = self._activation(result.inputs[context.input], t_window)
        acts, fired, times = [a_in], [], [t_in]
        for pop in self.layers:
            a, f, t = self._activation(result.spikes[pop], t_window)
            acts.append(a)
            fired.append(f)
            times.append(t)
        gate = [np.where(f, 1.0, float(opt["silent_gate"])) for f in fired]
        n = result.batch
        if opt["loss"] == "cross_entropy":
            z = float(opt["softmax_scale"]) * acts[-1]
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            onehot = np.zeros_like(p)
            onehot[np.arange(n), batch.labels] = 1.0
            err = float(opt["softmax_scale"]) * (p - onehot)
            loss = float(-np.mean(np.log(np.maximum(p[np.arange(n), batch.labels], 1e-12))))
        else:
            target = np.full(acts[-1].shape, float(opt["a_wrong"]))
            target[np.arange(n), batch.labels] = float(opt["a_correct"])
            err = acts[-1] - target
            loss = float(np.mean(np.sum(0.5 * err ** 2, axis=1)))
        delta = err * gate[-1]
        by_forward = {w: b for b, w in self.pairs.items()}
        grads = {}
        for k in range(len(self.projections) - 1, -1, -1):
            if bool(opt["causal_eligibility"]):
                # only a presynaptic first spike before the postsynaptic one (or before the end,
                # for a silent neuron) can have moved it
                delay = float(np.mean(context.host.projection(self.projections[k]).delay_us))
                before = (times[k][:, :, None] + delay) < np.minimum(times[k + 1], t_window)[:, None, :]
                grads[self.projections[k]] = np.einsum("bi,bij,bj->ij", acts[k], before, delta) / n
            else:
                grads[self.projections[k]] = acts[k].T @ delta / n
            if k > 0:
                b = self.b_chip[by_forward[self.projections[k]]]  # (n_{k+1}, n_k): error down through B
                delta = (delta @ b) * gate[k - 1]
        pred = np.argmax(np.where(fired[-1], acts[-1], -1.0), axis=1)
        pred[~fired[-1].any(axis=1)] = -1
        return Gradients(loss=loss, weights=grads, metrics={"accuracy": float(np.mean(pred == batch.labels))})

    # ------------------------------------------------------------------ logging and state
    @hookimpl
    def chipctl_epoch_finished(self, context, epoch, metrics):
        self._log_angles(context.host, f"epoch {epoch + 1}")
        return {"angles_deg": self.angle_log[-1]["angles_deg"], "alignment_phases": self.phases_done}

    @hookimpl
    def chipctl_state(self, context):
        return {"shadow": {b: v.copy() for b, v in self.shadow.items()},
                "b_chip": {b: v.copy() for b, v in self.b_chip.items()},
                "rates": {p: v.copy() for p, v in self.rates.items()},
                "gain": {b: v.copy() for b, v in self.gain.items()},
                "tau_gain": {b: v.copy() for b, v in self.tau_gain.items()},
                "calibrated": int(self.calibrated),
                "phases_done": self.phases_done,
                "batches_seen": self.batches_seen,
                "angle_log_json": json.dumps(self.angle_log),
                "rng_json": json.dumps(self.rng.bit_generator.state)}

    @hookimpl
    def chipctl_load_state(self, context, state):
        self.shadow = {b: np.asarray(v, dtype=np.float64) for b, v in state["shadow"].items()}
        self.b_chip = {b: np.asarray(v, dtype=np.float64) for b, v in state["b_chip"].items()}
        self.rates = {p: np.asarray(v, dtype=np.float64) for p, v in state.get("rates", {}).items()}
        for key in ("gain", "tau_gain"):
            if key in state:
                setattr(self, key, {b: np.asarray(v, dtype=np.float64) for b, v in state[key].items()})
        self.calibrated = bool(state.get("calibrated", False))
        self.phases_done = int(state["phases_done"])
        self.batches_seen = int(state.get("batches_seen", 0))
        self.angle_log = json.loads(state["angle_log_json"])
        self.rng.bit_generator.state = json.loads(state["rng_json"])
