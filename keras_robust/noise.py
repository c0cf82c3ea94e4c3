"""Synthetic label noise: symmetric, class-map (asymmetric) and transition-matrix.

The paper creates "symmetric label noise by assigning random labels to a
fraction of the training dataset" (Sec. 4) and measures, on the corrupted
examples, the *false label accuracy* (Fig. 4, bottom; see
`keras_robust.metrics`). Every function here is plain NumPy, seeded through
`numpy.random.default_rng(seed)` (the same seed gives the same noise), and
returns

* ``noisy_labels``: the new labels, same shape and dtype as ``labels``
  (a 1-D array, or a ``(N, 1)`` column as `keras.datasets` returns; the
  dtype is widened to int64 only if a new class id would not fit it);
* ``mask``: a 1-D boolean array, True where the label *actually changed*
  (``noisy_labels != labels``). This is the set on which false-label accuracy
  is measured: an example that was picked for corruption but drew its own
  class again is clean and is not in the mask;
* with ``return_selected=True``, also ``selected``: a 1-D boolean array, True
  for every example that was picked for corruption (a superset of ``mask``).

Counts are exact, not expected values: ``rate`` of ``N`` means
``floor(rate * N + 0.5)`` examples (rounded half up), chosen without
replacement.
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping

import numpy as np

from keras_robust._checks import check_fraction, check_num_classes, check_seed
from keras_robust._typing import ArrayLike, NoisyLabels, Seed

__all__ = [
    "CIFAR10_ASYMMETRIC_MAP",
    "asymmetric_noise",
    "empirical_transition_matrix",
    "symmetric_noise",
    "symmetric_transition_matrix",
    "transition_noise",
]

#: The usual CIFAR-10 class-conditional map (Patrini et al. 2017, also used by
#: the GCE, SCE, APL and AGCE papers): truck -> automobile, bird -> airplane,
#: cat <-> dog, deer -> horse. Class ids are CIFAR-10's: 0 airplane,
#: 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck.
CIFAR10_ASYMMETRIC_MAP = {9: 1, 2: 0, 3: 5, 5: 3, 4: 7}

# Tolerance on the row sums of a transition matrix.
_ROW_SUM_ATOL = 1e-6


# ----------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------


def _rng(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    return np.random.default_rng(check_seed("seed", seed))


def _check_labels(labels, num_classes=None, name="labels"):
    """Return ``(original_array, flat_int64_copy)`` after validating ``labels``."""
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"`{name}` must be an array of integer class ids, got {labels!r}.")
    arr = np.asarray(labels)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)  # an empty list: no labels, not float labels
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(
            f"`{name}` must hold integer class ids (sparse labels), got dtype {arr.dtype}. "
            "Convert one-hot labels with `argmax(axis=-1)` first."
        )
    if not (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)):
        raise ValueError(
            f"`{name}` must be 1-D of shape (N,) or a column of shape (N, 1), got shape {arr.shape}."
        )
    flat = arr.reshape(-1).astype(np.int64)
    if flat.size and flat.min() < 0:
        raise ValueError(f"`{name}` must be >= 0, got the value {flat.min()}.")
    if num_classes is not None and flat.size and flat.max() >= num_classes:
        raise ValueError(
            f"`{name}` must lie in [0, num_classes={num_classes}), got the value {flat.max()}."
        )
    return arr, flat


def _n_of(rate, n):
    """The exact count for a fraction ``rate`` of ``n`` items, rounded half up."""
    return min(n, int(math.floor(rate * n + 0.5)))


def _finish(arr, flat, noisy_flat, selected, return_selected):
    dtype = arr.dtype
    if noisy_flat.size and noisy_flat.max() > np.iinfo(dtype).max:
        dtype = np.int64  # e.g. uint8 labels with K > 256: widen rather than wrap
    noisy = noisy_flat.astype(dtype).reshape(arr.shape)
    mask = noisy_flat != flat
    if return_selected:
        return noisy, mask, selected
    return noisy, mask


# ----------------------------------------------------------------------------
# Symmetric noise
# ----------------------------------------------------------------------------


def symmetric_noise(labels: ArrayLike, rate: float, num_classes: int, *, seed: Seed = None,
                    exclude_true: bool = False, return_selected: bool = False) -> NoisyLabels:
    """Give a fraction ``rate`` of the examples a uniformly random label.

    The paper's symmetric noise (Sec. 4): exactly ``floor(rate * N + 0.5)``
    examples, chosen without replacement, get a label drawn uniformly from
    all ``num_classes`` classes. The true class may then be drawn, in which
    case the label is unchanged, so on average a fraction
    ``rate * (K - 1) / K`` of the labels is wrong. With ``exclude_true=True``
    the new label is drawn uniformly from the ``K - 1`` other classes, and
    every selected example is corrupted.

    Args:
        labels: integer class ids, shape ``(N,)`` or ``(N, 1)``.
        rate: fraction of examples to relabel, in ``[0, 1]``.
        num_classes: the number of classes ``K`` (>= 2); labels lie in ``[0, K)``.
        seed: int, ``numpy.random.Generator`` or None (fresh entropy).
        exclude_true: draw only from the other classes.
        return_selected: also return the boolean array of selected examples.

    Returns:
        ``(noisy_labels, mask)``, or ``(noisy_labels, mask, selected)``;
        ``mask`` marks the labels that actually changed.
    """
    num_classes = check_num_classes(num_classes)
    rate = check_fraction("rate", rate)
    arr, flat = _check_labels(labels, num_classes)
    rng = _rng(seed)
    n = flat.size
    idx = rng.choice(n, size=_n_of(rate, n), replace=False)
    noisy = flat.copy()
    if exclude_true:
        # A uniform shift in [1, K) modulo K is uniform over the K - 1 other classes.
        noisy[idx] = (flat[idx] + rng.integers(1, num_classes, size=idx.size)) % num_classes
    else:
        noisy[idx] = rng.integers(0, num_classes, size=idx.size)
    selected = np.zeros(n, dtype=bool)
    selected[idx] = True
    return _finish(arr, flat, noisy, selected, return_selected)


def symmetric_transition_matrix(num_classes: int, rate: float, *, exclude_true: bool = False) -> np.ndarray:
    """The expected label transition matrix ``T[i, j] = P(noisy = j | true = i)`` of `symmetric_noise`."""
    num_classes = check_num_classes(num_classes)
    rate = check_fraction("rate", rate)
    if exclude_true:
        t = np.full((num_classes, num_classes), rate / (num_classes - 1))
        np.fill_diagonal(t, 1.0 - rate)
    else:
        t = np.full((num_classes, num_classes), rate / num_classes)
        np.fill_diagonal(t, 1.0 - rate + rate / num_classes)
    return t


# ----------------------------------------------------------------------------
# Class-map (asymmetric) noise
# ----------------------------------------------------------------------------


def _check_class_map(class_map, num_classes):
    if not hasattr(class_map, "items"):
        raise TypeError(
            f"`class_map` must be a mapping {{source_class: target_class}}, got {type(class_map).__name__}."
        )
    checked = {}
    for source, target in class_map.items():
        for role, c in (("source", source), ("target", target)):
            if isinstance(c, bool) or not isinstance(c, numbers.Integral):
                raise TypeError(f"`class_map` {role} classes must be integers, got {c!r}.")
            if c < 0 or (num_classes is not None and c >= num_classes):
                bound = f"[0, num_classes={num_classes})" if num_classes is not None else ">= 0"
                raise ValueError(f"`class_map` {role} class {c} is out of range: must be {bound}.")
        if source == target:
            raise ValueError(f"`class_map` maps class {source} to itself; remove that entry.")
        checked[int(source)] = int(target)
    return checked


def asymmetric_noise(
    labels: ArrayLike, rate: float, class_map: Mapping[int, int] | None = None, *, num_classes: int | None = None,
    seed: Seed = None, return_selected: bool = False
) -> NoisyLabels:
    """Flip a fraction ``rate`` of each source class to its target class.

    Class-conditional noise by a map ``{source: target}``: for every source
    class ``c`` with ``n_c`` examples, exactly ``floor(rate * n_c + 0.5)`` of
    them (chosen without replacement) are relabelled ``class_map[c]``.
    Sources are chosen from the *original* labels, so a swap such as
    cat <-> dog moves each class once. Classes not in the map are untouched.

    Args:
        labels: integer class ids, shape ``(N,)`` or ``(N, 1)``.
        rate: fraction of each source class to flip, in ``[0, 1]``.
        class_map: ``{source: target}``; defaults to `CIFAR10_ASYMMETRIC_MAP`,
            which needs CIFAR-10's classes: with ``num_classes`` other than
            10, or labels holding none of its source classes, it is an error.
        num_classes: optional ``K``; when given, labels and the map are
            checked to lie in ``[0, K)``.
        seed: int, ``numpy.random.Generator`` or None (fresh entropy).
        return_selected: also return the boolean array of selected examples
            (equal to ``mask`` here, since a source never maps to itself).

    Returns:
        ``(noisy_labels, mask)``, or ``(noisy_labels, mask, selected)``.
    """
    if num_classes is not None:
        num_classes = check_num_classes(num_classes)
    rate = check_fraction("rate", rate)
    default_map = class_map is None
    if default_map and num_classes is not None and num_classes != 10:
        raise ValueError(
            f"The default `class_map` is CIFAR-10's (10 classes), but num_classes={num_classes}: give `class_map`."
        )
    class_map = _check_class_map(CIFAR10_ASYMMETRIC_MAP if default_map else class_map, num_classes)
    arr, flat = _check_labels(labels, num_classes)
    if default_map and flat.size and rate > 0 and not np.isin(flat, list(class_map)).any():
        raise ValueError(
            f"None of the labels is a source class {sorted(class_map)} of the default CIFAR-10 `class_map` "
            f"(labels lie in [{flat.min()}, {flat.max()}]), so nothing would change: give `class_map`."
        )
    rng = _rng(seed)
    noisy = flat.copy()
    selected = np.zeros(flat.size, dtype=bool)
    for source in sorted(class_map):  # fixed order: the draw depends only on the seed
        members = np.flatnonzero(flat == source)
        idx = rng.choice(members, size=_n_of(rate, members.size), replace=False)
        noisy[idx] = class_map[source]
        selected[idx] = True
    return _finish(arr, flat, noisy, selected, return_selected)


# ----------------------------------------------------------------------------
# Transition-matrix noise
# ----------------------------------------------------------------------------


def _check_transition_matrix(transition_matrix):
    if isinstance(transition_matrix, (str, bytes)):
        raise TypeError(f"`transition_matrix` must be a 2-D array of numbers, got {transition_matrix!r}.")
    try:
        t = np.asarray(transition_matrix, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`transition_matrix` must be a 2-D array of numbers: {e}") from None
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"`transition_matrix` must be square, of shape (K, K), got shape {t.shape}.")
    if t.shape[0] < 2:
        raise ValueError(f"`transition_matrix` needs at least 2 classes, got shape {t.shape}.")
    if not np.all(np.isfinite(t)):
        i, j = np.argwhere(~np.isfinite(t))[0]
        raise ValueError(f"`transition_matrix` entries must be finite, got T[{i}, {j}] = {t[i, j]}.")
    if np.any(t < 0) or np.any(t > 1):
        i, j = np.argwhere((t < 0) | (t > 1))[0]
        raise ValueError(f"`transition_matrix` entries must be in [0, 1], got T[{i}, {j}] = {t[i, j]}.")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_ATOL)
    if bad.size:
        raise ValueError(
            f"`transition_matrix` rows must sum to 1 (within {_ROW_SUM_ATOL}): "
            f"row {bad[0]} sums to {float(sums[bad[0]])!r}."
        )
    return t / sums[:, None]


def _exact_counts(n, probs):
    """Split ``n`` items into counts proportional to ``probs`` (largest remainder)."""
    quota = n * probs
    counts = np.floor(quota).astype(np.int64)
    short = n - counts.sum()
    if short:
        order = np.argsort(-(quota - counts), kind="stable")  # ties: lower class first
        counts[order[:short]] += 1
    return counts


def transition_noise(labels: ArrayLike, transition_matrix: ArrayLike, *, seed: Seed = None,
                     exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Relabel by a transition matrix: ``y`` becomes ``j`` with probability ``T[y, j]``.

    General class-conditional noise (paper Sec. 2 mentions noise transition
    matrices). ``T`` must be ``K x K`` with entries in ``[0, 1]`` and rows
    summing to 1 (within 1e-6); the labels must lie in ``[0, K)``.

    With ``exact=False`` each example draws its new label independently. With
    ``exact=True`` the counts are fixed: of the ``n_i`` examples of class ``i``,
    ``n_i * T[i, j]`` rounded by the largest-remainder method (so they add
    up to ``n_i``; ties go to the lower class) become ``j``, and which
    examples become which is a seeded random permutation.

    Args:
        labels: integer class ids, shape ``(N,)`` or ``(N, 1)``.
        transition_matrix: array-like ``(K, K)``, ``T[i, j] = P(noisy=j | true=i)``.
        seed: int, ``numpy.random.Generator`` or None (fresh entropy).
        exact: fix the per-class counts instead of sampling them.

    Returns:
        ``(noisy_labels, mask)``; ``mask`` marks the labels that changed.
    """
    t = _check_transition_matrix(transition_matrix)
    k = t.shape[0]
    arr, flat = _check_labels(labels, k)
    rng = _rng(seed)
    noisy = flat.copy()
    order = np.argsort(flat, kind="stable")  # group by class once: O(N log N), not O(N K)
    bounds = np.searchsorted(flat[order], np.arange(k + 1))
    for c in range(k):
        members = order[bounds[c] : bounds[c + 1]]  # ascending, as np.flatnonzero(flat == c)
        if members.size == 0:
            continue
        if exact:
            targets = np.repeat(np.arange(k), _exact_counts(members.size, t[c]))
            noisy[rng.permutation(members)] = targets
        else:
            noisy[members] = rng.choice(k, size=members.size, p=t[c])
    return _finish(arr, flat, noisy, None, False)


def empirical_transition_matrix(true_labels: ArrayLike, noisy_labels: ArrayLike, num_classes: int) -> np.ndarray:
    """The observed ``T[i, j]`` = fraction of class-``i`` examples labelled ``j``.

    Rows of classes absent from ``true_labels`` are zero.
    """
    num_classes = check_num_classes(num_classes)
    _, a = _check_labels(true_labels, num_classes, "true_labels")
    _, b = _check_labels(noisy_labels, num_classes, "noisy_labels")
    if a.shape != b.shape:
        raise ValueError(
            f"`true_labels` and `noisy_labels` must have the same length, got {a.size} and {b.size}."
        )
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (a, b), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
