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
           "observed_tape_stepwise", "backward_stepwise", "SURROGATES", "surrogate_derivative"]


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


def observed_tape_stepwise(net: Network, arrivals: dict, K: int, spikes: dict, membrane: dict, holds: dict,
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

def backward_stepwise(net: Network, tape: Tape, dl_du: dict | None = None, dl_ds: dict | None = None,
                      detach_reset: bool = False) -> tuple[dict, dict]:
    """The reference: :func:`backward` one step of the whole network at a time (any graph of
    populations, cycles between populations too). Reverse-mode gradients along ``tape``. ``dl_du`` / ``dl_ds``: population -> (B, K+1, n),
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


# ------------------------------------------------------------------------------- vectorized forms
# The same tape and the same gradients as the step-by-step functions above, with everything that
# is not a recurrence over time done for all steps at once: a population's input drive, its
# membrane prediction and surrogate, the gradients that reach it from the populations it feeds,
# the weight and time-constant gradients. Only the recurrences stay in a loop over steps, with
# elementwise work (and one matrix product per step for a recurrent projection onto itself).


def _shifted(x: np.ndarray, lag: int) -> np.ndarray:
    """y[:, k] = x[:, k − lag] (0 where k − lag < 1): spikes of step k − lag arrive at step k."""
    y = np.zeros_like(x)
    if lag < x.shape[1] - 1:
        y[:, lag + 1:] = x[:, 1:x.shape[1] - lag]
    return y


def _delivered(net: Network, q: Projection, spikes: dict, arrivals: dict) -> np.ndarray:
    """What projection q delivers at every step: (B, K+1, n_pre)."""
    if q.name in arrivals:
        return arrivals[q.name]
    if q.pre in arrivals:
        return arrivals[q.pre]
    return _shifted(spikes[q.pre], q.lag)


def observed_tape(net: Network, arrivals: dict, K: int, spikes: dict, membrane: dict, holds: dict,
                  surrogate: tuple[str, float]) -> Tape:
    """A tape from the chip's observations (see :func:`observed_tape_stepwise`, the same values)."""
    B = next(iter(arrivals.values())).shape[0] if arrivals else next(iter(spikes.values())).shape[0]
    tape = _empty_tape(net, B, K, arrivals)
    for name, p in net.populations.items():
        f = p.factors(net.dt)
        s, u = spikes[name], membrane[name]
        tape.s[name][...] = s
        tape.u[name][...] = u
        tape.h[name][...] = holds[name]
        x = np.zeros((B, K + 1, p.n))
        for q in net.incoming(name):
            x += _delivered(net, q, spikes, arrivals) @ q.w
        I, A, Ap = tape.I[name], tape.A[name], np.zeros((B, K + 1, p.n))
        adapting = p.adapt != "none"
        inc = p.inc if (adapting and p.inc is not None) else 0.0
        for k in range(1, K + 1):
            I[:, k] = f["as"] * I[:, k - 1] + x[:, k]
            if adapting:
                Ap[:, k] = f["aa"] * A[:, k - 1] + f["g"] * u[:, k - 1]
                A[:, k] = Ap[:, k] + inc * s[:, k]
        tape.um[name][:, 1:] = f["am"] * u[:, :-1] + f["ks"] * I[:, :-1] - f["ka"] * A[:, :-1]
        th = p.theta + (Ap if p.adapt == "threshold" else 0.0)
        tape.theta_eff[name][:, 1:] = np.broadcast_to(th, tape.theta_eff[name].shape)[:, 1:]
        if p.readout:
            continue
        th = tape.theta_eff[name][:, 1:]
        v = np.where(s[:, 1:] > 0, th, u[:, 1:])
        psi = surrogate_derivative(surrogate[0], v - th, surrogate[1])
        held = (holds[name][:, 1:] > 0) & (s[:, 1:] == 0)
        tape.psi[name][:, 1:] = np.where(held, 0.0, psi)
    return tape


def _reverse_topological(net: Network) -> list[str] | None:
    """Populations so that each comes after every population it feeds (self-projections aside), or
    None when projections between populations form a cycle."""
    order, state = [], {}

    def visit(name):
        if state.get(name) == 1:
            return False
        if state.get(name) == 2:
            return True
        state[name] = 1
        for q in net.outgoing(name):
            if q.post != name and q.post in net.populations and not visit(q.post):
                return False
        state[name] = 2
        order.append(name)
        return True

    for name in net.populations:
        if not visit(name):
            return None
    return order


def backward(net: Network, tape: Tape, dl_du: dict | None = None, dl_ds: dict | None = None,
             detach_reset: bool = False) -> tuple[dict, dict]:
    """Reverse-mode gradients along ``tape``. ``dl_du`` / ``dl_ds``: population -> (B, K+1, n),
    d loss / d u_k and d loss / d s_k (direct terms). Returns (weights: projection name -> dW
    (n_pre, n_post), params: (population, "tau_mem_us" | "tau_adapt_us") -> (n,)). Sums over the
    batch (the direct terms carry any 1/B). ``detach_reset``: no gradient through the reset's
    dependence on s (a common choice; off for the exact gradient).

    Populations are taken one at a time, from the readout back (a population's gradient needs
    those of the populations it feeds over all steps); with a cycle between populations the
    step-by-step :func:`backward_stepwise` does it (the same result)."""
    order = _reverse_topological(net)
    if order is None:
        return backward_stepwise(net, tape, dl_du, dl_ds, detach_reset)
    dl_du = dl_du or {}
    dl_ds = dl_ds or {}
    K = tape.K
    B = next(iter(tape.u.values())).shape[0]
    gI_all: dict[str, np.ndarray] = {}
    dW = {q.name: np.zeros_like(q.w) for q in net.projections}
    params = {}
    for name in order:
        p = net.populations[name]
        f = p.factors(net.dt)
        s, h, um, th = tape.s[name], tape.h[name], tape.um[name], tape.theta_eff[name]
        psi = tape.psi[name]
        # what reaches this population's spikes from the populations it feeds, all steps at once
        gs_all = np.zeros((B, K + 1, p.n))
        if name in dl_ds:
            gs_all += dl_ds[name]
        recurrent = []
        for q in net.outgoing(name):
            if q.post == name:
                recurrent.append(q)
            elif q.post in gI_all and q.lag <= K:
                gs_all[:, 1:K + 1 - q.lag] += gI_all[q.post][:, 1 + q.lag:] @ q.w.T
        du_direct = dl_du.get(name)
        gI = np.zeros((B, K + 2, p.n))
        gum_all = np.zeros((B, K + 1, p.n))
        gAp_all = np.zeros((B, K + 1, p.n))
        cu = np.zeros((B, p.n))
        cI = np.zeros((B, p.n))
        cA = np.zeros((B, p.n))
        adapting = p.adapt != "none"
        inc = p.inc if (adapting and p.inc is not None) else 0.0
        for k in range(K, 0, -1):
            gI[:, k] = cI
            gu = cu + du_direct[:, k] if du_direct is not None else cu
            gs = gs_all[:, k]
            for q in recurrent:
                if k + q.lag <= K:
                    gs = gs + gI[:, k + q.lag] @ q.w.T
            gAp = cA
            if adapting:
                gs = gs + inc * cA
            gur = (1 - h[:, k]) * gu
            if p.readout:
                gum = gur
                gth = 0.0
            elif p.soft_reset:
                gum = gur
                if not detach_reset:
                    gs = gs - th[:, k] * gur
                gth = -s[:, k] * gur
            else:
                gum = gur * (1 - s[:, k])
                if not detach_reset:
                    gs = gs + gur * (p.reset - um[:, k])
                gth = 0.0
            if not p.readout:
                gum = gum + gs * psi[:, k]
                gth = gth - gs * psi[:, k]
            if p.adapt == "threshold":
                gAp = gAp + gth
            gum_all[:, k], gAp_all[:, k] = gum, gAp
            cu = f["am"] * gum + f["g"] * gAp
            cI = f["as"] * gI[:, k] + f["ks"] * gum
            cA = f["aa"] * gAp - f["ka"] * gum
        gI_all[name] = gI[:, :K + 1]
        u0, I0, A0 = tape.u[name][:, :-1], tape.I[name][:, :-1], tape.A[name][:, :-1]
        gm, ga = gum_all[:, 1:], gAp_all[:, 1:]

        def acc(a, b):
            return np.einsum("bkn,bkn->n", a, b)

        params[(name, "tau_mem_us")] = acc(gm, u0) * f["dam_dtm"] + acc(gm, I0) * f["dks_dtm"] \
            - acc(gm, A0) * f["dka_dtm"]
        if adapting:
            params[(name, "tau_adapt_us")] = acc(ga, A0) * f["daa_dta"] - acc(gm, A0) * f["dka_dta"] \
                + acc(ga, u0) * f["dg_dta"]
        for q in net.incoming(name):
            delivered = _delivered(net, q, tape.s, tape.arrivals)
            dW[q.name] += delivered[:, 1:].reshape(-1, delivered.shape[2]).T @ gI_all[name][:, 1:].reshape(-1, p.n)
    return dW, params
