"""Pre-flight check: will this loss learn with this freshly initialised model at this K?

The paper's Sec. 3 in one call, before any training. `preflight` runs the
model on a batch, measures its initial logits (the paper assumes N(0, 1);
real networks differ, its appendix Fig. 2), and computes how much of the
loss's mean true-class error ``<delta_k>(z_k)`` (Eq. 3) overlaps *those*
logits. A loss whose error vanishes where the logits lie does not learn with
SGD (paper Fig. 2b, Table 3); the report then names the fixes: the logit
bias ``epsilon`` of Eq. 4 for the measured logits, and for genCE / NCE-AGCE
the parameter value that restores ``<delta_k>`` (Sec. 3.3).

    report = kr.preflight(model, kr.losses.MAE(), x[:256], optimizer="sgd")
    print(report)                   # readable; report.summary() is one line
    model.fit(x, y, callbacks=[kr.PreflightCheck(x[:256])])   # warns once if not

The verdict is about **SGD-type optimizers** (SGD, with or without momentum
or Nesterov), whose step is proportional to the gradient: that is the
setting of the paper's analysis and experiments. Adaptive optimizers (Adam,
AdamW, RMSprop, Adagrad, Lion, ...) divide each parameter's gradient by its
own running scale, so a small but consistent gradient still moves the
weights; the report marks them (``adaptive_optimizer``) and says the verdict
does not apply to them as stated.

All error curves come from `keras_robust.calibration.error_curve` (autodiff
of the loss object itself); Eq. 4 from `epsilon_for_classes`; parameter
transfers from `match_hyperparameter`.
"""

import dataclasses
import math
import numbers
import time
import warnings

import keras
import numpy as np

from keras_robust.calibration import (
    LogitModel,
    epsilon_for_classes,
    error_curve,
    match_hyperparameter,
)

__all__ = [
    "OVERLAP_THRESHOLD",
    "LogitStats",
    "PreflightCheck",
    "PreflightReport",
    "PreflightWarning",
    "is_adaptive_optimizer",
    "preflight",
]

#: ``learns`` is ``overlap >= OVERLAP_THRESHOLD``. Calibrated on the paper's
#: outcomes, overlaps computed here for logits N(0, 1): the settings that did
#: not learn WebVision (K = 1000, its Table 3, first row) have overlap 0.0020
#: (MAE), 0.0071 (genCE q = 0.7: 13 % top-1), 0.0017 (NCE-AGCE, CIFAR-100
#: parameters), 0.0001 (NF-MAE); the settings its Sec. 3.3 takes as "learns
#: well" have 0.036 (genCE q = 0.7, K = 100), 0.023 (NCE-AGCE, K = 100), and
#: its transferred ones 0.032 (genCE q = 0.48, K = 1000), 0.025 (NCE-AGCE
#: alpha = 100, beta = 0.7, K = 1000). 0.01 lies in that gap (about its
#: geometric middle); read it as "SGD would need more than 100x the learning
#: rate that suits CE to move the true-class logit as fast".
OVERLAP_THRESHOLD = 0.01

#: ``C`` of Eq. 4 (the paper's choice for MAE*): mean true-class probability after the bias.
EPSILON_TARGET = 0.15

# Sec. 3.3 references for the parameter transfers (the same as `keras-robust calibrate`):
# genCE q = 0.7 at K = 100; NCE-AGCE with the CIFAR-100 parameters at K = 100, beta
# solved with alpha = 100, q = a = 0.05 held (the paper's K = 1000 choice, appendix 4).
GCE_REFERENCE = (100, 0.7)
NCE_AGCE_FIXED = {"alpha": 100.0, "q": 0.05, "a": 0.05}

_GRID_POINTS = 25  # z_k values at which <delta_k>(z_k) is computed (then interpolated)
_CURVE_BUDGET = 2**21  # logits per error curve when `samples` is automatic
_MATCH_BUDGET = 2**18  # logits per parameter-transfer evaluation
_SGD_FAMILY = "SGD-type optimizers (SGD, with or without momentum / Nesterov)"


class PreflightWarning(UserWarning):
    """A pre-flight check found that the loss will (most likely) not learn from this initialisation."""


