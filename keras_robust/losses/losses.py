"""The loss classes: thin wrappers around `keras_robust.losses.functional`.

Each class is one pure function plus validated parameters; all share
`RobustLoss`'s handling of labels, the logit bias, float32 and serialisation.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_robust._checks import check_number as check_param
from keras_robust._typing import LogitBias
from keras_robust.epsilon import epsilon_for_classes
from keras_robust.losses import _labels
from keras_robust.losses import functional as F
from keras_robust.losses.base import RobustLoss

register = keras.saving.register_keras_serializable(package="keras_robust")


@register
class CrossEntropy(RobustLoss):
    """Cross entropy ``-log a_k`` (paper Table 1)."""

    fn = staticmethod(F.cross_entropy)


@register
class MAE(RobustLoss):
    """Mean absolute error ``2 (1 - a_k)`` (paper Table 1): symmetric, bounded.

    Underfits when the number of classes grows (paper Fig. 1); see `MAEStar`.

    Args:
        mae_form: the convention, all proportional to ``1 - a_k``: ``"l1"``
            (default, ``2 (1 - a_k)``, paper Table 1), ``"reduced"``
            (``1 - a_k``, the Active-Passive / ALFs reference code) or
            ``"l1_mean"`` (``2 (1 - a_k) / K``, an L1 loss averaged over the
            K outputs). It matters inside sums such as NCE+MAE, where it sets
            what ``beta`` multiplies.
        **kwargs: `RobustLoss` arguments.
    """

    fn = staticmethod(F.mae)
    param_names = ("mae_form",)

    def __init__(self, mae_form: str = "l1", **kwargs: Any) -> None:
        if mae_form not in F.MAE_FORMS:
            raise ValueError(f"`mae_form` must be one of {sorted(F.MAE_FORMS)}, got {mae_form!r}.")
        self.mae_form = mae_form
        super().__init__(**kwargs)

    def loss_fn(self, y, logits):
        return F.mae(y, logits, form=self.mae_form)


@register
class MAEStar(MAE):
    """MAE* : MAE with the logit bias ``epsilon(K)`` of the paper's Eq. 4.

    ``epsilon`` solves ``<a_k> = target`` for logits N(0, 1) at initialisation
    (C = 0.15 in the paper). Give ``num_classes`` to derive it, or
    ``epsilon=`` to set it directly (the paper's Table 2 uses 0.5, 1.5, 3.0).

    Args:
        num_classes: number of classes ``K``.
        epsilon: logit bias; derived from ``K`` when None.
        target: ``C`` of Eq. 4, the mean true-class probability after the bias.
        **kwargs: `RobustLoss` arguments (``reduction``, ``name``).
    """

    def __init__(self, num_classes: int | None = None, epsilon: float | None = None, target: float = 0.15,
                 logit_bias: LogitBias = None, mae_form: str = "l1", **kwargs: Any) -> None:
        self.target = check_param("target", target, 0.0, 1.0, low_open=True, high_open=True)
        if logit_bias is not None and epsilon is not None:
            raise ValueError("Give `epsilon` or `logit_bias` to MAEStar, not both.")
        epsilon = logit_bias if epsilon is None else epsilon
        if epsilon is None:
            if num_classes is None:
                raise ValueError("MAEStar derives epsilon from the number of classes: give `num_classes` (or `epsilon`).")
            epsilon = float(epsilon_for_classes(_labels.check_num_classes(num_classes), target=self.target))
        if kwargs.get("from_logits") is False:
            raise ValueError("MAEStar adds a logit bias and needs logits: from_logits=False is not allowed.")
        kwargs.setdefault("name", "mae_star")
        super().__init__(mae_form=mae_form, num_classes=num_classes, logit_bias=epsilon, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["epsilon"] = config.pop("logit_bias")
        config["target"] = self.target
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("epsilon"), dict):  # a schedule
            config["epsilon"] = keras.saving.deserialize_keras_object(config["epsilon"])
        return super().from_config(config)


@register
class GCE(RobustLoss):
    """Generalized cross entropy ``(1 - a_k^q) / q``, ``q in (0, 1]`` (paper Table 1, genCE).

    ``q -> 0`` is CE, ``q = 1`` is MAE / 2.
    """

    fn = staticmethod(F.generalized_cross_entropy)
    param_names = ("q",)

    def __init__(self, q: float = 0.7, **kwargs: Any) -> None:
        self.q = check_param("q", q, 0.0, 1.0, low_open=True)
        super().__init__(**kwargs)


@register
class RCE(RobustLoss):
    """Reverse cross entropy ``-A (1 - a_k)`` with ``A = log 0 < 0`` (Wang et al. 2019)."""

    fn = staticmethod(F.reverse_cross_entropy)
    param_names = ("log_zero",)

    def __init__(self, log_zero: float = -4.0, **kwargs: Any) -> None:
        self.log_zero = check_param("log_zero", log_zero, high=0.0, high_open=True)
        super().__init__(**kwargs)


@register
class SCE(RobustLoss):
    """Symmetric cross entropy ``alpha CE + beta RCE`` (Wang et al. 2019; the paper's symCE)."""

    fn = staticmethod(F.symmetric_cross_entropy)
    param_names = ("alpha", "beta", "log_zero")

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0, **kwargs: Any) -> None:
        self.alpha = check_param("alpha", alpha, 0.0)
        self.beta = check_param("beta", beta, 0.0)
        if self.alpha == 0.0 and self.beta == 0.0:
            raise ValueError("`alpha` and `beta` are both 0: the loss would be identically zero.")
        self.log_zero = check_param("log_zero", log_zero, high=0.0, high_open=True)
        super().__init__(**kwargs)


@register
class NCE(RobustLoss):
    """Normalized cross entropy ``log a_k / sum_i log a_i`` (paper Table 1; Ma et al. 2020)."""

    fn = staticmethod(F.normalized_cross_entropy)


@register
class NFL(RobustLoss):
    """Normalized focal loss ``FL_k / sum_i FL_i``, ``FL_i = -(1-a_i)^gamma log a_i`` (Ma et al. 2020).

    Note: the paper's Table 1 prints a different expression for "NF"
    (``log((1-a_k)^0.5 a_k) / sum_i ...``); this is Ma et al.'s definition.
    ``detach_weight=True`` passes no gradient through the weights
    ``(1 - a_i)^gamma`` (same value), as the reference code does.
    """

    fn = staticmethod(F.normalized_focal)
    param_names = ("gamma", "detach_weight")

    def __init__(self, gamma: float = 0.5, detach_weight: bool = False, **kwargs: Any) -> None:
        self.gamma = check_param("gamma", gamma, 0.0)
        if not isinstance(detach_weight, bool):
            raise ValueError(f"`detach_weight` must be True or False, got {detach_weight!r}.")
        self.detach_weight = detach_weight
        super().__init__(**kwargs)


@register
class AGCE(RobustLoss):
    """Asymmetric GCE ``((a+1)^q - (a+a_k)^q) / q``, ``a, q > 0`` (paper Table 1 with b = a)."""

    fn = staticmethod(F.asymmetric_generalized_cross_entropy)
    param_names = ("a", "q")

    def __init__(self, a: float = 0.6, q: float = 0.6, **kwargs: Any) -> None:
        self.a = check_param("a", a, 0.0, low_open=True)
        self.q = check_param("q", q, 0.0, low_open=True)
        super().__init__(**kwargs)


@register
class AUL(RobustLoss):
    """Asymmetric unhinged loss ``((a - a_k)^q - (a-1)^q) / q``, ``a > 1, q > 0`` (Zhou et al. 2021)."""

    fn = staticmethod(F.asymmetric_unhinged)
    param_names = ("a", "q")

    def __init__(self, a: float = 1.5, q: float = 0.1, **kwargs: Any) -> None:
        self.a = check_param("a", a, 1.0, low_open=True)
        self.q = check_param("q", q, 0.0, low_open=True)
        super().__init__(**kwargs)


@register
class AEL(RobustLoss):
    """Asymmetric exponential loss ``exp(-a_k / a)``, ``a > 0`` (Zhou et al. 2021)."""

    fn = staticmethod(F.asymmetric_exponential)
    param_names = ("a",)

    def __init__(self, a: float = 2.5, **kwargs: Any) -> None:
        self.a = check_param("a", a, 0.0, low_open=True)
        super().__init__(**kwargs)


@register
class BiTempered(RobustLoss):
    """Bi-tempered logistic loss (Amid et al. 2019; the paper's biTemp).

    ``t1 in [0, 1]`` tempers the logarithm (``< 1``: bounded), ``t2 > 0`` the
    softmax (``> 1``: heavy tail, ``< 1``: finite support). The softmax's
    normalisation takes ``iterations`` fixed-point steps (``t2 > 1``, default
    3) or bisection steps (``t2 < 1``, default 10), then two Newton steps:
    the loss is exact to ~1e-6 relative for K <= 1e4 (the reference
    implementation's 5 fixed-point steps alone leave ~1e-4).
    ``t1 = t2 = 1`` is CE.
    """

    fn = staticmethod(F.bi_tempered)
    param_names = ("t1", "t2", "iterations")

    def __init__(self, t1: float = 0.8, t2: float = 1.2, iterations: int | None = None, **kwargs: Any) -> None:
        self.t1 = check_param("t1", t1, 0.0, 1.0)
        self.t2 = check_param("t2", t2, 0.0, 10.0, low_open=True)
        if iterations is None:
            iterations = 3 if self.t2 >= 1.0 else 10
        if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
            raise ValueError(f"`iterations` must be an integer >= 1, got {iterations!r}.")
        self.iterations = int(iterations)
        super().__init__(**kwargs)

    def __repr__(self):
        return f"BiTempered(t1={self.t1:g}, t2={self.t2:g})"
