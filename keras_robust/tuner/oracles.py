"""The seeded oracles: the `CalibratedOracle` mixin over keras-tuner's random-search and Bayesian oracles."""

import copy

import keras_tuner as kt
import numpy as np

from keras_robust._checks import check_fraction, check_int
from keras_robust.tuner.ranges import _check_loss_name
from keras_robust.tuner.seeding import seed_parameters
from keras_robust.tuner.space import LossSpace

_RUNNING = kt.engine.trial.TrialStatus.RUNNING


class CalibratedOracle:
    """A keras-tuner oracle whose first trials are the theory's parameters for ``K``.

    The seeded search is a mixin over keras-tuner's own oracles:
    `CalibratedRandomSearchOracle` (a `keras_tuner.oracles.RandomSearchOracle`)
    and `CalibratedBayesianOptimizationOracle` (a
    `keras_tuner.oracles.BayesianOptimizationOracle`). Its ``populate_space``
    proposes trial ``n`` (counting every trial created, across restarts):

    1. ``n < len(seeds)``: seed trial ``n``, the loss ``losses[n]`` at the
       parameters of `seed_parameters` (computed once, when the first trial
       is created, by the process that owns the oracle: the chief in
       distributed mode; workers only hold keras-tuner's gRPC proxy). Other
       hyperparameters take their defaults, or ``seed_values``.
    2. afterwards, with probability ``local_fraction`` a *local* trial: the
       loss of the best-scoring seed trial so far (seeds in turn while none
       has finished), each tuned loss parameter drawn uniformly within
       ``+- local_width`` of the seed on the hyperparameter's own [0, 1]
       scale (log for log ranges), and the other hyperparameters (learning
       rate, ...) as the parent oracle proposes them;
    3. otherwise the parent oracle's own trial (``super().populate_space``:
       random search, or Bayesian optimisation, whose Gaussian process sees
       the seed and local trials too).

    The choice in 2/3 and the local draws use a generator seeded with
    ``(oracle seed, n)``, so a resumed search draws what an uninterrupted one
    would. The seeds are part of the saved state: a search resumed with
    ``overwrite=False`` neither recomputes them nor repeats finished trials.

    ``CalibratedOracle(loss_space, strategy="random" | "bayesian", ...)``
    builds the matching subclass (the interface of earlier versions); a
    strategy given as a `RandomSearchOracle` / `BayesianOptimizationOracle`
    instance contributes its settings (objective, ``max_trials``, seed, ...),
    not its trials. Most users want the tuners, `CalibratedRandomSearch` and
    `CalibratedBayesianOptimization`.

    Args:
        loss_space: the `LossSpace` the hypermodel builds its loss from.
        strategy: only for ``CalibratedOracle(...)`` itself (see above).
        seed_losses: the losses that get a seed trial (default: all of the
            space's, in its order).
        seed_values: values of other hyperparameters in the seed trials
            (e.g. ``{"lr": 1e-3}``).
        local_fraction: share of the post-seed trials drawn near a seed.
        local_width: half-width of the local window on the [0, 1] scale.
        samples: Monte-Carlo samples of the calibration (`seed_parameters`).
        **kwargs: the keras-tuner oracle's arguments (``objective``,
            ``max_trials``, ``seed``, ``num_initial_points``, ...).
    """

    def __new__(cls, loss_space=None, strategy=None, *args, **kwargs):
        if cls is CalibratedOracle:
            cls, _ = _resolve_strategy("random" if strategy is None else strategy, kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        loss_space,
        strategy=None,
        seed_losses=None,
        seed_values=None,
        local_fraction=0.5,
        local_width=0.1,
        samples=4096,
        **kwargs,
    ):
        if not isinstance(loss_space, LossSpace):
            raise TypeError(f"`loss_space` must be a keras_robust.tuner.LossSpace, got {loss_space!r}.")
        if strategy is not None:
            cls, kwargs = _resolve_strategy(strategy, kwargs)
            if not isinstance(self, cls):
                raise ValueError(f"`strategy`={strategy!r} does not match {type(self).__name__}.")
        samples = check_int("samples", samples, 2)
        if kwargs.get("seed") == 0 and not isinstance(kwargs.get("seed"), bool):
            raise ValueError(
                "`seed=0` would not be reproducible: keras-tuner treats 0 as 'no seed' and draws a random "
                "one. Give a seed >= 1 (or None for a random search)."
            )
        if seed_values is not None and not isinstance(seed_values, dict):
            raise TypeError(f"`seed_values` must be a dict {{hyperparameter: value}}, got {seed_values!r}.")
        if seed_losses is not None:
            if isinstance(seed_losses, str):
                seed_losses = [seed_losses]
            seed_losses = [_check_loss_name(n) for n in seed_losses]
            missing = [n for n in seed_losses if n not in loss_space.losses]
            if missing:
                raise ValueError(f"`seed_losses` {missing} are not in the loss space's losses {loss_space.losses}.")
        self.local_fraction = check_fraction("local_fraction", local_fraction)
        self.local_width = check_fraction("local_width", local_width, high=0.5)
        super().__init__(**kwargs)
        self.loss_space = loss_space
        self.seed_losses = seed_losses
        self.seed_values = dict(seed_values or {})
        self.samples = samples
        self.seeds = None  # list of value dicts, computed on the first trial
        self.seed_methods = None

    # -- values ------------------------------------------------------------------------
    def _fill(self, values, fallback=None):
        """Active values for the whole space: ``values``, else ``fallback``, else defaults."""
        hps = kt.HyperParameters()
        fallback = fallback or {}
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = values.get(hp.name, fallback.get(hp.name, hp.default))
        return hps.values

    def compute_seeds(self):
        """Compute (once) and return the seed trials' values (see the class docstring)."""
        if self.seeds is None:
            keys = self.seed_losses or self.loss_space.losses
            found = [seed_parameters(key, self.loss_space.num_classes, samples=self.samples) for key in keys]
            self.seeds = [{**self.loss_space.seed_values(f), **self.seed_values} for f in found]
            self.seed_methods = [f"{f.method}: {f.detail}" for f in found]
        return self.seeds

    def _centre(self, n):
        """The seed to sample around: that of the best-scoring finished seed trial, else seeds in turn."""
        by_loss = {seed[self.loss_space.name]: seed for seed in self.seeds}
        best, best_score = None, None
        sign = 1.0 if self.objective.direction == "max" else -1.0
        for trial_id in self.start_order[: len(self.seeds)]:
            trial = self.trials.get(trial_id)
            if trial is None or trial.status != "COMPLETED" or trial.score is None:
                continue
            loss = trial.hyperparameters.values.get(self.loss_space.name)
            if loss in by_loss and (best_score is None or sign * trial.score > best_score):
                best, best_score = by_loss[loss], sign * trial.score
        return best if best is not None else self.seeds[n % len(self.seeds)]

    def _local_values(self, centre, rng):
        out = dict(centre)
        loss = centre[self.loss_space.name]
        for param, spec in self.loss_space.parameters(loss).items():
            if isinstance(spec, float):
                continue
            name = self.loss_space.hp_name(loss, param)
            hp = next(h for h in self.hyperparameters.space if h.name == name)
            prob = hp.value_to_prob(centre[name]) + rng.uniform(-self.local_width, self.local_width)
            out[name] = float(hp.prob_to_value(float(np.clip(prob, 0.0, 1.0))))
        return out

    def populate_space(self, trial_id):
        seeds = self.compute_seeds()
        n = len(self.trials)
        if n < len(seeds):
            values = self._fill(seeds[n])
            if not self._duplicate(values):
                return {"status": _RUNNING, "values": values}
        rng = np.random.default_rng([int(self.seed), n])
        if seeds and rng.random() < self.local_fraction:
            proposal = super().populate_space(trial_id)
            if proposal["status"] != _RUNNING:
                return proposal
            centre = self._centre(n)
            for _ in range(self._max_collisions):
                values = self._fill(self._local_values(centre, rng), fallback=proposal["values"])
                if not self._duplicate(values):
                    return {"status": _RUNNING, "values": values}
            return proposal
        return super().populate_space(trial_id)

    # -- state -------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        state["calibration"] = {
            "seeds": self.seeds,
            "seed_methods": self.seed_methods,
            "local_fraction": self.local_fraction,
            "local_width": self.local_width,
            "num_classes": self.loss_space.num_classes,
        }
        return state

    def set_state(self, state):
        # keras-tuner's HyperParameters.from_config changes the config it reads: read a copy.
        super().set_state(copy.deepcopy(state))
        calibration = state.get("calibration", {})
        if calibration.get("num_classes", self.loss_space.num_classes) != self.loss_space.num_classes:
            raise ValueError(
                f"The saved search was seeded for K={calibration['num_classes']}, "
                f"but the loss space has K={self.loss_space.num_classes}: use another project or overwrite=True."
            )
        self.seeds = calibration.get("seeds")
        self.seed_methods = calibration.get("seed_methods")
        self.local_fraction = calibration.get("local_fraction", self.local_fraction)
        self.local_width = calibration.get("local_width", self.local_width)


