"""Surrogate gradients in the loop (Cramer et al. 2022; Zenke & Ganguli 2018; Yin et al. 2021) as a
rule plugin: the chip runs forward, the host runs backpropagation through time.

What the rule reads is what a host of the real chip reads: the spike events of every population
it trains and their membranes through the CADC (asked for in ``chipctl_run_request``; 8 bits, at
least 1.7 µs between samples on ``bss2``, each sample with its own time stamp). It never reads
emulator state. The host model (``rules.surrogate.model``) is the nominal LIF/ALIF network
(parameters and weights read back through the host interface) on a time grid of ``dt``: the
ADC's samples are interpolated onto that grid at their true sample times (as hxtorch interpolates
the chip's irregular CADC samples onto its grid), the spikes are binned onto it, and the gradient
is the exact reverse-mode gradient of the model along those observations, with the spike's
derivative replaced by a surrogate. Mismatch, saturation, noise and quantization are not in the
model: in-the-loop training absorbs them.

Trained: every projection on a path from ``train.input`` to the readout (feed-forward and
recurrent), and, when asked, τ_mem and τ_adapt of the spiking populations on those paths (written
as neuron parameters through the host: quantized, and mismatched on ``bss2``). The readout is a
population that does not spike (its threshold out of reach), read through the CADC.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from chip.errors import RuleError

from ..api import Gradients, Rule, RunRequest
from ..hookspecs import hookimpl
from . import model as m

__all__ = ["Surrogate"]

LOSSES = ("max_ce", "sum_softmax_ce", "reconstruction_mse")
TAU_PARAMS = {"tau_mem": "tau_mem_us", "tau_adapt": "tau_adapt_us"}


class Surrogate(Rule):
    name = "surrogate"
    description = ("Surrogate-gradient BPTT on the chip's spikes and CADC-read membranes (LIF/ALIF, "
                   "recurrent), readout loss, learnable tau_mem / tau_adapt.")
    options = {
        "readout": (None, "non-spiking population read through the CADC whose membrane is the loss's "
                          "input (default: train.output)"),
        "loss": ("max_ce", "max_ce: cross-entropy on each readout neuron's maximum over time; "
                           "sum_softmax_ce: cross-entropy on the softmax summed (averaged) over time; "
                           "reconstruction_mse: squared error between each readout neuron's mean membrane over the "
                           "window (model units above v_leak) and the task's target (an autoencoder's image)"),
        "scale": (5.0, "logits per model unit of readout membrane"),
        "window": (None, "[t0, t1] in µs: the readout samples the loss sees (default: the whole run)"),
        "surrogate": ("fast_sigmoid", "fast_sigmoid (SuperSpike: 1/(1+beta|x|)^2) or multi_gaussian (Yin et al.)"),
        "beta": (10.0, "fast_sigmoid steepness per threshold unit (threshold - leak = 1 unit)"),
        "width": (0.5, "multi_gaussian: sigma of the central Gaussian in threshold units"),
        "dt": (None, "host model's time grid in µs (default: the chip's step)"),
        "sample_period": (None, "CADC sample period to ask for, µs (default: the ADC's minimum)"),
        "learn": ([], "neuron parameters to learn: any of tau_mem, tau_adapt (per neuron)"),
        "detach_reset": (False, "no gradient through the reset's dependence on the spike"),
        "rate_reg": (0.0, "weight of a spike-count regulariser on the hidden populations: "
                          "rate_reg * mean((count - rate_target)^2) over neurons and samples"),
        "rate_target": (1.0, "spikes per neuron and sample the regulariser pulls towards"),
        "spike_informed": (False, "reconstruct the membrane between CADC samples with the spike times: up to the "
                                  "threshold at a spike, from the reset after it (default: linear between samples)"),
    }

    # ------------------------------------------------------------------ configure
    @hookimpl
    def chipctl_configure(self, context):
        host, opts = context.host, context.options
        profile = host.profile
        self.readout = opts["readout"] or context.output
        if self.readout not in host.populations:
            raise RuleError(f"option readout: expected a population ({', '.join(host.populations)}), "
                            f"got {self.readout!r}")
        self.loss_kind = str(opts["loss"])
        if self.loss_kind not in LOSSES:
            raise RuleError(f"option loss must be one of {', '.join(LOSSES)}, got {self.loss_kind!r}")
        shape = str(opts["surrogate"])
        if shape not in ("fast_sigmoid", "multi_gaussian"):
            raise RuleError(f"option surrogate must be fast_sigmoid or multi_gaussian, got {shape!r}")
        self.surrogate = (shape, float(opts["beta"] if shape == "fast_sigmoid" else opts["width"]))
        self.scale = float(opts["scale"])
        self.detach_reset = bool(opts["detach_reset"])
        self.rate_reg, self.rate_target = float(opts["rate_reg"]), float(opts["rate_target"])
        self.spike_informed = bool(opts["spike_informed"])
        window = opts["window"]
        if window is not None:
            if not (isinstance(window, (list, tuple)) and len(window) == 2 and float(window[0]) < float(window[1])):
                raise RuleError(f"option window: expected [t0, t1] in µs with t0 < t1, got {window!r}")
            window = (float(window[0]), float(window[1]))
        self.window = window
        learn = opts["learn"] or []
        learn = [learn] if isinstance(learn, str) else list(learn)
        unknown = [x for x in learn if x not in TAU_PARAMS]
        if unknown:
            raise RuleError(f"option learn: expected any of {', '.join(TAU_PARAMS)}, got {unknown}")
        self.learn = [TAU_PARAMS[x] for x in learn]

        # --- the readout: the CADC's sample period ---
        minimum = float(profile.cadc_min_period_us or 0.0)
        period = opts["sample_period"]
        if period is not None:
            period = float(period)
            if period < minimum * (1 - 1e-9):
                raise RuleError(
                    f"option sample_period: {period:g} us is below the CADC's minimum sample period "
                    f"{minimum:g} us on profile {profile.name} (by {minimum - period:.3g} us); the rule "
                    f"interpolates the samples onto its dt grid, so ask for {minimum:g} us or more")
        self.period = period
        self.dt = float(opts["dt"]) if opts["dt"] is not None else float(profile.step_us)
        if not self.dt > 0:
            raise RuleError(f"option dt must be positive, got {opts['dt']!r}")

        # --- the network the model holds: every population on a path input -> readout ---
        graph = nx.DiGraph()
        for name, proj in host.projections.items():
            graph.add_edge(proj.pre, proj.post)
        if context.input not in graph or self.readout not in graph or \
                not nx.has_path(graph, context.input, self.readout):
            raise RuleError(f"no chain of projections from {context.input!r} to {self.readout!r}")
        on_path = nx.descendants(graph, context.input) & (nx.ancestors(graph, self.readout) | {self.readout})
        self.pops = [p for p in host.populations if p in on_path]
        self.projections = [name for name, proj in host.projections.items()
                            if proj.post in on_path and (proj.pre in on_path or proj.pre == context.input)]
        others = [name for name, proj in host.projections.items()
                  if proj.post in on_path and name not in self.projections]
        if others:
            raise RuleError(f"projections {others} drive the trained populations from outside the model "
                            f"(only {context.input!r} and populations on its path to {self.readout!r} may)")
        if any(host.projection(q).pre == self.readout for q in self.projections):
            raise RuleError(f"the readout {self.readout!r} must not project back into the network")
        for pop in self.pops:
            te, ti = host.read_params(pop, "tau_syn_exc_us"), host.read_params(pop, "tau_syn_inh_us")
            if np.max(np.abs(te - ti) / te) > 0.05:
                raise RuleError(f"population {pop!r}: the host model has one synaptic time constant, the chip "
                                f"has tau_syn_exc {float(np.mean(te)):.3g} us and tau_syn_inh {float(np.mean(ti)):.3g} us")
        if "tau_adapt_us" in self.learn and not any(self._adaptation(host, p) != "none" for p in self.pops):
            raise RuleError("option learn: tau_adapt needs an adaptive (ALIF) population on the path")

    def _adaptation(self, host, pop: str) -> str:
        """What the population's adaptation acts on, as the chip has it (none for LIF)."""
        return host.neuron_model(pop)["adaptation"] or "none"

    # ------------------------------------------------------------------ the run
    @hookimpl
    def chipctl_run_request(self, context, batch):
        return RunRequest(membrane={p: tuple(range(context.host.populations[p])) for p in self.pops},
                          membrane_period_us=self.period)

    # ------------------------------------------------------------------ the model
    def network(self, host, context) -> m.Network:
        """The nominal host model, read back through the host interface."""
        pops = {}
        for name in self.pops:
            rp = lambda key: np.asarray(host.read_params(name, key), dtype=np.float64)  # noqa: E731
            vl = rp("v_leak")
            adapt = self._adaptation(host, name)
            pops[name] = m.Population(
                name, host.populations[name], tau_mem=rp("tau_mem_us"), tau_syn=rp("tau_syn_exc_us"),
                theta=rp("v_threshold") - vl, reset=rp("v_reset") - vl, tau_ref=rp("tau_ref_us"),
                soft_reset=self._soft(host, name), adapt=adapt,
                tau_adapt=rp("tau_adapt_us"), inc=rp("adapt_increment"), coupling=rp("adapt_coupling"),
                readout=name == self.readout)
        projs = []
        for name in self.projections:
            info = host.projection(name)
            lag = max(1, int(math.ceil(float(np.mean(info.delay_us)) / self.dt - 1e-9)))
            projs.append(m.Projection(name, info.pre, info.post, host.read_weights(name), lag))
        return m.Network(self.dt, pops, projs, {context.input: host.inputs[context.input]})

    def _soft(self, host, pop: str) -> bool:
        return host.neuron_model(pop)["reset"] == "soft"

    def _grid(self, result) -> int:
        return int(math.ceil(result.duration_us / self.dt - 1e-9))

    def _bin(self, times, K):
        return np.clip(np.ceil(np.asarray(times) / self.dt - 1e-9).astype(np.int64), 0, K + 1)

    def observations(self, host, context, net: m.Network, result):
        """Arrivals of the network input per projection, spikes, holds and membranes of every
        population on the grid (see the module docstring of rules.surrogate.model)."""
        K = self._grid(result)
        B = result.batch
        arrivals = {}
        for q in net.projections:
            if q.pre != context.input:
                continue
            ev = result.inputs[context.input]
            delay = host.projection(q.name).delay_us
            k = self._bin(ev.time_us + delay[ev.neuron], K)
            arr = np.zeros((B, K + 2, q.w.shape[0]))
            np.add.at(arr, (ev.batch, k, ev.neuron), 1.0)
            arr[:, 1] += arr[:, 0]
            arrivals[q.name] = arr[:, :K + 1]
        spikes, holds, membrane = {}, {}, {}
        grid = np.arange(K + 1) * self.dt
        for name, p in net.populations.items():
            ev = result.spikes[name]
            k = self._bin(ev.time_us, K)
            s = np.zeros((B, K + 2, p.n))
            np.add.at(s, (ev.batch, k, ev.neuron), 1.0)
            s[:, 1] += s[:, 0]
            spikes[name] = s[:, :K + 1]
            h = np.zeros((B, K + 1, p.n))
            tref = p.tau_ref[ev.neuron]
            for b, n, t, r in zip(ev.batch, ev.neuron, ev.time_us, tref):
                if r > 0:
                    h[b, (grid >= t - 1e-9) & (grid < t + r - 1e-9), n] = 1.0
            holds[name] = h
            membrane[name] = self._on_grid(result.trace(name), name, host, p.n, grid, B)
            if self.spike_informed and not p.readout:
                self._through_spikes(membrane[name], result.trace(name), ev, p, grid)
        return K, arrivals, spikes, holds, membrane

    def _through_spikes(self, u, trace, ev, p, grid):
        """Between the two CADC samples around a spike, the chip's membrane rose to the threshold,
        was reset at the spike and held: the grid points there are put on the line from the sample
        before to (t_spike, θ), and from (t_spike, reset) to the sample after, instead of on the
        line between the two samples (which cuts the rise short)."""
        t = np.concatenate([[0.0], np.asarray(trace.time_us, dtype=np.float64)])
        recorded = set(int(c) for c in trace.neurons)
        eps = 1e-9
        for b, n, ts in zip(ev.batch, ev.neuron, ev.time_us):
            if int(n) not in recorded:
                continue
            j = int(np.searchsorted(t, ts - eps, side="left")) - 1    # the last sample before the spike
            if j < 0:
                continue
            t_next = t[j + 1] if j + 1 < len(t) else grid[-1] + self.dt
            lo = int(np.searchsorted(grid, t[j] + eps, side="right"))  # grid points after that sample
            mid = int(np.searchsorted(grid, ts + eps, side="right"))   # ... up to the spike
            hi = int(np.searchsorted(grid, t_next - eps, side="left"))  # ... before the next sample
            if mid > lo:
                u0 = u[b, lo - 1, n] if lo >= 1 else 0.0
                t0 = grid[lo - 1] if lo >= 1 else 0.0
                span = max(ts - t0, 1e-12)
                u[b, lo:mid, n] = u0 + (p.theta[n] - u0) * (grid[lo:mid] - t0) / span
            if hi > mid:
                u1 = u[b, hi, n] if hi < u.shape[1] else p.reset[n]
                span = max(t_next - ts, 1e-12)
                u[b, mid:hi, n] = p.reset[n] + (u1 - p.reset[n]) * (grid[mid:hi] - ts) / span

    def _on_grid(self, trace, name, host, n, grid, B):
        """The trace's samples (at their true times) linearly interpolated onto the grid, as u =
        V − v_leak; before the first sample from rest (u = 0 at t = 0), after the last held."""
        vl = host.read_params(name, "v_leak")
        cols = np.asarray(trace.neurons)
        t = np.concatenate([[0.0], np.asarray(trace.time_us, dtype=np.float64)])
        vals = np.concatenate([np.zeros((B, 1, len(cols))), trace.values - vl[cols]], axis=1)
        j = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 1)
        j1 = np.minimum(j + 1, len(t) - 1)
        span = np.where(j1 > j, t[j1] - t[j], 1.0)
        w = np.clip((grid - t[j]) / span, 0.0, 1.0)
        out = np.zeros((B, len(grid), n))
        out[:, :, cols] = vals[:, j] * (1 - w)[None, :, None] + vals[:, j1] * w[None, :, None]
        return out

    # ------------------------------------------------------------------ the loss
    def readout_loss(self, trace, labels, vl, K):
        """Loss on the readout's samples (batch mean) and d loss / d u at the grid step of each
        sample: (loss, grad (B, K+1, n), predictions)."""
        t = np.asarray(trace.time_us, dtype=np.float64)
        cols = np.asarray(trace.neurons)
        u = trace.values - vl[cols]
        keep = np.ones(len(t), dtype=bool) if self.window is None else (t >= self.window[0]) & (t <= self.window[1])
        if not keep.any():
            raise RuleError(f"option window {list(self.window)} holds no readout sample (samples at "
                            f"{t.min():.3g}..{t.max():.3g} us)")
        idx = np.nonzero(keep)[0]
        u = u[:, idx]
        B, J, n = u.shape
        z = self.scale * u
        rows = np.arange(B)
        if self.loss_kind == "max_ce":
            arg = np.argmax(z, axis=1)                               # (B, n)
            zmax = np.take_along_axis(z, arg[:, None, :], axis=1)[:, 0]
            p = _softmax(zmax)
            loss = float(np.mean(-np.log(p[rows, labels] + 1e-300)))
            g = p.copy()
            g[rows, labels] -= 1.0
            g /= B
            dz = np.zeros_like(z)
            np.put_along_axis(dz, arg[:, None, :], g[:, None, :], axis=1)
            pred = np.argmax(zmax, axis=1)
        else:
            sm = _softmax(z, axis=2)                                 # (B, J, n)
            pbar = sm.mean(axis=1)
            py = pbar[rows, labels]
            loss = float(np.mean(-np.log(py + 1e-300)))
            smy = sm[rows, :, labels]                                # (B, J)
            onehot = np.zeros((B, 1, n))
            onehot[rows, 0, labels] = 1.0
            dz = -(smy[:, :, None] * (onehot - sm)) / (J * py[:, None, None] * B)
            pred = np.argmax(pbar, axis=1)
        du = np.zeros((B, K + 1, len(vl)))
        kk = np.clip(np.rint(t[idx] / self.dt).astype(np.int64), 0, K)
        for jj, k in enumerate(kk):
            du[:, k, cols] += self.scale * dz[:, jj]
        return loss, du, pred

    def reconstruction_loss(self, trace, targets, vl, K):
        """Mean squared error between the readout's reconstruction — each neuron's mean membrane
        (u = V − v_leak, model units) over the samples in the window — and ``targets`` (B, n):
        (loss, d loss / d u at each sample's grid step (B, K+1, n), reconstruction (B, n))."""
        t = np.asarray(trace.time_us, dtype=np.float64)
        cols = np.asarray(trace.neurons)
        keep = np.ones(len(t), dtype=bool) if self.window is None else (t >= self.window[0]) & (t <= self.window[1])
        if not keep.any():
            raise RuleError(f"option window {list(self.window)} holds no readout sample (samples at "
                            f"{t.min():.3g}..{t.max():.3g} us)")
        idx = np.nonzero(keep)[0]
        u = trace.values[:, idx] - vl[cols]
        B, J, n = u.shape
        targets = np.asarray(targets, dtype=np.float64).reshape(B, -1)
        if targets.shape[1] != len(vl) or n != len(vl):
            raise RuleError(f"loss reconstruction_mse: the task's targets have {targets.shape[1]} values per sample, "
                            f"the readout {self.readout!r} has {len(vl)} neurons ({n} read)")
        recon = u.mean(axis=1)
        err = recon - targets[:, cols]
        loss = float(np.mean(err ** 2))
        g = 2.0 * err / err.size / J                               # d loss / d u per sample
        du = np.zeros((B, K + 1, len(vl)))
        kk = np.clip(np.rint(t[idx] / self.dt).astype(np.int64), 0, K)
        for k in kk:
            du[:, k, cols] += g
        return loss, du, recon

    # ------------------------------------------------------------------ gradients
    @hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        host = context.host
        net = self.network(host, context)
        K, arrivals, spikes, holds, membrane = self.observations(host, context, net, result)
        tape = m.observed_tape(net, arrivals, K, spikes, membrane, holds, self.surrogate)
        ro = net.populations[self.readout]
        vl = host.read_params(self.readout, "v_leak")
        if self.loss_kind == "reconstruction_mse":
            targets = getattr(batch, "targets", None)
            if targets is None:
                raise RuleError("loss reconstruction_mse needs a task with targets (e.g. train.task: digits)")
            loss, du_ro, recon = self.reconstruction_loss(result.trace(self.readout), targets, vl, K)
            metrics = {"reconstruction_mse": loss}
        else:
            loss, du_ro, pred = self.readout_loss(result.trace(self.readout), batch.labels, vl, K)
            metrics = {"accuracy": float(np.mean(pred == batch.labels))}
        dl_du = {self.readout: du_ro}
        dl_ds: dict[str, np.ndarray] = {}
        B = result.batch
        if self.rate_reg > 0:
            hidden = [p for p in self.pops if p != self.readout]
            n_all = sum(net.populations[p].n for p in hidden) * B
            for p in hidden:
                counts = tape.s[p].sum(axis=1)
                diff = counts - self.rate_target
                loss += float(self.rate_reg * np.sum(diff ** 2) / n_all)
                dl_ds[p] = dl_ds.get(p, 0.0) + np.broadcast_to((2 * self.rate_reg * diff / n_all)[:, None, :],
                                                                tape.s[p].shape)
        # other rules' loss terms on what the model carries: spike counts, membrane samples
        ignored = set()
        for term in loss_terms:
            for (kind, pop), grad in term.grads.items():
                if pop not in net.populations or kind not in ("spike_counts", "membrane"):
                    ignored.add(f"{kind}:{pop}")
                    continue
                if kind == "spike_counts":
                    if pop == self.readout:
                        ignored.add(f"{kind}:{pop}")
                        continue
                    dl_ds[pop] = dl_ds.get(pop, 0.0) + np.broadcast_to(np.asarray(grad)[:, None, :],
                                                                        tape.s[pop].shape)
                else:
                    tr = result.trace(pop)
                    cols = np.asarray(tr.neurons)
                    kk = np.clip(np.rint(np.asarray(tr.time_us) / self.dt).astype(np.int64), 0, K)
                    d = dl_du.setdefault(pop, np.zeros((B, K + 1, net.populations[pop].n)))
                    g = np.asarray(grad)
                    for jj, k in enumerate(kk):
                        d[:, k, cols] += g[:, jj]
        dW, dp = m.backward(net, tape, dl_du, {k: np.array(v) for k, v in dl_ds.items()},
                            detach_reset=self.detach_reset)
        params = {key: g for key, g in dp.items() if key[1] in self.learn and key[0] != self.readout}
        if ro.readout and result.spikes[self.readout].counts().any():
            metrics["readout_spikes"] = float(result.spikes[self.readout].counts().sum() / B)
        for p in self.pops:
            if p != self.readout:
                metrics[f"rate_{p}"] = float(result.spikes[p].counts().mean())
        if ignored:
            metrics["ignored_loss_terms"] = sorted(ignored)
        return Gradients(loss=loss, weights=dW, params=params, metrics=metrics)


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
