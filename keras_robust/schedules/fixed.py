"""Schedules fixed in advance: `Constant`, `Piecewise`, `Cyclic` (and the paper's WebVision one), `FromClasses`."""

from __future__ import annotations

from typing import Sequence

import keras

from keras_robust._checks import check_finite, check_int, check_logit_bias
from keras_robust.epsilon import LogitModel
from keras_robust.schedules.base import EpsilonSchedule, _sequence, epsilon_value, register

WEBVISION_VALUES = (5.2, 4.8, 4.3, 3.7, 3.0, 2.3)
WEBVISION_EPOCHS_PER_VALUE = 11
WEBVISION_PERIOD = 66


@register
class Constant(EpsilonSchedule):
    """The same ``epsilon`` at every epoch (the paper's MAE*, Sec. 3.2).

    Args:
        value: epsilon, a finite number.
    """

    def __init__(self, value: float) -> None:
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

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]) -> None:
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

    def __init__(self, values: Sequence[float], epochs_per_value: int | Sequence[int], period: int | None = None) -> None:
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


def webvision() -> Cyclic:
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

    def __init__(self, num_classes: int, target: float = 0.15, logits: LogitModel | None = None) -> None:
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
