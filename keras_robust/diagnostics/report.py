"""What `preflight` returns: `PreflightReport`, `LogitStats`, the threshold it judges by, `PreflightWarning`."""

import dataclasses

from keras_robust.calibration import LogitModel

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
