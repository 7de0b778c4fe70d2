"""The offline Yin-Yang generator (reference: lkriener/yin_yang_data_set) and the latency code."""

import numpy as np
import pytest

from rules.tasks.yinyang import SPLITS, latency_encode, which_class, yinyang


def test_shapes_and_dtypes():
    for split, (size, _) in SPLITS.items():
        x, y = yinyang(split)
        assert x.shape == (size, 4) and x.dtype == np.float64
        assert y.shape == (size,) and y.dtype == np.int64


def test_first_train_samples_are_stable():
    # regression values computed by this implementation (RandomState(42), one randint(3) per sample,
    # then x, y = rand(2) until accepted); guards against any change of the draw order
    x, y = yinyang("train")
    expected = np.array([
        [0.6803075385877797, 0.450499251969543, 0.3196924614122203, 0.549500748030457],
        [0.09767211400638387, 0.6842330265121569, 0.9023278859936161, 0.3157669734878431],
        [0.7553614103176525, 0.4251558744912447, 0.24463858968234753, 0.5748441255087553],
    ])
    np.testing.assert_array_equal(x[:3], expected)
    assert y[:3].tolist() == [2, 1, 2]


def test_deterministic_and_prefix():
    a = yinyang("validation")
    b = yinyang("validation")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # the generator is sequential: a shorter set with the same seed is a prefix
    xs, ys = yinyang("train", size=17)
    xf, yf = yinyang("train")
    np.testing.assert_array_equal(xs, xf[:17])
    np.testing.assert_array_equal(ys, yf[:17])
    # returned arrays are private copies
    xs[0, 0] = -1.0
    assert yinyang("train", size=17)[0][0, 0] != -1.0


def test_class_balance():
    for split in SPLITS:
        _, y = yinyang(split)
        frac = np.bincount(y, minlength=3) / len(y)
        assert np.all(np.abs(frac - 1 / 3) < 0.03), (split, frac)


def test_features_in_range_and_consistent():
    x, y = yinyang("train")
    assert np.all((x >= 0) & (x <= 1))
    np.testing.assert_allclose(x[:, 2], 1 - x[:, 0], rtol=0, atol=0)
    np.testing.assert_allclose(x[:, 3], 1 - x[:, 1], rtol=0, atol=0)
    # inside the big circle, and the label agrees with the class function
    assert np.all(np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5)
    assert all(which_class(a, b) == c for (a, b), c in zip(x[:500, :2], y[:500]))


def test_splits_differ():
    xt, _ = yinyang("train", size=1000)
    xv, _ = yinyang("validation")
    xe, _ = yinyang("test")
    assert not np.any(np.all(xt == xv, axis=1))
    assert not np.any(np.all(xv == xe, axis=1))
    assert not np.any(np.all(xt == xe, axis=1))
    # a custom seed gives another draw
    assert not np.array_equal(yinyang("test", seed=7)[0], xe)


def test_which_class_landmarks():
    assert which_class(0.25, 0.5) == 2   # left dot
    assert which_class(0.75, 0.5) == 2   # right dot
    # label = int(is_yin) as in the reference: the region holding the upper half is 1, the lower one 0
    assert which_class(0.5, 0.9) == 1
    assert which_class(0.5, 0.1) == 0
    assert which_class(0.25, 0.5 + 0.2) == 1  # ring around the left dot belongs to the upper region
    assert which_class(0.75, 0.5 + 0.2) == 0  # ring around the right dot belongs to the lower region


def test_bad_split():
    with pytest.raises(ValueError):
        yinyang("dev")


def test_latency_encode_layout():
    feats = np.array([[0.0, 0.25, 1.0, 0.5]])
    t = latency_encode(feats, t_early_us=2.0, t_late_us=10.0, duplicate=2, bias_time_us=1.5)
    assert t.shape == (1, 9)
    np.testing.assert_allclose(t[0], [2.0, 4.0, 10.0, 6.0, 2.0, 4.0, 10.0, 6.0, 1.5])
    t = latency_encode(feats, t_early_us=2.0, t_late_us=10.0)
    assert t.shape == (1, 4)
    x, _ = yinyang("test")
    t = latency_encode(x, t_early_us=0.5, t_late_us=30.0, duplicate=3, bias_time_us=0.0)
    assert t.shape == (1000, 13)
    assert t[:, :12].min() >= 0.5 and t[:, :12].max() <= 30.0
    assert np.all(t[:, 12] == 0.0)
