"""`preflight`: the paper's Sec. 3 on a freshly initialised model, and the parameter transfers it suggests."""

import math
import numbers
import time

import numpy as np

from keras_robust.calibration import LogitModel, epsilon_for_classes, error_curve, match_hyperparameter
from keras_robust.diagnostics.measure import _auto_samples, _logits, _resolve_loss, _stats, is_adaptive_optimizer
from keras_robust.diagnostics.report import EPSILON_TARGET, OVERLAP_THRESHOLD, PreflightReport

# Sec. 3.3 references for the parameter transfers (the same as `keras-robust calibrate`):
# genCE q = 0.7 at K = 100; NCE-AGCE with the CIFAR-100 parameters at K = 100, beta
# solved with alpha = 100, q = a = 0.05 held (the paper's K = 1000 choice, appendix 4).
GCE_REFERENCE = (100, 0.7)
NCE_AGCE_FIXED = {"alpha": 100.0, "q": 0.05, "a": 0.05}

_GRID_POINTS = 25  # z_k values at which <delta_k>(z_k) is computed (then interpolated)
_MATCH_BUDGET = 2**18  # logits per parameter-transfer evaluation
_SGD_FAMILY = "SGD-type optimizers (SGD, with or without momentum / Nesterov)"


# -- parameter transfers (Sec. 3.3) ------------------------------------------------------


