"""Every loss against an independent NumPy formula, its gradient against the
paper's Table 1 output errors, numerics at extreme logits, and bad input."""

import numpy as np
import pytest
import keras
from scipy.optimize import brentq
from scipy.special import log_softmax as np_log_softmax

from keras_robust import _backend
from keras_robust import losses as L

KS = (2, 10, 100, 1000)


# -- independent NumPy references (float64) ----------------------------------


def _p(z):
    return np.exp(np_log_softmax(z.astype("float64"), axis=-1))


def _take(m, k):
    return m[np.arange(len(k)), k]


def ref_ce(z, k):
    return -_take(np_log_softmax(z.astype("float64"), axis=-1), k)


def ref_mae(z, k):
    return 2.0 * (1.0 - _take(_p(z), k))


def ref_rce(z, k, A=-4.0):
    p = _p(z)
    onehot = np.eye(z.shape[1])[k]
    log_y = np.where(onehot > 0, 0.0, A)
    return -(p * log_y).sum(-1)


def ref_gce(z, k, q):
    return (1.0 - _take(_p(z), k) ** q) / q


def ref_nce(z, k):
    lp = np_log_softmax(z.astype("float64"), axis=-1)
    return _take(lp, k) / lp.sum(-1)


def ref_nfl(z, k, gamma):
    p = _p(z)
    fl = -((1.0 - p) ** gamma) * np.log(p)
    return _take(fl, k) / fl.sum(-1)


def ref_agce(z, k, a, q):
    return ((a + 1.0) ** q - (a + _take(_p(z), k)) ** q) / q


def ref_aul(z, k, a, q):
    return ((a - _take(_p(z), k)) ** q - (a - 1.0) ** q) / q


def ref_ael(z, k, a):
    return np.exp(-_take(_p(z), k) / a)


def _log_t(u, t):
    return np.log(u) if t == 1 else (u ** (1 - t) - 1) / (1 - t)


def _exp_t(u, t):
    return np.exp(u) if t == 1 else np.maximum(1 + (1 - t) * u, 0) ** (1 / (1 - t))


def ref_tempered_softmax(z, t):
    """Normalisation by root finding (brentq), independent of the library's iteration."""
    out = []
    for row in z.astype("float64"):
        f = lambda lam: _exp_t(row - lam, t).sum() - 1.0  # noqa: E731
        lo, hi = row.max() - 50.0, row.max() + 50.0
        while f(lo) < 0:
            lo -= 50.0
        out.append(_exp_t(row - brentq(f, lo, hi, xtol=1e-13), t))
    return np.array(out)


def ref_bitempered(z, y, t1, t2):
    p = ref_tempered_softmax(z, t2)
    with np.errstate(divide="ignore"):
        return (
            y * _log_t(y + 1e-10, t1)
            - y * _log_t(np.maximum(p, 1e-300), t1)
            - y ** (2 - t1) / (2 - t1)
            + p ** (2 - t1) / (2 - t1)
        ).sum(-1)


