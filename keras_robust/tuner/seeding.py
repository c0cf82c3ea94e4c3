"""The theory's parameters for a loss at ``K``: `seed_parameters` and its result, `SeedParameters`."""

import dataclasses
import warnings

from keras_robust import losses as kr_losses
from keras_robust._checks import check_num_classes
from keras_robust.calibration import match_hyperparameter, nearest_reference, transfer_nce_agce
from keras_robust.tuner.ranges import _check_loss_name, _eps, _literature

# genCE's q is matched here; NCE-AGCE follows keras_robust.calibration.transfer_nce_agce
# (one rule, shared with `keras-robust calibrate`). One unknown per loss (Sec. 3.3).
_MATCHED = {"gce": ("q", (0.01, 1.0)), "nce+agce": ("alpha", None)}


@dataclasses.dataclass(frozen=True)
class SeedParameters:
    """The parameters the theory picks for a loss at ``K`` (result of `seed_parameters`).

    Attributes:
        loss: the canonical loss name.
        params: ``{param: value}``.
        method: ``"eq4"`` (eps(K), Eq. 4), ``"matched"`` (Sec. 3.3:
            ``<delta_k>(0)`` of the reference setting kept), ``"literature"``
            (the appendix's table at the reference K) or ``"default"`` (the
            class defaults: no reference exists).
        detail: the reference used, and the Monte-Carlo error of a matched value.
    """

    loss: str
    params: dict
    method: str
    detail: str = ""


def seed_parameters(loss, num_classes, samples=4096, seed=0):
    """The parameters the paper's theory gives ``loss`` at ``K = num_classes``.

    * ``"mae*"``: ``epsilon = eps(K)`` (Eq. 4, C = 0.15).
    * ``"gce"``: ``q`` such that ``<delta_k>(0)`` (Eq. 3) equals that of the
      literature's ``q = 0.7`` at the nearest reference ``K_ref`` in
      ``{10, 100}`` (log distance); at ``K = 1000`` this is the paper's
      ``q = 0.48`` (Sec. 3.3).
    * ``"nce+agce"``: `keras_robust.calibration.transfer_nce_agce`, the rule
      ``keras-robust calibrate`` uses too: ``alpha`` matched the same way,
      the other three held at the reference's values for ``K <= 100`` and at
      the paper's large-K shape ``beta = 0.7, a = q = 0.05`` for ``K > 100``
      (appendix 4; it gives ``alpha ~ 100`` at ``K = 1000``, the paper's choice).
    * other losses: the literature's values at the nearest reference
      (appendix Table 1), or the class defaults.

    If no matched value exists in the search bracket (the paper's appendix 4:
    a loss that cannot learn at that K without a logit bias), the
    literature's value is returned with ``method="literature"`` and a warning.

    Args:
        loss: a registry name.
        num_classes: ``K >= 2``.
        samples, seed: Monte Carlo of `keras_robust.calibration.error_curve`.

    Returns:
        A `SeedParameters`.
    """
    key = _check_loss_name(loss)
    k = check_num_classes(num_classes)
    if key == "mae*":
        return SeedParameters(key, {"epsilon": _eps(k)}, "eq4", "eps(K) of Eq. 4, C = 0.15")
    k_ref, dataset = nearest_reference(k)
    reference = _literature(key, k_ref)
    if key not in _MATCHED:
        method = "literature" if key in kr_losses.PAPER_PARAMETERS[dataset] else "default"
        return SeedParameters(key, _literature(key, k), method, f"K_ref={k_ref}")
    if k == k_ref:
        return SeedParameters(key, reference, "literature", f"K_ref={k_ref}")
    param, bracket = _MATCHED[key]
    try:
        if key == "nce+agce":
            found = transfer_nce_agce(k, samples=samples, seed=seed)
            params, value, value_se, target = found.params, found.value, found.value_se, found.target
        else:
            fixed = {p: v for p, v in reference.items() if p != param}
            match = match_hyperparameter(key, param, reference=(k_ref, reference), num_classes=k, bracket=bracket,
                                         fixed=fixed, samples=samples, seed=seed)
            value, value_se, target = float(match.value), match.value_se, match.target
            params = {**fixed, param: value}
    except ValueError as error:
        warnings.warn(f"No matched {param} for {key!r} at K={k}; using the literature's value. ({error})", stacklevel=2)
        return SeedParameters(key, reference, "literature", f"K_ref={k_ref}, no match")
    detail = f"<delta_k>(0) = {target:.4g} as at K_ref={k_ref}; {param} +- {value_se:.2g} (Monte Carlo)"
    return SeedParameters(key, params, "matched", detail)
