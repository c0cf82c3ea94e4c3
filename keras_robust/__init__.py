"""keras-robust: noise-robust classification losses for Keras 3 at any number of classes.

    import keras_robust as kr
    model.compile(loss=kr.MAEStar(num_classes=100), optimizer="sgd")

Modules: `epsilon` (Eq. 4: epsilon(K)), `losses`, `logit_bias`, `calibration`
(error curves, hyperparameters from K), `schedules` (`EpsilonScheduler`), `noise`,
`metrics`, `datasets`, `models`. Import `keras_robust.tuner` (keras-tuner),
`keras_robust.experiments` and `keras_robust.plots` (matplotlib) explicitly.
"""

from keras_robust import calibration, datasets, epsilon, losses, metrics, models, noise, schedules
from keras_robust.epsilon import epsilon_for_classes
from keras_robust.diagnostics import PreflightCheck, preflight
from keras_robust.logit_bias import LogitBiasLayer, add_logit_bias, with_logit_bias
from keras_robust.losses import MAEStar
from keras_robust.metrics import FalseLabelAccuracy
from keras_robust.schedules import EpsilonScheduler

__version__ = "0.1.0"

__all__ = [
    "EpsilonScheduler",
    "FalseLabelAccuracy",
    "LogitBiasLayer",
    "MAEStar",
    "PreflightCheck",
    "add_logit_bias",
    "calibration",
    "datasets",
    "epsilon",
    "epsilon_for_classes",
    "losses",
    "metrics",
    "models",
    "noise",
    "preflight",
    "schedules",
    "with_logit_bias",
]
