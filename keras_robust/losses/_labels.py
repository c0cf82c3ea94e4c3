"""Label handling shared by every loss and `LogitBiasLayer`.

Labels arrive as sparse class indices (shape ``(N,)`` or ``(N, 1)``; Keras has
already cast them to float), one-hot rows or soft label distributions (shape
``(N, K)``). `normalize` turns sparse labels into int32 indices (the loss
functions then gather the labelled entry instead of summing over K) and
checks dense ones; `to_distribution` gives float32 ``(N, K)`` rows always.

Checks that need values (labels in ``[0, K)``, integer labels, finite logits)
run whenever the tensors are concrete: direct calls, eager `fit` on torch,
``run_eagerly=True``. Inside a compiled step (``tf.function``, ``jax.jit``) no
check can raise; there an out-of-range or non-integer sparse label makes that
example's loss NaN (so `keras.callbacks.TerminateOnNaN` stops training
instead of silently learning from an empty target), and NaN logits propagate
to a NaN loss. Shape checks (``K`` mismatch, one-hot width) always raise.
"""

import numpy as np
from keras import ops

from keras_robust import _backend
from keras_robust import _checks
from keras_robust.losses import functional as F


def check_num_classes(num_classes, argument="num_classes"):
    """Validate an optional class count; return it as an int or None."""
    return None if num_classes is None else _checks.check_num_classes(num_classes, argument)


def infer_num_classes(y_pred, num_classes):
    """The class count ``K`` from the last dimension of ``y_pred``, checked."""
    width = y_pred.shape[-1]
    if width is not None and num_classes is not None and width != num_classes:
        raise ValueError(
            f"The model outputs {width} classes (last dimension of y_pred) "
            f"but the loss was built with num_classes={num_classes}."
        )
    k = width if width is not None else num_classes
    if k is None:
        raise ValueError("Cannot tell the number of classes: give `num_classes`.")
    if k < 2:
        raise ValueError(f"Classification needs at least 2 classes; y_pred has last dimension {k}.")
    return int(k)


def _check_examples(y_true, y_pred, sparse):
    """Raise if the label and prediction shapes disagree on the examples (statically known sizes)."""
    rank = len(y_pred.shape) - 1
    labels, outputs = tuple(y_true.shape[:rank]), tuple(y_pred.shape[:-1])
    if any(a is not None and b is not None and a != b for a, b in zip(labels, outputs)):
        kind = "sparse labels" if sparse else "one-hot/soft labels"
        raise ValueError(
            f"y_true ({kind}) has shape {tuple(y_true.shape)} but y_pred has shape {tuple(y_pred.shape)}: "
            f"expected one label per prediction, i.e. leading dimensions {outputs}, got {labels}."
        )
    if 0 in outputs:
        raise ValueError(f"y_pred of shape {tuple(y_pred.shape)} holds no examples: the labels are empty.")


def _is_sparse(y_true, y_pred, k):
    sparse = _sparse_layout(y_true, y_pred, k)
    _check_examples(y_true, y_pred, sparse)
    return sparse


def _sparse_layout(y_true, y_pred, k):
    rank_t, rank_p = len(y_true.shape), len(y_pred.shape)
    if rank_t == rank_p - 1:
        return True
    if rank_t == rank_p:
        width = y_true.shape[-1]
        if width == 1:
            return True
        if width is None or width == k:
            return False
        raise ValueError(
            f"y_true has last dimension {width}: a one-hot or soft label must "
            f"have width num_classes={k}, a sparse label width 1."
        )
    raise ValueError(
        f"y_true of shape {tuple(y_true.shape)} does not fit y_pred of shape "
        f"{tuple(y_pred.shape)}: expected sparse labels of shape "
        f"{tuple(y_pred.shape[:-1])} (or with a trailing 1) or one-hot labels "
        f"of shape {tuple(y_pred.shape)}."
    )


def _check_sparse_values(labels, k):
    values = np.asarray(ops.convert_to_numpy(labels), dtype="float64")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"Sparse labels must be finite class indices; got {values[~np.isfinite(values)][:5]}.")
    bad = values[(values < 0) | (values >= k) | (values != np.floor(values))]
    if bad.size:
        raise ValueError(
            f"Sparse labels must be integers in [0, {k}) (num_classes={k}); "
            f"got {bad.size} invalid value(s), e.g. {bad[:5].tolist()}."
        )


def _check_dense_values(y, k):
    values = np.asarray(ops.convert_to_numpy(y), dtype="float64")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("One-hot/soft labels must be finite and non-negative.")
    sums = values.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > 1e-3):
        raise ValueError(
            f"Each one-hot/soft label row must sum to 1 over num_classes={k} "
            f"classes; got row sums such as {sums[np.abs(sums - 1.0) > 1e-3][:5].tolist()}."
        )


def check_logits(y_pred, argument="y_pred"):
    """Raise if concrete logits contain NaN or inf."""
    if _backend.is_concrete(y_pred):
        finite = ops.convert_to_numpy(ops.all(ops.isfinite(y_pred)))
        if not bool(finite):
            raise ValueError(f"`{argument}` contains NaN or inf values: the loss needs finite logits.")


def normalize(y_true, y_pred, k):
    """Return ``(y, valid)``: int32 class indices ``(...)`` or float32 labels ``(..., K)``.

    ``valid`` is None when every label is known to be valid (one-hot/soft
    labels, or sparse labels checked eagerly); inside a compiled graph it is a
    boolean ``(...)`` tensor, False where a sparse label is not an integer in
    ``[0, K)`` (such labels are replaced by 0 in ``y``).
    """
    if _is_sparse(y_true, y_pred, k):
        labels = ops.cast(y_true, "float32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, axis=-1)
        if _backend.is_concrete(labels):
            _check_sparse_values(labels, k)  # raises on bad values: no mask needed
            return ops.cast(labels, "int32"), None
        valid = ops.logical_and(
            ops.logical_and(labels >= 0, labels < k), ops.equal(labels, ops.floor(labels))
        )
        return ops.cast(ops.where(valid, labels, 0.0), "int32"), valid
    y = ops.cast(y_true, "float32")
    if _backend.is_concrete(y):
        _check_dense_values(y, k)
    return y, None


def drop_ignored(y_true, y_pred, k, ignore_class):
    """Sparse labels equal to ``ignore_class`` replaced by 0, and the mask ``keep`` (False there).

    Returns ``(y_true, keep)``; ``keep`` has the shape of the per-example loss.
    """
    if not _is_sparse(y_true, y_pred, k):
        raise ValueError(
            f"`ignore_class={ignore_class}` applies to sparse labels (class indices), "
            f"but y_true has one-hot/soft shape {tuple(y_true.shape)}."
        )
    labels = ops.cast(y_true, "float32")
    if len(labels.shape) == len(y_pred.shape):
        labels = ops.squeeze(labels, axis=-1)
    keep = ops.not_equal(labels, float(ignore_class))
    return ops.where(keep, labels, 0.0), keep


def to_distribution(y_true, y_pred, k):
    """Like `normalize`, with sparse labels turned into one-hot float32 rows."""
    y, valid = normalize(y_true, y_pred, k)
    return F.one_hot(y, k), valid
