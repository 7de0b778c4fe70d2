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

Those terms cost every neuron activity, healthy or not. The *band* terms cost nothing inside a
healthy band and grow quadratically outside it, per neuron, on its mean over the batch
(r̄_n = mean_b s_bn / T, ū_n = mean_b U_bn / J)::

    rate band        ρ Σ_n [max(0, r_min − r̄_n)² + max(0, r̄_n − r_max)²]
    membrane band    μ Σ_n [max(0, u_min − ū_n)² + max(0, ū_n − u_max)²]

so a neuron that drifts towards silence (or saturation) over the batch is pushed back, and the
others are left to the reconstruction loss. The latent-population terms of the same paper act on
the spike rates r = s/T of a layer (meant for the bottleneck)::

    example2 Σ_b (Σ_n r_bn)² / B     (activity per sample)
    neuron2  Σ_n (Σ_b r_bn)² / B     (activity per neuron over the batch)
"""

from __future__ import annotations

import numpy as np

from chip.errors import RuleError

from ..api import LossTerm, Rule, RunRequest
from ..hookspecs import hookimpl

__all__ = ["AutoencoderRegularizer", "spike_terms", "membrane_terms", "rate_band_terms", "membrane_band_terms",
           "latent_terms", "COEFFICIENTS"]

COEFFICIENTS = ("lambda1", "lambda2", "beta1", "beta2", "membrane_ref",
                "rate_weight", "rate_min", "rate_max", "membrane_weight", "membrane_min", "membrane_max",
                "example2", "neuron2")
# coefficients that may be negative or absent (None: no bound on that side)
SIGNED = ("membrane_ref", "membrane_min", "membrane_max")
BOUNDS = ("rate_min", "rate_max", "membrane_min", "membrane_max")


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


def _hinge2(x, low, high):
    """Σ max(0, low − x)² + max(0, x − high)² and its derivative (None: no bound on that side)."""
    value, grad = 0.0, np.zeros_like(x)
    if low is not None:
        d = np.maximum(0.0, low - x)
        value += float(np.sum(d ** 2))
        grad -= 2.0 * d
    if high is not None:
        d = np.maximum(0.0, x - high)
        value += float(np.sum(d ** 2))
        grad += 2.0 * d
    return value, grad


def rate_band_terms(counts: np.ndarray, steps: float, weight, rate_min=None, rate_max=None):
    """ρ Σ_n [max(0, r_min − r̄_n)² + max(0, r̄_n − r_max)²] with r̄_n = mean_b s_bn / T, and its
    gradient with respect to ``counts`` (B, n). Zero for every neuron whose mean rate is in the band."""
    counts = np.asarray(counts, dtype=np.float64)
    B = counts.shape[0]
    value, g = _hinge2(counts.mean(axis=0) / steps, rate_min, rate_max)
    return float(weight * value), np.broadcast_to(weight * g / (steps * B), counts.shape).copy()


def membrane_band_terms(u: np.ndarray, weight, u_min=None, u_max=None):
    """μ Σ_n [max(0, u_min − ū_n)² + max(0, ū_n − u_max)²] with ū_n the mean of the samples ``u``
    (B, J, n) over batch and time, and its gradient with respect to ``u``."""
    u = np.asarray(u, dtype=np.float64)
    B, J = u.shape[:2]
    value, g = _hinge2(u.mean(axis=(0, 1)), u_min, u_max)
    return float(weight * value), np.broadcast_to(weight * g / (B * J), u.shape).copy()


def latent_terms(counts: np.ndarray, steps: float, example2, neuron2):
    """example2 Σ_b (Σ_n r_bn)² / B + neuron2 Σ_n (Σ_b r_bn)² / B with r = s/T, and its gradient
    with respect to ``counts`` (B, n)."""
    counts = np.asarray(counts, dtype=np.float64)
    B = counts.shape[0]
    r = counts / steps
    per_example, per_neuron = r.sum(axis=1), r.sum(axis=0)
    value = float((example2 * np.sum(per_example ** 2) + neuron2 * np.sum(per_neuron ** 2)) / B)
    grad = 2.0 * (example2 * per_example[:, None] + neuron2 * per_neuron[None, :]) / (steps * B)
    return value, grad


class AutoencoderRegularizer(Rule):
    name = "autoencoder_regularizer"
    description = ("Loss terms on spike counts (l1 |s/T|, l2 (s/T)^2) and mean membranes (b1 |U/T|, b2 (U/T)^2), "
                   "band terms that are zero inside a healthy rate/membrane band, and latent-population terms, per "
                   "layer, for any gradient rule (keeps autoencoder neurons from dying or bursting).")
    options = {
        "layers": (None, "population -> {lambda1, lambda2, beta1, beta2, membrane_ref, rate_*, membrane_*, example2, "
                         "neuron2}: each layer's coefficients "
                         "(missing ones from the defaults below); default: every population but train.output"),
        "lambda1": (0.0, "default weight of sum |s/T| (s: spike count, T: the run's chip steps)"),
        "lambda2": (0.0, "default weight of sum (s/T)^2"),
        "beta1": (0.0, "default weight of sum |U/T| (U/T: mean CADC-read membrane, model units above v_leak)"),
        "beta2": (0.0, "default weight of sum (U/T)^2"),
        "membrane_ref": (0.0, "default reference the mean membrane is measured from (model units above v_leak)"),
        "rate_weight": (0.0, "default weight of the rate band: sum over neurons of the squared distance of the "
                             "batch-mean s/T below rate_min or above rate_max (zero inside the band)"),
        "rate_min": (None, "default lower edge of the rate band (fraction of steps; null: none)"),
        "rate_max": (None, "default upper edge of the rate band (fraction of steps; null: none)"),
        "membrane_weight": (0.0, "default weight of the membrane band: squared distance of the batch-mean membrane "
                                 "below membrane_min or above membrane_max (model units above v_leak)"),
        "membrane_min": (None, "default lower edge of the membrane band (null: none)"),
        "membrane_max": (None, "default upper edge of the membrane band (null: none)"),
        "example2": (0.0, "default weight of the latent term sum_b (sum_n s/T)^2 / B (activity per sample)"),
        "neuron2": (0.0, "default weight of the latent term sum_n (sum_b s/T)^2 / B (activity per neuron)"),
    }

    @hookimpl
    def chipctl_configure(self, context):
        host, opts = context.host, context.options
        defaults = {key: _coefficient(key, opts.get(key, self.options[key][0]), f"option {key}")
                    for key in COEFFICIENTS}
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
                coef[key] = _coefficient(key, value, f"option layers.{pop}.{key}")
            for lo, hi in (("rate_min", "rate_max"), ("membrane_min", "membrane_max")):
                if coef[lo] is not None and coef[hi] is not None and coef[lo] > coef[hi]:
                    raise RuleError(f"option layers.{pop}: {lo} {coef[lo]} is above {hi} {coef[hi]}")
            self.layers[pop] = coef
        self.step_us = float(host.profile.step_us)

    def _membrane_layers(self) -> list[str]:
        return [p for p, c in self.layers.items()
                if c["beta1"] > 0 or c["beta2"] > 0 or _band_on(c, "membrane")]

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
            if _band_on(c, "rate"):
                value, grad = rate_band_terms(result.spikes[pop].counts(), steps, c["rate_weight"],
                                              c["rate_min"], c["rate_max"])
                terms.append(LossTerm(f"{self.name}.rate_band.{pop}", value, {("spike_counts", pop): grad}))
            if _band_on(c, "membrane"):
                trace = result.trace(pop)
                vl = np.asarray(context.host.read_params(pop, "v_leak"), dtype=np.float64)
                u = trace.values - vl[np.asarray(trace.neurons)]
                value, grad = membrane_band_terms(u, c["membrane_weight"], c["membrane_min"], c["membrane_max"])
                terms.append(LossTerm(f"{self.name}.membrane_band.{pop}", value, {("membrane", pop): grad}))
            if c["example2"] > 0 or c["neuron2"] > 0:
                value, grad = latent_terms(result.spikes[pop].counts(), steps, c["example2"], c["neuron2"])
                terms.append(LossTerm(f"{self.name}.latent.{pop}", value, {("spike_counts", pop): grad}))
        return terms


def _band_on(c: dict, kind: str) -> bool:
    return c[f"{kind}_weight"] > 0 and (c[f"{kind}_min"] is not None or c[f"{kind}_max"] is not None)


def _coefficient(key: str, value, where: str):
    if value is None and key in BOUNDS:
        return None
    if isinstance(value, bool):
        raise RuleError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleError(f"{where}: expected a number, got {value!r}") from None
    if not np.isfinite(number):
        raise RuleError(f"{where}: expected a finite number, got {value!r}")
    if key not in SIGNED and number < 0:
        raise RuleError(f"{where}: expected a number >= 0, got {value!r}")
    return number
