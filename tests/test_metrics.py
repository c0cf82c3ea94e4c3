"""False-label accuracy (paper Fig. 4, bottom) and per-class accuracy: hand-made cases and a real fit on each backend."""

import keras
import numpy as np
import pytest

from keras_robust.metrics import FalseLabelAccuracy, class_accuracy, false_label_accuracy
from keras_robust.noise import symmetric_noise

# ----------------------------------------------------------------------------
# The function on given predictions
# ----------------------------------------------------------------------------

# Six examples, three classes. Predicted classes (arg-max of each row): 0, 2, 1, 1, 0, 2.
LOGITS = np.array(
    [
        [3.0, 1.0, 0.0],
        [0.0, 1.0, 2.0],
        [-1.0, 4.0, 0.5],
        [0.1, 0.2, 0.0],
        [2.0, -2.0, 1.9],
        [0.0, 0.0, 5.0],
    ]
)
TRUE = np.array([0, 1, 1, 2, 0, 2])  # correct on rows 0, 2, 4, 5
MASK = np.array([False, True, True, True, False, True])  # rows 1, 2, 3, 5: correct on 2 and 5 -> 1/2


def test_hand_made_predictions():
    assert false_label_accuracy(LOGITS, true_labels=TRUE, mask=MASK) == pytest.approx(0.5)
    assert false_label_accuracy(LOGITS, true_labels=TRUE) == pytest.approx(4 / 6)
    # Rows 0, 2, 4: all correct.
    assert false_label_accuracy(LOGITS, true_labels=TRUE, mask=np.array([0, 2, 4])) == 1.0
    # Rows 1, 3: both wrong.
    assert false_label_accuracy(LOGITS, true_labels=TRUE, mask=np.array([1, 3])) == 0.0


def test_logits_probabilities_ids_and_one_hot_agree():
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    ids = np.array([0, 2, 1, 1, 0, 2])
    one_hot = np.eye(3)[TRUE]
    for pred in (LOGITS, probs, ids, LOGITS.tolist()):
        for labels in (TRUE, TRUE[:, None], one_hot):
            assert false_label_accuracy(pred, true_labels=labels, mask=MASK) == pytest.approx(0.5)


def test_backend_tensors_are_accepted():
    pred = keras.ops.convert_to_tensor(LOGITS.astype("float32"))
    labels = keras.ops.convert_to_tensor(TRUE)
    assert false_label_accuracy(pred, true_labels=labels, mask=MASK) == pytest.approx(0.5)


def test_empty_mask_gives_nan():
    assert np.isnan(false_label_accuracy(LOGITS, true_labels=TRUE, mask=np.zeros(6, dtype=bool)))


# ----------------------------------------------------------------------------
# The function on a model with known weights
# ----------------------------------------------------------------------------


def _permutation_model(perm, k):
    """A linear model on one-hot inputs whose prediction for class i is perm[i]."""
    model = keras.Sequential([keras.Input((k,)), keras.layers.Dense(k)])
    kernel = np.zeros((k, k), dtype="float32")
    kernel[np.arange(k), perm] = 5.0
    model.layers[0].set_weights([kernel, np.zeros(k, dtype="float32")])
    return model


def test_hand_made_model():
    k = 4
    perm = np.array([0, 2, 1, 3])  # classes 0 and 3 predicted right, 1 and 2 swapped
    model = _permutation_model(perm, k)
    true = np.array([0, 1, 2, 3, 3, 1, 0, 2, 1, 3])
    x = np.eye(k, dtype="float32")[true]
    # Selected rows 1, 3, 5, 6, 8, 9 have true classes 1, 3, 1, 0, 1, 3: right on 3, 0, 3 -> 3/6.
    mask = np.zeros(10, dtype=bool)
    mask[[1, 3, 5, 6, 8, 9]] = True
    assert false_label_accuracy(model, x, true, mask, batch_size=4) == pytest.approx(0.5)
    # Against the arg-max of the model's own outputs, computed here independently.
    pred = np.argmax(x @ model.layers[0].get_weights()[0], axis=1)
    assert false_label_accuracy(model, x, true) == pytest.approx(np.mean(pred == true))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m, x: false_label_accuracy(LOGITS, x, TRUE), ValueError, "`x` is only used with a model"),
        (lambda m, x: false_label_accuracy(m, None, TRUE), TypeError, "`x` is required"),
        (lambda m, x: false_label_accuracy(m, x[:3], TRUE), ValueError, "`x` has 3 rows but `true_labels` has 6"),
        (lambda m, x: false_label_accuracy(m, x, TRUE, batch_size=0), ValueError, "batch_size.*0"),
        (lambda m, x: false_label_accuracy(LOGITS), TypeError, "`true_labels` is required"),
        (lambda m, x: false_label_accuracy(LOGITS[:4], true_labels=TRUE), ValueError, "4 predictions for 6"),
        (lambda m, x: false_label_accuracy(LOGITS, true_labels=TRUE, mask=MASK[:5]), ValueError, "mask.*6.*5"),
        (lambda m, x: false_label_accuracy(LOGITS, true_labels=TRUE, mask=np.array([0, 9])), ValueError, "mask.*9"),
        (lambda m, x: false_label_accuracy(LOGITS, true_labels=TRUE, mask=np.ones(6)), TypeError, "mask.*float64"),
        (lambda m, x: false_label_accuracy(LOGITS, true_labels=TRUE.astype(float)), TypeError, "true_labels.*float64"),
        (lambda m, x: false_label_accuracy(LOGITS[:, :1], true_labels=TRUE), ValueError, "binary"),
        (lambda m, x: false_label_accuracy(LOGITS[None], true_labels=TRUE), ValueError, "model_or_predictions"),
    ],
)
def test_function_rejects_bad_input(call, exc, match):
    model = _permutation_model(np.arange(3), 3)
    x = np.eye(3, dtype="float32")[TRUE]
    with pytest.raises(exc, match=match):
        call(model, x)


