"""Units and conventions between NIR's ``CubaLIF`` and the chip's LIF neuron, in one place.

The two models (NIR's node docstring, and ``chip.netlist.model``)::

    NIR CubaLIF:  tau_syn dI/dt = -I + w_in * S          tau_mem dv/dt = (v_leak - v) + r * I
                  S = the node's input: the Affine/Linear output W @ (presynaptic spikes)
    chip LIF:     tau_syn dI/dt = -I  (an event adds w)   tau_mem dV/dt = -(V - v_leak) + I

Time: NIR's time constants and delays are in seconds. The chip's are in µs of hardware time.
``time_scale`` is how many times slower the NIR model's clock runs than the chip's: a NIR value of
``t`` seconds is ``t * 1e6 / time_scale`` µs on the chip (``time_scale`` 1000: a model written in
biological time, 10 ms, runs as 10 µs, the BSS-2 speed-up). Export writes ``us * 1e-6 *
time_scale`` seconds.

Spikes. What one spike of the presynaptic side adds to I depends on what a spike *is*:

* ``dirac`` — NIR's definition: S is a sum of Dirac deltas of unit area, so one spike through a
  weight w adds ``w_in * w / tau_syn`` to I, and the membrane sees ``r * I``. chipctl writes
  ``w_in = tau_syn`` and ``r = 1``, so that a NIR weight *is* the chip weight.
* ``step`` — discrete-time exporters (snnTorch, SpikingJelly) write ``w_in = tau_syn / dt`` and
  ``r = tau_mem / dt``: their spike is a 1 held for one time step dt, of area dt. One spike adds
  ``w_in * w * dt / tau_syn`` (= w) to I. Recognized when ``w_in / tau_syn`` and ``r / tau_mem``
  are one and the same number 1/dt for every neuron of the graph, dt is shorter than every time
  constant, and ``w_in`` and ``r`` are not all 1.

* ``jump`` — not NIR's definition, but what Norse's ``LIFCell`` does (its synaptic current jumps
  by the input, ``i + w``) while its exporter writes ``w_in = 1``, ``r = 1``: one spike adds
  ``w_in * w`` to I. Never assumed on its own (a file with ``w_in = 1`` reads as ``dirac``, by the
  definition); the import report points at it for such files, ``spikes="jump"`` selects it.

The chip weight (model units added to the chip's I, per spike) is::

    w_chip[pre, post] = r[post] * w_in[post] * area * W[post, pre] / tau_syn[post]   (dirac, step)
    w_chip[pre, post] = r[post] * w_in[post] * W[post, pre]                          (jump)

with area 1 (dirac) or dt (step), all times in the same unit, so the time scale does not enter.
"""

from __future__ import annotations

import numpy as np

from ..errors import ChipctlError

__all__ = ["SPIKE_CONVENTIONS", "US_PER_SECOND", "require_nir", "to_chip_us", "to_nir_seconds",
           "detect_convention", "weight_factor"]

#: what a spike is: NIR's unit-area Dirac, a discrete exporter's one-step pulse of area dt, or a
#: jump of the current by the weight (Norse's LIFCell)
SPIKE_CONVENTIONS = ("dirac", "step", "jump")
US_PER_SECOND = 1e6

_EXTRA_HINT = "install the NIR extra: pip install 'chipctl[nir]'"


def require_nir():
    """The ``nir`` module, or one line saying how to get it."""
    try:
        import h5py  # noqa: F401  (nir reads and writes HDF5 through it)
        import nir
    except ImportError as exc:
        raise ChipctlError(f"NIR support needs the packages nir and h5py ({exc.name} is missing); "
                           f"{_EXTRA_HINT}") from None
    return nir


def to_chip_us(seconds, time_scale: float) -> np.ndarray:
    """NIR time (seconds of the model's clock) -> chip time in µs."""
    return np.asarray(seconds, dtype=np.float64) * US_PER_SECOND / time_scale


def to_nir_seconds(us, time_scale: float) -> np.ndarray:
    """Chip time in µs -> NIR time in seconds of the model's clock."""
    return np.asarray(us, dtype=np.float64) / US_PER_SECOND * time_scale


def detect_convention(neurons: dict) -> tuple[str, float | None, str]:
    """Which spike convention a graph's CubaLIF nodes were written in: ("step", dt, why) when
    ``w_in / tau_syn == r / tau_mem`` is one number 1/dt over every neuron of every node, with dt
    shorter than every time constant (a discrete exporter's tau = dt / (1 - decay) > dt) and not
    all of ``w_in`` and ``r`` 1 (a continuous graph with tau_syn = tau_mem would match); else
    ("dirac", None, why)."""
    ratios, taus, ones = [], [], True
    for node in neurons.values():
        tau_syn = np.asarray(node.tau_syn, dtype=np.float64).ravel()
        tau_mem = np.asarray(node.tau_mem, dtype=np.float64).ravel()
        w_in = np.asarray(node.w_in, dtype=np.float64).ravel()
        r = np.asarray(node.r, dtype=np.float64).ravel()
        ratios += [w_in / tau_syn, r / tau_mem]
        taus += [tau_syn, tau_mem]
        ones = ones and bool(np.all(w_in == 1) and np.all(r == 1))
    if ratios and not ones:
        k = np.concatenate(ratios)
        if np.all(np.isfinite(k)) and k.size and k[0] > 0 and np.allclose(k, k[0], rtol=1e-6, atol=0):
            dt = 1.0 / float(k[0])
            if dt < float(np.concatenate(taus).min()) * (1 - 1e-9):
                return "step", dt, (f"w_in = tau_syn/dt and r = tau_mem/dt with dt = {dt:g} s (discrete-time "
                                    f"exporters such as snnTorch): a spike has area dt")
    return "dirac", None, "NIR's unit-area spikes, one adds w_in * w / tau_syn to the current"


def weight_factor(node, convention: str, dt: float | None) -> np.ndarray:
    """Per postsynaptic neuron, the factor from a NIR weight to a chip weight (see the module)."""
    if convention == "jump":
        return (np.asarray(node.r, dtype=np.float64) * np.asarray(node.w_in, dtype=np.float64)).ravel()
    area = 1.0 if convention == "dirac" else float(dt)
    return (np.asarray(node.r, dtype=np.float64) * np.asarray(node.w_in, dtype=np.float64) * area
            / np.asarray(node.tau_syn, dtype=np.float64)).ravel()
