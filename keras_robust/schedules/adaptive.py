"""Schedules driven by the training state: `ProbabilityDecay`, the experimental `AdaptiveEpsilon`, and
their sensor, the `TrueClassProbability` metric."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_robust._checks import check_finite, check_logit_bias
from keras_robust.losses import _labels
from keras_robust.schedules.base import EpsilonSchedule, _check_epoch, _sequence, epsilon_value, register

def _logit(p):
    return math.log(p) - math.log1p(-p)


class _Measured(EpsilonSchedule):
    """A schedule that sets epsilon of epoch ``t + 1`` from ``logs[monitor]`` of epoch ``t``.

    Keeps ``history`` (``history[t]`` = epsilon of epoch ``t``), which is its
    training state: it is part of the config, so a resumed run continues.
    Subclasses set ``initial`` and ``monitor`` and implement ``next_value``.
    """

    def reset(self):
        """Forget the training state: epsilon is ``initial`` again."""
        self.history = [self.initial]

    def value(self, epoch):
        return self.history[min(epoch, len(self.history) - 1)]

    def next_value(self, epsilon, observation):
        raise NotImplementedError

    def update(self, epoch, logs):
        """Observe the logs of epoch ``epoch``; return epsilon for ``epoch + 1``."""
        epoch = _check_epoch(epoch)
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} reads logs[{self.monitor!r}], which this epoch's logs lack "
                f"(keys: {sorted(logs)}). Add the metric (e.g. TrueClassProbability()) "
                "or set `monitor`."
            )
        del self.history[epoch + 1 :]
        while len(self.history) <= epoch:
            self.history.append(self.history[-1])
        self.history.append(self.next_value(self.history[epoch], logs[self.monitor]))
        return self.history[epoch + 1]

    def get_config(self):
        return {"history": list(self.history)}  # subclasses add their arguments

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        history = config.pop("history", None)
        schedule = cls(**config)
        if history:
            history = [check_finite(f"history[{i}]", v) for i, v in enumerate(_sequence("history", history))]
            if history[0] != schedule.initial:
                raise ValueError(f"`history` must start at `initial`={schedule.initial!r}, got {history[0]!r}.")
            schedule.history = history
        return schedule


def _check_monitor(monitor):
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"`monitor` must be a non-empty string (a key of the logs), got {monitor!r}.")
    return monitor


def _probability(observation, monitor):
    observation = epsilon_value(observation, f"logs[{monitor!r}]")
    if not 0.0 <= observation <= 1.0:
        raise ValueError(f"A probability lies in [0, 1], got logs[{monitor!r}] = {observation!r}.")
    return observation


@register
class ProbabilityDecay(_Measured):
    """Epsilon withdrawn as the network learns: ``eps_{t+1} = initial * max(0, 1 - p_t / stop)``.

    Beyond the paper. The logit bias is needed to start learning (Sec. 3.2:
    with it the initial logits overlap the region where a bounded loss has
    gradient); once the network fits the labels, a bias also lends gradient
    to the examples the network disagrees with, which under label noise are
    mostly the wrongly labelled ones, so they get memorised. This schedule
    reads ``p_t``, the mean true-class probability of the (given) training
    labels in epoch ``t``, and lowers epsilon linearly in it, reaching 0 when
    ``p_t >= stop``; epsilon never increases. With a fraction ``eta`` of
    wrong labels a network that has not memorised reaches ``p`` of about
    ``1 - eta`` at most, so the default ``stop = 0.5`` withdraws the bias
    before memorisation can set in for ``eta`` up to 0.5.

    A schedule for labels known to be noisy, not a default. Measured
    (`benchmarks/heavy_noise_epsilon.py`, SGD; docs/results/large_k.md): with
    40 % noise, clean test accuracy of MAE on Omniglot (K = 242) 22.6 %
    against 17.9 % with the fixed epsilon(K) (CE 21.0 %), on a K = 1000
    teacher task 9.9 % against 8.5 %; genCE q = 0.7: 20.4 vs 16.6 % and 9.0
    vs 8.0 % (3 seeds; ``stop`` 0.3 and 0.7 also beat the fixed epsilon in
    all four). With clean labels on the K = 1000 task, which is still far
    from fitted when the bias is withdrawn, it costs accuracy: 13.2 % against
    21.8 % (MAE).

    ``observed="probability"``: ``p`` from a `TrueClassProbability` metric on
    the logits of a model trained with a loss's ``logit_bias`` (the model
    outputs unbiased logits). ``"biased_probability"``: the same metric on a
    `LogitBiasLayer` model's training output, unbiased in a one-logit
    mean-field step, ``p = sigmoid(logit(p') - eps_t)``.

    Args:
        initial: epsilon of epoch 0, ``>= 0`` (e.g. epsilon(K) of Eq. 4).
        stop: the mean true-class probability in (0, 1] at which epsilon is 0.
        monitor: the key of ``logs`` to read.
        observed: ``"probability"`` or ``"biased_probability"``.
    """

    OBSERVED = ("probability", "biased_probability")

    def __init__(self, initial: float, stop: float = 0.5, monitor: str = "true_class_probability",
                 observed: str = "probability") -> None:
        self.initial = check_logit_bias("initial", initial)
        if self.initial < 0.0:
            raise ValueError(f"`initial` must be >= 0 (a bias that decays to 0), got {initial!r}.")
        self.stop = check_finite("stop", stop)
        if not 0.0 < self.stop <= 1.0:
            raise ValueError(f"`stop` must lie in (0, 1], got {stop!r}.")
        self.monitor = _check_monitor(monitor)
        if observed not in self.OBSERVED:
            raise ValueError(f"`observed` must be one of {self.OBSERVED}, got {observed!r}.")
        self.observed = observed
        self.reset()

    def next_value(self, epsilon, observation):
        """The epsilon that follows ``epsilon`` after observing ``observation``."""
        p = _probability(observation, self.monitor)
        if self.observed == "biased_probability":
            p = 1.0 / (1.0 + math.exp(epsilon - _logit(min(max(p, 1e-7), 1.0 - 1e-7))))
        return min(epsilon, self.initial * max(0.0, 1.0 - p / self.stop))

    def get_config(self):
        return {"initial": self.initial, "stop": self.stop, "monitor": self.monitor, "observed": self.observed,
                **super().get_config()}


@register
class AdaptiveEpsilon(_Measured):
    """Experimental: epsilon follows the measured mean true-class probability.

    Beyond the paper, after its outlook (appendix 2: "a dynamically tuned
    epsilon could further improve performance"). Eq. 4 chooses epsilon so the
    mean true-class probability *with* the bias is ``C``; as the network
    learns, less bias is needed. At the end of epoch ``t`` this schedule reads
    the mean true-class probability ``p`` of the training batches from
    ``logs[monitor]``, estimates the network's own (unbiased) true-class
    logit odds ``l`` in a one-logit mean-field approximation, re-solves
    ``sigmoid(l + epsilon*) = target`` and steps towards it::

        l          = logit(p)                 observed="probability" (no bias in p)
        l          = logit(p) - eps_t         observed="biased_probability"
        l          = logit(1 - loss/2) - eps_t   observed="mae_loss"
        eps*       = logit(target) - l
        eps_{t+1}  = clip((1 - rate) * eps_t + rate * eps*, min_value, max_value)
        eps_{t+1}  = min(eps_{t+1}, eps_t)    if monotonic

    ``observed="probability"`` fits a `TrueClassProbability` metric on the
    logits of a model trained with a loss's ``logit_bias`` (the model outputs
    unbiased logits); ``"biased_probability"`` the same metric on a
    `LogitBiasLayer` model's training output; ``"mae_loss"`` the logged
    ``loss`` of a plain MAE (``2 (1 - a_k)``, mean over the batch, no other
    loss terms). The mean-field step is exact for one example and only
    approximate for a spread of logits (the mean of sigmoids is not the sigmoid
    of the mean): at initialisation with epsilon from Eq. 4 and
    ``observed="biased_probability"`` it keeps epsilon where it is
    (``p = target`` gives ``eps* = eps_t``).

    Args:
        initial: epsilon of epoch 0.
        target: ``C`` in (0, 1), the mean biased true-class probability aimed at.
        monitor: the key of ``logs`` to read.
        observed: ``"probability"``, ``"biased_probability"`` or ``"mae_loss"``.
        rate: step in (0, 1]; 1 jumps to ``eps*``.
        min_value, max_value: bounds on epsilon (``max_value=None``: none).
        monotonic: if True (default) epsilon never increases.
    """

    OBSERVED = ("probability", "biased_probability", "mae_loss")

    def __init__(
        self,
        initial: float,
        target: float = 0.15,
        monitor: str = "true_class_probability",
        observed: str = "probability",
        rate: float = 1.0,
        min_value: float = 0.0,
        max_value: float | None = None,
        monotonic: bool = True,
    ) -> None:
        self.initial = check_logit_bias("initial", initial)
        self.target = check_finite("target", target)
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"`target` must lie in (0, 1), got {target!r}.")
        self.monitor = _check_monitor(monitor)
        if observed not in self.OBSERVED:
            raise ValueError(f"`observed` must be one of {self.OBSERVED}, got {observed!r}.")
        self.observed = observed
        self.rate = check_finite("rate", rate)
        if not 0.0 < self.rate <= 1.0:
            raise ValueError(f"`rate` must lie in (0, 1], got {rate!r}.")
        self.min_value = check_finite("min_value", min_value)
        self.max_value = None if max_value is None else check_finite("max_value", max_value)
        if self.max_value is not None and self.max_value < self.min_value:
            raise ValueError(f"`max_value`={max_value!r} is below `min_value`={min_value!r}.")
        if not self.min_value <= self.initial <= (math.inf if self.max_value is None else self.max_value):
            raise ValueError(
                f"`initial`={initial!r} lies outside [min_value, max_value] = [{min_value!r}, {max_value!r}]."
            )
        if not isinstance(monotonic, bool):
            raise ValueError(f"`monotonic` must be True or False, got {monotonic!r}.")
        self.monotonic = monotonic
        self.reset()

    def next_value(self, epsilon, observation):
        """The epsilon that follows ``epsilon`` after observing ``observation``."""
        if self.observed == "mae_loss":
            observation = epsilon_value(observation, f"logs[{self.monitor!r}]")
            if not 0.0 <= observation <= 2.0:
                raise ValueError(f"An MAE loss lies in [0, 2], got logs[{self.monitor!r}] = {observation!r}.")
            p = 1.0 - observation / 2.0
        else:
            p = _probability(observation, self.monitor)
        p = min(max(p, 1e-7), 1.0 - 1e-7)
        own_logit = _logit(p) - (0.0 if self.observed == "probability" else epsilon)
        solved = _logit(self.target) - own_logit
        new = (1.0 - self.rate) * epsilon + self.rate * solved
        new = max(new, self.min_value)
        if self.max_value is not None:
            new = min(new, self.max_value)
        if self.monotonic:
            new = min(new, epsilon)
        return new

    def get_config(self):
        return {
            "initial": self.initial,
            "target": self.target,
            "monitor": self.monitor,
            "observed": self.observed,
            "rate": self.rate,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "monotonic": self.monotonic,
            **super().get_config(),  # the training state: a resumed run continues from it
        }


def _true_class_probability(y_true, y_pred):
    logits = ops.cast(y_pred, "float32")
    k = _labels.infer_num_classes(logits, None)
    y, _ = _labels.to_distribution(y_true, logits, k)
    return ops.sum(y * ops.softmax(logits, axis=-1), axis=-1)


@register
class TrueClassProbability(keras.metrics.MeanMetricWrapper):
    """Mean softmax probability of the labelled class, ``<a_k>`` (paper Eq. 4).

    For logits (the model's output); sparse, one-hot or soft labels. The
    sensor of `AdaptiveEpsilon`.
    """

    def __init__(self, name: str = "true_class_probability", dtype: str | None = None) -> None:
        super().__init__(_true_class_probability, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
