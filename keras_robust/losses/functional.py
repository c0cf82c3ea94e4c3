"""The losses as pure functions of ``(y, logits)``: one definition each.

Every function takes

* ``y``: integer class indices of shape ``(...)``, or a float32 label
  distribution of shape ``(..., K)`` (one-hot, or soft),
* ``logits``: float32 pre-softmax outputs of shape ``(..., K)``,

and returns the per-example loss of shape ``(...)``. They use `keras.ops`
only, work from ``log_softmax`` (never ``log(clip(p))``), and are the single
source of truth: the `Loss` classes, the calibration solver and the tests call
these same functions.

Soft labels. Except for the bi-tempered loss (which has its own Bregman form),
a loss ``L(a, k)`` defined for a one-hot target ``k`` is extended linearly to a
label distribution: ``L(a, y) = sum_k y_k L(a, k)``. For one-hot ``y`` this is
exactly the paper's Table 1. With class indices, only the labelled entry of
each row is evaluated (a gather instead of a sum over K).

Notation (paper, Table 1): ``a = softmax(z)``, ``k`` the labelled class.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_robust._typing import Tensor

# Smallest positive normal float32: a floor inside logarithms and powers whose
# gradient would otherwise be ``inf * 0``. `maximum` passes no gradient to the
# floor, so the floor only ever removes a NaN, never changes a finite value
# by more than 1e-38.
TINY = 1.1754944e-38


def _is_index(y):
    return "int" in keras.backend.standardize_dtype(y.dtype)


def _expected(y, values, fn=None):
    """``sum_k y_k fn(values_k)``: the loss for a label (indices or distribution).

    With class indices ``y`` only the labelled entry is gathered, then ``fn``
    is applied to it; with a distribution ``fn`` maps the whole row.
    """
    fn = fn or (lambda v: v)
    if _is_index(y):
        return fn(ops.squeeze(ops.take_along_axis(values, ops.expand_dims(y, -1), axis=-1), -1))
    return ops.sum(y * fn(values), axis=-1)


def one_hot(y, num_classes):
    """A float32 label distribution from class indices (distributions pass through)."""
    return ops.one_hot(y, num_classes, dtype="float32") if _is_index(y) else y


def _one_minus_exp(log_p):
    """``1 - exp(log_p)`` for ``log_p <= 0`` without cancellation (``-expm1``)."""
    return -ops.expm1(ops.minimum(log_p, 0.0))


def cross_entropy(y, logits):
    """CE, ``-log a_k`` (paper Table 1)."""
    return -_expected(y, ops.log_softmax(logits, axis=-1))


# The scale of MAE's ``1 - a_k`` under each convention (``None``: ``2 / K``).
MAE_FORMS = {"l1": 2.0, "reduced": 1.0, "l1_mean": None}


def mae(y, logits, form="l1"):
    """MAE in one of three conventions, all proportional to ``1 - a_k``.

    * ``"l1"``: ``||e_k - a||_1 = 2 (1 - a_k)``, the paper's Table 1;
    * ``"reduced"``: ``1 - a_k``, the form of the Active-Passive and ALFs
      reference code (Ma et al. 2020; Zhou et al. 2021), whose ``beta``
      multiplies it;
    * ``"l1_mean"``: ``||e_k - a||_1 / K = 2 (1 - a_k) / K``, an L1 loss
      averaged over the class axis (e.g. ``torch.nn.L1Loss()`` on softmax and
      one-hot).
    """
    scale = MAE_FORMS[form]
    if scale is None:
        scale = 2.0 / logits.shape[-1]
    return scale * _expected(y, ops.log_softmax(logits, axis=-1), _one_minus_exp)


def reverse_cross_entropy(y, logits, log_zero=-4.0):
    """RCE, ``-sum_i a_i log y_i`` with ``log 0 := A`` = ``-A (1 - a_k)``.

    Wang et al. 2019, Eq. 4; ``A = log_zero`` (their default ``-4``).
    """
    return -log_zero * _expected(y, ops.log_softmax(logits, axis=-1), _one_minus_exp)


def generalized_cross_entropy(y, logits, q=0.7):
    """genCE / GCE, ``(1 - a_k^q) / q`` (paper Table 1; Zhang & Sabuncu 2018)."""
    log_p = ops.log_softmax(logits, axis=-1)
    return _expected(y, log_p, lambda lp: -ops.expm1(q * lp) / q)


def symmetric_cross_entropy(y, logits, alpha=0.1, beta=1.0, log_zero=-4.0):
    """symCE / SCE, ``alpha CE + beta RCE`` (Wang et al. 2019, Eq. 5)."""
    return alpha * cross_entropy(y, logits) + beta * reverse_cross_entropy(
        y, logits, log_zero
    )


def normalized_cross_entropy(y, logits):
    """NCE, ``log a_k / sum_i log a_i`` (paper Table 1; Ma et al. 2020, Eq. 4)."""
    log_p = ops.log_softmax(logits, axis=-1)
    # sum_i log a_i < 0 strictly for K >= 2: at most one a_i can equal 1.
    return _expected(y, log_p) / ops.sum(log_p, axis=-1)


def normalized_focal(y, logits, gamma=0.5, detach_weight=False):
    """NFL, ``FL_k / sum_i FL_i`` with ``FL_i = -(1 - a_i)^gamma log a_i``.

    The normalized focal loss of Ma et al. 2020 (Eq. 5). The paper's Table 1
    prints ``log((1 - a_k)^0.5 a_k) / sum_i log((1 - a_i)^0.5 a_i)`` for "NF"
    instead, a different function; we implement Ma et al.'s definition, which
    is what their code and the paper's cited results use.
    ``detach_weight=True`` passes no gradient through the focal weights
    ``(1 - a_i)^gamma`` (same value), as the Active-Passive and ALFs reference
    code does; the default differentiates the formula.
    """
    log_p = ops.log_softmax(logits, axis=-1)
    one_minus = ops.maximum(_one_minus_exp(log_p), TINY)
    weight = ops.exp(gamma * ops.log(one_minus))
    if detach_weight:
        weight = ops.stop_gradient(weight)
    focal = -weight * log_p
    return _expected(y, focal) / ops.sum(focal, axis=-1)


def asymmetric_generalized_cross_entropy(y, logits, a=0.6, q=0.6):
    """AGCE, ``((a + 1)^q - (a + a_k)^q) / q`` (paper Table 1 with b = a; Zhou et al. 2021)."""
    log_p = ops.log_softmax(logits, axis=-1)
    return _expected(y, log_p, lambda lp: ((a + 1.0) ** q - ops.power(a + ops.exp(lp), q)) / q)


def asymmetric_unhinged(y, logits, a=1.5, q=0.1):
    """AUL, ``((a - a_k)^q - (a - 1)^q) / q`` with ``a > 1`` (Zhou et al. 2021)."""
    log_p = ops.log_softmax(logits, axis=-1)
    return _expected(y, log_p, lambda lp: (ops.power(a - ops.exp(lp), q) - (a - 1.0) ** q) / q)


def asymmetric_exponential(y, logits, a=2.5):
    """AEL, ``exp(-a_k / a)`` (Zhou et al. 2021)."""
    log_p = ops.log_softmax(logits, axis=-1)
    return _expected(y, log_p, lambda lp: ops.exp(-ops.exp(lp) / a))


# --- bi-tempered logistic loss (Amid et al. 2019) ---------------------------


def _log_t(u, t):
    """Tempered logarithm ``(u^(1-t) - 1) / (1 - t)``; ``log`` at ``t = 1``."""
    u = ops.maximum(u, TINY)
    if t == 1.0:
        return ops.log(u)
    return ops.expm1((1.0 - t) * ops.log(u)) / (1.0 - t)


def _exp_t(u, t):
    """Tempered exponential ``[1 + (1-t) u]_+^(1/(1-t))``; ``exp`` at ``t = 1``.

    For ``t < 1`` it is exactly zero outside its support; for ``t > 1`` it is
    used only at ``u <= 0`` (probabilities), where the base is ``>= 1``. Never
    differentiated (the normalisation and `tempered_softmax` attach their
    gradients explicitly), so ``log 0 = -inf`` outside the support is harmless.
    """
    if t == 1.0:
        return ops.exp(u)
    base = 1.0 + (1.0 - t) * u
    if t < 1.0:
        base = ops.maximum(base, 0.0)
    return ops.exp(ops.log(base) / (1.0 - t))


def _newton(shifted, lam, t, steps):
    """Newton steps on ``f(lam) = sum_i exp_t(s_i - lam) - 1``.

    ``f'(lam) = -sum_i exp_t(s_i - lam)^t`` (as ``d exp_t(u)/du = exp_t(u)^t``);
    ``f`` is convex and decreasing, so from a bracketed start the steps
    converge quadratically.
    """
    for _ in range(steps):
        p = _exp_t(shifted - lam, t)
        lam = lam + (ops.sum(p, axis=-1, keepdims=True) - 1.0) / ops.sum(ops.power(p, t), axis=-1, keepdims=True)
    return lam


def _tempered_normalization(logits, t, iterations):
    """``lambda`` with ``sum_i exp_t(z_i - lambda) = 1`` (no gradient).

    ``t > 1``: the fixed-point iteration of Amid et al. (Alg. 1);
    ``t < 1``: bisection on ``lambda`` (the partition has finite support).
    Either is polished by Newton steps (two after the fixed point, one after
    bisection), which make the result exact to float32 rounding with few
    (cheap) iterations.
    """
    z = ops.stop_gradient(logits)
    mu = ops.max(z, axis=-1, keepdims=True)
    shifted = z - mu
    if t > 1.0:
        normalized = shifted
        for _ in range(iterations):
            partition = ops.sum(_exp_t(normalized, t), axis=-1, keepdims=True)
            normalized = shifted * ops.power(partition, 1.0 - t)
        partition = ops.sum(_exp_t(normalized, t), axis=-1, keepdims=True)
        lam = _newton(shifted, -_log_t(1.0 / partition, t), t, steps=2)
    else:
        # lambda lies in [0, -log_t(1/d)] for the shifted logits, d the number
        # of logits inside the support of exp_t.
        effective = ops.sum(ops.cast(shifted > -1.0 / (1.0 - t), "float32"), axis=-1, keepdims=True)
        upper = -_log_t(1.0 / effective, t)
        lower = ops.zeros_like(upper)
        for _ in range(iterations):
            mid = 0.5 * (lower + upper)
            too_small = ops.sum(_exp_t(shifted - mid, t), axis=-1, keepdims=True) < 1.0
            lower = ops.where(too_small, lower, mid)
            upper = ops.where(too_small, mid, upper)
        lam = _newton(shifted, 0.5 * (lower + upper), t, steps=1)
    return lam + mu


def tempered_softmax(logits, t=1.0, iterations=5):
    """Tempered softmax ``exp_t(z - lambda(z))`` (Amid et al. 2019, Eq. 8).

    The normalisation ``lambda`` is found iteratively without gradient. The
    exact gradient, ``dp_i = p_i^t (dz_i - dlambda)`` with ``dlambda =
    sum_j p_j^t dz_j / sum_j p_j^t`` (implicit function theorem), is attached
    by a zero-valued first-order term, so ``exp_t`` is evaluated once and
    autodiff matches the reference implementation's custom gradient.
    """
    if t == 1.0:
        return ops.softmax(logits, axis=-1)
    lam = _tempered_normalization(logits, t, iterations)
    p = ops.stop_gradient(_exp_t(ops.stop_gradient(logits) - lam, t))
    slope = ops.power(p, t)  # d exp_t(u) / du; zero outside the support
    dz = logits - ops.stop_gradient(logits)  # value 0, gradient 1
    dlam = ops.sum(slope * dz, axis=-1, keepdims=True) / ops.sum(slope, axis=-1, keepdims=True)
    return p + slope * (dz - dlam)


def bi_tempered(y, logits, t1=0.8, t2=1.2, iterations=5):
    """Bi-tempered logistic loss (Amid et al. 2019, Eq. 11).

    ``sum_i [y_i log_t1(y_i) - y_i log_t1(p_i) - (y_i^(2-t1) - p_i^(2-t1)) / (2-t1)]``
    with ``p = tempered_softmax(z, t2)``. ``t1 = t2 = 1`` is CE. ``iterations``
    is the number of fixed-point (``t2 > 1``) or bisection (``t2 < 1``) steps
    before the Newton polish.
    """
    if t1 == 1.0 and t2 == 1.0:
        return cross_entropy(y, logits)
    p = tempered_softmax(logits, t2, iterations)
    p_term = ops.sum(ops.power(p, 2.0 - t1), axis=-1) / (2.0 - t1)  # 2 - t1 >= 1: smooth at p = 0
    if _is_index(y):  # one-hot: y log_t(y) = 0 and sum_i y_i^(2-t1) = 1
        return p_term - _log_t(_expected(y, p), t1) - 1.0 / (2.0 - t1)
    return p_term + ops.sum(
        y * _log_t(y + 1e-10, t1) - y * _log_t(p, t1) - ops.power(y, 2.0 - t1) / (2.0 - t1), axis=-1
    )


def add_logit_bias(logits: Tensor, y: Tensor, epsilon: float | Tensor) -> Tensor:
    """``z + epsilon * y``: the logit bias of the paper (Sec. 3.2).

    With one-hot ``y`` this adds ``epsilon`` to the true-class logit ``z_k``;
    a soft label distribution shifts each logit by ``epsilon * y_i``.
    """
    return logits + ops.cast(epsilon, logits.dtype) * ops.cast(one_hot(y, logits.shape[-1]), logits.dtype)


FUNCTIONS = {
    "ce": cross_entropy,
    "mae": mae,
    "rce": reverse_cross_entropy,
    "gce": generalized_cross_entropy,
    "sce": symmetric_cross_entropy,
    "nce": normalized_cross_entropy,
    "nfl": normalized_focal,
    "agce": asymmetric_generalized_cross_entropy,
    "aul": asymmetric_unhinged,
    "ael": asymmetric_exponential,
    "bitempered": bi_tempered,
}

__all__ = [f.__name__ for f in FUNCTIONS.values()] + ["add_logit_bias", "tempered_softmax"]