CASES = [
    ("ce", {}, lambda z, k: ref_ce(z, k)),
    ("mae", {}, lambda z, k: ref_mae(z, k)),
    ("rce", {}, lambda z, k: ref_rce(z, k)),
    ("gce", {"q": 0.7}, lambda z, k: ref_gce(z, k, 0.7)),
    ("gce", {"q": 0.3}, lambda z, k: ref_gce(z, k, 0.3)),
    ("sce", {"alpha": 0.1, "beta": 1.0}, lambda z, k: 0.1 * ref_ce(z, k) + ref_rce(z, k)),
    ("nce", {}, lambda z, k: ref_nce(z, k)),
    ("nfl", {"gamma": 0.5}, lambda z, k: ref_nfl(z, k, 0.5)),
    ("agce", {"a": 0.6, "q": 0.6}, lambda z, k: ref_agce(z, k, 0.6, 0.6)),
    ("aul", {"a": 3.0, "q": 0.5}, lambda z, k: ref_aul(z, k, 3.0, 0.5)),
    ("ael", {"a": 2.5}, lambda z, k: ref_ael(z, k, 2.5)),
    ("nce+mae", {"alpha": 1.0, "beta": 20.0}, lambda z, k: ref_nce(z, k) + 20 * ref_mae(z, k)),
    ("nfl+mae", {"alpha": 1.0, "beta": 20.0, "gamma": 0.5}, lambda z, k: ref_nfl(z, k, 0.5) + 20 * ref_mae(z, k)),
    (
        "nce+agce",
        {"alpha": 10.0, "beta": 0.1, "a": 1.8, "q": 3.0},
        lambda z, k: 10 * ref_nce(z, k) + 0.1 * ref_agce(z, k, 1.8, 3.0),
    ),
    ("nce+rce", {"alpha": 1.0, "beta": 1.0}, lambda z, k: ref_nce(z, k) + ref_rce(z, k)),
    ("nfl+rce", {"alpha": 1.0, "beta": 1.0}, lambda z, k: ref_nfl(z, k, 0.5) + ref_rce(z, k)),
    ("nce+aul", {"a": 3.0, "q": 0.5}, lambda z, k: ref_nce(z, k) + ref_aul(z, k, 3.0, 0.5)),
    ("nce+ael", {"a": 2.5}, lambda z, k: ref_nce(z, k) + ref_ael(z, k, 2.5)),
    ("gce+mae", {"q": 0.5, "alpha": 2.0, "beta": 3.0}, lambda z, k: 2 * ref_gce(z, k, 0.5) + 3 * ref_mae(z, k)),
    ("bitempered", {"t1": 0.8, "t2": 1.2}, lambda z, k: ref_bitempered(z, np.eye(z.shape[1])[k], 0.8, 1.2)),
    ("bitempered", {"t1": 0.5, "t2": 0.8}, lambda z, k: ref_bitempered(z, np.eye(z.shape[1])[k], 0.5, 0.8)),
]


def _data(rng, n, k, scale=2.0):
    return (rng.normal(size=(n, k)) * scale).astype("float32"), rng.integers(0, k, size=n)


@pytest.mark.parametrize("name,params,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("k", KS)
def test_value_matches_numpy(name, params, ref, k, rng):
    z, labels = _data(rng, 16, k)
    loss = L.get(name, reduction="none", **params)
    expected = ref(z, labels)
    tol = 2e-5
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(labels, z)), expected, rtol=tol, atol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss(np.eye(k, dtype="float32")[labels], z)), expected, rtol=tol, atol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loss(labels[:, None].astype("float32"), z)), expected, rtol=tol, atol=1e-6
    )


def test_bitempered_reference_vectors():
    """The reference implementation's published test vectors (google/bi-tempered-loss)."""
    y = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.2, 0.8, 0.0]], "float32")
    z = np.array([[-0.5, 0.1, 2.0], [0.1, 1.5, -5.0], [4.0, -3.0, -6.0]], "float32")
    a = L.BiTempered(t1=0.5, t2=1.5, iterations=5, reduction="none")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a(y, z)), [0.02301914, 0.18972909, 0.93874922], rtol=1e-5, atol=1e-6)
    b = L.BiTempered(t1=0.5, t2=0.8, iterations=20, reduction="none")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(b(y, z)), [0.21646356, 0.41836615, 1.33997854], rtol=1e-5, atol=1e-6)
    # and against the independent root-finding reference on soft labels
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a(y, z)), ref_bitempered(z, y, 0.5, 1.5), rtol=1e-4)


def test_bitempered_t1_t2_one_is_ce(rng):
    z, labels = _data(rng, 8, 10)
    bt = L.BiTempered(t1=1.0, t2=1.0, reduction="none")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bt(labels, z)), ref_ce(z, labels), rtol=1e-5)


def test_gce_matches_keras_on_probabilities(rng):
    z, labels = _data(rng, 32, 10)
    p = _p(z).astype("float32")
    ours = L.GCE(q=0.5, from_logits=False)(labels, p)
    theirs = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.5)(labels, p)
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-5)


# -- gradients against the paper's Table 1 output errors -----------------------


def _central_differences(f, z, h):
    """d f / d z by central differences in float64, one entry at a time."""
    z64 = z.astype("float64")
    out = np.zeros_like(z64)
    for index in np.ndindex(z64.shape):
        step = np.zeros_like(z64)
        step[index] = h
        out[index] = (f(z64 + step) - f(z64 - step)) / (2 * h)
    return out


def _grad(loss, labels, z):
    _, g = _backend.value_and_grad(lambda t: loss(labels, t), z)
    return g