class CalibratedRandomSearchOracle(CalibratedOracle, kt.oracles.RandomSearchOracle):
    """`keras_tuner.oracles.RandomSearchOracle` whose first trials are the theory's (see `CalibratedOracle`)."""


class CalibratedBayesianOptimizationOracle(CalibratedOracle, kt.oracles.BayesianOptimizationOracle):
    """`keras_tuner.oracles.BayesianOptimizationOracle` whose first trials are the theory's (see `CalibratedOracle`)."""


_STRATEGIES = {"random": CalibratedRandomSearchOracle, "bayesian": CalibratedBayesianOptimizationOracle}
# Constructor arguments of keras-tuner's oracles, read from a strategy instance.
_ORACLE_ARGS = ("objective", "max_trials", "seed", "hyperparameters", "allow_new_entries", "tune_new_entries",
                "max_retries_per_trial", "max_consecutive_failed_trials")
_BAYESIAN_ARGS = ("num_initial_points", "alpha", "beta")


def _resolve_strategy(strategy, kwargs):
    """``(oracle class, oracle kwargs)`` for ``CalibratedOracle(strategy=...)``."""
    if isinstance(strategy, str):
        if strategy not in _STRATEGIES:
            raise ValueError(f"`strategy` must be one of {sorted(_STRATEGIES)} or an oracle instance, got {strategy!r}.")
        return _STRATEGIES[strategy], kwargs
    if isinstance(strategy, kt.oracles.BayesianOptimizationOracle):
        cls, names = CalibratedBayesianOptimizationOracle, _ORACLE_ARGS + _BAYESIAN_ARGS
    elif isinstance(strategy, kt.oracles.RandomSearchOracle):
        cls, names = CalibratedRandomSearchOracle, _ORACLE_ARGS
    else:
        raise TypeError(
            "`strategy` must be 'random', 'bayesian', or a RandomSearchOracle / BayesianOptimizationOracle "
            f"instance, got {strategy!r}."
        )
    oracle_kwargs = {k: v for k, v in kwargs.items() if k not in _ORACLE_ARGS + _BAYESIAN_ARGS}
    if len(oracle_kwargs) != len(kwargs):
        raise ValueError(
            f"Give the oracle's arguments {sorted(set(kwargs) - set(oracle_kwargs))} to the strategy instance, "
            "not to CalibratedOracle."
        )
    return cls, {**{name: getattr(strategy, name) for name in names}, **oracle_kwargs}
