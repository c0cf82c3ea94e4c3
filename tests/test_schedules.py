"""Epsilon schedules and EpsilonScheduler: values, effect on the training loss on every backend, serialisation."""

import math

import keras
import numpy as np
import pytest

from keras_robust import schedules as S
from keras_robust.logit_bias import LogitBiasLayer, with_logit_bias
from keras_robust.losses import MAE, NCEMAE

K = 5
N = 32
DIM = 4


# -- independent reference formulas ------------------------------------------------
def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _biased_true_probability(logits, labels, eps):
    z = np.array(logits, dtype=np.float64)
    z[np.arange(len(labels)), labels] += eps
    return _softmax(z)[np.arange(len(labels)), labels]


def mae_reference(logits, labels, eps):
    """MAE = 2 (1 - a_k) with a_k the softmax probability of the biased true-class logit."""
    return float(np.mean(2.0 * (1.0 - _biased_true_probability(logits, labels, eps))))


def ce_reference(logits, labels, eps):
    return float(np.mean(-np.log(_biased_true_probability(logits, labels, eps))))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, DIM)).astype("float32")
    y = rng.integers(0, K, size=N).astype("int32")
    return x, y


def _dense_model(seed=1):
    """Dense(K) with weights drawn by NumPy: the same logits on every backend."""
    inputs = keras.Input((DIM,))
    outputs = keras.layers.Dense(K)(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    # a large kernel spreads the logits, so epsilon changes the loss clearly
    model.set_weights([rng.normal(size=(DIM, K)).astype("float32"), rng.normal(size=K).astype("float32")])
    return model


def _logits(model, x):
    return np.asarray(model.predict(x, verbose=0), dtype=np.float64)


# -- schedule values -----------------------------------------------------------------
def test_constant():
    s = S.Constant(2.5)
    assert [s(e) for e in range(4)] == [2.5] * 4
    assert isinstance(s(0), float)


def test_piecewise_boundary_is_first_epoch_of_new_value():
    s = S.Piecewise([3, 5], [1.0, 2.0, 0.5])
    assert [s(e) for e in range(8)] == [1.0, 1.0, 1.0, 2.0, 2.0, 0.5, 0.5, 0.5]


def test_cyclic_holds_last_value_until_period_ends():
    s = S.Cyclic([3.0, 1.0], 2, period=6)
    assert [s(e) for e in range(13)] == [3, 3, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 3]


def test_webvision_cycle_over_200_epochs():
    # Paper appendix 2: 5.2 for 11 epochs, then 4.8, ..., 2.3; restart at epoch 66.
    one_cycle = []
    for value in [5.2, 4.8, 4.3, 3.7, 3.0, 2.3]:
        one_cycle.extend([value] * 11)
    assert len(one_cycle) == 66
    expected = (one_cycle * 4)[:200]
    for schedule in (S.WEBVISION, S.webvision(), S.get("webvision")):
        assert [schedule(e) for e in range(200)] == expected
    assert S.WEBVISION(0) == 5.2 and S.WEBVISION(10) == 5.2 and S.WEBVISION(11) == 4.8
    assert S.WEBVISION(65) == 2.3 and S.WEBVISION(66) == 5.2 and S.WEBVISION(132) == 5.2
    assert S.WEBVISION(197) == 2.3 and S.WEBVISION(198) == 5.2


def test_get():
    assert S.get(None) is None
    assert S.get(1.5) == S.Constant(1.5)
    s = S.Piecewise([2], [1.0, 0.0])
    assert S.get(s) is s
    assert S.get(keras.saving.serialize_keras_object(s)) == s

    def fn(epoch):
        return 0.1 * epoch

    assert S.get(fn) is fn


def _mean_true_probability_mc(k, eps, std=1.0, samples=20000, seed=0):
    """<a_k> for i.i.d. N(0, std^2) logits, by Monte Carlo (the paper's Eq. 4 left-hand side)."""
    z = std * np.random.default_rng(seed).normal(size=(samples, k))
    z[:, 0] += eps
    return float(_softmax(z)[:, 0].mean())


def test_from_classes_solves_eq4():
    from keras_robust.calibration import LogitModel

    s = S.FromClasses(10, target=0.3)
    eps = s(0)
    assert s(7) == eps
    assert eps > 0
    assert abs(_mean_true_probability_mc(10, eps) - 0.3) < 0.01
    wide = S.FromClasses(10, target=0.3, logits=LogitModel(0.0, 2.0))
    assert abs(_mean_true_probability_mc(10, wide(0), std=2.0) - 0.3) < 0.01
    assert wide(0) > eps + 0.3  # wider logits need a larger bias
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(wide))
    assert again.logits == LogitModel(0.0, 2.0) and again(0) == wide(0)


