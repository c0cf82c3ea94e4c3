"""Noise-robust classification losses with an optional logit bias.

Each loss is one pure function in `keras_robust.losses.functional` and a thin
`keras.losses.Loss` class here. ``get(name, num_classes=..., **params)``
builds any of them by name.
"""

from keras_robust.losses import functional
from keras_robust.losses.active_passive import (
    NCEAEL,
    NCEAGCE,
    NCEAUL,
    NCEMAE,
    NCERCE,
    NFLMAE,
    NFLRCE,
    ActivePassive,
)
from keras_robust.losses.base import RobustLoss
from keras_robust.losses.functional import add_logit_bias
from keras_robust.losses.losses import (
    AEL,
    AGCE,
    AUL,
    GCE,
    MAE,
    NCE,
    NFL,
    RCE,
    SCE,
    BiTempered,
    CrossEntropy,
    MAEStar,
)
from keras_robust.losses.registry import PAPER_PARAMETERS, canonical_name, get, names

__all__ = [
    "AEL", "AGCE", "AUL", "GCE", "MAE", "NCE", "NFL", "RCE", "SCE", "ActivePassive", "BiTempered",
    "CrossEntropy", "MAEStar", "NCEAEL", "NCEAGCE", "NCEAUL", "NCEMAE", "NCERCE", "NFLMAE", "NFLRCE",
    "PAPER_PARAMETERS", "RobustLoss", "add_logit_bias", "canonical_name", "functional", "get", "names",
]
