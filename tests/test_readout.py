"""The readout models (ADC and correlation-sensor quantization) on their own."""

from __future__ import annotations

import numpy as np

from chip.netlist import MembraneRecord
from chip.profiles import get_profile
from chip.readout import adc_trace, sensor_reading


def test_adc_reads_within_half_a_code_and_clips_to_the_voltage_range():
    profile = get_profile("bss2")
    rec = MembraneRecord("p", (0,), "cadc", 1.7)
    lsb = (profile.v_range_v[1] - profile.v_range_v[0]) / (2 ** profile.cadc_bits - 1) / (
        profile.v_model_one_v - profile.v_model_zero_v)
    values = np.linspace(-0.2, 1.2, 301).reshape(1, -1, 1)
    tr = adc_trace(profile, rec, np.arange(301.0), values)
    assert tr.codes.min() >= 0 and tr.codes.max() <= 2 ** profile.cadc_bits - 1
    inside = (tr.codes > 0) & (tr.codes < 2 ** profile.cadc_bits - 1)
    assert inside.sum() > 200
    assert np.max(np.abs(tr.values - values)[inside]) <= lsb / 2 + 1e-12
    # the same code reads back the same value
    again = adc_trace(profile, rec, np.arange(301.0), tr.values)
    np.testing.assert_array_equal(again.codes, tr.codes)


def test_unquantized_profiles_pass_values_through():
    profile = get_profile("ideal").replace(cadc_bits=None, correlation_bits=None)
    values = np.random.default_rng(1).normal(size=(2, 5, 3))
    tr = adc_trace(profile, MembraneRecord("p", (0, 1, 2), "cadc", 1.7), np.arange(5.0), values)
    assert tr.codes is None and tr.values is values
    c = sensor_reading(profile, values, 2 * values)
    assert c.causal_codes is None and c.causal is values


def test_sensor_reading_clips_to_full_scale():
    profile = get_profile("bss2")
    fs, top = profile.correlation_full_scale, 2 ** profile.correlation_bits - 1
    causal = np.array([0.0, fs / 2, 10 * fs])
    c = sensor_reading(profile, causal, -causal)
    np.testing.assert_array_equal(c.causal_codes, [0, round(top / 2), top])
    np.testing.assert_array_equal(c.acausal_codes, [0, 0, 0])
    np.testing.assert_allclose(c.causal[-1], fs)
