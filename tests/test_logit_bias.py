"""`add_logit_bias`, `LogitBiasLayer` and `with_logit_bias`."""

import numpy as np
import pytest
import keras

from keras_robust import losses as L
from keras_robust.logit_bias import LogitBiasLayer, add_logit_bias, with_logit_bias


def test_add_logit_bias_all_label_forms(rng):
    z = rng.normal(size=(5, 7)).astype("float32")
    k = rng.integers(0, 7, 5)
    expected = z + 1.5 * np.eye(7, dtype="float32")[k]
    for labels in (k, k[:, None], np.eye(7, dtype="float32")[k]):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(add_logit_bias(z, labels, 1.5)), expected, rtol=1e-6)


def test_layer_only_active_in_training(rng):
    z = rng.normal(size=(5, 7)).astype("float32")
    k = rng.integers(0, 7, 5)
    layer = LogitBiasLayer(3.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(z, k, training=False)), z)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(z, None, training=True)), z)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(z, k, training=True)), z + 3.0 * np.eye(7)[k], rtol=1e-6
    )
    layer.epsilon = -1.0
    assert layer.epsilon == -1.0
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 1


def test_layer_bad_input():
    with pytest.raises(ValueError, match="`epsilon`.*nan"):
        LogitBiasLayer(float("nan"))
    layer = LogitBiasLayer(1.0)
    with pytest.raises(ValueError, match=r"\[0, 4\).*7"):
        layer(np.zeros((2, 4), "float32"), np.array([0, 7]), training=True)
    with pytest.raises(ValueError, match="epsilon"):
        layer.epsilon = float("inf")


def test_training_model_fits_and_inference_needs_no_labels(rng):
    keras.utils.set_random_seed(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.integers(0, 10, 64)
    base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    train = with_logit_bias(base, epsilon=2.0)
    train.compile(loss=L.MAE(), optimizer=keras.optimizers.SGD(0.5))
    before = [w.copy() for w in base.get_weights()]
    history = train.fit((x, y), y, epochs=2, batch_size=16, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert any(not np.allclose(a, b) for a, b in zip(before, base.get_weights())), "base model did not train"
    logits = base.predict(x, verbose=0)  # inference path: no labels
    np.testing.assert_allclose(train.predict((x, y), verbose=0), logits, rtol=1e-5, atol=1e-6)
    # the training loss is the loss of the biased logits
    loss_biased = float(L.MAE()(y, logits + 2.0 * np.eye(10, dtype="float32")[y]))
    np.testing.assert_allclose(train.evaluate((x, y), y, verbose=0), float(L.MAE()(y, logits)), rtol=1e-4)
    assert loss_biased < float(L.MAE()(y, logits))


@pytest.mark.parametrize(
    "make_loss",
    [lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True), lambda: L.MAE()],
    ids=["keras-scce", "mae"],
)
def test_invalid_label_through_the_layer_is_nan_or_an_error(make_loss, rng):
    """In training, a label = K must not silently become class 0 (JAX's gather clamps), whichever loss follows."""
    base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)])
    train = with_logit_bias(base, epsilon=1.0)
    train.compile(loss=make_loss(), optimizer="sgd")
    x = rng.normal(size=(8, 8)).astype("float32")
    bad = np.array([0, 1, 2, 3, 4, 5, 6, 10])
    if keras.backend.backend() == "torch":  # eager: the layer checks the labels
        with pytest.raises(ValueError, match=r"\[0, 10\).*10"):
            train.train_on_batch((x, bad), bad)
        return
    try:
        value = train.train_on_batch((x, bad), bad)
    except Exception as error:  # TensorFlow's own sparse cross entropy checks its labels
        assert keras.backend.backend() == "tensorflow" and "label" in str(error).lower()
        return
    assert np.isnan(value)
    good = np.array([0, 1, 2, 3, 4, 5, 6, 9])
    fresh = with_logit_bias(keras.Sequential([keras.Input((8,)), keras.layers.Dense(10)]), epsilon=1.0)
    fresh.compile(loss=make_loss(), optimizer="sgd")
    assert np.isfinite(fresh.train_on_batch((x, good), good))


def test_layer_refuses_a_saturating_epsilon():
    with pytest.raises(ValueError, match=r"`epsilon` must lie in \[-50, 50\]"):
        LogitBiasLayer(1e30)