DELTAS = {
    # delta_n = dL/dz_n (paper Table 1); e = one-hot(k), a = softmax(z)
    "ce": (L.CrossEntropy(reduction="sum"), lambda a, e: a - e),
    "mae": (L.MAE(reduction="sum"), lambda a, e: 2 * (a * e).sum(-1, keepdims=True) * (a - e)),
    "gce": (L.GCE(q=0.7, reduction="sum"), lambda a, e: (a * e).sum(-1, keepdims=True) ** 0.7 * (a - e)),
    # Table 1 prints (b + a_n)^(q-1); the chain rule gives (b + a_k)^(q-1) (equal for n = k).
    "agce": (
        L.AGCE(a=0.6, q=0.6, reduction="sum"),
        lambda a, e: (a * e).sum(-1, keepdims=True) * (a - e) * (0.6 + (a * e).sum(-1, keepdims=True)) ** (0.6 - 1),
    ),
}


@pytest.mark.parametrize("name", sorted(DELTAS))
@pytest.mark.parametrize("k", (2, 10, 100))
def test_gradient_matches_paper_table1(name, k, rng):
    loss, delta = DELTAS[name]
    z, labels = _data(rng, 8, k)
    np.testing.assert_allclose(_grad(loss, labels, z), delta(_p(z), np.eye(k)[labels]), rtol=2e-4, atol=1e-7)


@pytest.mark.parametrize("name,params,ref", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_gradient_matches_finite_differences_of_numpy_formula(name, params, ref, rng):
    """Every loss: autodiff gradient vs central differences of its independent NumPy formula."""
    z, labels = _data(rng, 4, 10, scale=1.5)
    loss = L.get(name, reduction="sum", **params)
    fd = _central_differences(lambda t: ref(t, labels).sum(), z, h=1e-5)
    np.testing.assert_allclose(_grad(loss, labels, z), fd, rtol=1e-3, atol=2e-5 * max(1.0, np.abs(fd).max()))


def test_nce_gradient_matches_appendix_formula(rng):
    """Appendix Eq. 3 (second line) for NCE, with c = K."""
    k = 10
    z, labels = _data(rng, 8, k)
    a, lp, e = _p(z), np_log_softmax(z.astype("float64"), -1), np.eye(k)[labels]
    s, lk = lp.sum(-1, keepdims=True), (lp * e).sum(-1, keepdims=True)
    expected = ((e - a) * s - lk * (1 - k * a)) / s**2
    np.testing.assert_allclose(_grad(L.NCE(reduction="sum"), labels, z), expected, rtol=2e-4, atol=1e-7)


@pytest.mark.parametrize("t1,t2", [(0.5, 1.5), (0.8, 1.2), (0.5, 0.8)])
def test_bitempered_gradient_matches_finite_differences(t1, t2, rng):
    z, labels = _data(rng, 3, 5, scale=1.0)
    y = np.eye(5)[labels]
    loss = L.BiTempered(t1=t1, t2=t2, iterations=30, reduction="sum")
    g = _grad(loss, labels, z)
    fd = _central_differences(lambda t: ref_bitempered(t, y, t1, t2).sum(), z, h=1e-4)
    np.testing.assert_allclose(g, fd, rtol=2e-3, atol=2e-4)


# -- numerics -------------------------------------------------------------------

ALL = [("ce", {}), ("mae", {}), ("rce", {}), ("gce", {}), ("sce", {}), ("nce", {}), ("nfl", {}),
       ("agce", {}), ("aul", {}), ("ael", {}), ("bitempered", {}), ("bitempered", {"t1": 0.5, "t2": 0.8}),
       ("nce+mae", {}), ("nfl+mae", {}), ("nce+agce", {}), ("nce+rce", {}), ("nfl+rce", {}),
       ("nce+aul", {}), ("nce+ael", {}), ("mae", {"logit_bias": 5.0})]


@pytest.mark.parametrize("name,params", ALL, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ALL)])
@pytest.mark.parametrize("k", (2, 1000, 10000))
def test_finite_at_extreme_logits(name, params, k, rng):
    z = rng.uniform(-1e4, 1e4, size=(4, k)).astype("float32")
    z[0] = 0.0
    z[1, :] = -1e4
    z[1, 0] = 1e4  # a_0 = 1 exactly in float32
    labels = np.array([0, 0, 1, k - 1])
    loss = L.get(name, reduction="sum", **params)
    value, grad = _backend.value_and_grad(lambda t: loss(labels, t), z)
    assert np.isfinite(value), (name, value)
    assert np.all(np.isfinite(grad)), name


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_float32_under_mixed_precision(policy, rng):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)])
        assert model.layers[-1].compute_dtype != "float32"
        x = rng.normal(size=(16, 8)).astype("float32") * 100
        labels = rng.integers(0, 10, 16)
        logits = model(x)
        for name in ("ce", "mae", "nce+agce", "bitempered", "nfl"):
            value = L.get(name)(labels, logits)
            assert keras.backend.standardize_dtype(value.dtype) == "float32"
            assert np.isfinite(float(value))
        model.compile(loss=L.get("mae", logit_bias=1.0), optimizer="sgd")
        history = model.fit(x, labels, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    finally:
        keras.config.set_dtype_policy(previous)


# -- labels, reductions, sample weights -----------------------------------------


def test_reductions_and_sample_weight(rng):
    z, labels = _data(rng, 6, 10)
    w = rng.uniform(0.1, 2.0, 6).astype("float32")
    per = ref_mae(z, labels)
    cases = {
        "none": per * w,
        "sum": (per * w).sum(),
        "sum_over_batch_size": (per * w).sum() / 6,
        "mean": (per * w).sum() / 6,
        "mean_with_sample_weight": (per * w).sum() / w.sum(),
    }
    for reduction, expected in cases.items():
        value = L.MAE(reduction=reduction)(labels, z, sample_weight=w)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(value), expected, rtol=1e-5)


