"""Names of the single losses: the table, the aliases, and name normalisation.

Below both `active_passive` (which builds a part from its name) and
`registry` (which builds any loss, sums included), so neither imports the other.
"""

from __future__ import annotations

from keras_robust.losses import losses as L

__all__ = ["ALIASES", "LOSSES", "canonical_name", "single"]

LOSSES = {
    "ce": L.CrossEntropy,
    "mae": L.MAE,
    "mae*": L.MAEStar,
    "gce": L.GCE,
    "sce": L.SCE,
    "rce": L.RCE,
    "nce": L.NCE,
    "nfl": L.NFL,
    "agce": L.AGCE,
    "aul": L.AUL,
    "ael": L.AEL,
    "bitempered": L.BiTempered,
}

ALIASES = {
    "cross_entropy": "ce",
    "crossentropy": "ce",
    "mae_star": "mae*",
    "maestar": "mae*",
    "gen_ce": "gce",
    "gence": "gce",
    "symce": "sce",
    "nf": "nfl",
    "bitemp": "bitempered",
    "bi_tempered": "bitempered",
}


def canonical_name(name: str) -> str:
    """Normalise a loss name: case, ``-``/spaces, aliases, ``a+b`` order kept."""
    if not isinstance(name, str):
        raise TypeError(f"A loss name must be a string, got {name!r}.")
    key = name.strip().lower().replace(" ", "")
    parts = key.replace("-", "+").split("+") if ("+" in key or key.count("-") == 1) else [key]
    parts = [ALIASES.get(p.replace("-", "_"), p.replace("-", "_")) for p in parts]
    return "+".join(parts)


def single(name):
    """The single (not summed) loss registered as ``name``, with its default parameters."""
    key = canonical_name(name)
    if key not in LOSSES:
        raise ValueError(f"Unknown single loss {name!r}. Known: {', '.join(sorted(LOSSES))}.")
    return LOSSES[key]()
