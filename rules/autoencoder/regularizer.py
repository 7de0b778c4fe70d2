r"""Spike-count and membrane regularizers that keep a spiking autoencoder's neurons from dying
(never firing) and bursting (firing at every step), after Hübotter, Lanillos & Tomczak (2021).

Per regularized population (a "layer") and sample, with s the neuron's spike count over the run,
T the run's length in chip steps, U the sum of its CADC-read membrane samples (u = V − v_leak,
model units, minus an optional reference ``membrane_ref``) and J the number of samples::

    spike terms      λ1 Σ_n |s_n / T| + λ2 Σ_n (s_n / T)²
    membrane terms   β1 Σ_n |U_n / J| + β2 Σ_n (U_n / J)²

averaged over the batch. s/T is the fraction of steps a neuron fires at (1 = bursting at every
step); U/J is its mean membrane over the run. The spike terms push bursting neurons down; the
membrane terms pull a neuron's mean membrane towards the reference from both sides (with the
reference between rest and threshold, a silent neuron sitting far below it is pulled up before it
dies, a saturated one pulled down).

The rule computes nothing but these terms: ``chipctl_loss_terms`` returns them with their
gradients with respect to the chip's observables — ``("spike_counts", population)`` (batch, n)
and ``("membrane", population)`` (batch, samples, neurons of the recorded trace) — and whichever
gradient rule is active carries them back through its own model. It imports no gradient rule.
It asks for the membranes it needs in ``chipctl_run_request``.
"""

from __future__ import annotations

import numpy as np

from chip.errors import RuleError

from ..api import LossTerm, Rule, RunRequest
from ..hookspecs import hookimpl

__all__ = ["AutoencoderRegularizer", "spike_terms", "membrane_terms", "COEFFICIENTS"]

COEFFICIENTS = ("lambda1", "lambda2", "beta1", "beta2", "membrane_ref")


def spike_terms(counts: np.ndarray, steps: float, lambda1, lambda2) -> tuple[float, np.ndarray]:
    """λ1 Σ|s/T| + λ2 Σ(s/T)², batch mean, and its gradient with respect to ``counts`` (B, n).
    Coefficients are scalars or per neuron (n,)."""
    counts = np.asarray(counts, dtype=np.float64)
    B = counts.shape[0]
    r = counts / steps
    value = float(np.sum(lambda1 * np.abs(r) + lambda2 * r ** 2) / B)
    grad = (lambda1 * np.sign(r) + 2.0 * lambda2 * r) / (steps * B)
    return value, grad


def membrane_terms(u: np.ndarray, beta1, beta2, ref=0.0) -> tuple[float, np.ndarray]:
    """β1 Σ|U/J| + β2 Σ(U/J)² with U/J = mean over samples of (u − ref), batch mean, and its
    gradient with respect to the samples ``u`` (B, J, n)."""
    u = np.asarray(u, dtype=np.float64)
    B, J = u.shape[:2]
    m = (u - ref).mean(axis=1)
    value = float(np.sum(beta1 * np.abs(m) + beta2 * m ** 2) / B)
    g = (beta1 * np.sign(m) + 2.0 * beta2 * m) / (J * B)
    return value, np.broadcast_to(g[:, None, :], u.shape).copy()


class AutoencoderRegularizer(Rule):
    name = "autoencoder_regularizer"
    description = ("Loss terms on spike counts (l1 |s/T|, l2 (s/T)^2) and mean membranes (b1 |U/T|, b2 (U/T)^2) per "
                   "layer, for any gradient rule (keeps autoencoder neurons from dying or bursting).")
    options = {
        "layers": (None, "population -> {lambda1, lambda2, beta1, beta2, membrane_ref}: each layer's coefficients "
                         "(missing ones from the defaults below); default: every population but train.output"),
        "lambda1": (0.0, "default weight of sum |s/T| (s: spike count, T: the run's chip steps)"),
        "lambda2": (0.0, "default weight of sum (s/T)^2"),
        "beta1": (0.0, "default weight of sum |U/T| (U/T: mean CADC-read membrane, model units above v_leak)"),
        "beta2": (0.0, "default weight of sum (U/T)^2"),
        "membrane_ref": (0.0, "default reference the mean membrane is measured from (model units above v_leak)"),
    }

    @hookimpl
    def chipctl_configure(self, context):
        host, opts = context.host, context.options
        defaults = {}
        for key in COEFFICIENTS:
            try:
                defaults[key] = float(opts[key])
            except (TypeError, ValueError):
                raise RuleError(f"option {key}: expected a number, got {opts[key]!r}") from None
            if key != "membrane_ref" and defaults[key] < 0:
                raise RuleError(f"option {key}: expected a number >= 0, got {opts[key]!r}")
        layers = opts["layers"]
        if layers is None:
            layers = {p: {} for p in host.populations if p != context.output}
        if not isinstance(layers, dict):
            raise RuleError(f"option layers: expected a mapping population -> coefficients, got {layers!r}")
        self.layers: dict[str, dict[str, float]] = {}
        for pop, given in layers.items():
            if pop not in host.populations:
                raise RuleError(f"option layers: no population {pop!r} ({', '.join(host.populations)})")
            given = given or {}
            if not isinstance(given, dict):
                raise RuleError(f"option layers.{pop}: expected a mapping of coefficients, got {given!r}")
            unknown = sorted(set(given) - set(COEFFICIENTS))
            if unknown:
                raise RuleError(f"option layers.{pop}: unknown coefficient(s) {', '.join(unknown)}; "
                                f"known: {', '.join(COEFFICIENTS)}")
            coef = dict(defaults)
            for key, value in given.items():
                try:
                    coef[key] = float(value)
                except (TypeError, ValueError):
                    raise RuleError(f"option layers.{pop}.{key}: expected a number, got {value!r}") from None
                if key != "membrane_ref" and coef[key] < 0:
                    raise RuleError(f"option layers.{pop}.{key}: expected a number >= 0, got {value!r}")
            self.layers[pop] = coef
        self.step_us = float(host.profile.step_us)

    def _membrane_layers(self) -> list[str]:
        return [p for p, c in self.layers.items() if c["beta1"] > 0 or c["beta2"] > 0]

    @hookimpl
    def chipctl_run_request(self, context, batch):
        pops = self._membrane_layers()
        if not pops:
            return None
        return RunRequest(membrane={p: tuple(range(context.host.populations[p])) for p in pops})

    @hookimpl
    def chipctl_loss_terms(self, context, batch, result):
        terms = []
        steps = max(1.0, round(result.duration_us / self.step_us))
        for pop, c in self.layers.items():
            if c["lambda1"] > 0 or c["lambda2"] > 0:
                counts = result.spikes[pop].counts()
                value, grad = spike_terms(counts, steps, c["lambda1"], c["lambda2"])
                terms.append(LossTerm(f"{self.name}.spikes.{pop}", value, {("spike_counts", pop): grad}))
            if c["beta1"] > 0 or c["beta2"] > 0:
                trace = result.trace(pop)
                vl = np.asarray(context.host.read_params(pop, "v_leak"), dtype=np.float64)
                u = trace.values - vl[np.asarray(trace.neurons)]
                value, grad = membrane_terms(u, c["beta1"], c["beta2"], c["membrane_ref"])
                terms.append(LossTerm(f"{self.name}.membrane.{pop}", value, {("membrane", pop): grad}))
        return terms
