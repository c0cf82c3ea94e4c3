"""Pre-flight check (issue 15, item 1): verdicts on MLP1024, bad input, the callback's one warning.

The MLP1024 cases use real Fashion-MNIST test images (normalised with the
paper's constants) for K = 10, and for K = 1000 random inputs with the
statistics of normalised images: every input i.i.d. N(0, 1). Timings are
reported (``report.seconds``, docs/results/preflight.md), not asserted.
"""

import dataclasses
import warnings

import keras
import numpy as np
import pytest

import keras_robust as kr
from keras_robust import datasets, losses, models
from keras_robust.calibration import LogitModel, epsilon_for_classes
from keras_robust.diagnostics import (
    OVERLAP_THRESHOLD,
    PreflightCheck,
    PreflightReport,
    PreflightWarning,
    is_adaptive_optimizer,
    preflight,
)


def _mlp(k):
    keras.utils.set_random_seed(0)
    return models.mlp1024((784,), k)


@pytest.fixture(scope="module")
def mlp10():
    return _mlp(10)


@pytest.fixture(scope="module")
def mlp1000():
    return _mlp(1000)


@pytest.fixture(scope="module")
def fashion_batch():
    x, _ = datasets.load("fashion_mnist", "test", limit=256, download=False, verbose=0)  # `make data` installs it
    info = datasets.info("fashion_mnist")
    return ((x.astype("float32") / 255.0 - info.mean[0]) / info.std[0]).reshape(len(x), 784)


@pytest.fixture(scope="module")
def random_batch():
    # The statistics of normalised images: per-input mean 0, std 1.
    return np.random.default_rng(0).standard_normal((256, 784)).astype("float32")


def _small(k, width=16, std=None, seed=0):
    """A one-layer classifier; ``std`` sets the logit std for N(0, 1) inputs (default Glorot)."""
    keras.utils.set_random_seed(seed)
    init = "glorot_uniform" if std is None else keras.initializers.RandomNormal(stddev=std / np.sqrt(width))
    inputs = keras.Input((width,))
    return keras.Model(inputs, keras.layers.Dense(k, kernel_initializer=init)(inputs))


def _x(n=128, width=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, width)).astype("float32")


# -- the verdicts on MLP1024 (must show) ------------------------------------------------


def test_mae_k1000_does_not_learn(mlp1000, random_batch):
    r = preflight(mlp1000, losses.MAE(), random_batch, optimizer="sgd")
    assert r.learns is False
    assert 0.0 < r.overlap < OVERLAP_THRESHOLD / 2  # ~0.002: the paper's Fig. 2b
    assert r.num_classes == 1000 and r.logits.num_examples == 256
    # The fix is Eq. 4 with the measured logits, not N(0, 1): MLP1024's are narrower (std ~0.3).
    assert r.logits.row_std < 0.6
    assert r.suggested_epsilon == pytest.approx(
        epsilon_for_classes(1000, logits=LogitModel(std=r.logits.row_std)), abs=1e-9)
    assert r.epsilon_unit_logits == pytest.approx(epsilon_for_classes(1000), abs=1e-9)
    assert r.suggested_epsilon < r.epsilon_unit_logits
    assert "MAEStar(epsilon=" in r.fix and "logit_bias=" in r.fix
    assert r.suggested_params is None  # MAE has no parameter to transfer
    print(f"\nMAE K=1000: overlap {r.overlap:.5f}, {r.seconds:.2f} s")


def test_mae_star_k1000_learns(mlp1000, random_batch):
    r = preflight(mlp1000, losses.MAEStar(num_classes=1000), random_batch, optimizer="sgd")
    assert r.learns is True and r.overlap > 0.1
    assert r.fix == ""
    print(f"\nMAE* K=1000: overlap {r.overlap:.5f}, {r.seconds:.2f} s")


def test_ce_k1000_learns_with_overlap_one(mlp1000, random_batch):
    r = preflight(mlp1000, losses.CrossEntropy(), random_batch, optimizer="sgd")
    assert r.learns is True
    assert r.overlap == pytest.approx(1.0, abs=0.01)  # CE is the unit of the overlap
    print(f"\nCE K=1000: overlap {r.overlap:.5f}, {r.seconds:.2f} s")


def test_mae_k10_fashion_mnist_learns(mlp10, fashion_batch):
    r = preflight(mlp10, losses.MAE(), fashion_batch, optimizer="sgd")
    assert r.learns is True and r.overlap > 0.1
    print(f"\nMAE K=10 (Fashion-MNIST): overlap {r.overlap:.5f}, {r.seconds:.2f} s")


def test_keras_own_loss_and_registry_name(mlp1000, random_batch):
    r = preflight(mlp1000, keras.losses.SparseCategoricalCrossentropy(from_logits=True), random_batch)
    assert r.learns is True and r.overlap == pytest.approx(1.0, abs=0.01)
    assert preflight(mlp1000, "mae", random_batch).learns is False


# -- the parameter fixes (Sec. 3.3) -----------------------------------------------------


def test_gce_suggested_q_restores_the_overlap():
    # Logits ~N(0, 1), the paper's setting: q = 0.7 fails at K = 1000, the transfer gives ~0.48.
    model, x = _small(1000, std=1.0), _x()
    r = preflight(model, losses.GCE(q=0.7), x, optimizer="sgd")
    assert r.learns is False
    q = r.suggested_params["q"]
    assert q == pytest.approx(0.48, abs=0.04)
    assert "q=" in r.fix and "K = 100" in r.suggested_params_note
    fixed = preflight(model, losses.GCE(q=q), x, optimizer="sgd")
    assert fixed.learns is True and fixed.overlap > 2 * OVERLAP_THRESHOLD


