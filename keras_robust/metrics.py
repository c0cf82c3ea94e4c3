"""False-label accuracy: how well a model recovers the true class of mislabelled examples.

The paper's Fig. 4 (bottom) plots the "false label accuracy": the accuracy on
training images "that initially had noisy labels but were corrected for
testing", i.e. the model's predictions on the corrupted training examples,
scored against their *true* labels. A noise-robust loss keeps it high; a loss
that memorises the noise drives it down. Use the ``mask`` returned by
`keras_robust.noise` (labels that actually changed) to select the examples.

`class_accuracy` gives the accuracy of each class, which shows the classes a
bounded loss never learned (0 while the others learn).
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from keras_robust._typing import ArrayLike

__all__ = ["FalseLabelAccuracy", "class_accuracy", "false_label_accuracy"]


# ----------------------------------------------------------------------------
# Input handling (NumPy on the host; predictions come back from model.predict)
# ----------------------------------------------------------------------------


def _to_numpy(a):
    if isinstance(a, np.ndarray):
        return a
    try:
        return keras.ops.convert_to_numpy(a)
    except Exception:  # lists, tuples, scalars
        return np.asarray(a)


def _class_ids(labels, name):
    """Integer class ids of shape (N,) from ids (N,)/(N, 1) or one-hot/soft (N, K)."""
    if labels is None:
        raise TypeError(f"`{name}` is required.")
    arr = _to_numpy(labels)
    if arr.ndim == 2 and arr.shape[1] > 1:
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"`{name}` of shape {arr.shape} must be numeric scores, got dtype {arr.dtype}.")
        return np.argmax(arr, axis=-1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"`{name}` must be class ids of shape (N,) or (N, 1), or one-hot/scores of shape (N, K), "
            f"got shape {arr.shape}."
        )
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(f"`{name}` of shape {arr.shape} must hold integer class ids, got dtype {arr.dtype}.")
    return arr.astype(np.int64)


def _indices(mask, n):
    """Row indices selected by ``mask`` (boolean of length ``n``, integer indices, or None = all)."""
    if mask is None:
        return np.arange(n)
    m = _to_numpy(mask)
    if m.ndim != 1:
        raise ValueError(f"`mask` must be 1-D, got shape {m.shape}.")
    if m.dtype == bool:
        if m.size != n:
            raise ValueError(f"`mask` must have one entry per example ({n}), got {m.size}.")
        return np.flatnonzero(m)
    if m.dtype.kind in "iu":
        if m.size and (m.min() < 0 or m.max() >= n):
            raise ValueError(f"`mask` indices must lie in [0, {n}), got values in [{m.min()}, {m.max()}].")
        return m.astype(np.int64)
    raise TypeError(f"`mask` must be boolean or integer indices, got dtype {m.dtype}.")


def _num_rows(x):
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("`x` holds no arrays.")
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"All arrays in `x` must share their first dimension, got first dimensions {sorted(sizes)}.")
    return sizes.pop()


def _take(x, idx):
    return keras.tree.map_structure(lambda a: _to_numpy(a)[idx], x)


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size}.")
    return int(batch_size)


def _predicted_ids(predictions, n):
    """Class ids from a model's outputs: scores/logits/probabilities (N, K) or ids (N,)."""
    # A multi-output model's predict() gives a list/dict of arrays; a nested list of numbers is one array.
    if isinstance(predictions, dict) or (
        isinstance(predictions, (list, tuple)) and predictions and all(hasattr(p, "shape") for p in predictions)
    ):
        leaves = keras.tree.flatten(predictions)
        if len(leaves) != 1:
            raise ValueError(
                f"false-label accuracy needs a single-output model, got {len(leaves)} outputs."
            )
        predictions = leaves[0]
    pred = _to_numpy(predictions)
    if pred.ndim == 2 and pred.shape[1] == 1:
        raise ValueError(
            f"Predictions of shape {pred.shape} look binary (one output unit); give (N, K) scores "
            "or (N,) class ids."
        )
    ids = _class_ids(pred, "model_or_predictions")
    if ids.shape[0] != n:
        raise ValueError(f"Got {ids.shape[0]} predictions for {n} selected examples.")
    return ids


def _accuracy(pred_ids, true_ids):
    if true_ids.size == 0:
        return float("nan")
    return float(np.mean(pred_ids == true_ids))