def test_soft_labels_are_expectations_over_classes(rng):
    z, _ = _data(rng, 4, 5)
    y = rng.dirichlet(np.ones(5), size=4).astype("float32")
    for name in ("ce", "mae", "gce", "agce", "nce"):
        loss = L.get(name, reduction="none")
        per_class = np.stack([keras.ops.convert_to_numpy(loss(np.full(4, c), z)) for c in range(5)], -1)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(y, z)), (y * per_class).sum(-1), rtol=1e-5)


def test_logit_bias_equals_shifted_logits(rng):
    z, labels = _data(rng, 8, 100)
    shifted = z + 2.5 * np.eye(100, dtype="float32")[labels]
    biased = L.MAE(logit_bias=2.5, reduction="none")(labels, z)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(biased), ref_mae(shifted, labels), rtol=1e-5)
    star = L.MAEStar(epsilon=2.5, reduction="none")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(star(labels, z)), ref_mae(shifted, labels), rtol=1e-5)
    nce_agce = L.get("nce+agce", logit_bias=2.5, reduction="none")
    expected = ref_nce(shifted, labels) + 4 * ref_agce(shifted, labels, 6.0, 1.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(nce_agce(labels, z)), expected, rtol=1e-5)


def test_mae_star_derives_epsilon_from_classes():
    from keras_robust.calibration import epsilon_for_classes

    for k in (10, 100, 1000):
        loss = L.MAEStar(num_classes=k)
        assert loss.epsilon == pytest.approx(epsilon_for_classes(k), abs=1e-6)
    assert L.MAEStar(10).epsilon < L.MAEStar(100).epsilon < L.MAEStar(1000).epsilon
    assert L.get("mae*", num_classes=100).epsilon == pytest.approx(L.MAEStar(100).epsilon)


def test_registry_paper_parameters():
    loss = L.get("nce+agce", dataset="cifar100")
    assert (loss.alpha, loss.beta, loss.passive.a, loss.passive.q) == (10.0, 0.1, 1.8, 3.0)
    assert L.get("NCE-AGCE", dataset="cifar10").params == {"alpha": 1.0, "beta": 4.0, "a": 6.0, "q": 1.5}
    assert L.get("genCE", dataset="webvision").q == 0.7
    assert L.get("gce", dataset="cifar10", q=0.4).q == 0.4
    assert isinstance(L.get("biTemp"), L.BiTempered)
    for name in L.names():
        assert isinstance(L.get(name, num_classes=10), L.RobustLoss)


# -- bad input --------------------------------------------------------------------

