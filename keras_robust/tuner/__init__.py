"""keras-tuner integration: a loss search space, and an oracle seeded by the calibration.

The paper's point (Sec. 3.2-3.3, appendix 4) is that the number of classes
``K``, not a grid search, sets a bounded loss's hyperparameters. Users still
tune; this makes their search start where the theory says and spend part of
its trials near it.

* `LossSpace` declares, in a `keras_tuner.HyperParameters`, the choice of loss
  (registry names) and each loss's parameters with ranges that depend on ``K``,
  and builds the trial's `keras.losses.Loss`; call ``space.build(hp)`` inside
  your own ``build_model(hp)``.
* `seed_parameters` gives the parameters the theory picks for ``K``: ``eps(K)``
  of Eq. 4 for MAE*, genCE's ``q`` and NCE-AGCE's ``alpha`` matched on
  ``<delta_k>(0)`` (Eq. 3) to the literature's setting at the nearest
  reference ``K`` (10 or 100), the literature's values for the other losses.
* `CalibratedRandomSearch` and `CalibratedBayesianOptimization` are
  keras-tuner's `RandomSearch` and `BayesianOptimization` tuners with a
  seeded oracle (`CalibratedRandomSearchOracle`,
  `CalibratedBayesianOptimizationOracle`: subclasses of keras-tuner's
  oracles through the `CalibratedOracle` mixin): the first trials are those
  seeds, then a fraction of the trials samples the loss parameters in a
  narrow window around a seed while the parent oracle proposes the rest; the
  other trials are the parent oracle's own.

Requires ``keras-tuner`` (and ``scikit-learn`` for Bayesian optimisation):
``pip install keras-robust[tuner]``.
"""

import importlib

try:  # the extra's check, before the submodules import keras_tuner
    importlib.import_module("keras_tuner")
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "keras_robust.tuner needs keras-tuner: `pip install keras-robust[tuner]` "
        "(keras-tuner, six, scikit-learn, scipy)."
    ) from error

from keras_robust.tuner.oracles import (
    CalibratedBayesianOptimizationOracle,
    CalibratedOracle,
    CalibratedRandomSearchOracle,
)
from keras_robust.tuner.seeding import SeedParameters, seed_parameters
from keras_robust.tuner.space import LossSpace
from keras_robust.tuner.tuners import CalibratedBayesianOptimization, CalibratedRandomSearch

__all__ = [
    "CalibratedBayesianOptimization",
    "CalibratedBayesianOptimizationOracle",
    "CalibratedOracle",
    "CalibratedRandomSearch",
    "CalibratedRandomSearchOracle",
    "LossSpace",
    "SeedParameters",
    "seed_parameters",
]