# -- adaptive epsilon: mechanics --------------------------------------------------------
def _eps_star(target, p):
    # sigmoid(l + eps) = target with l = log(p / (1 - p))
    return math.log(target / (1 - target)) - math.log(p / (1 - p))


def test_adaptive_probability_sequence():
    s = S.AdaptiveEpsilon(3.0, target=0.15)
    observed = [0.05, 0.10, 0.12, 0.30, 0.01]
    got = [s.update(t, {"true_class_probability": p}) for t, p in enumerate(observed)]
    e1 = min(3.0, _eps_star(0.15, 0.05))  # 1.2098
    e2 = min(e1, _eps_star(0.15, 0.10))  # 0.4626
    e3 = min(e2, _eps_star(0.15, 0.12))
    expected = [e1, e2, e3, 0.0, 0.0]  # p = 0.3 > target: eps* < 0, clipped at 0; monotonic after
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert [s(t) for t in range(6)] == [3.0] + got
    assert abs(e1 - 1.2098) < 1e-3 and abs(e2 - 0.4626) < 1e-3


def test_adaptive_biased_and_mae_observations():
    # biased probability p' measured with eps_t: own logit = logit(p') - eps_t
    s = S.AdaptiveEpsilon(2.0, target=0.2, observed="biased_probability", monitor="tcp")
    e1 = s.update(0, {"tcp": 0.2})
    assert e1 == pytest.approx(2.0)  # on target: unchanged
    e2 = s.update(1, {"tcp": 0.5})
    assert e2 == pytest.approx(2.0 + math.log(0.2 / 0.8))  # logit(0.2) - (logit(0.5) - 2)
    # MAE loss 2 (1 - a): a = 0.6 -> loss 0.8
    m = S.AdaptiveEpsilon(2.0, target=0.2, observed="mae_loss", monitor="loss")
    assert m.update(0, {"loss": 0.8}) == pytest.approx(2.0 + math.log(0.25) - math.log(1.5))


def test_adaptive_rate_bounds_and_non_monotonic():
    s = S.AdaptiveEpsilon(1.0, target=0.5, rate=0.5, monotonic=False, min_value=-1.0, max_value=2.0)
    # p = 0.5 -> eps* = 0 -> halfway: 0.5
    assert s.update(0, {"true_class_probability": 0.5}) == pytest.approx(0.5)
    # p small -> eps* = logit(.5) - logit(.01) = 4.595 -> halfway 2.547 -> capped at 2
    assert s.update(1, {"true_class_probability": 0.01}) == pytest.approx(2.0)
    # p large -> eps* = -4.595 -> halfway -1.297 -> clipped at -1
    assert s.update(2, {"true_class_probability": 0.99}) == pytest.approx(-1.0)
    assert [s(t) for t in range(4)] == pytest.approx([1.0, 0.5, 2.0, -1.0])
    s.reset()
    assert s(3) == 1.0


def test_adaptive_in_fit_follows_logged_probability():
    x, y = _data()
    base = _dense_model()
    train = with_logit_bias(base, 0.0)
    schedule = S.AdaptiveEpsilon(2.0, target=0.3, observed="biased_probability")
    train.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[S.TrueClassProbability()],
    )
    history = train.fit((x, y), y, epochs=3, batch_size=8, verbose=0, callbacks=[S.EpsilonScheduler(schedule)])
    logits = _logits(base, x)
    eps = [2.0]
    for t in range(3):
        p = float(np.mean(_biased_true_probability(logits, y, eps[t])))
        assert history.history["true_class_probability"][t] == pytest.approx(p, abs=1e-5)
        eps.append(min(eps[t], max(0.0, _eps_star(0.3, p) + eps[t])))
    np.testing.assert_allclose(history.history["epsilon"], eps[:3], atol=1e-5)
    assert eps[2] < eps[1] < eps[0]