BAD_PARAMS = [
    (lambda: L.GCE(q=0.0), "`q`", "0.0"),
    (lambda: L.GCE(q=1.5), "`q`", "1.5"),
    (lambda: L.AGCE(a=0.0), "`a`", "0.0"),
    (lambda: L.AGCE(q=-1.0), "`q`", "-1.0"),
    (lambda: L.AUL(a=1.0), "`a`", "1.0"),
    (lambda: L.AEL(a=-2.0), "`a`", "-2.0"),
    (lambda: L.BiTempered(t1=1.5), "`t1`", "1.5"),
    (lambda: L.BiTempered(t2=0.0), "`t2`", "0.0"),
    (lambda: L.BiTempered(iterations=0), "`iterations`", "0"),
    (lambda: L.NFL(gamma=-0.5), "`gamma`", "-0.5"),
    (lambda: L.SCE(alpha=-1.0), "`alpha`", "-1.0"),
    (lambda: L.NCEMAE(beta=-2.0), "`beta`", "-2.0"),
    (lambda: L.NCEMAE(alpha=0.0, beta=0.0), "`alpha` and `beta`", "0"),
    (lambda: L.MAE(logit_bias=float("nan")), "`logit_bias`", "nan"),
    (lambda: L.MAE(logit_bias=float("inf")), "`logit_bias`", "inf"),
    (lambda: L.MAEStar(epsilon=float("nan")), "`logit_bias`", "nan"),
    (lambda: L.MAE(logit_bias=1.0, from_logits=False), "from_logits=False", "1.0"),
    (lambda: L.MAE(num_classes=1), "`num_classes`", "1"),
    (lambda: L.MAEStar(), "num_classes", "MAEStar"),
    (lambda: L.MAEStar(num_classes=10, target=1.5), "`target`", "1.5"),
    (lambda: L.get("nope"), "Unknown loss", "'nope'"),
    (lambda: L.get("gce", qq=0.3), "Unknown parameter", "qq"),
    (lambda: L.get("gce", dataset="imagenet"), "Unknown dataset", "imagenet"),
]


@pytest.mark.parametrize("make,arg,value", BAD_PARAMS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_PARAMS)])
def test_bad_parameters_raise_clear_errors(make, arg, value):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert arg in str(info.value) and value in str(info.value)


def test_epsilon_setter_validates():
    loss = L.MAE(logit_bias=0.0)
    loss.epsilon = 2.0
    assert loss.epsilon == 2.0
    with pytest.raises(ValueError, match="epsilon"):
        loss.epsilon = float("nan")
    with pytest.raises(ValueError, match="without a logit bias"):
        L.MAE().epsilon = 1.0


BAD_INPUTS = [
    (np.array([0, 1, 10]), np.zeros((3, 10)), r"\[0, 10\).*10"),
    (np.array([0, -1, 2]), np.zeros((3, 10)), r"\[0, 10\).*-1"),
    (np.array([0.0, 1.5, 2.0]), np.zeros((3, 10)), r"integers.*1\.5"),
    (np.array([0, 1, np.nan]), np.zeros((3, 10)), "finite"),
    (np.eye(8)[[0, 1, 2]], np.zeros((3, 10)), "width num_classes=10.*8|last dimension 8"),
    (np.zeros((3, 2, 2)), np.zeros((3, 10)), "does not fit"),
    (np.full((3, 10), 0.5), np.zeros((3, 10)), "sum to 1"),
    (np.array([0, 1, 2]), np.array([[0.0] * 10, [np.nan] + [0.0] * 9, [0.0] * 10]), "NaN or inf"),
    (np.array([0, 1, 2]), np.array([[0.0] * 10, [np.inf] + [0.0] * 9, [0.0] * 10]), "NaN or inf"),
]


@pytest.mark.parametrize("labels,logits,message", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(labels, logits, message):
    with pytest.raises(ValueError, match=message):
        L.MAE()(labels, logits.astype("float32"))


def test_num_classes_mismatch():
    with pytest.raises(ValueError, match="outputs 5 classes.*num_classes=10"):
        L.CrossEntropy(num_classes=10)(np.array([0, 1]), np.zeros((2, 5), "float32"))


def test_bad_labels_inside_compiled_step_give_nan_loss(rng):
    """A compiled step cannot raise on values: a bad sparse label makes the loss NaN.

    On torch, Keras runs the step eagerly, so the check raises instead.
    """
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    model.compile(loss=L.MAE(), optimizer="sgd")
    x = rng.normal(size=(8, 4)).astype("float32")
    bad = np.array([0, 1, 2, 3, 4, 5, 6, 12])
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match=r"\[0, 10\)"):
            model.evaluate(x, bad, verbose=0)
    else:
        assert np.isnan(model.evaluate(x, bad, verbose=0))
        assert np.isfinite(model.evaluate(x, np.array([0, 1, 2, 3, 4, 5, 6, 9]), verbose=0))