@dataclasses.dataclass(frozen=True)
class LogitStats:
    """The freshly initialised model's logits on the batch.

    Attributes:
        mean: mean of all logits.
        std: standard deviation of all logits, pooled over examples and
            classes (the paper's appendix Fig. 2; `measure_logits`).
        row_std: per-example spread: ``sqrt(mean_i var_j z_ij)``, the standard
            deviation of one example's K logits around that example's mean,
            averaged over examples. The softmax ignores a shift shared by one
            example's logits, so this is the spread that sets ``a_k``;
            ``std**2 = row_std**2 + var(row means)`` (up to ddof).
        row_range: mean over examples of ``max_j z_ij - min_j z_ij``.
        num_examples: examples in the batch.
        num_classes: ``K`` (the output width).
    """

    mean: float
    std: float
    row_std: float
    row_range: float
    num_examples: int
    num_classes: int

    @property
    def model(self):
        """The `LogitModel` used for the error curves and Eq. 4: ``N(mean, row_std**2)``."""
        return LogitModel(mean=self.mean, std=max(self.row_std, 1e-6))


@dataclasses.dataclass(frozen=True)
class PreflightReport:
    """What `preflight` found. ``str(report)`` is a readable block, ``report.summary()`` one line.

    Attributes:
        loss: the loss's name.
        loss_class: the loss's class name (e.g. ``"MAE"``).
        num_classes: ``K``.
        logits: the measured `LogitStats`.
        overlap: ``E[-<delta_k>(z_k)] / (1 - 1/K)``, the mean true-class error
            of Eq. 3 under the measured logit distribution, relative to CE's
            (see `preflight`).
        overlap_se: a Monte-Carlo error bound on ``overlap``.
        delta_center: ``<delta_k>`` at the centre of the logits (``z_k`` = their
            mean): the paper's ``<delta_k>(0)``, the quantity Sec. 3.3 matches.
        threshold: the ``overlap`` below which ``learns`` is False.
        learns: ``overlap >= threshold`` -- the verdict for SGD-type optimizers.
        suggested_epsilon: the logit bias of Eq. 4 (``<a_k> = 0.15``) for the
            measured logits (``N(mean, row_std**2)``), the fix for any loss
            (``logit_bias=``; ``MAEStar(epsilon=...)`` for MAE).
        epsilon_unit_logits: the same for logits N(0, 1) (what
            ``MAEStar(num_classes=K)`` uses), for comparison.
        suggested_params: for genCE / NCE-AGCE when ``learns`` is False, the
            parameters that restore ``<delta_k>`` at the centre to its Sec. 3.3
            reference value (`match_hyperparameter`), e.g. ``{"q": 0.41}``;
            None otherwise, or when no value in range does (then
            ``suggested_params_note`` says why).
        suggested_params_note: where the parameters come from, or why there are none.
        optimizer: the optimizer's class name, or None when not known.
        adaptive_optimizer: True for optimizers that rescale gradients per
            parameter (Adam, RMSprop, ...), False for SGD, None when unknown.
        verdict_for: the optimizers the verdict holds for.
        samples: draws of the other logits per ``z_k`` in the error curve.
        seconds: wall time of the check.
    """

    loss: str
    loss_class: str
    num_classes: int
    logits: LogitStats
    overlap: float
    overlap_se: float
    delta_center: float
    threshold: float
    learns: bool
    suggested_epsilon: float
    epsilon_unit_logits: float
    suggested_params: dict | None
    suggested_params_note: str
    optimizer: str | None
    adaptive_optimizer: bool | None
    verdict_for: str
    samples: int
    seconds: float

    @property
    def fix(self):
        """The suggested fix in words ('' when the loss learns)."""
        if self.learns:
            return ""
        eps = f"{self.suggested_epsilon:.3g}"
        text = f"logit_bias={eps} (Eq. 4 for the measured logits)"
        if self.loss_class == "MAE":
            text = f"MAEStar(epsilon={eps}) or " + text
        if self.suggested_params:
            params = ", ".join(f"{k}={v:.3g}" for k, v in self.suggested_params.items())
            text = f"{params} (Sec. 3.3) or " + text
        return text

    def summary(self):
        """One line: the verdict, the overlap and, if it does not learn, the fix."""
        k = self.num_classes
        head = (f"preflight {self.loss} at K={k}: overlap {self.overlap:.4g} "
                f"{'>=' if self.learns else '<'} {self.threshold:g} with logits "
                f"N({self.logits.mean:.2g}, {self.logits.row_std:.2g}^2)")
        if self.learns:
            line = f"{head}: learns"
        elif self.adaptive_optimizer:
            line = (f"{head}: would not learn with SGD; {self.optimizer} is adaptive, so the verdict does not "
                    f"apply as stated -- if training stalls, use {self.fix}")
        else:
            line = f"{head}: will not learn (gradients too small); fix: {self.fix}"
        if self.learns and self.adaptive_optimizer:
            line += f" (verdict for SGD; {self.optimizer} is adaptive)"
        return line

    def __str__(self):
        s = self.logits
        opt = {True: "adaptive: rescales small gradients, the verdict does not apply as stated",
               False: "the verdict applies", None: "unknown: the verdict assumes SGD"}[self.adaptive_optimizer]
        lines = [
            f"Pre-flight check: {self.loss}, K = {self.num_classes}",
            f"  logits on {s.num_examples} examples: mean {s.mean:.4g}, std {s.std:.4g} (pooled), "
            f"per-example std {s.row_std:.4g}, per-example range {s.row_range:.4g}",
            f"  overlap {self.overlap:.4g} +- {self.overlap_se:.2g} (mean -<delta_k>(z_k) under these logits, "
            f"relative to CE; threshold {self.threshold:g}); <delta_k> at the centre {self.delta_center:.4g}",
            f"  verdict: {'learns' if self.learns else 'DOES NOT LEARN'} (for {self.verdict_for})",
            f"  optimizer: {self.optimizer or 'not given'} ({opt})",
            f"  logit bias of Eq. 4 (C = {EPSILON_TARGET:g}) for these logits: {self.suggested_epsilon:.4f} "
            f"(for N(0, 1) logits: {self.epsilon_unit_logits:.4f})",
        ]
        if self.suggested_params:
            params = ", ".join(f"{k} = {v:.4g}" for k, v in self.suggested_params.items())
            lines.append(f"  parameters restoring <delta_k>: {params} ({self.suggested_params_note})")
        elif self.suggested_params_note:
            lines.append(f"  parameters: {self.suggested_params_note}")
        if not self.learns:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


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