def _transfer(loss, k, logit_model, seed):
    """``(params, note)``: genCE q / NCE-AGCE beta restoring the Sec. 3.3 reference <delta_k>, else (None, note)."""
    from keras_robust import losses

    centred = LogitModel(0.0, logit_model.std)  # <delta_k>(mean) with others around mean = <delta_k>(0) here
    samples = int(min(2048, max(64, _MATCH_BUDGET // k)))
    is_gce = isinstance(loss, losses.GCE)
    is_nce_agce = isinstance(loss, losses.ActivePassive) and (
        isinstance(loss.active, losses.NCE) and isinstance(loss.passive, losses.AGCE))
    if not (is_gce or is_nce_agce):
        return None, ""
    if is_gce:
        k_ref, q_ref = GCE_REFERENCE
        ref = error_curve(losses.get("gce", q=q_ref), k_ref, [0.0], samples=samples, seed=seed)
        name, param, bracket, fixed = "gce", "q", (1e-3, 1.0), None
        note = f"keeps <delta_k>(0) = {ref.true[0]:.4g} of genCE q = {q_ref:g} at K = {k_ref}, logits N(0, 1)"
    else:
        params = losses.PAPER_PARAMETERS["cifar100"]["nce+agce"]
        ref = error_curve(losses.get("nce+agce", **params), 100, [0.0], samples=samples, seed=seed)
        name, param, bracket, fixed = "nce+agce", "beta", (1e-3, 100.0), NCE_AGCE_FIXED
        note = (f"keeps <delta_k>(0) = {ref.true[0]:.4g} of NCE-AGCE with the CIFAR-100 parameters at K = 100, "
                "logits N(0, 1); alpha, q, a held at the paper's K = 1000 choice")
    try:
        m = match_hyperparameter(name, param, reference=float(ref.true[0]), num_classes=k, bracket=bracket,
                                 fixed=fixed, logits=centred, samples=samples, seed=seed)
    except ValueError as e:
        return None, f"no {param} restores the reference: {e}"
    return {param: m.value, **(fixed or {})}, note


# -- the check -----------------------------------------------------------------------------


def preflight(model, loss, x, optimizer=None, *, threshold=OVERLAP_THRESHOLD, samples=None, seed=0):
    """Will ``loss`` learn with this freshly initialised ``model`` (under SGD)? A `PreflightReport`.

    1. Runs ``model(x, training=False)`` and measures the logits (`LogitStats`):
       the other logits are modelled as i.i.d. ``N(mean, row_std**2)`` (the
       paper's Sec. 3 model with the measured per-example spread instead of
       unit variance).
    2. Computes ``<delta_k>(z_k)`` of Eq. 3 for ``loss`` at ``K`` with
       `keras_robust.calibration.error_curve` on 25 values of ``z_k``
       spanning the measured logits (``samples`` draws of the other logits
       each; the loss's own logit bias is included).
    3. **overlap** = ``E[-<delta_k>(z_k)] / (1 - 1/K)``: the mean true-class
       error under the measured distribution of ``z_k`` (every measured logit,
       re-centred on its example's mean, is a possible true-class logit:
       labels are independent of a fresh network's outputs), interpolated
       from the curve, divided by the same quantity for CE, which is exactly
       ``1 - <a_k> = 1 - 1/K`` for i.i.d. logits. It is the initial push on
       the true-class logit relative to CE's; with SGD the step is this times
       the learning rate, so ``1 / overlap`` is the learning-rate factor the
       loss would need to move as fast as CE. A negative overlap means the
       loss pushes the true class down.
    4. **learns** = ``overlap >= threshold`` (default `OVERLAP_THRESHOLD` =
       0.01, calibrated on the paper's WebVision outcomes; see its comment).
    5. The fixes: ``suggested_epsilon``, Eq. 4 (``<a_k> = 0.15``) for the
       measured logits, and for genCE and NCE-AGCE that do not learn, the
       parameter keeping the paper's Sec. 3.3 reference ``<delta_k>(0)``
       (`match_hyperparameter`; only computed when ``learns`` is False).

    **Which optimizers.** The verdict holds for SGD-type optimizers (SGD, with
    or without momentum / Nesterov): the paper's setting, where the step is
    proportional to the gradient. Adam, RMSprop, Adagrad, Lion and the like
    rescale each parameter's gradient by its own running size, so a small,
    consistent gradient is not a small step; a low overlap then predicts slow
    or noisy learning much less reliably. Give ``optimizer`` (an object or a
    name; default: the model's compiled optimizer, if any) and the report
    says whether it is adaptive (``adaptive_optimizer``); ``learns`` stays the
    SGD verdict.

    **Limits.** One threshold cannot fit every architecture: the paper's
    NCE-MAE / NF-MAE with beta on the class-averaged MAE learned CIFAR-100
    (K = 100, ResNet-34 with BatchNorm) at overlaps of 0.002-0.006 for
    N(0, 1) logits. Treat ``learns=False`` as "expect a stalled start", not
    as a proof. The error curve is Monte Carlo (``overlap_se``).

    Cost: ``25 * samples * K`` logits through the loss's autodiff (default
    ``samples`` keeps that near 2M: about 0.1-1 s on a CPU for K = 1000);
    the parameter transfer adds ~12 evaluations of ``2**18`` logits.

    Args:
        model: a Keras model mapping ``x`` to logits of shape ``(batch, K)``
            (no final softmax), freshly initialised.
        loss: a `keras.losses.Loss` taking sparse labels and logits (any
            keras_robust loss; Keras' ``SparseCategoricalCrossentropy(
            from_logits=True)``), a keras_robust registry name (built with
            ``num_classes`` = the output width), or None for the model's
            compiled loss.
        x: a batch of inputs, as the model takes them (e.g. 256 training
            examples, normalised as in training).
        optimizer: optional optimizer (object or name) the model will train with.
        threshold: the overlap below which ``learns`` is False.
        samples: draws of the other logits per ``z_k`` (default: automatic).
        seed: seed of those draws (same inputs, same report).

    Returns:
        A `PreflightReport`.

    Raises:
        ValueError: empty batch, model output not ``(batch, K)`` logits
            (rank != 2, K < 2, probabilities, NaN), or a loss built for
            another ``K`` than the model's output width, or taking probabilities.
    """
    start = time.perf_counter()
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number, got {threshold!r}.")
    z = _logits(model, x)
    stats = _stats(z)
    k = stats.num_classes
    loss = _resolve_loss(loss, model, k)
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
    opt_name, adaptive = is_adaptive_optimizer(optimizer)

    logit_model = stats.model
    # Every measured logit, re-centred on its example's mean (the softmax ignores that shift).
    values = (z - z.mean(axis=1, keepdims=True) + stats.mean).ravel()
    lo, hi = float(values.min()), float(values.max())
    grid = np.unique(np.append(np.linspace(lo, hi, _GRID_POINTS) if hi > lo else [lo], stats.mean))
    n = _auto_samples(k, len(grid)) if samples is None else samples
    curve = error_curve(loss, k, grid, logits=logit_model, samples=n, seed=seed)
    norm = 1.0 - 1.0 / k
    overlap = float(-np.mean(np.interp(values, grid, curve.true)) / norm)
    overlap_se = float(np.mean(np.interp(values, grid, curve.true_se)) / norm)  # bound: errors are correlated
    delta_center = float(curve.true[np.searchsorted(grid, stats.mean)])
    learns = bool(overlap >= threshold)

    eps = float(epsilon_for_classes(k, target=EPSILON_TARGET, logits=logit_model))
    eps_unit = float(epsilon_for_classes(k, target=EPSILON_TARGET))
    params, note = (None, "") if learns else _transfer(loss, k, logit_model, seed)
    return PreflightReport(
        loss=getattr(loss, "name", type(loss).__name__),
        loss_class=type(loss).__name__,
        num_classes=k,
        logits=stats,
        overlap=overlap,
        overlap_se=overlap_se,
        delta_center=delta_center,
        threshold=float(threshold),
        learns=learns,
        suggested_epsilon=eps,
        epsilon_unit_logits=eps_unit,
        suggested_params=params,
        suggested_params_note=note,
        optimizer=opt_name,
        adaptive_optimizer=adaptive,
        verdict_for=_SGD_FAMILY,
        samples=int(n),
        seconds=time.perf_counter() - start,
    )
