"""Eq. 3 of the paper: the mean backpropagation error <delta_k>(z_k), and
hyperparameters from the number of classes (Sec. 3.3, appendix 4).

``<delta_n>(z_n) = < dL/dz_n >`` averaged over the other logits
``z_i ~ N(mu, sigma^2)``, ``i != n``, at a fixed value of ``z_n``. Here ``n``
is the true class ``k`` (the paper's curves), and the mean error of the
incorrect classes comes with it at no extra cost.

The gradient is taken by the backend's autodiff of the loss object users
train with (``loss.call``), through `keras_robust._backend.value_and_grad`;
no loss formula is repeated here. Averages use Monte Carlo with a fixed seed
and the same draws of the other logits for every ``z`` and every parameter
value (common random numbers), so each function is deterministic and smooth
in ``z`` and in the loss parameters; their statistical error is reported.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, Mapping

import keras
import numpy as np
from scipy import optimize

from keras_robust import _backend, losses
from keras_robust._checks import check_finite, check_int, check_num_classes
from keras_robust._typing import ArrayLike
from keras_robust.epsilon import LogitModel, check_logit_model
from keras_robust.losses.base import RobustLoss

_MAX_ELEMENTS = 2**22  # logits per gradient call (16 MiB of float32)


@dataclasses.dataclass(frozen=True)
class ErrorCurve:
    """Mean errors of Eq. 3 on a grid of true-class logits.

    Attributes:
        z: the true-class logits ``z_k`` (before any logit bias of the loss).
        true: ``<delta_k>(z_k)``, the mean error of the true-class logit.
        true_se: its Monte-Carlo standard error (``sd / sqrt(samples)``).
        other: ``<delta_n>`` for ``n != k``: the error of an incorrect-class
            logit, averaged over the ``K - 1`` incorrect classes and the samples.
        other_se: its standard error (over samples of the per-row class mean).
        num_classes: ``K``.
        samples: the number of draws of the other logits per ``z``.
    """

    z: np.ndarray
    true: np.ndarray
    true_se: np.ndarray
    other: np.ndarray
    other_se: np.ndarray
    num_classes: int
    samples: int


def _check_z(z):
    try:
        values = np.asarray(z, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"`z` must be a number or a 1-D array of numbers, got {z!r}.") from None
    if values.ndim > 1 or values.size == 0:
        raise ValueError(f"`z` must be a number or a non-empty 1-D array, got shape {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"`z` must be finite, got {z!r}.")
    return np.atleast_1d(values)


def _resolve_loss(loss, num_classes):
    if isinstance(loss, str):
        return losses.get(loss, num_classes=num_classes)
    if isinstance(loss, keras.losses.Loss):
        return loss
    raise TypeError(f"`loss` must be a keras.losses.Loss or a registered loss name, got {loss!r}.")


def error_curve(loss: RobustLoss | Callable[..., Any], num_classes: int, z: float | ArrayLike,
                logits: LogitModel | None = None, samples: int = 4096, seed: int = 0,
                max_elements: int = _MAX_ELEMENTS) -> ErrorCurve:
    """``<delta_k>(z_k)`` of the paper's Eq. 3 for any loss, by autodiff.

    For each value of ``z``, ``samples`` rows of logits are formed with the
    true-class logit (label 0) set to ``z`` and the other ``K - 1`` drawn from
    ``logits`` (same draws for every ``z``); ``dL/dz`` of ``loss.call`` is
    taken by the backend and averaged over the rows.

    A loss with a logit bias ``eps`` sees ``z + eps``: its curve is the
    unbiased curve shifted left by ``eps``, i.e. it is plotted against the
    network's raw logit (the paper instead shifts the logit histogram).

    Numerical error: Monte Carlo, returned as ``true_se`` / ``other_se``
    (``sd / sqrt(samples)``); float32 autodiff adds a relative error ~1e-6.
    Cost: ``len(z) * samples * K`` logits, in gradient calls of at most
    ``max_elements`` logits (the draws, ``samples * (K - 1)`` float32, are
    held in memory).

    Args:
        loss: a `keras.losses.Loss` whose ``call(y_true, logits)`` returns the
            per-example loss for sparse labels (any keras_robust loss; Keras'
            ``SparseCategoricalCrossentropy(from_logits=True)`` works too), or
            a keras_robust registry name.
        num_classes: ``K >= 2``.
        z: true-class logit(s), a number or a 1-D array.
        logits: the `LogitModel` of the other logits (default N(0, 1)).
        samples: draws of the other logits per ``z`` (>= 2).
        seed: seed of the draws (same seed, same result).
        max_elements: memory bound of one gradient call.

    Returns:
        An `ErrorCurve`.
    """
    k = check_num_classes(num_classes)
    zs = _check_z(z)
    model = check_logit_model(LogitModel() if logits is None else logits)
    samples = check_int("samples", samples, 2)
    loss = _resolve_loss(loss, k)
    max_elements = check_int("max_elements", max_elements, 1)
    others = model.sample((samples, k - 1), seed=seed)
    total = len(zs) * samples
    rows = min(total, max(1, int(max_elements) // k))
    d_true = np.empty(total, dtype="float64")
    d_other = np.empty(total, dtype="float64")
    labels = keras.ops.convert_to_tensor(np.zeros(rows, dtype="int32"))
    for start in range(0, total, rows):
        # Every call has `rows` rows (the last one padded), so compiled kernels are reused.
        idx = np.minimum(np.arange(start, start + rows), total - 1)
        block = np.empty((rows, k), dtype="float32")
        block[:, 0] = zs[idx // samples]
        block[:, 1:] = others[idx % samples]

        def per_example(t, labels=labels):
            # `+ 0 * sum(t)` keeps the graph connected for a loss that ignores t.
            return loss.call(labels, t) + 0.0 * keras.ops.sum(t, axis=-1)

        _, grad = _backend.value_and_grad(per_example, block)
        grad = np.asarray(grad, dtype="float64")
        if not np.all(np.isfinite(grad)):
            bad = zs[idx[~np.all(np.isfinite(grad), axis=1)][0] // samples]
            raise ValueError(f"The gradient of {loss!r} is not finite at z = {bad!r} (K={k}).")
        d_true[idx] = grad[:, 0]  # padded rows repeat the last index: same value
        d_other[idx] = grad[:, 1:].mean(axis=1)
    d_true = d_true.reshape(len(zs), samples)
    d_other = d_other.reshape(len(zs), samples)
    root = math.sqrt(samples)
    return ErrorCurve(
        z=zs,
        true=d_true.mean(axis=1),
        true_se=d_true.std(axis=1, ddof=1) / root,
        other=d_other.mean(axis=1),
        other_se=d_other.std(axis=1, ddof=1) / root,
        num_classes=k,
        samples=samples,
    )


# -- hyperparameters from K (Sec. 3.3, appendix 4) --------------------------------------


def _loss_factory(make_loss):
    if isinstance(make_loss, str):
        name = make_loss

        def make(**params):
            return losses.get(name, **params)

        return make
    if not callable(make_loss):
        raise TypeError(f"`make_loss` must be a loss name or a callable(**params, num_classes=K), got {make_loss!r}.")
    return make_loss


class _Error0:
    """``(mean, se)`` of ``<delta_k>(z)`` for one setting, with a zero-curve check."""

    def __init__(self, make, fixed, z, logits, samples, seed):
        self.make, self.fixed, self.z = make, dict(fixed or {}), z
        self.logits, self.samples, self.seed = logits, samples, seed

    def __call__(self, num_classes, **params):
        loss = self.make(num_classes=num_classes, **self.fixed, **params)
        curve = error_curve(loss, num_classes, self.z, logits=self.logits, samples=self.samples, seed=self.seed)
        mean, se = float(curve.true[0]), float(curve.true_se[0])
        if mean == 0.0 and se == 0.0:
            raise ValueError(
                f"The error <delta_k>({self.z:g}) of {loss!r} is identically zero at K={num_classes}: "
                "the loss does not depend on the logits there, so no parameter can be matched."
            )
        return mean, se


@dataclasses.dataclass(frozen=True)
class HyperparameterMatch:
    """Result of `match_hyperparameter`; ``float(result)`` is the value.

    Attributes:
        param: the parameter's name.
        value: the parameter value at ``num_classes``.
        num_classes: ``K``.
        target: ``<delta_k>(z)`` to keep (from the reference setting), and ``target_se``.
        achieved: ``<delta_k>(z)`` at ``value`` (equals ``target`` to ``xtol``).
        value_se: Monte-Carlo standard error of ``value`` (from both
            standard errors and the slope ``d<delta_k>/d value``).
    """

    param: str
    value: float
    num_classes: int
    target: float
    target_se: float
    achieved: float
    value_se: float

    def __float__(self):
        return self.value


def match_hyperparameter(
    make_loss: str | Callable[..., Any],
    param: str,
    reference: tuple[int, float],
    num_classes: int,
    bracket: tuple[float, float],
    z: float = 0.0,
    fixed: Mapping[str, float] | None = None,
    logits: LogitModel | None = None,
    samples: int = 4096,
    seed: int = 0,
    xtol: float = 1e-5,
) -> HyperparameterMatch:
    """The value of ``param`` at ``K`` keeping ``<delta_k>(z)`` of a reference setting (Sec. 3.3).

    The paper's example: genCE with ``q = 0.7`` at ``K = 100`` gives
    ``<delta_k>(0)``; the ``q`` with the same error at ``K = 1000`` is 0.48::

        match_hyperparameter("gce", "q", reference=(100, 0.7), num_classes=1000, bracket=(0.05, 1.0))

    Solved by `scipy.optimize.brentq` (``xtol``) on the deterministic
    Monte-Carlo estimate (fixed seed, common random numbers), so the only
    error is statistical: ``value_se`` in the result.

    Args:
        make_loss: a registry name (``"gce"``) or a callable
            ``make_loss(num_classes=K, **params)`` returning a loss.
        param: the name of the parameter to solve for.
        reference: ``(K_ref, value_ref)`` (``fixed`` applies at ``K_ref`` too),
            ``(K_ref, {param: value, ...})`` (a full setting at ``K_ref``;
            ``fixed`` applies at ``K`` only), or a number: the target
            ``<delta_k>(z)`` itself.
        num_classes: ``K`` to solve at.
        bracket: ``(lo, hi)``, the interval searched; ``<delta_k>(z) - target``
            must change sign on it (else a `ValueError` says what it spans).
        z: the true-class logit where the errors are matched (paper: 0).
        fixed: other parameters of the loss, held fixed.
        logits, samples, seed: as in `error_curve`.
        xtol: absolute tolerance on the value.

    Returns:
        A `HyperparameterMatch`.
    """
    make = _loss_factory(make_loss)
    if not isinstance(param, str):
        raise TypeError(f"`param` must be a parameter name, got {param!r}.")
    k = check_num_classes(num_classes)
    z = check_finite("z", z)
    try:
        lo, hi = (float(b) for b in bracket)
    except (TypeError, ValueError):
        raise ValueError(f"`bracket` must be a pair (lo, hi) of numbers, got {bracket!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"`bracket` must be finite with lo < hi, got {bracket!r}.")
    if fixed is not None and param in fixed:
        raise ValueError(f"`param`={param!r} is also in `fixed`.")
    model = check_logit_model(LogitModel() if logits is None else logits)
    err = _Error0(make, fixed, z, model, check_int("samples", samples, 2), seed)
    if isinstance(reference, numbers.Real) and not isinstance(reference, bool):
        target, target_se = check_finite("reference", reference), 0.0
    else:
        try:
            k_ref, value_ref = reference
        except (TypeError, ValueError):
            raise ValueError(
                f"`reference` must be (K_ref, value_ref), (K_ref, {{param: value}}) or a number, got {reference!r}."
            ) from None
        k_ref = check_num_classes(k_ref, "reference[0] (K_ref)")
        if isinstance(value_ref, dict):
            full = _Error0(make, None, z, model, err.samples, seed)
            target, target_se = full(k_ref, **value_ref)
        else:
            target, target_se = err(k_ref, **{param: check_finite("reference[1]", value_ref)})

    def f(v):
        return err(k, **{param: v})[0] - target

    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0:
        raise ValueError(
            f"No {param} in bracket {bracket!r} gives <delta_k>({z:g}) = {target:.6g} at K={k}: "
            f"it spans [{min(f_lo, f_hi) + target:.6g}, {max(f_lo, f_hi) + target:.6g}] there. "
            "Widen the bracket, or use a logit bias (the paper's appendix 4)."
        )
    value = lo if f_lo == 0 else hi if f_hi == 0 else float(optimize.brentq(f, lo, hi, xtol=xtol))
    achieved, achieved_se = err(k, **{param: value})
    step = max(1e-4 * (hi - lo), 10 * xtol)
    a, b = max(lo, value - step), min(hi, value + step)
    slope = (f(b) - f(a)) / (b - a)
    value_se = math.hypot(target_se, achieved_se) / abs(slope) if slope != 0 else math.inf
    return HyperparameterMatch(param, value, k, target, target_se, achieved, value_se)


@dataclasses.dataclass(frozen=True)
class SolutionMap:
    """Result of `solution_map` (the paper's appendix Fig. 4).

    Attributes:
        names: the two parameter names ``(p1, p2)``.
        grids: their grids (1-D arrays).
        values: ``<delta_k>(z)``, shape ``(len(grid1), len(grid2))``.
        stderr: Monte-Carlo standard errors of ``values``.
        target: the level of the solutions.
        contour: ``(M, 2)`` array of points ``(p1, p2)`` where ``values``
            crosses ``target``, linearly interpolated along grid lines.
        num_classes: ``K``.
    """

    names: tuple
    grids: tuple
    values: np.ndarray
    stderr: np.ndarray
    target: float
    contour: np.ndarray
    num_classes: int


def _crossings(g1, g2, values, target):
    points = []
    d = values - target
    for i in range(len(g1)):  # along p2 at fixed p1
        for j in range(len(g2) - 1):
            a, b = d[i, j], d[i, j + 1]
            if a == 0:
                points.append((g1[i], g2[j]))
            elif a * b < 0:
                points.append((g1[i], g2[j] + (g2[j + 1] - g2[j]) * a / (a - b)))
        if d[i, -1] == 0:
            points.append((g1[i], g2[-1]))
    for j in range(len(g2)):  # along p1 at fixed p2
        for i in range(len(g1) - 1):
            a, b = d[i, j], d[i + 1, j]
            if a * b < 0:
                points.append((g1[i] + (g1[i + 1] - g1[i]) * a / (a - b), g2[j]))
    points = sorted(set(points))
    return np.asarray(points, dtype="float64").reshape(-1, 2)


def solution_map(
    make_loss: str | Callable[..., Any],
    params: Mapping[str, ArrayLike],
    num_classes: int,
    target: float | None = None,
    reference: tuple[int, Mapping[str, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    z: float = 0.0,
    logits: LogitModel | None = None,
    samples: int = 2048,
    seed: int = 0,
) -> SolutionMap:
    """``<delta_k>(z)`` over a 2-D grid of two parameters, and its ``target`` contour.

    With several parameters, many settings keep ``<delta_k>(0)`` (appendix 4,
    Fig. 4: NCE-AGCE, ``<delta_k>(0) = -0.021``); this maps them. Each grid
    point costs one `error_curve` at one ``z`` (same draws for all points).

    Args:
        make_loss: a registry name (``"nce+agce"``) or a callable
            ``make_loss(num_classes=K, **params)``.
        params: ``{name1: grid1, name2: grid2}``, two 1-D grids of values.
        num_classes: ``K``.
        target: the level ``<delta_k>(z)`` of the solutions; or give
        reference: ``(K_ref, {name: value, ...})``, a full setting at ``K_ref``
            whose ``<delta_k>(z)`` becomes the target.
        fixed: the other parameters (held fixed on the grid).
        z, logits, samples, seed: as in `error_curve`.

    Returns:
        A `SolutionMap`; ``stderr`` gives the Monte-Carlo error of every value.
    """
    make = _loss_factory(make_loss)
    k = check_num_classes(num_classes)
    z = check_finite("z", z)
    if not isinstance(params, dict) or len(params) != 2:
        raise ValueError(f"`params` must be a dict of exactly two parameter grids, got {params!r}.")
    names = tuple(params)
    grids = []
    for name in names:
        grid = np.asarray(params[name], dtype="float64")
        if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)):
            raise ValueError(f"`params[{name!r}]` must be a finite 1-D grid of >= 2 values, got {params[name]!r}.")
        grids.append(grid)
    if (target is None) == (reference is None):
        raise ValueError("Give exactly one of `target` (a number) and `reference` ((K_ref, {params})).")
    model = check_logit_model(LogitModel() if logits is None else logits)
    err = _Error0(make, fixed, z, model, check_int("samples", samples, 2), seed)
    if reference is not None:
        try:
            k_ref, ref_params = reference
            ref_params = dict(ref_params)
        except (TypeError, ValueError):
            raise ValueError(f"`reference` must be (K_ref, {{param: value}}), got {reference!r}.") from None
        ref = _Error0(make, None, z, model, err.samples, seed)
        target = ref(check_num_classes(k_ref, "reference[0] (K_ref)"), **ref_params)[0]
    target = check_finite("target", target)
    values = np.empty((len(grids[0]), len(grids[1])))
    stderr = np.empty_like(values)
    for i, v1 in enumerate(grids[0]):
        for j, v2 in enumerate(grids[1]):
            values[i, j], stderr[i, j] = err(k, **{names[0]: float(v1), names[1]: float(v2)})
    return SolutionMap(names, tuple(grids), values, stderr, target, _crossings(grids[0], grids[1], values, target), k)