# -- probability decay ----------------------------------------------------------------
def test_probability_decay_sequence():
    s = S.ProbabilityDecay(4.0, stop=0.5)
    observed = [0.05, 0.25, 0.10, 0.6, 0.2]
    got = [s.update(t, {"true_class_probability": p}) for t, p in enumerate(observed)]
    # 4 (1 - p / 0.5): 3.6, 2.0; then 3.2 would rise: held at 2.0; p > stop: 0, and 0 after
    np.testing.assert_allclose(got, [3.6, 2.0, 2.0, 0.0, 0.0], rtol=1e-12, atol=1e-12)
    assert [s(t) for t in range(7)] == [4.0] + got + [0.0]
    s.update(1, {"true_class_probability": 0.0})  # re-observing epoch 1 drops what followed it
    assert s.history == pytest.approx([4.0, 3.6, 3.6])
    s.reset()
    assert s.history == [4.0]


def test_probability_decay_unbiases_a_biased_observation():
    # A LogitBiasLayer model's metric sees sigmoid(l + eps); one-logit mean field: p = sigmoid(logit(p') - eps).
    s = S.ProbabilityDecay(2.0, stop=0.5, observed="biased_probability", monitor="tcp")
    own = 0.2
    biased = 1 / (1 + math.exp(-(math.log(own / (1 - own)) + 2.0)))
    assert s.update(0, {"tcp": biased}) == pytest.approx(2.0 * (1 - own / 0.5))


def test_probability_decay_bad_observations():
    s = S.ProbabilityDecay(1.0)
    with pytest.raises(ValueError, match="ProbabilityDecay reads logs\\['true_class_probability'\\]"):
        s.update(0, {"loss": 0.3})
    with pytest.raises(ValueError, match="probability lies in"):
        s.update(0, {"true_class_probability": 1.5})
    with pytest.raises(ValueError, match="finite"):
        s.update(0, {"true_class_probability": float("nan")})


def test_probability_decay_in_fit_follows_the_logged_probability():
    # A loss's logit bias (the model outputs unbiased logits); SGD(0): the logits stay fixed, so the
    # logged probability is the same every epoch and the rule can be checked against NumPy.
    x, y = _data()
    model = _dense_model()
    p = float(np.mean(_biased_true_probability(_logits(model, x), y, 0.0)))
    schedule = S.ProbabilityDecay(3.0, stop=min(1.0, 2.5 * p))  # epsilon 3 (1 - 1 / 2.5) = 1.8 from epoch 1
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=MAE(logit_bias=0.0), metrics=[S.TrueClassProbability()])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[S.EpsilonScheduler(schedule)])
    assert history.history["true_class_probability"] == pytest.approx([p] * 3, abs=1e-5)
    want = 3.0 * (1 - p / schedule.stop)
    np.testing.assert_allclose(history.history["epsilon"], [3.0, want, want], atol=1e-5)
    assert 0.5 < want < 2.5


def test_probability_decay_state_survives_serialisation():
    schedule = S.ProbabilityDecay(3.0)
    schedule.update(0, {"true_class_probability": 0.2})
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert clone.history == schedule.history == pytest.approx([3.0, 1.8])
    with pytest.raises(ValueError, match="`history` must start at `initial`"):
        S.ProbabilityDecay.from_config({**schedule.get_config(), "history": [1.0, 0.5]})


# -- the key test: the loss used in training follows epsilon ---------------------------
def test_loss_logit_bias_changes_training_loss():
    x, y = _data()
    model = _dense_model()
    loss = MAE(logit_bias=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    schedule = S.Piecewise([1, 2], [0.0, 3.0, -1.0])
    history = model.fit(
        x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x, y), callbacks=[S.EpsilonScheduler(schedule)]
    )
    logits = _logits(model, x)
    expected = [mae_reference(logits, y, e) for e in (0.0, 3.0, -1.0)]
    assert len({round(v, 3) for v in expected}) == 3
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5, atol=1e-6)
    # the loss applies its bias in evaluation too: validation follows epsilon as well
    np.testing.assert_allclose(history.history["val_loss"], expected, rtol=1e-5, atol=1e-6)
    assert history.history["epsilon"] == [0.0, 3.0, -1.0]
    assert loss.epsilon == -1.0


