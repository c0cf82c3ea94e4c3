"""The paper's Sec. 3 as code: eps(K) (Eq. 4), error curves (Eq. 3), hyperparameters from K.

- `LogitModel`, `measure_logits`: the initial-logit model (i.i.d. Gaussian).
- `mean_true_probability`, `epsilon_for_classes`: Eq. 4 by exact quadrature
  (error < 1e-10, ~2 ms for any K); `epsilon_monte_carlo`: the paper's
  Monte-Carlo + bisection baseline.
- `error_curve`: <delta_k>(z_k) of Eq. 3 for any loss object, by autodiff.
- `match_hyperparameter`, `solution_map`: hyperparameters from K (Sec. 3.3,
  appendix 4).

This package does not import `keras_robust.losses` at import time (the
losses call `epsilon_for_classes` lazily), so there is no import cycle.
"""

from keras_robust.calibration.curves import (
    ErrorCurve,
    HyperparameterMatch,
    SolutionMap,
    error_curve,
    match_hyperparameter,
    solution_map,
)
from keras_robust.calibration.epsilon import epsilon_for_classes, epsilon_monte_carlo, mean_true_probability
from keras_robust.calibration.logits import LogitModel, measure_logits

__all__ = [
    "ErrorCurve",
    "HyperparameterMatch",
    "LogitModel",
    "SolutionMap",
    "epsilon_for_classes",
    "epsilon_monte_carlo",
    "error_curve",
    "match_hyperparameter",
    "mean_true_probability",
    "measure_logits",
    "solution_map",
]
