"""Label noise: exact counts, exact class maps, seeding, validation, statistics."""

import numpy as np
import pytest

from keras_robust import noise
from keras_robust.noise import (
    CIFAR10_ASYMMETRIC_MAP,
    asymmetric_noise,
    empirical_transition_matrix,
    symmetric_noise,
    symmetric_transition_matrix,
    transition_noise,
)


def _labels(n, k, seed=0):
    return np.random.default_rng(seed).integers(0, k, size=n)


# ----------------------------------------------------------------------------
# Symmetric noise
# ----------------------------------------------------------------------------

# (N, rate, expected number selected): hand-computed, rounded half up.
COUNT_CASES = [
    (1000, 0.4, 400),
    (1000, 0.0, 0),
    (1000, 1.0, 1000),
    (10, 0.25, 3),  # 2.5 -> 3
    (7, 0.5, 4),  # 3.5 -> 4
    (3, 0.1, 0),  # 0.3 -> 0
    (50000, 0.2, 10000),
    (123, 0.6, 74),  # 73.8 -> 74
]


@pytest.mark.parametrize("n, rate, expected", COUNT_CASES)
@pytest.mark.parametrize("exclude_true", [False, True])
def test_symmetric_selects_exact_count(n, rate, expected, exclude_true):
    y = _labels(n, 10)
    noisy, mask, selected = symmetric_noise(
        y, rate, 10, seed=3, exclude_true=exclude_true, return_selected=True
    )
    assert selected.dtype == bool and selected.shape == (n,)
    assert selected.sum() == expected
    np.testing.assert_array_equal(mask, noisy != y)
    assert not np.any(mask & ~selected), "a label changed outside the selected set"
    np.testing.assert_array_equal(noisy[~selected], y[~selected])
    if exclude_true:
        np.testing.assert_array_equal(mask, selected)
        assert mask.sum() == expected


def test_symmetric_exclude_true_never_keeps_true_label():
    y = _labels(20000, 3)
    noisy, mask, selected = symmetric_noise(y, 1.0, 3, seed=1, exclude_true=True, return_selected=True)
    assert selected.all() and mask.all()
    assert np.all(noisy != y)


def test_symmetric_exclude_true_is_uniform_over_other_classes():
    k, n = 5, 50000
    y = _labels(n, k)
    noisy, _ = symmetric_noise(y, 1.0, k, seed=2, exclude_true=True)
    t = empirical_transition_matrix(y, noisy, k)
    expected = (np.ones((k, k)) - np.eye(k)) / (k - 1)
    # Each row holds ~10000 draws: sigma of a frequency 0.25 is ~0.0043.
    np.testing.assert_allclose(t, expected, atol=0.02)


def test_symmetric_may_draw_true_class_with_probability_one_over_k():
    k, n = 10, 100000
    y = _labels(n, k)
    noisy, mask, selected = symmetric_noise(y, 1.0, k, seed=4, return_selected=True)
    assert selected.all()
    kept = np.sum(~mask)
    # Binomial(n, 1/K): mean 10000, sigma 95; allow 5 sigma.
    assert abs(kept - n / k) < 5 * np.sqrt(n * (1 / k) * (1 - 1 / k))
    # New labels are uniform over all K classes whatever the true class.
    counts = np.bincount(noisy, minlength=k)
    assert np.all(np.abs(counts - n / k) < 5 * np.sqrt(n / k))


def test_symmetric_frequencies_match_its_transition_matrix():
    k, n, rate = 4, 80000, 0.6
    y = _labels(n, k)
    for exclude_true in (False, True):
        noisy, _ = symmetric_noise(y, rate, k, seed=5, exclude_true=exclude_true)
        t_hat = empirical_transition_matrix(y, noisy, k)
        t = symmetric_transition_matrix(k, rate, exclude_true=exclude_true)
        np.testing.assert_allclose(t_hat, t, atol=0.015)


def test_symmetric_transition_matrix_values():
    # Hand values: K=4, rate 0.4.
    t = symmetric_transition_matrix(4, 0.4)
    np.testing.assert_allclose(np.diag(t), 0.6 + 0.1)
    np.testing.assert_allclose(t[0, 1:], 0.1)
    t = symmetric_transition_matrix(4, 0.4, exclude_true=True)
    np.testing.assert_allclose(np.diag(t), 0.6)
    np.testing.assert_allclose(t[0, 1:], 0.4 / 3)
    np.testing.assert_allclose(t.sum(axis=1), 1.0)


