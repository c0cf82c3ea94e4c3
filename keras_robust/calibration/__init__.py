"""The paper's Sec. 3 as code: eps(K) (Eq. 4), error curves (Eq. 3), hyperparameters from K.

- `LogitModel`, `measure_logits`: the initial-logit model (i.i.d. Gaussian).
- `mean_true_probability`, `epsilon_for_classes`: Eq. 4 by exact quadrature;
  `epsilon_monte_carlo`: the paper's Monte-Carlo baseline.
"""

from keras_robust.calibration.epsilon import epsilon_for_classes, epsilon_monte_carlo, mean_true_probability
from keras_robust.calibration.logits import LogitModel, measure_logits

__all__ = [
    "LogitModel",
    "epsilon_for_classes",
    "epsilon_monte_carlo",
    "mean_true_probability",
    "measure_logits",
]