# ----------------------------------------------------------------------------
# Function
# ----------------------------------------------------------------------------


def false_label_accuracy(model_or_predictions: keras.Model | ArrayLike, x: ArrayLike | None = None,
                         true_labels: ArrayLike | None = None, mask: ArrayLike | None = None, *,
                         batch_size: int = 256) -> float:
    """Accuracy on the corrupted examples against their true labels (paper Fig. 4, bottom).

    Args:
        model_or_predictions: a model (anything with ``predict``), or its
            outputs for the examples of ``true_labels``: logits,
            probabilities or scores ``(N, K)`` (the arg-max is taken, so
            logits and softmax give the same answer), or class ids ``(N,)``.
        x: the inputs, row-aligned with ``true_labels`` (an array or a
            structure of arrays); only with a model.
        true_labels: the clean labels: class ids ``(N,)``/``(N, 1)`` or
            one-hot ``(N, K)``.
        mask: which rows to score: the ``mask`` of `keras_robust.noise`
            (boolean, length ``N``), integer indices, or None for all rows.
            Only the selected rows of ``x`` are passed to the model.
        batch_size: batch size for ``model.predict``.

    Returns:
        A Python float in ``[0, 1]``; NaN when ``mask`` selects nothing.
    """
    true_ids = _class_ids(true_labels, "true_labels")
    n = true_ids.shape[0]
    idx = _indices(mask, n)
    if hasattr(model_or_predictions, "predict") and callable(model_or_predictions.predict):
        batch_size = _check_batch_size(batch_size)
        if x is None:
            raise TypeError("`x` is required when a model is given.")
        if _num_rows(x) != n:
            raise ValueError(f"`x` has {_num_rows(x)} rows but `true_labels` has {n}.")
        if idx.size == 0:
            return float("nan")
        outputs = model_or_predictions.predict(_take(x, idx), batch_size=batch_size, verbose=0)
        return _accuracy(_predicted_ids(outputs, idx.size), true_ids[idx])
    if x is not None:
        raise ValueError(
            "`x` is only used with a model; predictions were given as the first argument "
            f"(got an object of type {type(model_or_predictions).__name__})."
        )
    pred_ids = _predicted_ids(model_or_predictions, n)
    return _accuracy(pred_ids[idx], true_ids[idx])