def test_symmetric_same_seed_same_noise_different_seed_differs():
    y = _labels(5000, 10)
    a = symmetric_noise(y, 0.3, 10, seed=7)
    b = symmetric_noise(y, 0.3, 10, seed=7)
    c = symmetric_noise(y, 0.3, 10, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[0], c[0])


def test_seed_accepts_generator_and_does_not_touch_input():
    y = _labels(1000, 10)
    y_copy = y.copy()
    a = symmetric_noise(y, 0.5, 10, seed=np.random.default_rng(11))
    b = symmetric_noise(y, 0.5, 10, seed=11)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(y, y_copy)


def test_column_labels_keep_shape_and_dtype():
    y = _labels(300, 10).astype("uint8").reshape(-1, 1)  # as keras.datasets.cifar10 returns
    noisy, mask = symmetric_noise(y, 0.5, 10, seed=0)
    assert noisy.shape == (300, 1) and noisy.dtype == np.uint8
    assert mask.shape == (300,)
    np.testing.assert_array_equal(mask, noisy[:, 0] != y[:, 0])
    noisy, mask = asymmetric_noise(y, 0.5, seed=0)
    assert noisy.shape == (300, 1) and noisy.dtype == np.uint8


def test_narrow_dtype_is_widened_rather_than_wrapped():
    y = np.zeros(2000, dtype=np.uint8)
    noisy, mask = symmetric_noise(y, 1.0, 1000, seed=0, exclude_true=True)
    assert noisy.max() > 255 and noisy.min() >= 1
    assert mask.all()


def test_empty_labels():
    noisy, mask = symmetric_noise(np.array([], dtype=int), 0.5, 3, seed=0)
    assert noisy.size == 0 and mask.size == 0


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(labels=np.array([0.0, 1.0])), TypeError, "labels.*dtype float64"),
        (dict(labels=np.array([True, False])), TypeError, "labels"),
        (dict(labels=np.eye(3, dtype=int)), ValueError, r"labels.*shape \(3, 3\)"),
        (dict(labels=np.array([0, -1])), ValueError, "labels.*-1"),
        (dict(labels=np.array([0, 10])), ValueError, r"num_classes=10.*10"),
        (dict(labels="012"), TypeError, "labels"),
        (dict(rate=-0.1), ValueError, r"rate.*-0\.1"),
        (dict(rate=1.5), ValueError, r"rate.*1\.5"),
        (dict(rate=float("nan")), ValueError, "rate.*nan"),
        (dict(rate="0.5"), TypeError, "rate"),
        (dict(rate=True), TypeError, "rate"),
        (dict(num_classes=1), ValueError, "num_classes.*1"),
        (dict(num_classes=2.5), TypeError, r"num_classes.*2\.5"),
        (dict(seed=-1), ValueError, "seed.*-1"),
        (dict(seed="a"), TypeError, "seed"),
        (dict(seed=1.5), TypeError, "seed"),
    ],
)
def test_symmetric_rejects_bad_input(kwargs, exc, match):
    args = dict(labels=np.array([0, 1, 2]), rate=0.5, num_classes=10, seed=0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        symmetric_noise(args.pop("labels"), args.pop("rate"), args.pop("num_classes"), **args)


# ----------------------------------------------------------------------------
# Asymmetric (class-map) noise
# ----------------------------------------------------------------------------


def test_cifar10_map_is_the_usual_one():
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    as_names = {names[s]: names[t] for s, t in CIFAR10_ASYMMETRIC_MAP.items()}
    assert as_names == {
        "truck": "automobile",
        "bird": "airplane",
        "cat": "dog",
        "dog": "cat",
        "deer": "horse",
    }


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.35, 0.4, 1.0])
def test_asymmetric_counts_and_targets_exact(rate):
    sizes = np.array([10 * c + 7 for c in range(10)])  # unequal class sizes
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(10), sizes))
    noisy, mask, selected = asymmetric_noise(y, rate, seed=1, return_selected=True)
    np.testing.assert_array_equal(mask, noisy != y)
    np.testing.assert_array_equal(mask, selected)
    expected_flips = {s: int(np.floor(rate * sizes[s] + 0.5)) for s in CIFAR10_ASYMMETRIC_MAP}
    for c in range(10):
        flipped = mask & (y == c)
        if c in CIFAR10_ASYMMETRIC_MAP:
            assert flipped.sum() == expected_flips[c]
            assert np.all(noisy[flipped] == CIFAR10_ASYMMETRIC_MAP[c])
        else:
            assert flipped.sum() == 0
    # Class totals after the flips, written out by hand for this map.
    f = expected_flips
    totals = sizes.copy()
    totals[1] += f[9]
    totals[9] -= f[9]
    totals[0] += f[2]
    totals[2] -= f[2]
    totals[5] += f[3] - f[5]
    totals[3] += f[5] - f[3]
    totals[7] += f[4]
    totals[4] -= f[4]
    np.testing.assert_array_equal(np.bincount(noisy, minlength=10), totals)


