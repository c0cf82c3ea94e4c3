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

from keras_robust.diagnostics.callback import PreflightCheck
from keras_robust.diagnostics.check import GCE_REFERENCE, NCE_AGCE_FIXED, preflight
from keras_robust.diagnostics.measure import is_adaptive_optimizer
from keras_robust.diagnostics.report import (
    EPSILON_TARGET,
    OVERLAP_THRESHOLD,
    LogitStats,
    PreflightReport,
    PreflightWarning,
)

__all__ = [
    "EPSILON_TARGET",
    "GCE_REFERENCE",
    "NCE_AGCE_FIXED",
    "OVERLAP_THRESHOLD",
    "LogitStats",
    "PreflightCheck",
    "PreflightReport",
    "PreflightWarning",
    "is_adaptive_optimizer",
    "preflight",
]
