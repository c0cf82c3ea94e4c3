"""The search ranges of each loss's parameters at ``K``, and the literature's values they start from."""

import math
import numbers

from keras_robust import losses as kr_losses
from keras_robust.calibration import nearest_reference
from keras_robust.epsilon import epsilon_for_classes

# -- search ranges ---------------------------------------------------------------------
# (min, max, sampling) per tuned parameter; callables take K. The parameters
# tuned by default are those the literature adjusts per data set (the paper's
# Table 1 counts them); others can be added with `ranges=`.
_PAIR_WEIGHTS = {"alpha": (0.01, 100.0, "log"), "beta": (0.01, 100.0, "log")}
_SINGLE_RANGES = {
    "ce": {},
    "mae": {},
    "mae*": {"epsilon": lambda k: (max(0.0, _eps(k) - 3.0), _eps(k) + 3.0, "linear")},
    "gce": {"q": (0.02, 1.0, "log")},
    "sce": {"alpha": (0.01, 10.0, "log"), "beta": (0.01, 10.0, "log")},
    "rce": {},
    "nce": {},
    "nfl": {},
    "agce": {"a": (1e-5, 10.0, "log"), "q": (0.02, 5.0, "log")},
    "aul": {"a": (1.01, 10.0, "log"), "q": (0.02, 5.0, "log")},
    "ael": {"a": (0.1, 10.0, "log")},
    "bitempered": {"t1": (0.5, 1.0, "linear"), "t2": (1.0, 4.0, "linear")},
}
_PAIR_RANGES = {
    # NCE-AGCE: the literature's alpha grows with K (1 at K=10, 10 at K=100;
    # the paper's appendix 4 uses 100 at K=1000), so its range follows K.
    "nce+agce": {
        "alpha": lambda k: (min(0.1, k / 100.0), max(10.0, float(k)), "log"),
        "beta": (0.01, 10.0, "log"),
        "a": (0.01, 10.0, "log"),
        "q": (0.01, 5.0, "log"),
    },
}


def _eps(k):
    return float(epsilon_for_classes(k))


def _check_loss_name(name):
    if not isinstance(name, str):
        raise TypeError(f"A loss name must be a string, got {name!r}.")
    key = kr_losses.canonical_name(name)
    if key not in _SINGLE_RANGES and key not in kr_losses.registry.PAIRS:
        raise ValueError(f"Unknown loss {name!r} in `losses`. Known losses: {', '.join(kr_losses.names())}.")
    return key


def _default_ranges(name, k):
    if name in _SINGLE_RANGES:
        table = dict(_SINGLE_RANGES[name])
    else:
        pair = kr_losses.registry.PAIRS[name]
        table = dict(_PAIR_WEIGHTS)
        for part in (pair.active_cls, pair.passive_cls):
            part_name = next(n for n, c in kr_losses.registry.LOSSES.items() if c is part)
            table.update(_SINGLE_RANGES[part_name])
        table.update(_PAIR_RANGES.get(name, {}))
    return {p: (spec(k) if callable(spec) else spec) for p, spec in table.items()}


def _literature(name, k):
    """The literature's parameters at the reference K nearest to ``k``, else the class defaults."""
    _, dataset = nearest_reference(k)
    params = dict(kr_losses.PAPER_PARAMETERS[dataset].get(name, {}))
    if name != "mae*":
        params = {**kr_losses.get(name, num_classes=k).params, **params}
    return params


def _check_range(loss, param, spec):
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        if not math.isfinite(spec):
            raise ValueError(f"`ranges[{loss!r}][{param!r}]` must be finite, got {spec!r}.")
        return float(spec)
    try:
        lo, hi, *rest = spec
        sampling = rest[0] if rest else "linear"
        if len(rest) > 1:
            raise ValueError
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(
            f"`ranges[{loss!r}][{param!r}]` must be a number (fixed) or (min, max[, sampling]), got {spec!r}."
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"`ranges[{loss!r}][{param!r}]` must be finite with min < max, got {spec!r}.")
    if sampling not in ("linear", "log", "reverse_log"):
        raise ValueError(f"`ranges[{loss!r}][{param!r}]` sampling must be 'linear', 'log' or 'reverse_log', got {sampling!r}.")
    if sampling != "linear" and lo <= 0:
        raise ValueError(f"`ranges[{loss!r}][{param!r}]` with {sampling!r} sampling needs min > 0, got {spec!r}.")
    return (lo, hi, sampling)


def _check_valid_values(loss, param, spec, k):
    """Raise now if the loss refuses a value of ``spec`` (its ends), not when a trial draws it."""
    for value in (spec,) if isinstance(spec, float) else spec[:2]:
        try:
            kr_losses.get(loss, num_classes=k, **{param: value})
        except ValueError as e:
            raise ValueError(
                f"`ranges[{loss!r}][{param!r}]` = {spec!r} contains {param}={value:g}, which {loss!r} refuses: {e}"
            ) from None
