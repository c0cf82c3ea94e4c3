"""The logit bias over training: schedules ``epoch -> epsilon`` and `EpsilonScheduler`.

A schedule is any callable ``epoch -> epsilon`` (epochs count from 0, as in
`keras.callbacks.LearningRateScheduler`). The classes here serialise:

    Constant(3.0)                        # one epsilon throughout
    Piecewise([10, 20], [3.0, 2.0, 1.0]) # change at epochs 10 and 20
    Cyclic([5.2, 4.8, ...], 11)          # cycle through values
    WEBVISION                            # the paper's WebVision schedule (appendix 2)
    FromClasses(1000)                    # epsilon(K) of Eq. 4, constant
    AdaptiveEpsilon(5.2)                 # experimental: follows the training state

`EpsilonScheduler` is the callback that applies a schedule at the start of
every epoch to the losses' ``logit_bias`` and to `LogitBiasLayer`s, on every
backend, and logs ``epsilon``::

    loss = kr.losses.MAE(logit_bias=kr.schedules.WEBVISION)
    model.compile(loss=loss, optimizer="sgd")
    model.fit(x, y, epochs=198, callbacks=[kr.schedules.EpsilonScheduler()])

How the new epsilon reaches the compiled step: epsilon is model state, the way
``optimizer.learning_rate`` is. A `LogitBiasLayer`'s epsilon is a
non-trainable weight of the model. A loss's epsilon is a `keras.Variable` of
the loss; while the scheduler is in a `fit` (or `evaluate`) it assigns that
variable to the model as an attribute (Keras tracks it: it becomes one of
``model.non_trainable_variables``), so every backend's compiled step receives
its current value as an input, JAX's ``jit`` included, and nothing is
retraced; at the end of the call it is detached again, so saved weights do not
change. ``EpsilonScheduler()`` without any schedule is such a carrier only:
then a hand-set ``loss.epsilon`` reaches the JAX step too. Without the
scheduler, a JAX step holds a loss's epsilon as the constant it traced, and
the loss warns when it is changed after that.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_robust._checks import check_finite, check_int, check_logit_bias
from keras_robust.logit_bias import LogitBiasLayer
from keras_robust.losses.base import RobustLoss

register = keras.saving.register_keras_serializable(package="keras_robust")

WEBVISION_VALUES = (5.2, 4.8, 4.3, 3.7, 3.0, 2.3)
WEBVISION_EPOCHS_PER_VALUE = 11
WEBVISION_PERIOD = 66


# -- argument checks -------------------------------------------------------------
def _sequence(name, value):
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise TypeError(f"`{name}` must be a list of numbers, got {value!r}.")
    value = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
    if not value:
        raise ValueError(f"`{name}` must not be empty.")
    return value


def _check_epoch(epoch):
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
        raise ValueError(f"`epoch` must be an integer >= 0, got {epoch!r}.")
    return int(epoch)


def epsilon_value(value, source="schedule", epoch=None):
    """``value`` (a Python, NumPy or backend scalar) as a finite float, or a clear error."""
    where = f" at epoch {epoch}" if epoch is not None else ""
    if not isinstance(value, numbers.Real):
        try:
            array = np.asarray(ops.convert_to_numpy(value))
        except Exception as error:  # noqa: BLE001 - any conversion failure is the caller's bad value
            raise TypeError(f"The {source} returned {value!r}{where}; expected a number (epsilon).") from error
        if array.shape != () or not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"The {source} returned {value!r}{where}; expected a scalar number (epsilon).")
        value = array.item()
    if isinstance(value, bool) or not math.isfinite(float(value)):
        raise ValueError(f"The {source} returned {value!r}{where}; epsilon must be a finite number.")
    return float(value)


# -- schedules --------------------------------------------------------------------
@register
class EpsilonSchedule:
    """Base class: ``schedule(epoch) -> epsilon`` (a float), serialisable.

    Subclasses implement ``value(epoch)`` and ``get_config()``. A schedule
    driven by the training state also implements ``update(epoch, logs)``,
    which `EpsilonScheduler` calls at the end of every epoch.
    """

    def __call__(self, epoch):
        return float(self.value(_check_epoch(epoch)))

    def value(self, epoch):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


@register
class Constant(EpsilonSchedule):
    """The same ``epsilon`` at every epoch (the paper's MAE*, Sec. 3.2).

    Args:
        value: epsilon, a finite number.
    """

    def __init__(self, value):
        self.constant = check_logit_bias("value", value)

    def value(self, epoch):
        return self.constant

    def get_config(self):
        return {"value": self.constant}


@register
class Piecewise(EpsilonSchedule):
    """Piecewise-constant in the epoch.

    ``values[0]`` for ``epoch < boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] <= epoch < boundaries[i]``, ``values[-1]`` from
    ``boundaries[-1]`` on: a boundary is the first epoch of its new value.

    Args:
        boundaries: strictly increasing epochs ``>= 1``.
        values: ``len(boundaries) + 1`` finite numbers.
    """

    def __init__(self, boundaries, values):
        boundaries = _sequence("boundaries", boundaries)
        values = _sequence("values", values)
        self.boundaries = [check_int(f"boundaries[{i}]", b, 1) for i, b in enumerate(boundaries)]
        for i in range(1, len(self.boundaries)):
            if self.boundaries[i] <= self.boundaries[i - 1]:
                raise ValueError(f"`boundaries` must be strictly increasing, got {self.boundaries!r}.")
        self.values = [check_logit_bias(f"values[{i}]", v) for i, v in enumerate(values)]
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"`values` must have len(boundaries) + 1 = {len(self.boundaries) + 1} entries, "
                f"got {len(self.values)}: {self.values!r}."
            )

    def value(self, epoch):
        return self.values[sum(epoch >= b for b in self.boundaries)]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


@register
class Cyclic(EpsilonSchedule):
    """``values`` in turn, ``epochs_per_value`` epochs each, restarting every ``period`` epochs.

    Within a cycle, epoch ``e`` (counted from the cycle's start) gets
    ``values[e // epochs_per_value]``, and the last value is held until the
    period ends. The paper's WebVision schedule (appendix 2) is
    ``Cyclic([5.2, 4.8, 4.3, 3.7, 3.0, 2.3], 11, period=66)``: see `webvision()`.

    Args:
        values: finite numbers, in order.
        epochs_per_value: integer >= 1.
        period: epochs per cycle, an integer ``>= len(values) *
            epochs_per_value``; default exactly that.
    """

    def __init__(self, values, epochs_per_value, period=None):
        self.values = [check_logit_bias(f"values[{i}]", v) for i, v in enumerate(_sequence("values", values))]
        self.epochs_per_value = check_int("epochs_per_value", epochs_per_value, 1)
        span = len(self.values) * self.epochs_per_value
        if period is None:
            period = span
        self.period = check_int("period", period, 1)
        if self.period < span:
            raise ValueError(
                f"`period`={self.period} is shorter than len(values) * epochs_per_value = {span}: "
                "the last values would never be used."
            )

    def value(self, epoch):
        index = (epoch % self.period) // self.epochs_per_value
        return self.values[min(index, len(self.values) - 1)]

    def get_config(self):
        return {"values": list(self.values), "epochs_per_value": self.epochs_per_value, "period": self.period}


def webvision():
    """The paper's cyclic WebVision schedule (appendix 2).

    epsilon = 5.2, 4.8, 4.3, 3.7, 3.0, 2.3, eleven epochs each, restarting
    every 66 epochs (where the paper's learning rate drops), for 198 epochs.
    """
    return Cyclic(WEBVISION_VALUES, WEBVISION_EPOCHS_PER_VALUE, period=WEBVISION_PERIOD)


WEBVISION = webvision()


@register
class FromClasses(EpsilonSchedule):
    """A constant ``epsilon(K)``: the solution of the paper's Eq. 4.

    ``<a_k> = target`` for i.i.d. Gaussian logits at initialisation (N(0, 1)
    by default, as in the paper), computed by
    `keras_robust.calibration.epsilon_for_classes` on first use and cached.

    Args:
        num_classes: ``K >= 2``.
        target: ``C`` of Eq. 4 in (0, 1); the paper uses 0.15.
        logits: a `keras_robust.calibration.LogitModel` (or its config), e.g.
            measured from the network with ``measure_logits``; None: N(0, 1).
    """

    def __init__(self, num_classes, target=0.15, logits=None):
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.target = check_finite("target", target)
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"`target` must lie in (0, 1), got {target!r}.")
        if isinstance(logits, dict):
            logits = keras.saving.deserialize_keras_object(logits)
        if logits is not None:
            from keras_robust.calibration import LogitModel

            if not isinstance(logits, LogitModel):
                raise TypeError(f"`logits` must be a keras_robust.calibration.LogitModel or None, got {logits!r}.")
        self.logits = logits
        self._epsilon = None

    def value(self, epoch):
        if self._epsilon is None:
            from keras_robust.calibration import epsilon_for_classes

            self._epsilon = epsilon_value(
                epsilon_for_classes(self.num_classes, target=self.target, logits=self.logits), "calibration solver"
            )
        return self._epsilon

    def get_config(self):
        logits = None if self.logits is None else keras.saving.serialize_keras_object(self.logits)
        return {"num_classes": self.num_classes, "target": self.target, "logits": logits}


def _logit(p):
    return math.log(p) - math.log1p(-p)


@register
class AdaptiveEpsilon(EpsilonSchedule):
    """Experimental: epsilon follows the measured mean true-class probability.

    Beyond the paper, after its outlook (appendix 2: "a dynamically tuned
    epsilon could further improve performance"). Eq. 4 chooses epsilon so the
    mean true-class probability *with* the bias is ``C``; as the network
    learns, less bias is needed. At the end of epoch ``t`` this schedule reads
    the mean true-class probability ``p`` of the training batches from
    ``logs[monitor]``, estimates the network's own (unbiased) true-class
    logit odds ``l`` in a one-logit mean-field approximation, re-solves
    ``sigmoid(l + epsilon*) = target`` and steps towards it::

        l          = logit(p)                 observed="probability" (no bias in p)
        l          = logit(p) - eps_t         observed="biased_probability"
        l          = logit(1 - loss/2) - eps_t   observed="mae_loss"
        eps*       = logit(target) - l
        eps_{t+1}  = clip((1 - rate) * eps_t + rate * eps*, min_value, max_value)
        eps_{t+1}  = min(eps_{t+1}, eps_t)    if monotonic

    ``observed="probability"`` fits a `TrueClassProbability` metric on the
    logits of a model trained with a loss's ``logit_bias`` (the model outputs
    unbiased logits); ``"biased_probability"`` the same metric on a
    `LogitBiasLayer` model's training output; ``"mae_loss"`` the logged
    ``loss`` of a plain MAE (``2 (1 - a_k)``, mean over the batch, no other
    loss terms). The mean-field step is exact for one example and only
    approximate for a spread of logits (the mean of sigmoids is not the sigmoid
    of the mean): at initialisation with epsilon from Eq. 4 and
    ``observed="biased_probability"`` it keeps epsilon where it is
    (``p = target`` gives ``eps* = eps_t``).

    Args:
        initial: epsilon of epoch 0.
        target: ``C`` in (0, 1), the mean biased true-class probability aimed at.
        monitor: the key of ``logs`` to read.
        observed: ``"probability"``, ``"biased_probability"`` or ``"mae_loss"``.
        rate: step in (0, 1]; 1 jumps to ``eps*``.
        min_value, max_value: bounds on epsilon (``max_value=None``: none).
        monotonic: if True (default) epsilon never increases.
    """

    OBSERVED = ("probability", "biased_probability", "mae_loss")

    def __init__(
        self,
        initial,
        target=0.15,
        monitor="true_class_probability",
        observed="probability",
        rate=1.0,
        min_value=0.0,
        max_value=None,
        monotonic=True,
    ):
        self.initial = check_logit_bias("initial", initial)
        self.target = check_finite("target", target)
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"`target` must lie in (0, 1), got {target!r}.")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"`monitor` must be a non-empty string (a key of the logs), got {monitor!r}.")
        self.monitor = monitor
        if observed not in self.OBSERVED:
            raise ValueError(f"`observed` must be one of {self.OBSERVED}, got {observed!r}.")
        self.observed = observed
        self.rate = check_finite("rate", rate)
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"`rate` must lie in (0, 1], got {rate!r}.")
        self.min_value = check_finite("min_value", min_value)
        self.max_value = None if max_value is None else check_finite("max_value", max_value)
        if self.max_value is not None and self.max_value < self.min_value:
            raise ValueError(f"`max_value`={max_value!r} is below `min_value`={min_value!r}.")
        if not self.min_value <= self.initial <= (math.inf if self.max_value is None else self.max_value):
            raise ValueError(
                f"`initial`={initial!r} lies outside [min_value, max_value] = [{min_value!r}, {max_value!r}]."
            )
        if not isinstance(monotonic, bool):
            raise ValueError(f"`monotonic` must be True or False, got {monotonic!r}.")
        self.monotonic = monotonic
        self.reset()

    def reset(self):
        """Forget the training state: epsilon is ``initial`` again."""
        self.history = [self.initial]  # history[t] = epsilon of epoch t

    def value(self, epoch):
        return self.history[min(epoch, len(self.history) - 1)]

    def next_value(self, epsilon, observation):
        """The epsilon that follows ``epsilon`` after observing ``observation``."""
        observation = epsilon_value(observation, f"logs[{self.monitor!r}]")
        if self.observed == "mae_loss":
            if not 0.0 <= observation <= 2.0:
                raise ValueError(f"An MAE loss lies in [0, 2], got logs[{self.monitor!r}] = {observation!r}.")
            p = 1.0 - observation / 2.0
        else:
            if not 0.0 <= observation <= 1.0:
                raise ValueError(f"A probability lies in [0, 1], got logs[{self.monitor!r}] = {observation!r}.")
            p = observation
        p = min(max(p, 1e-7), 1.0 - 1e-7)
        own_logit = _logit(p) - (0.0 if self.observed == "probability" else epsilon)
        solved = _logit(self.target) - own_logit
        new = (1.0 - self.rate) * epsilon + self.rate * solved
        new = max(new, self.min_value)
        if self.max_value is not None:
            new = min(new, self.max_value)
        if self.monotonic:
            new = min(new, epsilon)
        return new

    def update(self, epoch, logs):
        """Observe the logs of epoch ``epoch``; return epsilon for ``epoch + 1``."""
        epoch = _check_epoch(epoch)
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"AdaptiveEpsilon reads logs[{self.monitor!r}], which this epoch's logs lack "
                f"(keys: {sorted(logs)}). Add the metric (e.g. TrueClassProbability()) "
                "or set `monitor`."
            )
        del self.history[epoch + 1 :]
        while len(self.history) <= epoch:
            self.history.append(self.history[-1])
        self.history.append(self.next_value(self.history[epoch], logs[self.monitor]))
        return self.history[epoch + 1]

    def get_config(self):
        return {
            "initial": self.initial,
            "target": self.target,
            "monitor": self.monitor,
            "observed": self.observed,
            "rate": self.rate,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "monotonic": self.monotonic,
            "history": list(self.history),  # the training state: a resumed run continues from it
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        history = config.pop("history", None)
        schedule = cls(**config)
        if history:
            history = [check_finite(f"history[{i}]", v) for i, v in enumerate(_sequence("history", history))]
            if history[0] != schedule.initial:
                raise ValueError(f"`history` must start at `initial`={schedule.initial!r}, got {history[0]!r}.")
            schedule.history = history
        return schedule


def _true_class_probability(y_true, y_pred):
    from keras_robust.losses import _labels

    logits = ops.cast(y_pred, "float32")
    k = _labels.infer_num_classes(logits, None)
    y, _ = _labels.to_distribution(y_true, logits, k)
    return ops.sum(y * ops.softmax(logits, axis=-1), axis=-1)


@register
class TrueClassProbability(keras.metrics.MeanMetricWrapper):
    """Mean softmax probability of the labelled class, ``<a_k>`` (paper Eq. 4).

    For logits (the model's output); sparse, one-hot or soft labels. The
    sensor of `AdaptiveEpsilon`.
    """

    def __init__(self, name="true_class_probability", dtype=None):
        super().__init__(_true_class_probability, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def get(identifier):
    """A schedule from a number, ``"webvision"``, a config dict, a schedule or a callable."""
    if identifier is None or isinstance(identifier, EpsilonSchedule):
        return identifier
    if isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
        return Constant(identifier)
    if isinstance(identifier, str):
        if identifier.lower() == "webvision":
            return webvision()
        raise ValueError(f'Unknown epsilon schedule {identifier!r}; the named one is "webvision".')
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(f"An epsilon schedule must be a number, 'webvision', a dict or a callable, got {identifier!r}.")


# -- the callback -----------------------------------------------------------------
_STATE_ATTR = "keras_robust_logit_bias_{}"  # model attributes carrying the losses' epsilon


def _has_bias(target):
    if isinstance(target, LogitBiasLayer):
        return True
    try:
        return getattr(target, "epsilon", None) is not None
    except Exception:  # noqa: BLE001 - a property that fails means "no usable epsilon"
        return False


def _describe(target):
    return getattr(target, "name", None) or type(target).__name__


@register
class EpsilonScheduler(keras.callbacks.Callback):
    """Sets the logit bias epsilon from a schedule at the start of every epoch.

    Shaped like `keras.callbacks.LearningRateScheduler`: at
    ``on_epoch_begin(epoch)`` epsilon = ``schedule(epoch)`` is written to every
    target, and ``logs["epsilon"]`` holds it at the epoch's end (in
    ``history.history["epsilon"]``). Works on TensorFlow, JAX and torch, for a
    loss's ``logit_bias`` and for `LogitBiasLayer` (see the module docstring
    for JAX). A schedule with an ``update(epoch, logs)`` method (e.g.
    `AdaptiveEpsilon`) is told each epoch's logs at the epoch's end.

    Args:
        schedule: a callable ``epoch -> epsilon`` (any `EpsilonSchedule`, a
            plain function), a number (constant), ``"webvision"``, or None:
            each target follows its own schedule (a loss built with
            ``logit_bias=<schedule>``); targets without one keep their epsilon.
        targets: losses with a logit bias and `LogitBiasLayer`s (one or a
            list). None: found in the model at the start of training, i.e. the
            keras_robust losses in ``model.loss`` (a loss, list or dict) that
            have a logit bias, and every `LogitBiasLayer` among its layers.
        verbose: 0 quiet, 1 print each epsilon set.
    """

    def __init__(self, schedule=None, targets=None, verbose=0):
        super().__init__()
        self.schedule = get(schedule)
        if targets is not None:
            targets = list(targets) if isinstance(targets, (list, tuple)) else [targets]
            if not targets:
                raise ValueError("`targets` is empty; pass None to find the targets in the model.")
            for target in targets:
                if not _has_bias(target):
                    raise ValueError(
                        f"Target {target!r} has no logit bias: give losses built with `logit_bias=` "
                        "(a number or a schedule) and LogitBiasLayer instances."
                    )
        self.targets = targets
        if verbose not in (0, 1, 2) or isinstance(verbose, bool):
            raise ValueError(f"`verbose` must be 0, 1 or 2, got {verbose!r}.")
        self.verbose = verbose
        self._active = None
        self._attached = []
        self._in_fit = False
        self._epsilon = None

    # -- targets ------------------------------------------------------------------
    def find_targets(self, model):
        """The targets of ``model``: biased keras_robust losses and LogitBiasLayers."""
        found = []
        for loss in keras.tree.flatten(getattr(model, "loss", None) or []):
            if isinstance(loss, RobustLoss) and loss.epsilon is not None and all(loss is not f for f in found):
                found.append(loss)
        stack = list(getattr(model, "layers", []))
        while stack:  # every layer, nested models included (public `layers` only)
            layer = stack.pop(0)
            if isinstance(layer, LogitBiasLayer) and all(layer is not f for f in found):
                found.append(layer)
            stack.extend(getattr(layer, "layers", []) if isinstance(layer, keras.Model) else [])
        return found

    def _resolve_targets(self):
        targets = self.targets if self.targets is not None else self.find_targets(self.model)
        if not targets:
            raise ValueError(
                "EpsilonScheduler found no logit bias in the model: compile it with a keras_robust "
                "loss built with `logit_bias=` (a number or a schedule), or add a LogitBiasLayer, "
                "or pass `targets=`."
            )
        active = []
        for target in targets:
            schedule = self.schedule if self.schedule is not None else getattr(target, "logit_bias_schedule", None)
            if isinstance(target, RobustLoss):
                target.followed_by_scheduler = True  # silences the loss's "no scheduler" warning
            active.append((target, schedule))
        return active

    def _attach(self):
        """Make the losses' epsilon variables model state (Keras tracks variables set as attributes)."""
        self._detach()
        variables = [t._epsilon for t, _ in self._active if isinstance(t, RobustLoss)]
        self._attached = []
        for i, variable in enumerate(variables):
            name = _STATE_ATTR.format(i)
            setattr(self.model, name, variable)
            self._attached.append(name)

    def _detach(self):
        for name in getattr(self, "_attached", None) or []:
            if hasattr(self.model, name):
                delattr(self.model, name)  # Keras untracks it: saved weights are unchanged
        self._attached = []

    # -- callback hooks ---------------------------------------------------------------
    def set_model(self, model):
        """Called by `fit`/`evaluate` before the step is built: the losses' epsilon joins the model state."""
        super().set_model(model)
        self._active = self._resolve_targets()
        self._attach()

    def on_train_begin(self, logs=None):
        if self._active is None:
            self.set_model(self.model)
        self._in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._active is None:
            self.on_train_begin()
        values = []
        for target, schedule in self._active:
            if schedule is None:  # a carrier only: log the epsilon in use
                values.append(target.epsilon)
                continue
            value = epsilon_value(schedule(epoch), "schedule", epoch)
            target.epsilon = value
            values.append(value)
        self._epsilon = values
        if self.verbose > 0:
            shown = ", ".join(f"{_describe(t)}={v:g}" for (t, _), v in zip(self._active, values))
            print(f"\nEpoch {epoch + 1}: EpsilonScheduler setting epsilon: {shown}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self._active is None or self._epsilon is None:
            return
        values = self._epsilon  # as set at the epoch's start (JAX may hold variables elsewhere mid-epoch)
        logs["epsilon"] = values[0]
        if len(set(values)) > 1:
            names = [_describe(t) for t, _ in self._active]
            for i, (name, value) in enumerate(zip(names, values)):
                logs[f"epsilon_{name}" if names.count(name) == 1 else f"epsilon_{name}_{i}"] = value
        updated = []
        for _, schedule in self._active:
            if schedule is not None and hasattr(schedule, "update") and all(schedule is not s for s in updated):
                schedule.update(epoch, logs)
                updated.append(schedule)

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._detach()
        self._active = None

    def on_test_end(self, logs=None):
        if not self._in_fit:  # a standalone `evaluate(callbacks=[scheduler])`, not fit's validation
            self._detach()
            self._active = None

    # -- serialisation ------------------------------------------------------------------
    def get_config(self):
        """The schedule and verbosity; targets are objects of the model and are not saved."""
        schedule = None if self.schedule is None else keras.saving.serialize_keras_object(self.schedule)
        return {"schedule": schedule, "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("schedule"), dict):
            config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
