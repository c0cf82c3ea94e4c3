"""Every loss round-trips through its config, and compiled models reload."""

import numpy as np
import pytest
import keras

from keras_robust import losses as L
from keras_robust.logit_bias import LogitBiasLayer


def _all_losses():
    built = [L.get(name, num_classes=10) for name in L.names()]
    built += [
        L.MAE(logit_bias=1.5, num_classes=10),
        L.GCE(q=0.3, reduction="sum", name="my_gce"),
        L.ActivePassive(L.GCE(q=0.4), L.AEL(a=3.0), alpha=2.0, beta=0.5, logit_bias=0.25),
        L.BiTempered(t1=0.5, t2=0.8, iterations=7),
        L.MAEStar(epsilon=0.5),
        L.NCEAGCE(alpha=10.0, beta=0.1, a=1.8, q=3.0),
    ]
    return built


@pytest.mark.parametrize("loss", _all_losses(), ids=lambda l: type(l).__name__)
def test_config_round_trip(loss, rng):
    config = keras.saving.serialize_keras_object(loss)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(loss)
    assert clone.get_config() == loss.get_config()
    assert clone.epsilon == loss.epsilon
    z = rng.normal(size=(8, 10)).astype("float32")
    y = rng.integers(0, 10, 8)
    np.testing.assert_allclose(float(clone(y, z)), float(loss(y, z)), rtol=1e-6)


def _model(seed=1):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: L.MAEStar(epsilon=0.7, num_classes=10),
        lambda: L.get("nce+agce", dataset="cifar100"),
        lambda: L.ActivePassive(L.NFL(gamma=1.0), "mae", alpha=1.0, beta=2.0),
        lambda: L.BiTempered(t1=0.8, t2=1.2),
    ],
    ids=["mae*", "nce+agce", "activepassive", "bitempered"],
)
def test_saved_model_reloads_predicts_and_trains_identically(make_loss, tmp_path, rng):
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 10, 32)
    model = _model()
    model.compile(loss=make_loss(), optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.loss) is type(model.loss)
    assert reloaded.loss.get_config() == model.loss.get_config()
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    a = model.train_on_batch(x, y)
    b = reloaded.train_on_batch(x, y)
    np.testing.assert_allclose(a, b, rtol=1e-5)
    for wa, wb in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7)


def test_logit_bias_layer_model_reloads(tmp_path, rng):
    inputs = keras.Input((6,))
    labels = keras.Input((), dtype="int32")
    logits = keras.layers.Dense(10)(inputs)
    model = keras.Model([inputs, labels], LogitBiasLayer(2.0)(logits, labels))
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = [l for l in reloaded.layers if isinstance(l, LogitBiasLayer)][0]
    assert layer.epsilon == 2.0
    x, y = rng.normal(size=(4, 6)).astype("float32"), np.array([1, 2, 3, 4])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded([x, y], training=True)),
        keras.ops.convert_to_numpy(model([x, y], training=True)),
        rtol=1e-6,
    )


# -- every loss x every kind of logit bias (issue 11) ------------------------------------
from keras_robust import schedules as S  # noqa: E402

BIASES = {
    "number": lambda: 1.25,
    "auto": lambda: "auto",
    "constant": lambda: S.Constant(0.75),
    "piecewise": lambda: S.Piecewise([2], [1.0, 0.5]),
    "cyclic": lambda: S.Cyclic([2.0, 1.0], 2),
    "webvision": S.webvision,
    "from_classes": lambda: S.FromClasses(10),
    "adaptive": lambda: S.AdaptiveEpsilon(2.0),
    "probability_decay": lambda: S.ProbabilityDecay(2.0),
}


def _biased(name, kind):
    key = "epsilon" if name == "mae*" else "logit_bias"
    return L.get(name, num_classes=10, **{key: BIASES[kind]()})


@pytest.mark.parametrize("name", L.names())
def test_every_loss_with_every_bias_round_trips_its_config(name, rng):
    z = rng.normal(size=(8, 10)).astype("float32")
    y = rng.integers(0, 10, 8)
    for kind in BIASES:
        loss = _biased(name, kind)
        config = keras.saving.serialize_keras_object(loss)
        for clone in (keras.saving.deserialize_keras_object(config), L.get(config)):
            assert type(clone) is type(loss) and clone.get_config() == loss.get_config(), kind
            assert clone.epsilon == loss.epsilon
            if loss.logit_bias_schedule is not None:
                assert clone.logit_bias_schedule == loss.logit_bias_schedule
            np.testing.assert_allclose(float(clone(y, z)), float(loss(y, z)), rtol=1e-6)


@pytest.mark.parametrize("i,name", list(enumerate(L.names())), ids=L.names())
def test_every_loss_with_a_bias_survives_model_save_and_load(i, name, tmp_path):
    kind = list(BIASES)[i % len(BIASES)]  # every kind of bias, over the losses
    model = _model()
    model.compile(loss=_biased(name, kind), optimizer="sgd")
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.loss.get_config() == model.loss.get_config()
    assert reloaded.loss.epsilon == model.loss.epsilon


def test_mae_star_with_a_schedule_saves_loads_and_continues_identically(tmp_path, rng):
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 10, 32)
    model = _model()
    model.compile(loss=L.MAEStar(epsilon=S.webvision()), optimizer=keras.optimizers.SGD(0.1))
    fit = dict(batch_size=16, verbose=0, shuffle=False)
    model.fit(x, y, epochs=1, callbacks=[S.EpsilonScheduler()], **fit)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.loss.logit_bias_schedule == S.webvision() and reloaded.loss.epsilon == pytest.approx(5.2)
    a = model.fit(x, y, initial_epoch=1, epochs=13, callbacks=[S.EpsilonScheduler()], **fit).history
    b = reloaded.fit(x, y, initial_epoch=1, epochs=13, callbacks=[S.EpsilonScheduler()], **fit).history
    assert a["epsilon"] == b["epsilon"] and b["epsilon"][-1] == 4.8
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    for wa, wb in zip(model.get_weights(), reloaded.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7)