def test_loss_own_schedule_and_second_fit():
    """schedule=None follows the loss's own schedule; a later fit does not reuse a stale step."""
    x, y = _data()
    model = _dense_model()
    loss = NCEMAE(logit_bias=S.Piecewise([1], [2.0, 0.5]))
    assert loss.epsilon == 2.0
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    logits = _logits(model, x)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[S.EpsilonScheduler()])
    assert history.history["epsilon"] == [2.0, 0.5]
    ref = NCEMAE()  # same loss without bias, fed biased logits computed here
    expected = []
    for e in (2.0, 0.5):
        z = logits.copy()
        z[np.arange(N), y] += e
        expected.append(float(keras.ops.convert_to_numpy(ref(y, z.astype("float32")))))
    assert abs(expected[0] - expected[1]) > 1e-2
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5, atol=1e-6)
    # second fit with another schedule: the compiled step must see the new epsilon
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[S.EpsilonScheduler(1.25)])
    z = logits.copy()
    z[np.arange(N), y] += 1.25
    again = float(keras.ops.convert_to_numpy(ref(y, z.astype("float32"))))
    np.testing.assert_allclose(history.history["loss"], [again], rtol=1e-5, atol=1e-6)


def test_logit_bias_layer_changes_training_loss():
    x, y = _data()
    base = _dense_model()
    train = with_logit_bias(base, 0.0)
    train.compile(
        optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    schedule = S.Cyclic([1.0, 4.0], 1)
    history = train.fit((x, y), y, epochs=3, batch_size=8, verbose=0, callbacks=[S.EpsilonScheduler(schedule)])
    logits = _logits(base, x)
    expected = [ce_reference(logits, y, e) for e in (1.0, 4.0, 1.0)]
    assert abs(expected[0] - expected[1]) > 0.1
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5, atol=1e-6)
    assert history.history["epsilon"] == [1.0, 4.0, 1.0]
    layer = train.get_layer("logit_bias")
    assert isinstance(layer, LogitBiasLayer) and layer.epsilon == 1.0


def test_explicit_targets_and_plain_callable():
    x, y = _data()
    base = _dense_model()
    train = with_logit_bias(base, 0.0)
    loss = MAE(logit_bias=0.0)
    train.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    layer = train.get_layer("logit_bias")

    def schedule(epoch):  # a plain function, like LearningRateScheduler's
        return 0.5 + epoch

    history = train.fit(
        (x, y), y, epochs=2, batch_size=16, verbose=0, callbacks=[S.EpsilonScheduler(schedule, targets=[loss, layer])]
    )
    logits = _logits(base, x)
    # both apply their bias: the true-class logit moves by 2 * epsilon
    expected = [mae_reference(logits, y, 2 * e) for e in (0.5, 1.5)]
    np.testing.assert_allclose(history.history["loss"], expected, rtol=1e-5, atol=1e-6)
    assert history.history["epsilon"] == [0.5, 1.5]


def test_different_epsilons_are_logged_per_target():
    x, y = _data()
    base = _dense_model()
    train = with_logit_bias(base, 0.0)
    loss = MAE(logit_bias=S.Constant(0.25))
    train.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    history = train.fit((x, y), y, epochs=1, batch_size=16, verbose=0, callbacks=[S.EpsilonScheduler()])
    # schedule=None: the layer has no schedule of its own and keeps epsilon 0
    assert history.history["epsilon"] == [0.25]
    assert train.get_layer("logit_bias").epsilon == 0.0


# -- serialisation ------------------------------------------------------------------
@pytest.mark.parametrize(
    "schedule",
    [
        S.Constant(1.5),
        S.Piecewise([2, 5], [3.0, 2.0, 1.0]),
        S.Cyclic([2.0, 1.0], 3, period=10),
        S.WEBVISION,
        S.FromClasses(100, target=0.2),
        S.AdaptiveEpsilon(4.0, target=0.3, monitor="m", observed="mae_loss", rate=0.5, max_value=5.0),
        S.ProbabilityDecay(3.0, stop=0.4, monitor="m", observed="biased_probability"),
    ],
    ids=lambda s: type(s).__name__,
)
def test_schedule_round_trip(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"] == f"keras_robust>{type(schedule).__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    if not isinstance(schedule, S.FromClasses):
        assert [restored(e) for e in range(80)] == [schedule(e) for e in range(80)]


def test_scheduler_and_loss_round_trip():
    cb = S.EpsilonScheduler(S.WEBVISION, verbose=1)
    restored = S.EpsilonScheduler.from_config(cb.get_config())
    assert restored.schedule == S.WEBVISION and restored.verbose == 1
    assert S.EpsilonScheduler.from_config(S.EpsilonScheduler().get_config()).schedule is None
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cb)).schedule == S.WEBVISION
    loss = MAE(logit_bias=S.webvision())
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert again.logit_bias_schedule == S.WEBVISION and again.epsilon == pytest.approx(5.2)
    metric = S.TrueClassProbability()
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric)).name == metric.name


