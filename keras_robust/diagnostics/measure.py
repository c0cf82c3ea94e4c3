"""What `preflight` measures: the optimizer's kind, the loss to check, the model's initial logits."""

import math

import keras
import numpy as np

from keras_robust.diagnostics.report import LogitStats

_CURVE_BUDGET = 2**21  # logits per error curve when `samples` is automatic


# -- optimizers --------------------------------------------------------------------------

_ADAPTIVE_NAMES = ("Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "Adadelta", "Adafactor",
                   "Ftrl", "Lion", "Lamb", "Muon", "ScheduleFreeAdamW")


def is_adaptive_optimizer(optimizer):
    """``(name, adaptive)`` for an optimizer object or name: adaptive True/False, or None if unknown.

    Adaptive means the step is not proportional to the gradient (a per-parameter
    scale or a sign/orthogonalisation): Keras' Adam family, RMSprop, Adagrad,
    Adadelta, Adafactor, Ftrl, Lion, Lamb, Muon. SGD is not adaptive. A
    `keras.optimizers.LossScaleOptimizer` is judged by its inner optimizer.
    """
    if optimizer is None:
        return None, None
    if isinstance(optimizer, str):
        try:
            optimizer = keras.optimizers.get(optimizer)
        except ValueError:
            return optimizer, None
    inner = getattr(optimizer, "inner_optimizer", None)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and inner is not None:
        optimizer = inner
    name = type(optimizer).__name__
    if isinstance(optimizer, keras.optimizers.SGD):
        return name, False
    for adaptive in _ADAPTIVE_NAMES:
        cls = getattr(keras.optimizers, adaptive, None)
        if cls is not None and isinstance(optimizer, cls):
            return name, True
    return name, None


# -- input checks ------------------------------------------------------------------------


def _batch_size(x):
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("`x` is empty: give a batch of inputs (e.g. 256 training examples).")
    shape = keras.ops.shape(leaves[0]) if hasattr(leaves[0], "shape") else np.shape(leaves[0])
    if len(shape) == 0:
        raise ValueError(f"`x` must be a batch of inputs with a leading batch axis, got a scalar {x!r}.")
    return int(shape[0])


def _resolve_loss(loss, model, width):
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None:
            raise ValueError("No `loss` given and the model is not compiled with one: pass the loss to check.")
    if isinstance(loss, (list, tuple, dict)):
        raise ValueError(f"preflight checks one loss for one classifier output, got {loss!r}.")
    if isinstance(loss, str):
        from keras_robust import losses

        try:
            loss = losses.get(loss, num_classes=width)
        except (TypeError, ValueError) as e:
            try:  # a Keras name, e.g. from a model compiled with "sparse_categorical_crossentropy"
                loss = keras.losses.get(loss)
            except (TypeError, ValueError):
                raise ValueError(f"Unknown loss {loss!r} for preflight ({e}); "
                                 f"known: {', '.join(losses.names())}.") from None
    if callable(loss) and not isinstance(loss, keras.losses.Loss):
        raise ValueError(f"The loss {getattr(loss, '__name__', loss)!r} is a plain function (how Keras stores a "
                         "loss compiled by its snake_case name); preflight needs a loss object that takes logits, "
                         "e.g. keras.losses.SparseCategoricalCrossentropy(from_logits=True) or a keras_robust loss.")
    if not isinstance(loss, keras.losses.Loss):
        raise TypeError(f"`loss` must be a keras.losses.Loss or a keras_robust loss name, got {loss!r}.")
    config = loss.get_config()
    if config.get("from_logits") is False:
        raise ValueError(f"{loss!r} takes probabilities (from_logits=False); preflight needs a model that "
                         "outputs logits and a loss with from_logits=True.")
    k = getattr(loss, "num_classes", None)
    if k is not None and int(k) != width:
        raise ValueError(f"The model outputs {width} logits per example but the loss {loss.name!r} was built for "
                         f"num_classes={k}: the model's output width must be the loss's K.")
    return loss


def _logits(model, x):
    if not callable(model):
        raise TypeError(f"`model` must be a callable Keras model, got {model!r}.")
    n = _batch_size(x)
    if n == 0:
        raise ValueError("`x` is an empty batch (0 examples): give at least one example (e.g. 256).")
    out = model(x, training=False)
    if isinstance(out, (list, tuple, dict)):
        raise ValueError(f"The model has {len(out)} outputs; preflight needs a classifier with one "
                         "(batch, K) logits output.")
    z = np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")
    if z.ndim != 2:
        raise ValueError(f"The model's output has shape {z.shape} (rank {z.ndim}); preflight needs a classifier "
                         "whose output is logits of shape (batch, K), rank 2.")
    if z.shape[1] < 2:
        raise ValueError(f"The model's output has shape {z.shape}: a classifier needs K >= 2 logits per example.")
    if not np.all(np.isfinite(z)):
        raise ValueError("The model returned NaN or inf logits on `x`.")
    if np.all(z >= 0.0) and np.allclose(z.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("The model's outputs are probabilities (non-negative, rows sum to 1): it ends in a "
                         "softmax. preflight needs logits: check the model without its final softmax.")
    return z


def _stats(z):
    n, k = z.shape
    row_var = z.var(axis=1, ddof=1)
    return LogitStats(
        mean=float(z.mean()),
        std=float(z.std(ddof=1)) if z.size > 1 else 0.0,
        row_std=float(math.sqrt(row_var.mean())),
        row_range=float((z.max(axis=1) - z.min(axis=1)).mean()),
        num_examples=int(n),
        num_classes=int(k),
    )


def _auto_samples(k, points):
    return int(min(1024, max(64, _CURVE_BUDGET // (k * points))))
