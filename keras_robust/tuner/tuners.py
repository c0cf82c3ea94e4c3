"""The tuners: keras-tuner's `RandomSearch` and `BayesianOptimization` with a seeded oracle."""

import keras_tuner as kt

from keras_robust.tuner.oracles import CalibratedBayesianOptimizationOracle, CalibratedRandomSearchOracle

def _calibration_kwargs(loss_space, seed_losses, seed_values, local_fraction, local_width, samples):
    return dict(loss_space=loss_space, seed_losses=seed_losses, seed_values=seed_values,
                local_fraction=local_fraction, local_width=local_width, samples=samples)


class CalibratedRandomSearch(kt.RandomSearch):
    """`keras_tuner.RandomSearch` whose first trials are the theory's parameters for ``K``.

    Takes keras-tuner's `RandomSearch` arguments plus ``loss_space`` (the
    `LossSpace` the hypermodel builds its loss from, ``space.build(hp)``)
    and the seeding options of `CalibratedOracle` (``seed_losses``,
    ``seed_values``, ``local_fraction``, ``local_width``, ``samples``); its
    oracle is a `CalibratedRandomSearchOracle`. See the README for an example.
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        loss_space,
        seed_losses=None,
        seed_values=None,
        local_fraction=0.5,
        local_width=0.1,
        samples=4096,
        **kwargs,
    ):
        self.seed = seed
        oracle = CalibratedRandomSearchOracle(
            objective=objective,
            max_trials=max_trials,
            seed=seed,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **_calibration_kwargs(loss_space, seed_losses, seed_values, local_fraction, local_width, samples),
        )
        # RandomSearch.__init__ only builds a plain RandomSearchOracle: skip it, keep the rest of Tuner.
        kt.Tuner.__init__(self, oracle, hypermodel, **kwargs)


class CalibratedBayesianOptimization(kt.BayesianOptimization):
    """`keras_tuner.BayesianOptimization` whose first trials are the theory's parameters for ``K``.

    Takes keras-tuner's `BayesianOptimization` arguments plus ``loss_space``
    and the seeding options of `CalibratedOracle`; its oracle is a
    `CalibratedBayesianOptimizationOracle` (the seed trials count among the
    Gaussian process's initial points).
    """

    def __init__(
        self,
        hypermodel=None,
        objective=None,
        max_trials=10,
        num_initial_points=None,
        alpha=1e-4,
        beta=2.6,
        seed=None,
        hyperparameters=None,
        tune_new_entries=True,
        allow_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        loss_space,
        seed_losses=None,
        seed_values=None,
        local_fraction=0.5,
        local_width=0.1,
        samples=4096,
        **kwargs,
    ):
        oracle = CalibratedBayesianOptimizationOracle(
            objective=objective,
            max_trials=max_trials,
            num_initial_points=num_initial_points,
            alpha=alpha,
            beta=beta,
            seed=seed,
            hyperparameters=hyperparameters,
            tune_new_entries=tune_new_entries,
            allow_new_entries=allow_new_entries,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            **_calibration_kwargs(loss_space, seed_losses, seed_values, local_fraction, local_width, samples),
        )
        # BayesianOptimization.__init__ only builds a plain oracle: skip it, keep the rest of Tuner.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
