"""One rule for carrying NCE-AGCE to a new number of classes (paper Sec. 3.3, appendix 4).

Used by ``keras-robust calibrate`` and by `keras_robust.tuner.seed_parameters`
alike, so both give the same parameters for the same ``K``.

The rule (`transfer_nce_agce`):

1. Reference: NCE-AGCE with the literature's parameters (the paper's appendix
   Table 1) at the reference ``K_ref`` in {10, 100} nearest to ``K`` on a log
   scale: CIFAR-10's ``alpha = 1, beta = 4, a = 6, q = 1.5`` at ``K_ref = 10``,
   CIFAR-100's ``alpha = 10, beta = 0.1, a = 1.8, q = 3`` at ``K_ref = 100``
   (every ``K >= 32`` uses the latter). The target is its ``<delta_k>(0)``
   (Eq. 3) at ``K_ref``: about -0.021 for CIFAR-100.
2. At ``K = K_ref`` the reference parameters are returned unchanged.
3. The shape ``(beta, a, q)`` is kept: the paper's large-K choice
   ``beta = 0.7, a = q = 0.05`` for ``K > 100`` where it admits a solution,
   else (``K <= 100``, and ``100 < K < ~330``, where ``0.7 AGCE`` alone
   already has a larger ``|<delta_k>(0)|`` than the target) the reference's.
4. ``alpha``, the weight of the active NCE term, is solved so that
   ``<delta_k>(0)`` at ``K`` equals the target. The loss is linear in
   ``alpha``, so ``<delta_k>(0)`` is too: the root is unique when it exists.
   The literature's ``alpha`` grows with ``K`` (1 at 10, 10 at 100), and
   this rule gives ``alpha ~ 100`` at ``K = 1000``.

What the paper did (appendix 4): it mapped the NCE-AGCE settings that keep
``<delta_k>(0) = -0.021`` at ``K = 1000`` over two parameters at a time (its
Fig. 4; `solution_map` here) and picked ``alpha = 100, beta = 0.7,
a = q = 0.05`` from that set by hand; it states no rule for other ``K``. The
rule above reproduces that choice at ``K = 1000`` (alpha = 105.6 with 256
samples; solving ``beta`` at ``alpha = 100`` instead, as the CLI once did,
gives ``beta = 0.77``).
"""

from __future__ import annotations

import dataclasses
import math

from keras_robust import losses
from keras_robust._checks import check_num_classes
from keras_robust.calibration.curves import error_curve, match_hyperparameter
from keras_robust.epsilon import LogitModel

__all__ = [
    "NCE_AGCE_ALPHA_BRACKET", "NCE_AGCE_LARGE_K", "REFERENCES", "Transfer", "nce_agce_rule", "nearest_reference",
    "transfer_nce_agce",
]

#: The literature's reference settings: (K_ref, data set of the paper's appendix Table 1).
REFERENCES = ((10, "cifar10"), (100, "cifar100"))
#: The paper's NCE-AGCE shape at K = 1000 (appendix 4), kept for every K > 100.
NCE_AGCE_LARGE_K = {"beta": 0.7, "a": 0.05, "q": 0.05}
#: The interval searched for NCE-AGCE's alpha.
NCE_AGCE_ALPHA_BRACKET = (1e-3, 1e5)


def nearest_reference(num_classes: int) -> tuple[int, str]:
    """``(K_ref, dataset)`` of `REFERENCES` nearest to ``num_classes`` on a log scale."""
    k = check_num_classes(num_classes)
    return min(REFERENCES, key=lambda ref: abs(math.log(k / ref[0])))


def _nce_agce_setting(k):
    """``(K_ref, reference parameters at K_ref, shapes to try at K)`` of the rule."""
    k_ref, dataset = nearest_reference(k)
    reference = {**losses.get("nce+agce").params, **losses.PAPER_PARAMETERS[dataset]["nce+agce"]}
    own = {p: v for p, v in reference.items() if p != "alpha"}
    return k_ref, reference, ([dict(NCE_AGCE_LARGE_K), own] if k > 100 else [own])