def test_true_class_probability_metric():
    logits = np.array([[0.0, math.log(3.0)], [2.0, 0.0]], dtype="float32")
    m = S.TrueClassProbability()
    m.update_state(np.array([1, 1]), logits)  # 0.75 and 1/(1+e^2)
    assert float(m.result()) == pytest.approx((0.75 + 1 / (1 + math.e**2)) / 2, abs=1e-6)


# -- bad inputs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: S.Constant(float("nan")), "value"),
        (lambda: S.Constant("3"), "value"),
        (lambda: S.Piecewise([2, 2], [1.0, 2.0, 3.0]), "strictly increasing"),
        (lambda: S.Piecewise([0], [1.0, 2.0]), "boundaries\\[0\\]"),
        (lambda: S.Piecewise([1.5], [1.0, 2.0]), "boundaries\\[0\\]"),
        (lambda: S.Piecewise([1, 2], [1.0, 2.0]), "len\\(boundaries\\) \\+ 1"),
        (lambda: S.Piecewise([], [1.0]), "boundaries"),
        (lambda: S.Piecewise([3], [1.0, float("inf")]), "values\\[1\\]"),
        (lambda: S.Cyclic([], 2), "values"),
        (lambda: S.Cyclic([1.0], 0), "epochs_per_value"),
        (lambda: S.Cyclic([1.0, 2.0], 3, period=5), "period"),
        (lambda: S.Cyclic([1.0], 1, period=0), "period"),
        (lambda: S.FromClasses(1), "num_classes"),
        (lambda: S.FromClasses(10, target=1.0), "target"),
        (lambda: S.FromClasses(10, logits=(0.0, 1.0)), "logits"),
        (lambda: S.AdaptiveEpsilon(1.0, target=0.0), "target"),
        (lambda: S.AdaptiveEpsilon(1.0, observed="loss"), "observed"),
        (lambda: S.AdaptiveEpsilon(1.0, rate=0.0), "rate"),
        (lambda: S.AdaptiveEpsilon(1.0, monitor=""), "monitor"),
        (lambda: S.AdaptiveEpsilon(1.0, min_value=2.0), "initial"),
        (lambda: S.AdaptiveEpsilon(1.0, max_value=-1.0), "max_value"),
        (lambda: S.AdaptiveEpsilon(1.0, monotonic=1), "monotonic"),
        (lambda: S.ProbabilityDecay(-1.0), "initial"),
        (lambda: S.ProbabilityDecay(1e9), "initial"),
        (lambda: S.ProbabilityDecay(1.0, stop=0.0), "stop"),
        (lambda: S.ProbabilityDecay(1.0, stop=1.5), "stop"),
        (lambda: S.ProbabilityDecay(1.0, stop=float("nan")), "stop"),
        (lambda: S.ProbabilityDecay(1.0, monitor=""), "monitor"),
        (lambda: S.ProbabilityDecay(1.0, observed="mae_loss"), "observed"),
        (lambda: S.EpsilonScheduler(S.WEBVISION, targets=[MAE()]), "no logit bias"),
        (lambda: S.EpsilonScheduler(S.WEBVISION, targets=[]), "targets"),
        (lambda: S.EpsilonScheduler(S.WEBVISION, verbose=3), "verbose"),
        (lambda: S.EpsilonScheduler("cosine"), "cosine"),
    ],
)
def test_bad_arguments(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_bad_types():
    with pytest.raises(TypeError, match="boundaries"):
        S.Piecewise(3, [1.0, 2.0])
    with pytest.raises(TypeError, match="schedule"):
        S.EpsilonScheduler(object())
    with pytest.raises(ValueError, match="epoch"):
        S.WEBVISION(-1)
    with pytest.raises(ValueError, match="epoch"):
        S.Constant(1.0)(1.5)


def test_adaptive_bad_observations():
    s = S.AdaptiveEpsilon(1.0)
    with pytest.raises(ValueError, match="true_class_probability"):
        s.update(0, {"loss": 0.3})
    with pytest.raises(ValueError, match="probability lies in"):
        s.update(0, {"true_class_probability": 1.5})
    m = S.AdaptiveEpsilon(1.0, observed="mae_loss", monitor="loss")
    with pytest.raises(ValueError, match="MAE loss"):
        m.update(0, {"loss": 2.5})


def _compiled(loss):
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    return model


def test_scheduler_errors_in_fit():
    x, y = _data()
    # no logit bias anywhere
    with pytest.raises(ValueError, match="found no logit bias"):
        _compiled(MAE()).fit(x, y, epochs=1, verbose=0, callbacks=[S.EpsilonScheduler(1.0)])
    # a schedule that returns nonsense
    with pytest.raises(ValueError, match="epoch 0"):
        _compiled(MAE(logit_bias=1.0)).fit(
            x, y, epochs=1, verbose=0, callbacks=[S.EpsilonScheduler(lambda e: float("nan"))]
        )
    with pytest.raises(TypeError, match="expected a"):
        _compiled(MAE(logit_bias=1.0)).fit(x, y, epochs=1, verbose=0, callbacks=[S.EpsilonScheduler(lambda e: "x")])


class _StepRecorder(keras.callbacks.Callback):
    """Records the model's train function at each epoch start (after the scheduler ran)."""

    def __init__(self):
        super().__init__()
        self.functions = []

    def on_epoch_begin(self, epoch, logs=None):
        self.functions.append(self.model.train_function)


def test_epsilon_is_model_state_no_step_is_rebuilt(capsys):
    x, y = _data()
    model = _compiled(MAE(logit_bias=1.0))
    recorder = _StepRecorder()
    schedule = S.Piecewise([2], [1.0, 2.0])
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0,
                        callbacks=[S.EpsilonScheduler(schedule, verbose=1), recorder])
    f = recorder.functions
    assert f[0] is f[1] is f[2] is f[3]  # every backend: epsilon is an input of the step
    logits = _logits(model, x)  # lr 0: the model is frozen, so each epoch's loss is its epsilon's
    np.testing.assert_allclose(history.history["loss"], [mae_reference(logits, y, e) for e in (1, 1, 2, 2)],
                               rtol=1e-5)
    out = capsys.readouterr().out
    assert "Epoch 1: EpsilonScheduler setting epsilon: mae=1" in out
    assert "Epoch 3: EpsilonScheduler setting epsilon: mae=2" in out
    # the scheduler detaches epsilon after fit: saved weights are the model's own
    assert [v.path for v in model.non_trainable_variables if "logit_bias" in v.path] == []
    # later fits (with validation) at another epsilon: right loss
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), callbacks=[S.EpsilonScheduler(0.5)])
    np.testing.assert_allclose(history.history["loss"], [mae_reference(logits, y, 0.5)], rtol=1e-5)
    np.testing.assert_allclose(history.history["val_loss"], [mae_reference(logits, y, 0.5)], rtol=1e-5)


