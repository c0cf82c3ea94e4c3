"""Active-passive sums ``alpha * active + beta * passive`` (Ma et al. 2020).

One combinator, `ActivePassive`, and the named pairs of the paper and of Ma
et al. / Zhou et al. as subclasses that only fix the two parts.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_robust._checks import check_number as check_param
from keras_robust.losses import _names
from keras_robust.losses.base import RobustLoss
from keras_robust.losses.losses import AEL, AGCE, AUL, MAE, NCE, NFL, RCE

register = keras.saving.register_keras_serializable(package="keras_robust")


def _part(loss, role):
    if isinstance(loss, str):
        if "+" in _names.canonical_name(loss):
            raise TypeError(f"`{role}` must be a keras_robust loss (not a sum), got {loss!r}.")
        loss = _names.single(loss)
    elif isinstance(loss, dict):
        loss = keras.saving.deserialize_keras_object(loss)
    if not isinstance(loss, RobustLoss) or isinstance(loss, ActivePassive):
        raise TypeError(f"`{role}` must be a keras_robust loss (not a sum), got {loss!r}.")
    if loss.epsilon is not None:
        raise ValueError(f"`{role}` has its own logit bias; give `logit_bias` to the ActivePassive sum instead.")
    return loss


@register
class ActivePassive(RobustLoss):
    """``alpha * active + beta * passive`` (Ma et al. 2020, Eq. 7).

    Args:
        active, passive: keras_robust losses (or registry names), without a
            logit bias of their own; the sum takes ``logit_bias``.
        alpha, beta: non-negative weights, not both zero.
        **kwargs: `RobustLoss` arguments (``num_classes``, ``logit_bias``, ...).
    """

    def __init__(self, active: RobustLoss, passive: RobustLoss, alpha: float = 1.0, beta: float = 1.0, **kwargs: Any) -> None:
        self.active = _part(active, "active")
        self.passive = _part(passive, "passive")
        self.alpha = check_param("alpha", alpha, 0.0)
        self.beta = check_param("beta", beta, 0.0)
        if self.alpha == 0.0 and self.beta == 0.0:
            raise ValueError("`alpha` and `beta` are both 0: the loss would be identically zero.")
        kwargs.setdefault("name", f"{self.active.name}_{self.passive.name}")
        super().__init__(**kwargs)

    @property
    def params(self):
        return {"alpha": self.alpha, "beta": self.beta}

    def loss_fn(self, y, logits):
        return self.alpha * self.active.loss_fn(y, logits) + self.beta * self.passive.loss_fn(y, logits)

    def get_config(self):
        config = super().get_config()
        config["active"] = keras.saving.serialize_keras_object(self.active)
        config["passive"] = keras.saving.serialize_keras_object(self.passive)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for role in ("active", "passive"):
            if isinstance(config.get(role), dict):
                config[role] = keras.saving.deserialize_keras_object(config[role])
        return super().from_config(config)

    def __repr__(self):
        return f"{type(self).__name__}({self.alpha:g}*{self.active!r} + {self.beta:g}*{self.passive!r})"


class _NamedPair(ActivePassive):
    """A fixed (active, passive) pair; the parts' parameters are flat keywords."""

    active_cls = passive_cls = None

    def __init__(self, alpha=1.0, beta=1.0, **kwargs):
        parts = []
        for cls in (self.active_cls, self.passive_cls):
            parts.append(cls(**{p: kwargs.pop(p) for p in cls.param_names if p in kwargs}))
        super().__init__(parts[0], parts[1], alpha=alpha, beta=beta, **kwargs)

    @property
    def params(self):
        return {"alpha": self.alpha, "beta": self.beta, **self.active.params, **self.passive.params}

    def get_config(self):
        return RobustLoss.get_config(self)

    @classmethod
    def from_config(cls, config):
        return RobustLoss.from_config.__func__(cls, config)


@register
class NCEMAE(_NamedPair):
    """NCE-MAE: ``alpha NCE + beta MAE`` (paper Table 1; Ma et al. 2020)."""

    active_cls, passive_cls = NCE, MAE


@register
class NFLMAE(_NamedPair):
    """NF-MAE: ``alpha NFL + beta MAE`` (paper Table 1; Ma et al. 2020), ``gamma`` of NFL."""

    active_cls, passive_cls = NFL, MAE


@register
class NCERCE(_NamedPair):
    """NCE-RCE: ``alpha NCE + beta RCE`` (Ma et al. 2020)."""

    active_cls, passive_cls = NCE, RCE


@register
class NFLRCE(_NamedPair):
    """NFL-RCE: ``alpha NFL + beta RCE`` (Ma et al. 2020)."""

    active_cls, passive_cls = NFL, RCE


@register
class NCEAGCE(_NamedPair):
    """NCE-AGCE: ``alpha NCE + beta AGCE`` (paper Table 1; Zhou et al. 2021), ``a, q`` of AGCE."""

    active_cls, passive_cls = NCE, AGCE

    def __init__(self, alpha: float = 1.0, beta: float = 4.0, a: float = 6.0, q: float = 1.5, **kwargs: Any) -> None:
        super().__init__(alpha=alpha, beta=beta, a=a, q=q, **kwargs)


@register
class NCEAUL(_NamedPair):
    """NCE-AUL: ``alpha NCE + beta AUL`` (Zhou et al. 2021), ``a, q`` of AUL."""

    active_cls, passive_cls = NCE, AUL


@register
class NCEAEL(_NamedPair):
    """NCE-AEL: ``alpha NCE + beta AEL`` (Zhou et al. 2021), ``a`` of AEL."""

    active_cls, passive_cls = NCE, AEL
