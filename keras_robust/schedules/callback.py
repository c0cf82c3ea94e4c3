"""The `EpsilonScheduler` callback, which applies a schedule each epoch, and `get`, which resolves one."""

from __future__ import annotations

import numbers
from typing import Callable, Sequence

import keras

from keras_robust._typing import ScheduleLike
from keras_robust.logit_bias import LogitBiasLayer
from keras_robust.losses.base import RobustLoss
from keras_robust.schedules.base import EpsilonSchedule, epsilon_value, register
from keras_robust.schedules.fixed import Constant, webvision

def get(identifier: ScheduleLike) -> Callable[[int], float] | None:
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

    def __init__(self, schedule: ScheduleLike = None, targets: Sequence[object] | None = None,
                 verbose: int = 0) -> None:
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
