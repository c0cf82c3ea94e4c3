"""`LossSpace`: the loss and its parameters as keras-tuner hyperparameters, with ranges from ``K``."""

import warnings

import keras
import keras_tuner as kt

from keras_robust import losses as kr_losses
from keras_robust._checks import check_num_classes
from keras_robust.tuner.ranges import (
    _check_loss_name,
    _check_range,
    _check_valid_values,
    _default_ranges,
    _eps,
    _literature,
)
from keras_robust.tuner.seeding import SeedParameters

@keras.saving.register_keras_serializable(package="keras_robust")
class LossSpace:
    """The loss and its parameters as keras-tuner hyperparameters, with ranges from ``K``.

    Declares a ``Choice`` named ``name`` over the losses and, under a
    conditional scope for each loss, a ``Float`` per tuned parameter named
    ``"<loss>.<param>"`` (``"mae*.epsilon"``, ``"gce.q"``, ``"nce+agce.alpha"``).
    Default ranges depend on ``K`` where the theory says how: MAE*'s logit
    bias spans ``eps(K) +- 3`` (Eq. 4), NCE-AGCE's ``alpha`` spans
    ``[K/100, K]`` (widened to include ``[0.1, 10]``); the others are wide
    log ranges containing the literature's values at K = 10 and 100 and the
    paper's large-K solutions (genCE ``q`` in ``[0.02, 1]``). Defaults of the
    hyperparameters are ``eps(K)`` and the literature's values (clipped).

    Usage::

        space = LossSpace(num_classes=10, losses=["mae*", "gce", "nce+agce"])

        def build_model(hp):
            model = ...
            model.compile(optimizer=..., loss=space.build(hp), metrics=["accuracy"])
            return model

    Args:
        num_classes: ``K >= 2``.
        losses: registry names (default: every registered loss).
        ranges: overrides, ``{loss: {param: (min, max[, sampling]) | value}}``;
            a number fixes the parameter; any parameter the loss accepts may be
            added this way (e.g. ``{"nfl": {"gamma": (0.0, 5.0)}}``).
        name: name of the loss ``Choice`` hyperparameter (default ``"loss"``).
    """

    def __init__(self, num_classes, losses=None, ranges=None, name="loss"):
        self.num_classes = check_num_classes(num_classes)
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        self.name = name
        if losses is None:
            losses = kr_losses.names()
        if isinstance(losses, str):
            losses = [losses]
        keys = [_check_loss_name(n) for n in losses]
        if not keys:
            raise ValueError("`losses` must name at least one loss, got an empty list.")
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"`losses` names {duplicates} more than once (after normalisation).")
        self.losses = keys
        ranges = {} if ranges is None else ranges
        if not isinstance(ranges, dict):
            raise TypeError(f"`ranges` must be a dict {{loss: {{param: range}}}}, got {ranges!r}.")
        self.ranges = {}
        for loss, params in ranges.items():
            key = _check_loss_name(loss)
            if key not in keys:
                raise ValueError(f"`ranges` has loss {loss!r}, which is not in `losses` {keys}.")
            if not isinstance(params, dict):
                raise TypeError(f"`ranges[{loss!r}]` must be a dict {{param: range}}, got {params!r}.")
            accepted = kr_losses.registry._accepted(kr_losses.registry.LOSSES.get(key) or kr_losses.registry.PAIRS[key])
            if key == "mae*":
                accepted = {"epsilon"}
            for param, spec in params.items():
                if param not in accepted or param in ("num_classes", "reduction", "name", "from_logits", "logit_bias"):
                    raise ValueError(
                        f"`ranges[{loss!r}]` has unknown parameter {param!r}; {key!r} takes {sorted(accepted)}."
                    )
                spec = _check_range(key, param, spec)
                _check_valid_values(key, param, spec, self.num_classes)
                self.ranges.setdefault(key, {})[param] = spec
        self.space = {}
        for key in keys:
            table = _default_ranges(key, self.num_classes)
            table.update(self.ranges.get(key, {}))
            self.space[key] = table
        self._defaults = None

    # -- names --------------------------------------------------------------------
    def hp_name(self, loss, param):
        """The hyperparameter name of ``param`` of ``loss``: ``"<loss>.<param>"``."""
        return f"{_check_loss_name(loss)}.{param}"

    def parameters(self, loss):
        """``{param: spec}`` tuned for ``loss``; spec is ``(min, max, sampling)`` or a fixed number."""
        key = _check_loss_name(loss)
        if key not in self.space:
            raise ValueError(f"Loss {loss!r} is not in this space's losses {self.losses}.")
        return dict(self.space[key])

    def defaults(self):
        """``{loss: {param: default}}``: ``eps(K)`` for MAE*, the literature's values otherwise, clipped to range."""
        if self._defaults is None:
            self._defaults = {}
            for key in self.losses:
                lit = _literature(key, self.num_classes) if key != "mae*" else {"epsilon": _eps(self.num_classes)}
                values = {}
                for param, spec in self.space[key].items():
                    if isinstance(spec, float):
                        values[param] = spec
                    else:
                        lo, hi, _ = spec
                        values[param] = float(min(max(float(lit.get(param, lo)), lo), hi))
                self._defaults[key] = values
        return self._defaults

    # -- declaring and building ----------------------------------------------------
    def declare(self, hp):
        """Declare the loss choice and every loss's parameters in ``hp``.

        Returns ``(loss_name, params)`` for the values active in ``hp``.
        """
        if not isinstance(hp, kt.HyperParameters):
            raise TypeError(f"`hp` must be a keras_tuner.HyperParameters, got {hp!r}.")
        choice = hp.Choice(self.name, self.losses)
        defaults = self.defaults()
        active = {}
        for key in self.losses:
            if not self.space[key]:
                continue
            with hp.conditional_scope(self.name, [key]):
                for param, spec in self.space[key].items():
                    name = self.hp_name(key, param)
                    if isinstance(spec, float):
                        value = hp.Fixed(name, spec)
                    else:
                        lo, hi, sampling = spec
                        value = hp.Float(name, lo, hi, sampling=sampling, default=defaults[key][param])
                    if key == choice:
                        active[param] = value
        return choice, active

    def build(self, hp):
        """Declare the space in ``hp`` (if needed) and return the trial's `keras.losses.Loss`."""
        choice, params = self.declare(hp)
        return self.make_loss(choice, **params)

    def make_loss(self, loss, **params):
        """The loss ``loss`` with ``params`` at this space's ``K``."""
        key = _check_loss_name(loss)
        return kr_losses.get(key, num_classes=self.num_classes, **{k: float(v) for k, v in params.items()})

    def seed_values(self, seed):
        """Hyperparameter values of a seed trial from a `SeedParameters`.

        The loss choice and the loss's tuned parameters; parameters fixed in
        the space keep their fixed value; values outside a range are clipped,
        with a warning.
        """
        if not isinstance(seed, SeedParameters):
            raise TypeError(f"`seed` must be a SeedParameters (from seed_parameters), got {seed!r}.")
        key = seed.loss
        if key not in self.space:
            raise ValueError(f"Seed loss {key!r} is not in this space's losses {self.losses}.")
        values = {self.name: key}
        for param, spec in self.space[key].items():
            if isinstance(spec, float):
                continue
            value = float(seed.params.get(param, self.defaults()[key][param]))
            lo, hi, _ = spec
            if not lo <= value <= hi:
                warnings.warn(
                    f"The seed {param}={value:g} of {key!r} at K={self.num_classes} lies outside "
                    f"the range [{lo:g}, {hi:g}]; it is clipped.",
                    stacklevel=2,
                )
                value = min(max(value, lo), hi)
            values[self.hp_name(key, param)] = value
        return values

    # -- serialisation -------------------------------------------------------------
    def get_config(self):
        ranges = {
            loss: {p: (list(s) if isinstance(s, tuple) else s) for p, s in params.items()}
            for loss, params in self.ranges.items()
        }
        return {"num_classes": self.num_classes, "losses": list(self.losses), "ranges": ranges, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"LossSpace(num_classes={self.num_classes}, losses={self.losses})"
