r"""The surrogate-gradient rule's host model: a discrete-time LIF/ALIF network and its exact
backward pass (BPTT), in numpy.

Model (per population, per neuron; u = V − v_leak, times in µs, grid t_k = k·dt)
------------------------------------------------------------------------------
The chip's neuron between events is linear, so one grid step is integrated exactly (no Euler):
with α_m = e^{−dt/τ_m}, α_s = e^{−dt/τ_s}, α_a = e^{−dt/τ_a} and
κ(h; τ, τ_m) = τ/(τ − τ_m)·(e^{−h/τ} − e^{−h/τ_m}) (the membrane's response to a unit current
that decays with τ, as in the EventProp model), step k−1 → k is::

    um_k  = α_m u_{k−1} + κ_s I_{k−1} − κ_a A_{k−1}          (κ_a: adaptation current only)
    I_k   = α_s I_{k−1} + x_k,      x_k = Σ_q W_qᵀ arr^q_k     (arrivals in (t_{k−1}, t_k])
    Ap_k  = α_a A_{k−1} + γ u_{k−1},  γ = coupling·dt/τ_a       (coupling: adaptation current only)
    ϑ_k   = θ + Ap_k  (adaptive threshold)   or   θ            (θ = v_threshold − v_leak)
    s_k   = H(um_k − ϑ_k)                                      (the spike; see below)
    ur_k  = um_k (1 − s_k) + r s_k   (hard reset to r = v_reset − v_leak)
          = um_k − ϑ_k s_k           (soft reset, Yin et al.: u ← u − θ)
    u_k   = (1 − h_k) ur_k + h_k r                             (h_k: held at reset, refractory)
    A_k   = Ap_k + inc·s_k

The adaptation variable A is, as the profile says, a threshold offset (``ideal``: Yin et al.'s
θ = b0 + β·b with b0 = v_threshold and β·b = A, i.e. inc = β/τ_adp) or a current that pulls the
membrane down (``bss2``'s AdEx adaptation: τ_a dA/dt = −A + a·u, A += inc per spike; the coupling
at step resolution, as in the emulator). A spike of a presynaptic population at step k arrives
``lag`` ≥ 1 steps later (its route's latency and the projection's delay, rounded up), so every step
depends only on earlier ones; network inputs are binned by their arrival times. A readout
population does not spike (s ≡ 0): a leaky integrator read through the ADC.

Backward
--------
:func:`backward` is reverse-mode differentiation of exactly these recurrences along a *tape*:
the states (u, um, I, A, ϑ), the spikes s, the holds h and the derivative ψ_k used for
ds_k/dum_k. Two ways to fill a tape:

* :func:`simulate` runs the model itself. With ``relax=ε`` the spike is the smooth
  s = sigmoid((um − ϑ)/ε) and ψ its exact derivative, so the gradient is the exact gradient of a
  smooth function (what the finite-difference tests check); without, s = H(um − ϑ) and ψ the
  surrogate.
* :func:`observed_tape` takes what the chip returned: spikes binned onto the grid, the ADC-read
  membrane interpolated onto it, holds from the spike times and the refractory time. The states
  are those observations where the chip shows them (u) and the model driven by the observed
  spikes where it does not (I, A, um). ψ is the surrogate derivative at the observed membrane
  (at a spike's bin: at ϑ, where the chip crossed; while held: 0, the neuron cannot spike).

Gradients are returned for every projection's W (n_pre, n_post) and every population's τ_m and
τ_a (per neuron). The factors' derivatives with respect to the time constants are taken by
complex step (exact to rounding, no cancellation near τ_s = τ_m).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Population", "Projection", "Network", "Tape", "kappa", "simulate", "observed_tape", "backward",
           "SURROGATES", "surrogate_derivative"]


def kappa(h, tau, tau_m):
    """Membrane response at h to a unit current decaying with tau (τ_m dV/dt = −V + I). Works with
    complex arguments (for complex-step derivatives); τ = τ_m is handled by its limit."""
    tau = np.asarray(tau)
    tau_m = np.asarray(tau_m)
    d = tau - tau_m
    near = np.abs(d) < 1e-9 * np.abs(tau_m)
    safe = np.where(near, 1.0, d)
    general = tau / safe * (np.exp(-h / tau) - np.exp(-h / tau_m))
    limit = (h / tau_m) * np.exp(-h / tau_m)
    return np.where(near, limit, general)


def _cstep(f, x, eps=1e-30):
    """d f / d x by complex step (f elementwise in x)."""
    return np.imag(f(np.asarray(x, dtype=np.float64) + 1j * eps)) / eps


@dataclass
class Population:
    """One population of the host model. Arrays are per neuron (n,); ``adapt`` is ``"none"``,
    ``"threshold"`` or ``"current"``; a ``readout`` population does not spike."""

    name: str
    n: int
    tau_mem: np.ndarray
    tau_syn: np.ndarray
    theta: np.ndarray           # v_threshold − v_leak
    reset: np.ndarray           # v_reset − v_leak (hard reset)
    tau_ref: np.ndarray
    soft_reset: bool = False
    adapt: str = "none"
    tau_adapt: np.ndarray | None = None
    inc: np.ndarray | None = None
    coupling: np.ndarray | None = None
    readout: bool = False

    def factors(self, dt: float) -> dict[str, np.ndarray]:
        """The step's factors and their derivatives by τ_m and τ_a."""
        tm, ts = self.tau_mem, self.tau_syn
        ta = self.tau_adapt if self.tau_adapt is not None else np.full(self.n, 1.0)
        cpl = self.coupling if (self.coupling is not None and self.adapt == "current") else np.zeros(self.n)
        f = {
            "am": np.exp(-dt / tm), "as": np.exp(-dt / ts), "ks": kappa(dt, ts, tm),
            "dam_dtm": np.exp(-dt / tm) * dt / tm ** 2,
            "dks_dtm": _cstep(lambda x: kappa(dt, ts, x), tm),
        }
        if self.adapt == "none":
            zero = np.zeros(self.n)
            f.update(aa=zero, ka=zero, g=zero, dka_dtm=zero, daa_dta=zero, dka_dta=zero, dg_dta=zero)
        else:
            current = self.adapt == "current"
            f.update(aa=np.exp(-dt / ta), daa_dta=np.exp(-dt / ta) * dt / ta ** 2,
                     ka=kappa(dt, ta, tm) if current else np.zeros(self.n),
                     dka_dtm=_cstep(lambda x: kappa(dt, ta, x), tm) if current else np.zeros(self.n),
                     dka_dta=_cstep(lambda x: kappa(dt, x, tm), ta) if current else np.zeros(self.n),
                     g=cpl * dt / ta, dg_dta=-cpl * dt / ta ** 2)
        return f


