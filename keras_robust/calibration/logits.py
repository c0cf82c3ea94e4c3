"""The initial-logit model measured on a real network (paper appendix 3).

`LogitModel` (i.i.d. logits N(mu, sigma^2), paper Sec. 3) lives in the leaf
`keras_robust.epsilon` with Eq. 4; this module registers it with Keras'
serialisation and adds `measure_logits`, which needs a Keras model.
"""

from __future__ import annotations

from typing import Any, Callable

import keras
import numpy as np

from keras_robust._typing import ArrayLike
from keras_robust.epsilon import LogitModel, check_logit_model

__all__ = ["LogitModel", "check_logit_model", "measure_logits"]


# The class is defined in the numpy-only leaf `keras_robust.epsilon`; it is
# registered with Keras' serialisation here, on the floor that imports Keras.
keras.saving.register_keras_serializable(package="keras_robust")(LogitModel)


def measure_logits(model: Callable[..., Any], x: ArrayLike, batch_size: int | None = None) -> LogitModel:
    """Estimate the initial-logit model of ``model`` on inputs ``x`` (paper appendix 3).

    Runs ``model`` in inference mode on ``x`` and returns the `LogitModel`
    with the empirical mean and standard deviation of all its outputs
    (pooled over examples and classes, as in the paper's appendix Fig. 2).
    ``model`` must output logits (no final softmax).

    Args:
        model: a callable Keras model, e.g. freshly initialised.
        x: a batch of inputs (array or tensor), or anything ``model.predict`` accepts.
        batch_size: passed to ``model.predict``; when None the model is called directly.

    Returns:
        A `LogitModel`. With ``n`` logits the standard error of the mean is
        about ``std / sqrt(n)`` if the logits were independent; logits of one
        network are correlated across examples, so pool several
        initialisations (seeds) for a precise estimate.
    """
    if not callable(model):
        raise TypeError(f"`model` must be a callable Keras model, got {model!r}.")
    if batch_size is None:
        out = model(x, training=False)
    else:
        out = model.predict(x, batch_size=batch_size, verbose=0)
    values = np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")
    if values.ndim < 2 or values.shape[-1] < 2:
        raise ValueError(
            f"`model` must output logits of shape (batch, K) with K >= 2, got shape {values.shape}."
        )
    if values.size < 2:
        raise ValueError("`x` must hold at least one example.")
    if not np.all(np.isfinite(values)):
        raise ValueError("`model` returned NaN or inf logits on `x`.")
    std = float(values.std(ddof=1))
    if std <= 0.0:
        raise ValueError("`model` returned constant logits: their standard deviation is 0.")
    return LogitModel(mean=float(values.mean()), std=std)