def class_accuracy(predictions: ArrayLike, labels: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Accuracy of each class: ``acc_c = #{i : y_i = c, argmax_k z_ik = c} / #{i : y_i = c}``.

    A class at 0 while the others learn is one whose true-class logit the
    loss never lifted: a bounded loss (MAE) has almost no gradient where the
    true-class probability starts small (paper Sec. 3), so a class that loses
    the first epochs can stay dead for the whole run.

    Args:
        predictions: scores, logits or probabilities ``(N, K)``, or class ids ``(N,)``.
        labels: the true labels: class ids ``(N,)``/``(N, 1)`` or one-hot ``(N, K)``.
        num_classes: ``K``; default: the width of ``predictions`` (or of
            one-hot ``labels``), else the largest class id plus one.

    Returns:
        float64 ``(K,)``; NaN for a class without examples in ``labels``.
    """
    true_ids = _class_ids(labels, "labels")
    pred_ids = _predicted_ids(predictions, true_ids.shape[0])
    if num_classes is None:
        widths = [shape[-1] for shape in (np.shape(predictions), np.shape(labels)) if len(shape) == 2 and shape[-1] > 1]
        num_classes = widths[0] if widths else int(max(true_ids.max(initial=-1), pred_ids.max(initial=-1))) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer, got {num_classes!r}.")
    k = int(num_classes)
    for name, ids in (("labels", true_ids), ("predictions", pred_ids)):
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ValueError(f"`{name}` hold class ids in [{ids.min()}, {ids.max()}], outside [0, {k}) "
                             f"for num_classes={k}.")
    total = np.bincount(true_ids, minlength=k).astype("float64")
    hits = np.bincount(true_ids[pred_ids == true_ids], minlength=k).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan)


# ----------------------------------------------------------------------------
# Callback
# ----------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_robust")
class FalseLabelAccuracy(keras.callbacks.Callback):
    """Logs the false-label accuracy at the end of every epoch (paper Fig. 4, bottom).

    Predicts on the corrupted training examples and scores the predictions
    against their *true* labels; the value goes into ``logs[name]`` (hence
    into `History` and the progress bar) and into ``self.values``
    (``{epoch: value}``). Only the selected rows are kept (a copy), so the
    callback holds the corrupted subset only.

    Example:

    ```python
    noisy, mask = keras_robust.noise.symmetric_noise(y, 0.4, 10, seed=0)
    cb = FalseLabelAccuracy(x, y, mask)
    model.fit(x, noisy, epochs=..., callbacks=[cb])
    history.history["false_label_accuracy"]
    ```

    Args:
        x: training inputs, row-aligned with ``true_labels`` (array or
            structure of arrays).
        true_labels: the clean labels (ids or one-hot).
        mask: the corrupted rows (boolean or indices); None for all rows
            (when ``x`` already holds only the corrupted examples).
        noisy_labels: optional, the (noisy) training labels, row-aligned with
            ``true_labels``; when given, also logs ``noisy_label_accuracy``:
            how often the model predicts the wrong label it was trained on,
            i.e. how much noise it has memorised.
        batch_size: batch size for ``model.predict``.
        frequency: evaluate every ``frequency`` epochs (epochs ``frequency``,
            ``2 * frequency``, ...); other epochs do not log the key, as with
            Keras's ``validation_freq``.
        name: the key in ``logs``.

    ``get_config`` holds the plain parameters only: the data are not
    serialised. Rebuild with ``FalseLabelAccuracy.from_config(config, x=...,
    true_labels=..., mask=...)``.
    """

    def __init__(
        self,
        x: ArrayLike,
        true_labels: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        noisy_labels: ArrayLike | None = None,
        batch_size: int = 256,
        frequency: int = 1,
        name: str = "false_label_accuracy",
    ) -> None:
        super().__init__()
        self.batch_size = _check_batch_size(batch_size)
        if isinstance(frequency, bool) or not isinstance(frequency, numbers.Integral) or frequency < 1:
            raise ValueError(f"`frequency` must be a positive integer, got {frequency!r}.")
        self.frequency = int(frequency)
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        self.name = name
        true_ids = _class_ids(true_labels, "true_labels")
        n = true_ids.shape[0]
        if x is None:
            raise TypeError("`x` is required.")
        if _num_rows(x) != n:
            raise ValueError(f"`x` has {_num_rows(x)} rows but `true_labels` has {n}.")
        idx = _indices(mask, n)
        self.x = _take(x, idx)
        self.true_labels = true_ids[idx]
        self.noisy_labels = None
        if noisy_labels is not None:
            noisy_ids = _class_ids(noisy_labels, "noisy_labels")
            if noisy_ids.shape[0] != n:
                raise ValueError(f"`noisy_labels` has {noisy_ids.shape[0]} rows but `true_labels` has {n}.")
            self.noisy_labels = noisy_ids[idx]
        self.values = {}

    @property
    def num_examples(self):
        """The number of corrupted examples scored."""
        return int(self.true_labels.shape[0])

    def evaluate(self, model=None):
        """Return ``{name: value}`` (and ``noisy_label_accuracy``) for ``model`` (default: the attached one)."""
        model = self.model if model is None else model
        if self.num_examples == 0:
            pred = np.zeros((0,), dtype=np.int64)
        else:
            outputs = model.predict(self.x, batch_size=self.batch_size, verbose=0)
            pred = _predicted_ids(outputs, self.num_examples)
        out = {self.name: _accuracy(pred, self.true_labels)}
        if self.noisy_labels is not None:
            out["noisy_label_accuracy"] = _accuracy(pred, self.noisy_labels)
        return out

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.frequency:
            return
        result = self.evaluate()
        self.values[epoch] = result[self.name]
        if logs is not None:
            logs.update(result)

    def get_config(self):
        return {"batch_size": self.batch_size, "frequency": self.frequency, "name": self.name}

    @classmethod
    def from_config(cls, config, x=None, true_labels=None, mask=None, noisy_labels=None):
        if x is None or true_labels is None:
            raise TypeError(
                "FalseLabelAccuracy.from_config needs `x` and `true_labels` (and usually `mask`): "
                "the data are not serialised."
            )
        return cls(x, true_labels, mask, noisy_labels=noisy_labels, **config)
