"""`RobustLoss`: the thin `keras.losses.Loss` shared by every loss.

It normalises labels (sparse, one-hot or soft), applies the logit bias, calls
the loss's pure function from `keras_robust.losses.functional`, and leaves
reduction and ``sample_weight`` to Keras. Values are computed in float32
whatever the model's dtype policy.
"""

from __future__ import annotations

import numbers
import warnings

import keras
from keras import ops

from keras_robust import _backend
from keras_robust._checks import check_logit_bias
from keras_robust._typing import LogitBias
from keras_robust.epsilon import epsilon_for_classes
from keras_robust.losses import _labels
from keras_robust.losses import functional as F


def _is_schedule(value):
    return callable(value) and not isinstance(value, numbers.Real)


@keras.saving.register_keras_serializable(package="keras_robust")
class RobustLoss(keras.losses.Loss):
    """Base class: labels, logit bias, float32 compute, serialisation.

    Subclasses set ``fn`` (a function of `keras_robust.losses.functional`,
    wrapped in `staticmethod`) and ``param_names`` (the keyword parameters
    passed to it).

    Args:
        num_classes: number of classes ``K``. Optional (taken from the model's
            output width) except where a value is derived from ``K``; when
            given, a model with another width is an error.
        logit_bias: ``epsilon`` added to the true-class logit before the loss
            (paper Sec. 3.2): a float, ``"auto"`` (``epsilon(K)`` from Eq. 4
            with C = 0.15; needs ``num_classes``), or a schedule ``epoch ->
            epsilon`` that `keras_robust.EpsilonScheduler` follows. ``None``
            (default) means no bias; ``0.0`` means a bias that a scheduler may
            change later. The bias only exists in the loss, i.e. in training.
        from_logits: ``True`` (default) if ``y_pred`` are logits. ``False``
            accepts probabilities ``p`` (models ending in softmax), mapped to
            the logits ``log p``; the logit bias then cannot be used.
        ignore_class: a sparse label value (e.g. ``-1`` for padding) whose
            entries contribute 0 and are left out of the mean, as in
            `keras.losses.SparseCategoricalCrossentropy`. Any other label
            outside ``[0, K)`` is an error (NaN inside a compiled step), also
            where ``sample_weight`` is 0: mark entries to skip with this.
        reduction: any Keras reduction (``"sum_over_batch_size"`` default).
        name: loss name.
    """

    fn = None
    param_names = ()

    def __init_subclass__(cls, **kwargs):
        # ``fn`` is a plain function, not a method: a subclass that sets it
        # without `staticmethod` gets it wrapped, so ``self.fn(y, logits)`` works.
        super().__init_subclass__(**kwargs)
        fn = vars(cls).get("fn")
        if fn is not None and not isinstance(fn, staticmethod):
            cls.fn = staticmethod(fn)

    def __init__(
        self,
        num_classes: int | None = None,
        logit_bias: LogitBias = None,
        from_logits: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str | None = None,
        ignore_class: int | None = None,
    ) -> None:
        # dtype is accepted for Keras' from_config; losses always compute in float32.
        del dtype
        super().__init__(name=name or type(self).__name__.lower(), reduction=reduction, dtype="float32")
        self.num_classes = _labels.check_num_classes(num_classes)
        if not isinstance(from_logits, bool):
            raise ValueError(f"`from_logits` must be True or False, got {from_logits!r}.")
        self.from_logits = from_logits
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class, numbers.Integral)):
            raise ValueError(f"`ignore_class` must be an integer class index (e.g. -1) or None, got {ignore_class!r}.")
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.logit_bias_schedule = None
        self.followed_by_scheduler = False  # set by EpsilonScheduler
        self._warned_unscheduled = False
        self._epsilon = None
        if logit_bias is None:
            return
        if not from_logits:
            raise ValueError(
                f"`logit_bias={logit_bias!r}` needs logits, but from_logits=False: "
                "the bias is added to the true-class logit before the softmax. "
                "Drop the final softmax of the model and use from_logits=True."
            )
        if isinstance(logit_bias, str):
            if logit_bias != "auto":
                raise ValueError(f'`logit_bias` must be a number, "auto" or a schedule, got {logit_bias!r}.')
            if self.num_classes is None:
                raise ValueError('`logit_bias="auto"` derives epsilon from K: give `num_classes`.')
            logit_bias = float(epsilon_for_classes(self.num_classes))
        if _is_schedule(logit_bias):
            self.logit_bias_schedule = logit_bias
            logit_bias = logit_bias(0)
        self._epsilon = keras.Variable(
            check_logit_bias("logit_bias", logit_bias), dtype="float32", trainable=False, name="logit_bias"
        )

    # -- the logit bias as state ------------------------------------------------
    @property
    def epsilon(self):
        """The current logit bias as a float, or None if the loss has none."""
        if self._epsilon is None:
            return None
        return float(ops.convert_to_numpy(self._epsilon.value))

    @epsilon.setter
    def epsilon(self, value):
        """Set epsilon. TF's graphs and torch read the variable; a JAX step
        receives it only while `keras_robust.EpsilonScheduler` is in the
        callbacks (it makes epsilon model state). A JAX step compiled without
        it holds the value it traced: changing it then warns."""
        if self._epsilon is None:
            raise ValueError(
                f"{type(self).__name__} was built without a logit bias; build it "
                "with `logit_bias=0.0` (or a schedule) to change epsilon later."
            )
        value = check_logit_bias("epsilon", value)
        frozen = getattr(self, "_frozen_epsilon", None)
        if frozen is not None and value != frozen and not getattr(self, "followed_by_scheduler", False):
            warnings.warn(
                f"{self.name}: a JAX step compiled earlier holds epsilon = {frozen:g} as a constant, so "
                f"epsilon = {value:g} will not reach it. Pass `keras_robust.EpsilonScheduler()` to fit/evaluate "
                "(it makes epsilon part of the model's state), or use a LogitBiasLayer.",
                stacklevel=2,
            )
        self._epsilon.assign(value)

    @property
    def params(self):
        """The loss's own parameters, as passed to its function."""
        return {name: getattr(self, name) for name in self.param_names}

    # -- computation -------------------------------------------------------------
    def loss_fn(self, y, logits):
        """Per-example loss for float32 labels ``y`` and logits (no bias)."""
        return self.fn(y, logits, **self.params)

    def _warn_if_unscheduled(self):
        if self.logit_bias_schedule is None or self.followed_by_scheduler or self._warned_unscheduled:
            return
        if _backend.in_symbolic_build():  # Keras building the model before the callbacks start
            return
        self._warned_unscheduled = True
        warnings.warn(
            f"{type(self).__name__} (name={self.name!r}) was built with logit_bias=<schedule> but no "
            "EpsilonScheduler follows it: epsilon keeps its current value (schedule(0) unless set) at "
            "every epoch. Add keras_robust.EpsilonScheduler() to the callbacks of fit.",
            UserWarning,
            stacklevel=3,
        )

    def call(self, y_true, y_pred):
        self._warn_if_unscheduled()
        k = _labels.infer_num_classes(y_pred, self.num_classes)
        y_pred = ops.cast(y_pred, "float32")
        keep = None
        if self.ignore_class is not None:
            y_true, keep = _labels.drop_ignored(y_true, y_pred, k, self.ignore_class)
            y_pred = ops.where(ops.expand_dims(keep, -1), y_pred, 0.0)
        _labels.check_logits(y_pred, "y_pred")
        logits = y_pred if self.from_logits else ops.log(ops.maximum(y_pred, F.TINY))
        y, valid = _labels.normalize(y_true, y_pred, k)
        if self._epsilon is not None:
            epsilon = self._epsilon.value
            if _backend.traced_as_constant(epsilon, logits):
                self._frozen_epsilon = float(ops.convert_to_numpy(epsilon))
            logits = F.add_logit_bias(logits, y, epsilon)
        values = self.loss_fn(y, logits)
        if valid is not None:
            values = ops.where(valid, values, float("nan"))
        if keep is not None:
            values = ops.where(keep, values, 0.0)
            _backend.set_keras_mask(values, keep)  # Keras then averages over the kept entries only
        return values

    # -- serialisation -----------------------------------------------------------
    def _logit_bias_config(self):
        if self.logit_bias_schedule is not None:
            return keras.saving.serialize_keras_object(self.logit_bias_schedule)
        return self.epsilon

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(
            num_classes=self.num_classes,
            logit_bias=self._logit_bias_config(),
            from_logits=self.from_logits,
            ignore_class=self.ignore_class,
            **self.params,
        )
        if self.logit_bias_schedule is not None:
            config["current_logit_bias"] = self.epsilon  # where the schedule had got to
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        current = config.pop("current_logit_bias", None)
        if isinstance(config.get("logit_bias"), dict):
            config["logit_bias"] = keras.saving.deserialize_keras_object(config["logit_bias"])
        loss = cls(**config)
        if current is not None:
            loss.epsilon = current
        return loss

    def __repr__(self):
        parts = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in self.params.items()]
        if self._epsilon is not None:
            try:
                parts.append(f"logit_bias={self.epsilon:g}")
            except Exception:  # inside a traced graph the value cannot be read
                parts.append("logit_bias=<variable>")
        return f"{type(self).__name__}({', '.join(parts)})"
