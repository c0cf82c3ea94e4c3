"""The logit bias over training: schedules ``epoch -> epsilon`` and `EpsilonScheduler`.

A schedule is any callable ``epoch -> epsilon`` (epochs count from 0, as in
`keras.callbacks.LearningRateScheduler`). The classes here serialise:

    Constant(3.0)                        # one epsilon throughout
    Piecewise([10, 20], [3.0, 2.0, 1.0]) # change at epochs 10 and 20
    Cyclic([5.2, 4.8, ...], 11)          # cycle through values
    WEBVISION                            # the paper's WebVision schedule (appendix 2)
    FromClasses(1000)                    # epsilon(K) of Eq. 4, constant
    ProbabilityDecay(3.93)               # withdrawn as the true-class probability rises (label noise)
    AdaptiveEpsilon(5.2)                 # experimental: follows the training state

`EpsilonScheduler` is the callback that applies a schedule at the start of
every epoch to the losses' ``logit_bias`` and to `LogitBiasLayer`s, on every
backend, and logs ``epsilon``::

    loss = kr.losses.MAE(logit_bias=kr.schedules.WEBVISION)
    model.compile(loss=loss, optimizer="sgd")
    model.fit(x, y, epochs=198, callbacks=[kr.schedules.EpsilonScheduler()])

How the new epsilon reaches the compiled step: epsilon is model state, the way
``optimizer.learning_rate`` is. A `LogitBiasLayer`'s epsilon is a
non-trainable weight of the model. A loss's epsilon is a `keras.Variable` of
the loss; while the scheduler is in a `fit` (or `evaluate`) it assigns that
variable to the model as an attribute (Keras tracks it: it becomes one of
``model.non_trainable_variables``), so every backend's compiled step receives
its current value as an input, JAX's ``jit`` included, and nothing is
retraced; at the end of the call it is detached again, so saved weights do not
change. ``EpsilonScheduler()`` without any schedule is such a carrier only:
then a hand-set ``loss.epsilon`` reaches the JAX step too. Without the
scheduler, a JAX step holds a loss's epsilon as the constant it traced, and
the loss warns when it is changed after that.
"""

from keras_robust.schedules.adaptive import AdaptiveEpsilon, ProbabilityDecay, TrueClassProbability
from keras_robust.schedules.base import EpsilonSchedule, epsilon_value, register
from keras_robust.schedules.callback import EpsilonScheduler, get
from keras_robust.schedules.fixed import (
    WEBVISION,
    WEBVISION_EPOCHS_PER_VALUE,
    WEBVISION_PERIOD,
    WEBVISION_VALUES,
    Constant,
    Cyclic,
    FromClasses,
    Piecewise,
    webvision,
)

__all__ = [
    "WEBVISION",
    "WEBVISION_EPOCHS_PER_VALUE",
    "WEBVISION_PERIOD",
    "WEBVISION_VALUES",
    "AdaptiveEpsilon",
    "Constant",
    "Cyclic",
    "EpsilonSchedule",
    "EpsilonScheduler",
    "FromClasses",
    "Piecewise",
    "ProbabilityDecay",
    "TrueClassProbability",
    "epsilon_value",
    "get",
    "register",
    "webvision",
]
