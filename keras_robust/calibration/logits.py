"""The initial-logit model of the paper's Sec. 3: i.i.d. logits N(mu, sigma^2).

At initialisation the logits of a network are, to a good approximation,
independent and Gaussian with zero mean (central limit theorem over the last
hidden layer). The paper assumes N(0, 1); real networks differ (its appendix
Fig. 2), so every solver in `keras_robust.calibration` takes a `LogitModel`,
and `measure_logits` estimates one from a freshly initialised model.
"""


import keras
import numpy as np

from keras_robust._checks import check_finite


@keras.saving.register_keras_serializable(package="keras_robust")
class LogitModel:
    """Initial logits i.i.d. ``N(mean, std**2)`` (paper Sec. 3; default N(0, 1)).

    The softmax is invariant to a common shift, so ``mean`` does not change
    Eq. 4; it shifts the abscissa of the error curves of Eq. 3 (the other
    logits are drawn around ``mean``, the true-class logit is set directly).

    Args:
        mean: the logits' mean ``mu``.
        std: the logits' standard deviation ``sigma > 0``.
    """

    def __init__(self, mean=0.0, std=1.0):
        self.mean = check_finite("mean", mean)
        self.std = check_finite("std", std)
        if self.std <= 0.0:
            raise ValueError(f"`std` must be > 0, got {std!r}.")

    def sample(self, shape, seed=0):
        """Draw float32 logits of ``shape`` from a NumPy generator seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        return (self.mean + self.std * rng.standard_normal(shape)).astype("float32")

    def get_config(self):
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, LogitModel) and (self.mean, self.std) == (other.mean, other.std)

    def __hash__(self):
        return hash((LogitModel, self.mean, self.std))

    def __repr__(self):
        return f"LogitModel(mean={self.mean:g}, std={self.std:g})"


def check_logit_model(logits, argument="logits"):
    """Return ``logits`` if it is a `LogitModel`, else raise a `TypeError`."""
    if not isinstance(logits, LogitModel):
        raise TypeError(f"`{argument}` must be a keras_robust.calibration.LogitModel, got {logits!r}.")
    return logits


def measure_logits(model, x, batch_size=None):
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