def test_hand_set_epsilon_reaches_training_with_the_scheduler_as_carrier():
    x, y = _data()
    loss = MAE(logit_bias=1.0)
    model = _compiled(loss)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[S.EpsilonScheduler()])  # no schedule: a carrier
    loss.epsilon = 6.0  # by hand, between two fits
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[S.EpsilonScheduler()])
    eager = float(keras.ops.convert_to_numpy(loss(y, _logits(model, x))))
    assert history.history["loss"][0] == pytest.approx(eager, rel=1e-5)
    assert eager == pytest.approx(mae_reference(_logits(model, x), y, 6.0), rel=1e-5)
    assert history.history["epsilon"] == [6.0]


def test_hand_set_epsilon_without_scheduler():
    x, y = _data()
    loss = MAE(logit_bias=1.0)
    model = _compiled(loss)
    model.fit(x, y, epochs=1, verbose=0)
    if keras.backend.backend() == "jax":  # the step holds 1.0 as a constant: the change is announced
        with pytest.warns(UserWarning, match="EpsilonScheduler"):
            loss.epsilon = 6.0
    else:  # TF's graph and torch read the variable: the change takes effect
        loss.epsilon = 6.0
        history = model.fit(x, y, epochs=1, verbose=0)
        assert history.history["loss"][0] == pytest.approx(mae_reference(_logits(model, x), y, 6.0), rel=1e-5)