# -- issue 11: first calls, ignore_class, zero weights, meaningless settings, shapes ----

_FIRST_CALLS = ("fit", "evaluate", "train_on_batch")


def _first_call(model, how, x, y):
    if how == "fit":
        return model.fit(x, y, epochs=1, batch_size=8, verbose=0).history["loss"][-1]
    if how == "evaluate":
        return model.evaluate(x, y, batch_size=8, verbose=0)
    return model.train_on_batch(x, y)


@pytest.mark.parametrize("i,name", list(enumerate(L.names())), ids=L.names())
def test_first_call_accepts_one_hot_and_soft_labels(i, name, rng):
    """Keras builds the loss on placeholder labels (torch: all ones); those are no data to check.

    Every loss sees one-hot and soft labels; the first call rotates over fit /
    evaluate / train_on_batch (MAE* below takes all six combinations).
    """
    x = rng.normal(size=(16, 4)).astype("float32")
    one_hot = keras.utils.to_categorical(np.arange(16) % 5, 5)
    for j, y in enumerate((one_hot, 0.8 * one_hot + 0.04)):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
        model.compile(loss=L.get(name, num_classes=5), optimizer="sgd")
        assert np.isfinite(_first_call(model, _FIRST_CALLS[(i + j) % 3], x, y))


@pytest.mark.parametrize("how", _FIRST_CALLS)
def test_first_call_mae_star_one_hot_and_soft(how, rng):
    x = rng.normal(size=(16, 4)).astype("float32")
    one_hot = keras.utils.to_categorical(np.arange(16) % 5, 5)
    for y in (one_hot, 0.8 * one_hot + 0.04):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
        model.compile(loss=L.MAEStar(num_classes=5), optimizer="sgd")
        assert np.isfinite(_first_call(model, how, x, y))


def _padded(rng):
    x = rng.normal(size=(6, 4, 3)).astype("float32")
    y = rng.integers(0, 5, (6, 4))
    y[0, 2:] = -1
    y[3, 1:] = -1
    return x, y


@pytest.mark.parametrize("name", ["ce", "mae", "gce", "nce+agce", "bitempered"])
def test_ignore_class_entries_contribute_zero_and_are_excluded(name, rng):
    x, y = _padded(rng)
    z = rng.normal(size=(6, 4, 5)).astype("float32")
    keep = y != -1
    per_entry = keras.ops.convert_to_numpy(L.get(name, reduction=None)(np.where(keep, y, 0), z))
    got = L.get(name, ignore_class=-1)(y, z)
    np.testing.assert_allclose(float(got), per_entry[keep].mean(), rtol=1e-5)
    unreduced = keras.ops.convert_to_numpy(L.get(name, ignore_class=-1, reduction=None)(y, z))
    assert np.all(unreduced[~keep] == 0.0)
    if name == "ce":  # the same as Keras' own
        ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)(y, z)
        np.testing.assert_allclose(float(got), float(ref), rtol=1e-5)


def test_ignore_class_in_fit_on_padded_sequences(rng):
    """Padded steps labelled -1: NaN (or an error) without ignore_class, even weighted 0; fine with it."""
    x, y = _padded(rng)
    weights = (y != -1).astype("float32")

    def model(loss):
        m = keras.Sequential([keras.Input((4, 3)), keras.layers.Dense(5)])
        m.compile(loss=loss, optimizer="sgd")
        return m

    history = model(L.MAE(ignore_class=-1)).fit(x, y, epochs=2, batch_size=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    ours = model(L.CrossEntropy(ignore_class=-1))
    keras_own = model(keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1))
    keras_own.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), keras_own.evaluate(x, y, verbose=0), rtol=1e-5)
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match=r"\[0, 5\)"):
            model(L.MAE()).evaluate(x, y, sample_weight=weights, verbose=0)
    else:
        assert np.isnan(model(L.MAE()).evaluate(x, y, sample_weight=weights, verbose=0))


