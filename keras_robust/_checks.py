"""Argument checks shared by the whole library: one message per kind of mistake.

Each returns the value converted (``float`` / ``int``) or raises an error
that names the argument and the offending value: a `ValueError` for a value
out of range, an `ArgumentTypeError` (both a `TypeError` and a `ValueError`)
for a value of the wrong type.
"""

import math
import numbers


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a string for a number, a float for a count, a bool).

    Both a `TypeError` (what Python raises for a wrong type) and a `ValueError`
    (what the library raised for every bad argument before), so either
    ``except`` clause catches it.
    """


def check_finite(name, value):
    """``value`` as a float; it must be a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"`{name}` must be a finite number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    return float(value)


def check_number(name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a float, finite and inside ``[low, high]`` (ends open as asked)."""
    value = check_finite(name, value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        raise ValueError(f"`{name}` must lie in {left}{lo}, {hi}{right}, got {value!r}.")
    return value


def check_int(name, value, minimum):
    """``value`` as an int ``>= minimum`` (integral types only, not bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"`{name}` must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_probability(name, value):
    """``value`` as a float in the open interval (0, 1)."""
    return check_number(name, value, 0.0, 1.0, low_open=True, high_open=True)


def check_fraction(name, value, high=1.0):
    """``value`` as a float in the closed interval ``[0, high]``."""
    return check_number(name, value, 0.0, high)


def check_seed(name, value):
    """A random seed: a non-negative integer (Python or NumPy, not bool)."""
    return check_int(name, value, 0)


def check_num_classes(num_classes, argument="num_classes"):
    """A class count ``K``: an integer (Python or NumPy) ``>= 2``."""
    return check_int(argument, num_classes, 2)


# Beyond this |epsilon| a float32 softmax saturates: for unit-scale logits and
# K <= 1e14, ``a_k`` rounds to exactly 1 (or 0), so a bounded loss has no gradient.
MAX_LOGIT_BIAS = 50.0


def check_logit_bias(name, value):
    """A logit bias: finite, ``|value| <= MAX_LOGIT_BIAS`` (negative values act as a margin)."""
    value = check_finite(name, value)
    if abs(value) > MAX_LOGIT_BIAS:
        raise ValueError(
            f"`{name}` must lie in [-{MAX_LOGIT_BIAS:g}, {MAX_LOGIT_BIAS:g}], got {value!r}: beyond that the "
            "float32 softmax saturates (true-class probability exactly 1 or 0) and bounded losses get no gradient."
        )
    return value
