"""The paper's Sec. 3 as code: eps(K) (Eq. 4), error curves (Eq. 3), hyperparameters from K.

- `LogitModel`, `mean_true_probability`, `epsilon_for_classes`,
  `epsilon_monte_carlo`: Eq. 4 and the initial-logit model, from the leaf
  module `keras_robust.epsilon` (re-exported here); `measure_logits`
  estimates a `LogitModel` from a real network.
- `error_curve`: <delta_k>(z_k) of Eq. 3 for any loss object, by autodiff.
- `match_hyperparameter`, `solution_map`: hyperparameters from K (Sec. 3.3,
  appendix 4); `transfer_nce_agce`: the one rule that carries NCE-AGCE to a
  new K (used by the CLI and the tuner).

Layering: `keras_robust.epsilon` is below the losses (MAE* needs Eq. 4);
this package is above them (its curves differentiate the loss objects).
"""

from keras_robust.calibration.curves import (
    ErrorCurve,
    HyperparameterMatch,
    SolutionMap,
    error_curve,
    match_hyperparameter,
    solution_map,
)
from keras_robust.calibration.logits import measure_logits
from keras_robust.calibration.transfer import Transfer, nearest_reference, transfer_nce_agce
from keras_robust.epsilon import LogitModel, epsilon_for_classes, epsilon_monte_carlo, mean_true_probability

__all__ = [
    "ErrorCurve",
    "HyperparameterMatch",
    "LogitModel",
    "SolutionMap",
    "Transfer",
    "epsilon_for_classes",
    "epsilon_monte_carlo",
    "error_curve",
    "match_hyperparameter",
    "mean_true_probability",
    "measure_logits",
    "nearest_reference",
    "solution_map",
    "transfer_nce_agce",
]