def test_asymmetric_swap_moves_each_class_once():
    y = np.array([3] * 10 + [5] * 10)
    noisy, mask = asymmetric_noise(y, 1.0, {3: 5, 5: 3}, seed=0)
    np.testing.assert_array_equal(noisy, np.array([5] * 10 + [3] * 10))
    assert mask.all()


def test_asymmetric_custom_map_and_determinism():
    y = _labels(3000, 4)
    a = asymmetric_noise(y, 0.5, {0: 1, 2: 3}, num_classes=4, seed=9)
    b = asymmetric_noise(y, 0.5, {0: 1, 2: 3}, num_classes=4, seed=9)
    c = asymmetric_noise(y, 0.5, {0: 1, 2: 3}, num_classes=4, seed=10)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[1].sum() == c[1].sum()  # exact counts do not depend on the seed
    np.testing.assert_array_equal(a[0][(y == 1) | (y == 3)], y[(y == 1) | (y == 3)])


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(class_map={3: 3}), ValueError, "class 3 to itself"),
        (dict(class_map={3: 12}, num_classes=10), ValueError, "target class 12"),
        (dict(class_map={-1: 2}), ValueError, "source class -1"),
        (dict(class_map={1.5: 2}), TypeError, r"1\.5"),
        (dict(class_map=[(1, 2)]), TypeError, "class_map.*mapping"),
        (dict(rate=2.0), ValueError, "rate"),
        (dict(labels=np.array([0, 11]), num_classes=10), ValueError, "labels.*11"),
        (dict(num_classes=0), ValueError, "num_classes"),
    ],
)
def test_asymmetric_rejects_bad_input(kwargs, exc, match):
    args = dict(labels=np.array([0, 1, 2, 3]), rate=0.5, seed=0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        asymmetric_noise(args.pop("labels"), args.pop("rate"), **args)


# ----------------------------------------------------------------------------
# Transition-matrix noise
# ----------------------------------------------------------------------------

T4 = np.array(
    [
        [0.7, 0.1, 0.2, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
        [0.05, 0.0, 0.45, 0.5],
    ]
)


def test_transition_frequencies_match_matrix():
    n = 120000
    y = _labels(n, 4)
    noisy, mask = transition_noise(y, T4, seed=0)
    np.testing.assert_array_equal(mask, noisy != y)
    t_hat = empirical_transition_matrix(y, noisy, 4)
    n_c = np.bincount(y, minlength=4)[:, None]
    sigma = np.sqrt(T4 * (1 - T4) / n_c)
    assert np.all(np.abs(t_hat - T4) <= 5 * sigma + 1e-12), (t_hat, T4)
    # Zero-probability transitions never happen.
    assert np.all(t_hat[T4 == 0] == 0)


def test_transition_exact_counts():
    # 10 examples of class 0 with row [0.25, 0.25, 0.5]: quotas 2.5, 2.5, 5 -> the
    # largest-remainder tie goes to the lower class: 3, 2, 5.
    # 7 examples of class 1 with row [0.1, 0.6, 0.3]: quotas 0.7, 4.2, 2.1 -> 1, 4, 2.
    t = np.array([[0.25, 0.25, 0.5], [0.1, 0.6, 0.3], [0.0, 0.0, 1.0]])
    y = np.array([0] * 10 + [1] * 7 + [2] * 4)
    for seed in range(5):
        noisy, mask = transition_noise(y, t, seed=seed, exact=True)
        np.testing.assert_array_equal(np.bincount(noisy[y == 0], minlength=3), [3, 2, 5])
        np.testing.assert_array_equal(np.bincount(noisy[y == 1], minlength=3), [1, 4, 2])
        np.testing.assert_array_equal(noisy[y == 2], 2)
        assert mask.sum() == (2 + 5) + (1 + 2)  # class 0 keeps 3 of 10, class 1 keeps 4 of 7


def test_transition_exact_matches_symmetric_counts():
    n, k, rate = 10000, 10, 0.4
    y = np.repeat(np.arange(k), n // k)
    noisy, mask = transition_noise(y, symmetric_transition_matrix(k, rate, exclude_true=True), seed=1, exact=True)
    assert mask.sum() == rate * n
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y, noisy), 1)
    # 1000 per class: 600 kept, and 400 spread over 9 classes as 45 x 4 + 44 x 5.
    np.testing.assert_array_equal(np.diag(counts), 600)
    off = counts[~np.eye(k, dtype=bool)].reshape(k, k - 1)
    assert np.all(np.sort(off, axis=1) == [44] * 5 + [45] * 4)


def test_transition_determinism():
    y = _labels(2000, 4)
    for exact in (False, True):
        a = transition_noise(y, T4, seed=5, exact=exact)
        b = transition_noise(y, T4, seed=5, exact=exact)
        c = transition_noise(y, T4, seed=6, exact=exact)
        np.testing.assert_array_equal(a[0], b[0])
        assert not np.array_equal(a[0], c[0])


def test_transition_identity_changes_nothing():
    y = _labels(500, 5)
    noisy, mask = transition_noise(y, np.eye(5), seed=0)
    np.testing.assert_array_equal(noisy, y)
    assert not mask.any()


def test_transition_rows_within_tolerance_are_accepted():
    t = np.array([[0.5, 0.5 + 5e-7], [0.0, 1.0]])
    transition_noise(np.array([0, 1]), t, seed=0)


@pytest.mark.parametrize(
    "t, exc, match",
    [
        (np.array([[0.5, 0.4], [0.0, 1.0]]), ValueError, r"rows must sum to 1.*row 0 sums to 0\.9"),
        (np.array([[1.0, 0.0], [0.3, 0.3 + 1e-4]]), ValueError, "row 1 sums to"),
        (np.ones((2, 3)) / 3, ValueError, r"square.*\(2, 3\)"),
        (np.array([0.5, 0.5]), ValueError, r"square.*\(2,\)"),
        (np.ones((1, 1)), ValueError, "at least 2 classes"),
        (np.array([[1.2, -0.2], [0.0, 1.0]]), ValueError, r"\[0, 1\].*T\[0, 0\] = 1\.2"),
        (np.array([[1.0, 0.0], [-0.5, 1.5]]), ValueError, r"\[0, 1\].*T\[1, 0\] = -0\.5"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]]), ValueError, "finite.*T\\[0, 0\\] = nan"),
        ([["a", "b"], ["c", "d"]], TypeError, "transition_matrix"),
        ("eye", TypeError, "transition_matrix"),
    ],
)
def test_transition_matrix_validation(t, exc, match):
    with pytest.raises(exc, match=match):
        transition_noise(np.array([0, 1]), t, seed=0)


def test_transition_labels_must_fit_matrix():
    with pytest.raises(ValueError, match=r"num_classes=4.*7"):
        transition_noise(np.array([0, 7]), T4, seed=0)


def test_empirical_transition_matrix_validation():
    with pytest.raises(ValueError, match="same length"):
        empirical_transition_matrix(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(TypeError, match="noisy_labels"):
        empirical_transition_matrix(np.array([0, 1]), np.array([0.0, 1.0]), 2)


def test_public_names():
    assert set(noise.__all__) <= set(dir(noise))


def test_default_cifar10_map_refuses_labels_it_cannot_change():
    binary = np.array([0, 1] * 10)
    with pytest.raises(ValueError, match="None of the labels is a source class"):
        asymmetric_noise(binary, 0.4, seed=0)
    with pytest.raises(ValueError, match="num_classes=2"):
        asymmetric_noise(binary, 0.4, num_classes=2, seed=0)
    noisy, mask = asymmetric_noise(binary, 0.5, class_map={0: 1}, seed=0)  # an explicit map is fine
    assert mask.sum() == 5


def test_empty_python_list_is_empty_labels():
    noisy, mask = symmetric_noise([], 0.5, 3, seed=0)
    assert noisy.size == 0 and mask.size == 0