def test_zero_weighted_invalid_label_is_still_an_error_use_ignore_class(rng):
    """Deliberate: an invalid label is a data error whatever its weight (NaN when compiled, an error
    eagerly, as on torch); entries to skip are marked with ignore_class, and then contribute 0."""
    x = rng.normal(size=(8, 4)).astype("float32")
    y = np.array([0, 1, 2, 3, 4, 0, 1, -1])
    weights = np.array([1.0] * 7 + [0.0], "float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    model.compile(loss=L.GCE(), optimizer="sgd")
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match=r"\[0, 5\)"):
            model.evaluate(x, y, sample_weight=weights, verbose=0)
    else:
        assert np.isnan(model.evaluate(x, y, sample_weight=weights, verbose=0))
    ignoring = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    ignoring.compile(loss=L.GCE(ignore_class=-1, reduction="sum"), optimizer="sgd")
    ignoring.set_weights(model.get_weights())
    z = model.predict(x, verbose=0)
    expected = float(L.GCE(reduction="sum")(y[:7], z[:7]))
    np.testing.assert_allclose(ignoring.evaluate(x, y, sample_weight=weights, verbose=0), expected, rtol=1e-5)


def test_ignore_class_bad_use():
    with pytest.raises(ValueError, match="`ignore_class` must be an integer"):
        L.MAE(ignore_class=0.5)
    with pytest.raises(ValueError, match="applies to sparse labels"):
        L.MAE(ignore_class=-1)(np.eye(4, dtype="float32"), np.zeros((4, 4), "float32"))
    config = keras.saving.serialize_keras_object(L.NCEMAE(ignore_class=255))
    assert keras.saving.deserialize_keras_object(config).ignore_class == 255
    assert L.get("nce+mae", ignore_class=-1).ignore_class == -1


MEANINGLESS = [
    (lambda: L.MAEStar(epsilon=-1e6), "`logit_bias`"),
    (lambda: L.MAEStar(epsilon=1e30), "`logit_bias`"),
    (lambda: L.get("gce", logit_bias=51.0), "`logit_bias`"),
    (lambda: L.get("nce+agce", logit_bias=-60.0), "`logit_bias`"),
    (lambda: setattr(L.MAE(logit_bias=0.0), "epsilon", 1e9), "`epsilon`"),
]


@pytest.mark.parametrize("make,arg", MEANINGLESS)
def test_saturating_logit_bias_is_an_error(make, arg):
    with pytest.raises(ValueError, match=f"{arg} must lie in \\[-50, 50\\].*saturates"):
        make()


def test_moderate_and_negative_logit_bias_are_allowed():
    assert L.MAE(logit_bias=-2.0).epsilon == -2.0  # a margin: legal
    assert L.MAEStar(epsilon=50.0).epsilon == 50.0


def test_sum_weights_of_a_generic_pair_go_to_the_sum():
    loss = L.get("gce+sce", alpha=2.0, beta=0.5, q=0.3)
    assert (loss.alpha, loss.beta, loss.active.q) == (2.0, 0.5, 0.3)
    assert (loss.passive.alpha, loss.passive.beta) == (L.SCE().alpha, L.SCE().beta)
    with pytest.raises(ValueError, match="`alpha` and `beta` are both 0"):
        L.get("gce+sce", alpha=0.0, beta=0.0)


@pytest.mark.parametrize(
    "labels,logits",
    [
        (np.array([0, 1, 2]), np.zeros((4, 10), "float32")),
        (np.array([[0], [1], [2]]), np.zeros((4, 10), "float32")),
        (np.eye(10, dtype="float32")[[0, 1, 2]], np.zeros((4, 10), "float32")),
    ],
    ids=["sparse", "column", "one-hot"],
)
def test_wrong_number_of_labels_is_named(labels, logits):
    with pytest.raises(ValueError, match=r"one label per prediction.*\(4,\)"):
        L.MAE()(labels, logits)


@pytest.mark.parametrize("name", L.names())
def test_empty_labels_are_named(name):
    with pytest.raises(ValueError, match="holds no examples"):
        L.get(name, num_classes=10)(np.zeros((0,), "int32"), np.zeros((0, 10), "float32"))
