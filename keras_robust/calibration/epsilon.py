"""Eq. 4 under its former address: the code lives in the leaf `keras_robust.epsilon`.

Kept so that ``from keras_robust.calibration.epsilon import ...`` keeps working;
new code imports `keras_robust.epsilon` (or `keras_robust.calibration`).
"""

from keras_robust import _checks
from keras_robust._checks import check_num_classes
from keras_robust.epsilon import epsilon_for_classes, epsilon_monte_carlo, mean_true_probability

__all__ = ["check_num_classes", "check_probability", "epsilon_for_classes", "epsilon_monte_carlo",
           "mean_true_probability"]


def check_probability(value, argument):
    """``value`` as a float in (0, 1) (former signature of `keras_robust._checks.check_probability`)."""
    return _checks.check_probability(argument, value)