class PreflightCheck(keras.callbacks.Callback):
    """Runs `preflight` when training begins; warns in one line if the loss will not learn.

    At ``on_train_begin`` (the model is freshly initialised, or whatever
    ``fit`` starts from) it checks the model's compiled loss (or ``loss``)
    with the model's optimizer on ``x``, stores the `PreflightReport` in
    ``self.report``, and, when ``report.learns`` is False, emits one
    `PreflightWarning` whose message is one line naming the overlap and the
    fix (and saying so when the optimizer is adaptive). It checks once per
    callback object, so a second ``fit`` does not repeat it.

    Keras does not hand callbacks the training data, so give ``x``: a batch
    of training inputs as the model sees them (e.g. ``x_train[:256]``, or
    one batch of a ``tf.data`` pipeline). Without ``x`` the check uses 256
    standard-normal inputs of the model's input shape (the statistics of
    normalised images, not the data) and says so.

    Args:
        x: a batch of inputs, or None (synthetic N(0, 1) inputs).
        loss: the loss to check (default: the model's compiled loss).
        stop: also stop training (``model.stop_training = True``) when it does not learn.
        **kwargs: passed to `preflight` (``threshold``, ``samples``, ``seed``).
    """

    def __init__(self, x=None, loss=None, stop=False, **kwargs):
        super().__init__()
        if not isinstance(stop, bool):
            raise ValueError(f"`stop` must be True or False, got {stop!r}.")
        self.x = x
        self.loss = loss
        self.stop = stop
        self.kwargs = kwargs
        self.report = None

    def _inputs(self):
        if self.x is not None:
            return self.x, ""
        shape = getattr(self.model, "input_shape", None)
        if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
            raise ValueError("PreflightCheck needs `x` (a batch of training inputs) for a model without a "
                             f"single fixed input shape (got {shape!r}).")
        rng = np.random.default_rng(self.kwargs.get("seed", 0))
        return rng.standard_normal((256, *shape[1:])).astype("float32"), " [synthetic N(0, 1) inputs]"

    def on_train_begin(self, logs=None):
        if self.report is not None:
            return
        x, note = self._inputs()
        self.report = preflight(self.model, self.loss, x, optimizer=getattr(self.model, "optimizer", None),
                                **self.kwargs)
        if not self.report.learns:
            warnings.warn(self.report.summary() + note, PreflightWarning, stacklevel=2)
            if self.stop:
                self.model.stop_training = True