@dataclass
class Projection:
    """W (n_pre, n_post) from ``pre`` (a population or a network input) to ``post``; a spike of a
    presynaptic population at step k arrives at step k + ``lag`` (lag ≥ 1)."""

    name: str
    pre: str
    post: str
    w: np.ndarray
    lag: int = 1


@dataclass
class Network:
    dt: float
    populations: dict[str, Population]
    projections: list[Projection]
    inputs: dict[str, int] = field(default_factory=dict)   # network input name -> size

    def incoming(self, pop: str) -> list[Projection]:
        return [q for q in self.projections if q.post == pop]

    def outgoing(self, pop: str) -> list[Projection]:
        return [q for q in self.projections if q.pre == pop]


@dataclass
class Tape:
    """Forward values along a run, each (B, K+1, n) per population (index 0: the initial state):
    u, um, I, A, theta_eff, s, h, psi; ``arrivals``: projection (or network input) name ->
    (B, K+1, n_in) arrivals per step (index 0 unused)."""

    K: int
    u: dict
    um: dict
    I: dict
    A: dict
    theta_eff: dict
    s: dict
    h: dict
    psi: dict
    arrivals: dict


# ------------------------------------------------------------------------------- surrogates

def _gauss(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


def _fast_sigmoid(x, beta):
    """SuperSpike (Zenke & Ganguli 2018): 1 / (1 + β|x|)²."""
    return 1.0 / (1.0 + beta * np.abs(x)) ** 2


def _multi_gaussian(x, width, scale=6.0, height=0.15):
    """Yin, Corradi & Bohte 2021: (1 + h)·G(x; 0, σ) − h·G(x; sσ, sσ) − h·G(x; −sσ, sσ); σ =
    ``width`` (their lens 0.5 in threshold units), s = 6, h = 0.15."""
    return (1 + height) * _gauss(x, 0.0, width) - height * _gauss(x, scale * width, scale * width) \
        - height * _gauss(x, -scale * width, scale * width)


def _sigmoid_prime(x, width):
    z = 1.0 / (1.0 + np.exp(-x / width))
    return z * (1 - z) / width


SURROGATES = {
    "fast_sigmoid": _fast_sigmoid,
    "multi_gaussian": _multi_gaussian,
    "sigmoid": _sigmoid_prime,
}


def surrogate_derivative(shape: str, x, param: float):
    """ψ(x) of a named surrogate at x = V − ϑ (threshold units); ``param`` is fast_sigmoid's
    steepness β, multi_gaussian's width σ, sigmoid's width."""
    return SURROGATES[shape](x, param)


# ------------------------------------------------------------------------------- forward

def _order(net: Network) -> list[str]:
    return list(net.populations)


def _input_drive(net: Network, tape_s: dict, arrivals: dict, pop: str, k: int, B: int) -> np.ndarray:
    x = np.zeros((B, net.populations[pop].n))
    for q in net.incoming(pop):
        a = _arrival(q, tape_s, arrivals, k)
        if a is not None:
            x += a @ q.w
    return x


def _arrival(q: Projection, tape_s: dict, arrivals: dict, k: int):
    """What projection q delivers at step k: (B, n_pre), or None. Network inputs come from
    ``arrivals``, keyed by the projection's name (its own delays) or by the input's name."""
    if q.name in arrivals:
        return arrivals[q.name][:, k]
    if q.pre in arrivals:
        return arrivals[q.pre][:, k]
    j = k - q.lag
    if j < 1:
        return None
    return tape_s[q.pre][:, j]


def _empty_tape(net: Network, B: int, K: int, arrivals: dict) -> Tape:
    def z(p):
        return np.zeros((B, K + 1, p.n))

    pops = net.populations.values()
    return Tape(K=K, u={p.name: z(p) for p in pops}, um={p.name: z(p) for p in pops}, I={p.name: z(p) for p in pops},
                A={p.name: z(p) for p in pops}, theta_eff={p.name: z(p) for p in pops},
                s={p.name: z(p) for p in pops}, h={p.name: z(p) for p in pops}, psi={p.name: z(p) for p in pops},
                arrivals=arrivals)


def simulate(net: Network, arrivals: dict, K: int, *, relax: float | None = None,
             surrogate: tuple[str, float] = ("fast_sigmoid", 10.0), holds: dict | None = None) -> Tape:
    """Run the host model over K steps from rest. ``arrivals``: projection or network input name
    -> (B, K+1, n_in).
    ``relax=ε``: smooth spikes s = sigmoid((um − ϑ)/ε) with ψ their exact derivative; else
    Heaviside spikes with the surrogate's ψ. ``holds``: optional fixed hold masks per population."""
    B = next(iter(arrivals.values())).shape[0]
    tape = _empty_tape(net, B, K, arrivals)
    facs = {name: p.factors(net.dt) for name, p in net.populations.items()}
    for k in range(1, K + 1):
        for name in _order(net):
            p, f = net.populations[name], facs[name]
            u0, I0, A0 = tape.u[name][:, k - 1], tape.I[name][:, k - 1], tape.A[name][:, k - 1]
            um = f["am"] * u0 + f["ks"] * I0 - f["ka"] * A0
            x = _input_drive(net, tape.s, arrivals, name, k, B)
            I1 = f["as"] * I0 + x
            Ap = f["aa"] * A0 + f["g"] * u0
            th = p.theta + (Ap if p.adapt == "threshold" else 0.0)
            if p.readout:
                s = np.zeros_like(um)
                psi = np.zeros_like(um)
            elif relax is not None:
                z = (um - th) / relax
                s = 1.0 / (1.0 + np.exp(-z))
                psi = s * (1 - s) / relax
            else:
                s = (um >= th).astype(float)
                psi = surrogate_derivative(surrogate[0], um - th, surrogate[1])
            ur = um - th * s if p.soft_reset else um * (1 - s) + p.reset * s
            h = holds[name][:, k] if holds is not None else 0.0
            u1 = (1 - h) * ur + h * p.reset
            tape.um[name][:, k], tape.I[name][:, k], tape.theta_eff[name][:, k] = um, I1, th
            tape.s[name][:, k], tape.psi[name][:, k], tape.u[name][:, k] = s, psi, u1
            tape.h[name][:, k] = h
            tape.A[name][:, k] = Ap + (p.inc * s if p.inc is not None and p.adapt != "none" else 0.0)
    return tape


def observed_tape(net: Network, arrivals: dict, K: int, spikes: dict, membrane: dict, holds: dict,
                  surrogate: tuple[str, float]) -> Tape:
    """A tape from the chip's observations: ``spikes`` population -> (B, K+1, n) spikes per step,
    ``membrane`` population -> (B, K+1, n) membrane u on the grid (observed), ``holds`` population
    -> (B, K+1, n) 1 where the neuron is held at reset. The currents and adaptation follow the
    model driven by the observed spikes; ψ is the surrogate at the observed membrane (ϑ at a
    spike, 0 while held)."""
    B = next(iter(arrivals.values())).shape[0] if arrivals else next(iter(spikes.values())).shape[0]
    tape = _empty_tape(net, B, K, arrivals)
    facs = {name: p.factors(net.dt) for name, p in net.populations.items()}
    for name, p in net.populations.items():
        tape.s[name][...] = spikes[name]
        tape.u[name][...] = membrane[name]
        tape.h[name][...] = holds[name]
    for k in range(1, K + 1):
        for name in _order(net):
            p, f = net.populations[name], facs[name]
            u0, I0, A0 = tape.u[name][:, k - 1], tape.I[name][:, k - 1], tape.A[name][:, k - 1]
            tape.um[name][:, k] = f["am"] * u0 + f["ks"] * I0 - f["ka"] * A0
            tape.I[name][:, k] = f["as"] * I0 + _input_drive(net, tape.s, arrivals, name, k, B)
            Ap = f["aa"] * A0 + f["g"] * u0
            th = p.theta + (Ap if p.adapt == "threshold" else 0.0)
            tape.theta_eff[name][:, k] = th
            s = tape.s[name][:, k]
            tape.A[name][:, k] = Ap + (p.inc * s if p.inc is not None and p.adapt != "none" else 0.0)
            if p.readout:
                continue
            v = np.where(s > 0, th, tape.u[name][:, k])
            psi = surrogate_derivative(surrogate[0], v - th, surrogate[1])
            held = (tape.h[name][:, k] > 0) & (s == 0)
            tape.psi[name][:, k] = np.where(held, 0.0, psi)
    return tape


# ------------------------------------------------------------------------------- backward

def backward(net: Network, tape: Tape, dl_du: dict | None = None, dl_ds: dict | None = None,
             detach_reset: bool = False) -> tuple[dict, dict]:
    """Reverse-mode gradients along ``tape``. ``dl_du`` / ``dl_ds``: population -> (B, K+1, n),
    d loss / d u_k and d loss / d s_k (direct terms). Returns (weights: projection name -> dW
    (n_pre, n_post), params: (population, "tau_mem_us" | "tau_adapt_us") -> (n,)). Sums over the
    batch (the direct terms carry any 1/B). ``detach_reset``: no gradient through the reset's
    dependence on s (a common choice; off for the exact gradient)."""
    dl_du = dl_du or {}
    dl_ds = dl_ds or {}
    K = tape.K
    pops = net.populations
    facs = {name: p.factors(net.dt) for name, p in pops.items()}
    B = next(iter(tape.u.values())).shape[0]
    gI_hist = {name: np.zeros((B, K + 2, p.n)) for name, p in pops.items()}
    carry_u = {name: np.zeros((B, p.n)) for name, p in pops.items()}
    carry_I = {name: np.zeros((B, p.n)) for name, p in pops.items()}
    carry_A = {name: np.zeros((B, p.n)) for name, p in pops.items()}
    acc = {name: {key: np.zeros(p.n) for key in ("am", "ks", "ka", "aa", "g")} for name, p in pops.items()}
    dW = {q.name: np.zeros_like(q.w) for q in net.projections}
    for k in range(K, 0, -1):
        # the currents at k are final: nothing after step k+1 uses them
        for name in pops:
            gI_hist[name][:, k] = carry_I[name]
        for name, p in pops.items():
            f = facs[name]
            gu = carry_u[name] + (dl_du[name][:, k] if name in dl_du else 0.0)
            gI = gI_hist[name][:, k]
            gA = carry_A[name]
            gs = dl_ds[name][:, k].copy() if name in dl_ds else np.zeros((B, p.n))
            for q in net.outgoing(name):
                if k + q.lag <= K:
                    gs += gI_hist[q.post][:, k + q.lag] @ q.w.T
            s, h, um, th = tape.s[name][:, k], tape.h[name][:, k], tape.um[name][:, k], tape.theta_eff[name][:, k]
            gAp = gA.copy()
            if p.adapt != "none" and p.inc is not None:
                gs += p.inc * gA
            gur = (1 - h) * gu
            gth = np.zeros_like(gu)
            if p.readout:
                gum = gur
            elif p.soft_reset:
                gum = gur
                if not detach_reset:
                    gs -= th * gur
                gth -= s * gur
            else:
                gum = gur * (1 - s)
                if not detach_reset:
                    gs += gur * (p.reset - um)
            if not p.readout:
                psi = tape.psi[name][:, k]
                gum = gum + gs * psi
                gth = gth - gs * psi
            if p.adapt == "threshold":
                gAp += gth
            u0, I0, A0 = tape.u[name][:, k - 1], tape.I[name][:, k - 1], tape.A[name][:, k - 1]
            a = acc[name]
            a["am"] += np.einsum("bn,bn->n", gum, u0)
            a["ks"] += np.einsum("bn,bn->n", gum, I0)
            a["ka"] -= np.einsum("bn,bn->n", gum, A0)
            a["aa"] += np.einsum("bn,bn->n", gAp, A0)
            a["g"] += np.einsum("bn,bn->n", gAp, u0)
            carry_u[name] = f["am"] * gum + f["g"] * gAp
            carry_I[name] = f["as"] * gI + f["ks"] * gum
            carry_A[name] = f["aa"] * gAp - f["ka"] * gum
            for q in net.incoming(name):
                arr = _arrival(q, tape.s, tape.arrivals, k)
                if arr is not None:
                    dW[q.name] += arr.T @ gI
    params = {}
    for name, p in pops.items():
        f, a = facs[name], acc[name]
        params[(name, "tau_mem_us")] = a["am"] * f["dam_dtm"] + a["ks"] * f["dks_dtm"] + a["ka"] * f["dka_dtm"]
        if p.adapt != "none":
            params[(name, "tau_adapt_us")] = a["aa"] * f["daa_dta"] + a["ka"] * f["dka_dta"] + a["g"] * f["dg_dta"]
    return dW, params
