"""The logit bias (paper Sec. 3.2) as a function and as a layer.

``z_k -> z_k + epsilon`` for the labelled class ``k``, during training only.
A loss can apply it itself (``logit_bias=`` of every keras_robust loss); the
layer does it inside the model, for losses that are not ours or when epsilon
must be a model weight.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_robust._checks import check_logit_bias
from keras_robust._typing import Tensor
from keras_robust.losses import _labels
from keras_robust.losses import functional as F


def add_logit_bias(logits: Tensor, labels: Tensor, epsilon: float | Tensor) -> Tensor:
    """Add ``epsilon`` to the true-class logit of each example.

    Args:
        logits: ``(..., K)`` logits.
        labels: sparse class indices ``(...)`` / ``(..., 1)``, one-hot or soft
            labels ``(..., K)`` (a soft label shifts logit ``i`` by
            ``epsilon * y_i``).
        epsilon: float or scalar tensor.

    Returns:
        The biased logits, same shape and dtype as ``logits``. An invalid
        sparse label raises eagerly; inside a compiled step it makes all the
        batch's logits NaN (not only its row: a loss may ignore that row,
        e.g. Keras' sparse cross entropy on JAX scores label ``K`` as 0), so
        any loss that follows is NaN instead of training on a made-up class.
    """
    logits = ops.convert_to_tensor(logits)
    k = _labels.infer_num_classes(logits, None)
    y, valid = _labels.normalize(ops.convert_to_tensor(labels), logits, k)
    biased = F.add_logit_bias(ops.cast(logits, "float32"), y, epsilon)
    if valid is not None:
        biased = ops.where(ops.all(valid), biased, float("nan"))
    return ops.cast(biased, logits.dtype)


@keras.saving.register_keras_serializable(package="keras_robust")
class LogitBiasLayer(keras.layers.Layer):
    """Adds ``epsilon`` to the true-class logit when ``training`` is true.

    Called as ``layer(logits, labels)``; the identity at inference or when
    ``labels`` is None, so the inference path needs no labels. ``epsilon`` is a
    non-trainable weight: `keras_robust.EpsilonScheduler` can change it during
    ``fit`` on every backend (JAX included, where the compiled step receives
    layer weights as inputs).

    Args:
        epsilon: the initial logit bias (finite float).
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, epsilon: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._epsilon = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(check_logit_bias("epsilon", epsilon)),
            trainable=False,
            dtype="float32",
            name="epsilon",
        )

    @property
    def epsilon(self):
        return float(ops.convert_to_numpy(self._epsilon.value))

    @epsilon.setter
    def epsilon(self, value):
        self._epsilon.assign(check_logit_bias("epsilon", value))

    def call(self, logits, labels=None, training=None):
        if not training or labels is None:
            return logits
        return add_logit_bias(logits, labels, self._epsilon.value)

    def compute_output_shape(self, logits_shape, labels_shape=None):
        return logits_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def with_logit_bias(model: keras.Model, epsilon: float = 0.0, label_shape: tuple[int, ...] = (),
                    label_dtype: str = "int32") -> keras.Model:
    """A training model ``(x, labels) -> biased logits`` sharing ``model``'s weights.

    Train it with ``fit((x, y), y)``; predict with ``model`` itself, which
    needs no labels. The returned model's `LogitBiasLayer` is its last layer.
    """
    inputs = keras.Input(shape=model.input_shape[1:], name="x")
    labels = keras.Input(shape=label_shape, dtype=label_dtype, name="labels")
    outputs = LogitBiasLayer(epsilon, name="logit_bias")(model(inputs), labels)
    return keras.Model([inputs, labels], outputs, name=f"{model.name}_logit_bias")