def test_find_targets_in_list_dict_and_nested_models():
    a, b = MAE(logit_bias=1.0), MAE(logit_bias=S.WEBVISION)
    inputs = keras.Input((DIM,))
    labels = keras.Input((), dtype="int32")
    inner = keras.Model([inputs, labels], LogitBiasLayer(0.5, name="inner_bias")(keras.layers.Dense(K)(inputs), labels))
    out1 = keras.layers.Identity(name="o1")(inner([inputs, labels]))
    out2 = keras.layers.Dense(K, name="o2")(inputs)
    model = keras.Model([inputs, labels], [out1, out2])
    cb = S.EpsilonScheduler()
    for loss in ([a, MAE()], {"o1": a, "o2": "mse"}, [a, b], a):
        model.compile(loss=loss)
        found = cb.find_targets(model)
        expected_losses = [t for t in (a, b) if any(t is x for x in keras.tree.flatten(loss))]
        assert [t for t in found if not isinstance(t, LogitBiasLayer)] == expected_losses
        assert [t.name for t in found if isinstance(t, LogitBiasLayer)] == ["inner_bias"]


def test_targets_with_different_epsilons_log_each():
    a, b = MAE(logit_bias=S.Constant(1.0)), MAE(logit_bias=S.Constant(2.0))
    c = NCEMAE(logit_bias=S.Constant(3.0))
    inputs = keras.Input((DIM,))
    model = keras.Model(inputs, [keras.layers.Dense(K)(inputs) for _ in range(3)])
    model.compile(loss=[a, b, c])
    cb = S.EpsilonScheduler()
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    logs = {}
    cb.on_epoch_end(0, logs)
    assert logs == {"epsilon": 1.0, "epsilon_mae_0": 1.0, "epsilon_mae_1": 2.0, "epsilon_" + c.name: 3.0}


# -- issue 11: an unfollowed schedule warns; saved state ------------------------------
def _fit_warnings(loss, callbacks):
    import warnings

    x, y = _data()
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        model.evaluate(x, y, verbose=0)
    return [w for w in caught if "EpsilonScheduler" in str(w.message)]


def test_scheduled_loss_fitted_without_scheduler_warns_once():
    found = _fit_warnings(MAE(logit_bias=S.Piecewise([1], [2.0, 0.5])), [])
    assert len(found) == 1 and issubclass(found[0].category, UserWarning)
    assert "logit_bias=<schedule>" in str(found[0].message)


def test_scheduled_loss_with_scheduler_and_plain_bias_do_not_warn():
    assert _fit_warnings(MAE(logit_bias=S.Piecewise([1], [2.0, 0.5])), [S.EpsilonScheduler()]) == []
    assert _fit_warnings(MAE(logit_bias=1.0), []) == []


def test_reloaded_scheduled_loss_keeps_the_epsilon_in_use(tmp_path):
    x, y = _data()
    model = _dense_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=MAE(logit_bias=S.Piecewise([1], [2.0, 0.5])))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[S.EpsilonScheduler()])
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.loss.epsilon == 0.5 and reloaded.loss.logit_bias_schedule(0) == 2.0  # not schedule(0)
    np.testing.assert_allclose(reloaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)


def test_adaptive_epsilon_state_survives_serialisation():
    schedule = S.AdaptiveEpsilon(3.0, observed="biased_probability")
    schedule.update(0, {"true_class_probability": 0.5})
    schedule.update(1, {"true_class_probability": 0.6})
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert clone.history == schedule.history and len(clone.history) == 3
    assert clone(2) == schedule(2) < 3.0
    loss = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(MAE(logit_bias=schedule)))
    assert loss.logit_bias_schedule.history == schedule.history
    with pytest.raises(ValueError, match="`history` must start at `initial`"):
        S.AdaptiveEpsilon.from_config({**schedule.get_config(), "history": [1.0, 0.5]})