# ----------------------------------------------------------------------------
# The callback
# ----------------------------------------------------------------------------


def _memorisation_problem():
    """Class 0 examples all relabelled 1; a model that starts right and learns the noise."""
    k = 3
    true = np.repeat(np.arange(k), 8)
    noisy = true.copy()
    noisy[true == 0] = 1
    mask = noisy != true
    x = np.eye(k, dtype="float32")[true]
    model = _permutation_model(np.arange(k), k)  # predicts the true class: false-label accuracy 1
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=2.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, true, noisy, mask


def test_callback_logs_during_fit():
    model, x, true, noisy, mask = _memorisation_problem()
    assert false_label_accuracy(model, x, true, mask) == 1.0
    cb = FalseLabelAccuracy(x, true, mask, noisy_labels=noisy, batch_size=5)
    assert cb.num_examples == 8
    history = model.fit(x, noisy, epochs=3, batch_size=8, shuffle=False, verbose=0, callbacks=[cb])
    values = history.history["false_label_accuracy"]
    assert len(values) == 3
    assert sorted(cb.values) == [0, 1, 2]
    assert values == [cb.values[e] for e in range(3)]
    # The model memorised the noise: its final predictions on the corrupted examples are the noisy
    # label. The value logged at the last epoch is the one of the weights after fit (on JAX this
    # needs the trainer's state to be synced before the callback runs).
    assert false_label_accuracy(model, x, true, mask) == 0.0
    assert values[-1] == 0.0
    assert history.history["noisy_label_accuracy"][-1] == 1.0
    # False-label + noisy-label accuracy <= 1 (they count disjoint predictions).
    for a, b in zip(values, history.history["noisy_label_accuracy"]):
        assert a + b <= 1.0 + 1e-12