def test_nce_agce_suggested_beta():
    model, x = _small(1000, std=1.0), _x()
    r = preflight(model, losses.get("nce+agce", dataset="cifar100"), x)
    assert r.learns is False
    assert set(r.suggested_params) == {"beta", "alpha", "q", "a"}
    assert r.suggested_params["beta"] == pytest.approx(0.77, abs=0.1)  # NOTES: beta = 0.770 for N(0, 1)


# -- the report ---------------------------------------------------------------------------


def test_report_is_frozen_and_readable():
    r = preflight(_small(100), losses.CrossEntropy(), _x())
    assert isinstance(r, PreflightReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.learns = False
    assert "\n" not in r.summary() and "overlap" in r.summary()
    text = str(r)
    assert "overlap" in text and "per-example std" in text and "SGD" in text
    d = dataclasses.asdict(r)
    assert d["logits"]["num_classes"] == 100


def test_logit_statistics_match_numpy():
    model, x = _small(50), _x()
    z = np.asarray(keras.ops.convert_to_numpy(model(x)), dtype="float64")
    s = preflight(model, losses.CrossEntropy(), x).logits
    assert s.mean == pytest.approx(z.mean(), rel=1e-6, abs=1e-9)
    assert s.std == pytest.approx(z.std(ddof=1), rel=1e-6)
    assert s.row_std == pytest.approx(np.sqrt(z.var(axis=1, ddof=1).mean()), rel=1e-6)
    assert s.row_range == pytest.approx((z.max(1) - z.min(1)).mean(), rel=1e-6)


def test_deterministic():
    model, x = _small(200), _x()
    a = preflight(model, losses.MAE(), x)
    b = preflight(model, losses.MAE(), x)
    assert a.overlap == b.overlap and a.suggested_epsilon == b.suggested_epsilon


# -- optimizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer, adaptive",
    [("sgd", False), (keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True), False), ("adam", True),
     (keras.optimizers.AdamW(), True), ("rmsprop", True), ("adagrad", True), (keras.optimizers.Lion(), True),
     (keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD()), False), (None, None)],
)
def test_adaptive_optimizers(optimizer, adaptive):
    assert is_adaptive_optimizer(optimizer)[1] is adaptive


def test_adaptive_optimizer_is_marked_in_the_report():
    model, x = _small(1000), _x()
    r = preflight(model, losses.MAE(), x, optimizer="adam")
    assert r.learns is False and r.adaptive_optimizer is True and r.optimizer == "Adam"
    assert "adaptive" in r.summary() and "does not apply" in str(r)
    assert preflight(model, losses.MAE(), x).adaptive_optimizer is None  # not compiled, none given


# -- bad input ----------------------------------------------------------------------------


def test_width_differs_from_loss_k(mlp10, random_batch):
    with pytest.raises(ValueError, match=r"outputs 10 logits.*num_classes=1000"):
        preflight(mlp10, losses.MAEStar(num_classes=1000), random_batch)


def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        preflight(_small(10), losses.MAE(), np.zeros((0, 16), "float32"))


def test_output_rank_not_2():
    inputs = keras.Input((4, 16))
    model = keras.Model(inputs, keras.layers.Dense(10)(inputs))  # (batch, 4, 10): not a classifier
    with pytest.raises(ValueError, match=r"rank 3.*\(batch, K\)"):
        preflight(model, losses.MAE(), np.ones((8, 4, 16), "float32"))


def test_softmax_output_and_probability_loss_refused():
    inputs = keras.Input((16,))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="probabilities.*softmax"):
        preflight(model, losses.MAE(), _x())
    with pytest.raises(ValueError, match="from_logits=False"):
        preflight(_small(10), losses.MAE(from_logits=False), _x())


def test_no_loss_anywhere():
    with pytest.raises(ValueError, match="No `loss` given"):
        preflight(_small(10), None, _x())


# -- the callback -------------------------------------------------------------------------


def _fit(model, loss, callback, optimizer="sgd", times=1):
    model.compile(loss=loss, optimizer=optimizer)
    x, y = _x(32), np.zeros(32, "int32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(times):
            model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[callback])
    return [w for w in caught if issubclass(w.category, PreflightWarning)]


def test_callback_warns_once_in_one_line_when_it_does_not_learn():
    cb = PreflightCheck(_x())
    found = _fit(_small(1000), losses.MAE(), cb, times=2)
    assert len(found) == 1
    message = str(found[0].message)
    assert "\n" not in message and "will not learn" in message and "logit_bias=" in message
    assert cb.report is not None and cb.report.learns is False and cb.report.optimizer == "SGD"


def test_callback_silent_when_it_learns():
    cb = kr.PreflightCheck(_x())
    assert _fit(_small(1000), losses.MAEStar(num_classes=1000), cb) == []
    assert cb.report.learns is True


def test_callback_names_an_adaptive_optimizer_and_synthetic_inputs():
    cb = PreflightCheck()  # no batch: synthetic N(0, 1) inputs, said in the message
    found = _fit(_small(1000), losses.MAE(), cb, optimizer="adam")
    assert len(found) == 1
    message = str(found[0].message)
    assert "\n" not in message and "Adam is adaptive" in message and "synthetic" in message


def test_plain_function_loss_is_named():
    with pytest.raises(ValueError, match="plain function.*from_logits=True"):
        preflight(_small(10), "sparse_categorical_crossentropy", _x())