def _describe(k_ref, reference, shape, paper_shape):
    dataset = dict(REFERENCES)[k_ref].upper().replace("CIFAR", "CIFAR-")
    kept = "the paper's K = 1000 shape, appendix 4" if paper_shape else "the reference's"
    return (
        f"<delta_k>(0) of NCE-AGCE with the {dataset} parameters "
        + ", ".join(f"{p}={v:g}" for p, v in reference.items())
        + f" at K = {k_ref}; alpha solved with "
        + ", ".join(f"{p}={v:g}" for p, v in shape.items())
        + f" ({kept})"
    )


def nce_agce_rule(num_classes):
    """The rule of `transfer_nce_agce` at ``K = num_classes``, in one line (no computation)."""
    k = check_num_classes(num_classes)
    k_ref, reference, shapes = _nce_agce_setting(k)
    text = _describe(k_ref, reference, shapes[0], k > 100)
    if len(shapes) > 1:
        text += ", or with the reference's " + ", ".join(f"{p}={v:g}" for p, v in shapes[1].items())
        text += " where that has no solution"
    return text


@dataclasses.dataclass(frozen=True)
class Transfer:
    """The result of `transfer_nce_agce`.

    Attributes:
        params: the loss's parameters at ``num_classes`` (``alpha, beta, a, q``).
        param: the parameter solved for (``"alpha"``), and its ``value``.
        value_se: Monte-Carlo standard error of ``value`` (0 at ``K = K_ref``).
        target: ``<delta_k>(0)`` of the reference, ``target_se`` its standard error.
        method: ``"matched"`` (solved) or ``"reference"`` (``K = K_ref``).
        num_classes, reference_classes: ``K`` and ``K_ref``.
        reference_params: the reference setting at ``K_ref``.
        rule: the rule in words (for reports).
    """

    params: dict
    param: str
    value: float
    value_se: float
    target: float
    target_se: float
    method: str
    num_classes: int
    reference_classes: int
    reference_params: dict
    rule: str


def transfer_nce_agce(num_classes: int, logits: LogitModel | None = None, samples: int = 4096,
                      seed: int = 0) -> Transfer:
    """NCE-AGCE's parameters at ``K = num_classes`` by the module's rule.

    Args:
        num_classes: ``K >= 2``.
        logits: the `LogitModel` of the initial logits (default N(0, 1)).
        samples, seed: Monte Carlo of `error_curve` (common random numbers).

    Returns:
        A `Transfer`.

    Raises:
        ValueError: no ``alpha`` in `NCE_AGCE_ALPHA_BRACKET` keeps the
            target (the message gives the range spanned).
    """
    k = check_num_classes(num_classes)
    k_ref, reference, shapes = _nce_agce_setting(k)
    if k == k_ref:
        curve = error_curve(losses.get("nce+agce", num_classes=k, **reference), k, 0.0,
                            logits=logits, samples=samples, seed=seed)
        return Transfer(dict(reference), "alpha", reference["alpha"], 0.0, float(curve.true[0]),
                        float(curve.true_se[0]), "reference", k, k_ref, dict(reference),
                        _describe(k_ref, reference, shapes[0], False))
    for i, shape in enumerate(shapes):
        try:
            match = match_hyperparameter(
                "nce+agce", "alpha", reference=(k_ref, reference), num_classes=k, bracket=NCE_AGCE_ALPHA_BRACKET,
                fixed=shape, logits=logits, samples=samples, seed=seed,
            )
        except ValueError:
            if i == len(shapes) - 1:
                raise
            continue
        params = {"alpha": float(match.value), **shape}
        rule = _describe(k_ref, reference, shape, shape == NCE_AGCE_LARGE_K)
        return Transfer(params, "alpha", float(match.value), match.value_se, match.target, match.target_se,
                        "matched", k, k_ref, dict(reference), rule)
