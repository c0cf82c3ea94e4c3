"""What every epsilon schedule shares: the `EpsilonSchedule` base class, argument checks, ``register``."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_robust._typing import Tensor

register = keras.saving.register_keras_serializable(package="keras_robust")


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


def epsilon_value(value: float | Tensor, source: str = "schedule", epoch: int | None = None) -> float:
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