def test_callback_frequency_and_name():
    model, x, true, noisy, mask = _memorisation_problem()
    cb = FalseLabelAccuracy(x, true, mask, frequency=2, name="fla")
    history = model.fit(x, noisy, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    assert len(history.history["fla"]) == 1
    assert sorted(cb.values) == [1]  # epochs are 0-based: the 2nd epoch
    assert "noisy_label_accuracy" not in history.history


def test_callback_with_symmetric_noise_on_a_small_mlp():
    # The real use: noisy labels from keras_robust.noise, a model trained a couple of steps.
    rng = np.random.default_rng(0)
    true = rng.integers(0, 10, size=256)
    x = rng.normal(size=(256, 16)).astype("float32") + 2.0 * np.eye(10, 16, dtype="float32")[true]
    noisy, mask = symmetric_noise(true, 0.4, 10, seed=0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = FalseLabelAccuracy(x, true, mask)
    history = model.fit(x, noisy, epochs=2, batch_size=64, steps_per_epoch=2, verbose=0, callbacks=[cb])
    values = history.history["false_label_accuracy"]
    assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
    assert values[-1] == pytest.approx(false_label_accuracy(model, x, true, mask))


def test_callback_without_corrupted_examples_logs_nan():
    model, x, true, _, _ = _memorisation_problem()
    cb = FalseLabelAccuracy(x, true, np.zeros(len(true), dtype=bool))
    history = model.fit(x, true, epochs=1, batch_size=8, verbose=0, callbacks=[cb])
    assert np.isnan(history.history["false_label_accuracy"][0])


def test_callback_config_round_trip():
    _, x, true, noisy, mask = _memorisation_problem()
    cb = FalseLabelAccuracy(x, true, mask, batch_size=7, frequency=3, name="fla")
    config = cb.get_config()
    assert config == {"batch_size": 7, "frequency": 3, "name": "fla"}
    assert keras.saving.get_registered_object("keras_robust>FalseLabelAccuracy") is FalseLabelAccuracy
    restored = FalseLabelAccuracy.from_config(config, x=x, true_labels=true, mask=mask)
    assert restored.get_config() == config
    np.testing.assert_array_equal(restored.true_labels, cb.true_labels)
    with pytest.raises(TypeError, match="data are not serialised"):
        FalseLabelAccuracy.from_config(config)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(frequency=0), ValueError, "frequency.*0"),
        (dict(frequency=1.5), ValueError, r"frequency.*1\.5"),
        (dict(batch_size=-2), ValueError, "batch_size.*-2"),
        (dict(batch_size="8"), TypeError, "batch_size"),
        (dict(name=""), ValueError, "name"),
        (dict(x=None), TypeError, "`x` is required"),
        (dict(x=np.zeros((5, 3))), ValueError, "`x` has 5 rows"),
        (dict(mask=np.ones(3, dtype=bool)), ValueError, "mask"),
        (dict(noisy_labels=np.zeros(4, dtype=int)), ValueError, "noisy_labels.*4"),
    ],
)
def test_callback_rejects_bad_input(kwargs, exc, match):
    true = np.array([0, 1, 2, 1, 0, 2])
    args = dict(x=np.eye(3, dtype="float32")[true], true_labels=true, mask=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        FalseLabelAccuracy(args.pop("x"), args.pop("true_labels"), args.pop("mask"), **args)


def test_multi_output_predictions_are_refused():
    with pytest.raises(ValueError, match="single-output model, got 2 outputs"):
        false_label_accuracy([LOGITS, LOGITS], true_labels=TRUE)
    # One output wrapped in a list or dict is fine.
    assert false_label_accuracy([LOGITS], true_labels=TRUE, mask=MASK) == pytest.approx(0.5)
    assert false_label_accuracy({"out": LOGITS}, true_labels=TRUE, mask=MASK) == pytest.approx(0.5)


# ----------------------------------------------------------------------------
# Per-class accuracy (dead classes of a bounded loss)
# ----------------------------------------------------------------------------


def _class_accuracy_loop(pred_ids, true_ids, k):
    out = []
    for c in range(k):
        rows = [i for i in range(len(true_ids)) if true_ids[i] == c]
        out.append(sum(pred_ids[i] == c for i in rows) / len(rows) if rows else float("nan"))
    return np.array(out)


def test_class_accuracy_hand_made_and_against_a_loop():
    # TRUE = 0, 1, 1, 2, 0, 2 and predicted 0, 2, 1, 1, 0, 2: class 0 2/2, class 1 1/2, class 2 1/2.
    np.testing.assert_allclose(class_accuracy(LOGITS, TRUE), [1.0, 0.5, 0.5])
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(500, 7)), rng.integers(0, 6, size=500)  # class 6 never a label
    got = class_accuracy(z, y)
    np.testing.assert_allclose(got, _class_accuracy_loop(np.argmax(z, -1), y, 7))
    assert np.isnan(got[6]) and got.shape == (7,)
    # one-hot labels, ids as predictions, and an explicit K agree
    np.testing.assert_allclose(class_accuracy(np.argmax(z, -1), np.eye(7)[y], num_classes=7), got)
    # a mean weighted by class counts is the plain accuracy
    counts = np.bincount(y, minlength=7)
    assert np.nansum(got * counts) / counts.sum() == pytest.approx(np.mean(np.argmax(z, -1) == y))


def test_class_accuracy_finds_a_dead_class():
    z = np.zeros((6, 3))
    z[:, 0] = 1.0  # the model predicts class 0 everywhere
    np.testing.assert_allclose(class_accuracy(z, TRUE), [1.0, 0.0, 0.0])


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((LOGITS, np.array([0, 1, 1, 2, 0, 3])), {}, ValueError, r"`labels` hold class ids in \[0, 3\], outside \[0, 3\)"),
    ((LOGITS, TRUE[:5]), {}, ValueError, "6 predictions for 5"),
    ((LOGITS, TRUE), {"num_classes": 0}, ValueError, "num_classes"),
    ((LOGITS, TRUE), {"num_classes": 2.5}, ValueError, "num_classes"),
    ((np.array([0, 4, 1, 1, 0, 2]), TRUE), {"num_classes": 3}, ValueError, "`predictions` hold class ids"),
    ((LOGITS, TRUE.astype(float)), {}, TypeError, "`labels`.*integer class ids"),
])
def test_class_accuracy_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        class_accuracy(*args, **kwargs)
