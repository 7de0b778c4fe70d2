"""Shared fixtures: small netlists built in Python, so emulator tests do not depend on YAML."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# fuzzing (tests/test_fuzz.py): the default suite runs few examples, the same ones every time, and
# writes no example database into the checkout; `pytest --hypothesis-profile=slow -m "slow or not
# slow" tests/test_fuzz.py` runs many fresh ones
settings.register_profile("default", max_examples=30, deadline=None, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("slow", max_examples=1000, deadline=None, database=None, print_blob=True)
settings.load_profile("default")

from chip.events import SpikeEvents
from chip.netlist import (PARAMS_BY_MODEL, AllToAll, ConstantWeights, LIFParams, MembraneRecord, Netlist,
                          NormalWeights, PoissonInput, Population, Projection, Record, SpikeInput)
from chip.profiles import get_profile


def single_neuron_netlist(times, weight, *, profile="ideal", model="LIF", params=None, duration_us=40.0,
                          record_period_us=0.1, sign="excitatory", **chip_overrides):
    """One neuron driven by one input channel with the given spike times (µs)."""
    chip = get_profile(profile).replace(**chip_overrides) if chip_overrides else get_profile(profile)
    params = params or PARAMS_BY_MODEL[model](tau_mem_us=10.0, tau_syn_exc_us=5.0, tau_syn_inh_us=5.0, tau_ref_us=2.0)
    if params.model != model:
        raise ValueError(f"params of model {params.model} for a {model} neuron")
    inp = SpikeInput("in", 1, spikes=SpikeEvents.from_lists([list(times)]))
    return Netlist(
        chip=chip, duration_us=duration_us,
        populations={"n": Population("n", 1, params)},
        inputs={"in": inp},
        projections={"p": Projection("p", "in", "n", AllToAll(), ConstantWeights(weight), sign)},
        record=Record(spikes=("n",), membrane=(MembraneRecord("n", (0,), "cadc", record_period_us),)),
    )


def layer_netlist(n_in=4, n_out=8, *, profile="bss2", duration_us=30.0, rate_hz=2e5, weight_mean=0.3,
                  weight_std=0.2, sign="signed", seed=1, **chip_overrides):
    """Poisson inputs onto a layer with random signed weights: a small busy network."""
    chip = get_profile(profile)
    if chip_overrides:
        chip = chip.replace(**chip_overrides)
    return Netlist(
        chip=chip, duration_us=duration_us,
        populations={"out": Population("out", n_out,
                                       LIFParams(tau_mem_us=10.0, tau_syn_exc_us=5.0, tau_syn_inh_us=5.0,
                                                 tau_ref_us=1.0, weight_full_scale=1.0))},
        inputs={"in": PoissonInput("in", n_in, rate_hz=rate_hz, seed=seed)},
        projections={"w": Projection("w", "in", "out", AllToAll(),
                                     NormalWeights(mean=weight_mean, std=weight_std, seed=seed), sign)},
        record=Record(spikes=("out",), membrane=(MembraneRecord("out", tuple(range(n_out)), "cadc", 1.7),)),
    )


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
