"""`LearningMonitor`: a callback that says so when a loss is not learning.

A bounded loss whose effective learning rate is too high for its scale (e.g.
NCE+MAE with a large ``beta``) can saturate the softmax in a few steps: the
logits explode, every gradient vanishes, and training sits at chance with the
loss frozen at the value of a uniform prediction. Nothing fails, so a run
would go on for hours. The monitor checks at the end of every epoch

* **chance**: training accuracy at most ``1/K + chance_margin``;
* **uniform**: training loss, less the model's regularisation penalty
  (``sum(model.losses)``, which Keras adds to the logged loss), within
  ``rtol`` of the loss of a uniform prediction (all logits equal), the value a
  saturated or dead network sits at;
* **exploding logits**: the mean per-example spread ``max_i z_i - min_i z_i``
  of the model's logits on a fixed probe batch above ``max_logit_spread``
  (float32 softmax saturates long before; trained networks stay far below);

and warns in one line naming the likely cause when the accuracy is at chance
with either of the other two ("not learning"), or when the logits explode
whatever the accuracy ("failing": a saturated softmax has left a
bounded loss without gradient even where the accuracy sits a little above
chance, e.g. NCE+AGCE on CIFAR-10 at 13–14 % with spreads of 1,000–6,000;
no healthy MLP1024 run of the fidelity grids went past 130). It records the
finding in ``logs`` (``not_learning`` = 1, ``logit_spread``) and in
``self.findings``, and, with ``stop=True``, stops training like
`keras.callbacks.TerminateOnNaN`.
"""

import math
import numbers
import warnings

import keras
import numpy as np

from keras_robust import _backend

__all__ = ["LearningMonitor", "NotLearningWarning", "uniform_loss"]


class NotLearningWarning(UserWarning):
    """Training is at chance level with a frozen loss, or its logits exploded."""


def uniform_loss(loss, num_classes):
    """The loss of a uniform prediction (all logits 0), logit bias included.

    The same for every label by symmetry; computed with the loss object itself.
    """
    y = np.zeros((1,), "int32")
    z = np.zeros((1, int(num_classes)), "float32")
    return float(keras.ops.convert_to_numpy(loss(y, z)))


@keras.saving.register_keras_serializable(package="keras_robust")
class LearningMonitor(keras.callbacks.Callback):
    """Warns (and optionally stops) when training is at chance and stuck, or its logits explode.

    Args:
        num_classes: ``K`` (chance level is ``1/K``).
        probe: optional inputs (a small batch, e.g. 256 training examples) on
            which the logit spread is measured each epoch.
        loss: optional loss object (default: the model's compiled loss) for
            the uniform-prediction value.
        patience: epochs in a row the finding must hold before it is reported.
        chance_margin: accuracy above ``1/K`` still counted as chance.
        rtol: relative tolerance of "loss equals the uniform-prediction value".
        max_logit_spread: mean per-example logit spread counted as exploding.
        stop: stop training (``model.stop_training = True``) when reported.
        accuracy_key: the ``logs`` key of the training accuracy.
    """

    def __init__(self, num_classes, probe=None, loss=None, *, patience=1, chance_margin=0.02, rtol=0.005,
                 max_logit_spread=1000.0, stop=False, accuracy_key="accuracy"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1:
            raise ValueError(f"`patience` must be a positive integer, got {patience!r}.")
        for name, value in (("chance_margin", chance_margin), ("rtol", rtol), ("max_logit_spread", max_logit_spread)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
        if not isinstance(stop, bool):
            raise ValueError(f"`stop` must be True or False, got {stop!r}.")
        self.num_classes = int(num_classes)
        self.probe = probe
        self.loss = loss
        self.patience = int(patience)
        self.chance_margin = float(chance_margin)
        self.rtol = float(rtol)
        self.max_logit_spread = float(max_logit_spread)
        self.stop = stop
        self.accuracy_key = accuracy_key
        self.findings = []
        self._streak = 0
        self._uniform = None

    def _uniform_value(self):
        if self._uniform is None:
            loss = self.loss if self.loss is not None else getattr(self.model, "loss", None)
            try:
                self._uniform = uniform_loss(keras.losses.get(loss), self.num_classes)
            except Exception:  # noqa: BLE001 - a loss we cannot call standalone: skip this check
                self._uniform = float("nan")
        return self._uniform

    def logit_spread(self):
        """Mean over the probe batch of ``max_i z_i - min_i z_i`` (NaN without a probe)."""
        if self.probe is None:
            return float("nan")
        with _backend.readable_outputs():  # several hosts: outputs every process can read
            z = np.asarray(self.model.predict(self.probe, verbose=0), dtype="float64")
        return float(np.mean(z.max(-1) - z.min(-1)))

    def penalty(self):
        """The model's regularisation penalty now (``sum(model.losses)``, e.g. coupled L2), 0 without one.

        Keras adds it to the logged ``loss``; the uniform-prediction test compares the loss without it.
        """
        terms = list(getattr(self.model, "losses", None) or [])
        return float(sum(float(np.sum(keras.ops.convert_to_numpy(t))) for t in terms)) if terms else 0.0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        acc, value = logs.get(self.accuracy_key), logs.get("loss")
        spread = self.logit_spread()
        logs["logit_spread"] = spread
        uniform = self._uniform_value()
        at_chance = acc is not None and float(acc) <= 1.0 / self.num_classes + self.chance_margin
        penalty = self.penalty() if value is not None and math.isfinite(uniform) else 0.0
        frozen = (value is not None and math.isfinite(uniform)
                  and abs(float(value) - penalty - uniform) <= self.rtol * max(1.0, abs(uniform)))
        exploding = math.isfinite(spread) and spread > self.max_logit_spread
        stuck = at_chance and (frozen or exploding)  # "not learning"; exploding alone is "failing"
        self._streak = self._streak + 1 if exploding or stuck else 0
        logs["not_learning"] = float(self._streak >= self.patience)
        if self._streak != self.patience:
            return
        signs = []
        if frozen and at_chance:
            less = f" less the regularisation penalty {penalty:.4g}" if penalty else ""
            signs.append(f"loss {float(value):.4g}{less} = its value at a uniform prediction ({uniform:.4g})")
        if exploding:
            signs.append(f"logits exploded (mean per-example spread {spread:.3g})")
        kind = "not learning" if stuck else "failing"
        accuracy = "" if acc is None else f"training accuracy {100 * float(acc):.1f} %"
        state = (f"{accuracy} is at chance ({100 / self.num_classes:.1f} %), " if stuck
                 else f"{accuracy}{', ' if accuracy else ''}")
        message = (
            f"keras_robust: {kind} after epoch {epoch + 1}: {state}{' and '.join(signs)}. Likely cause: the "
            "effective learning rate is too high for the loss's scale (the softmax saturated). Lower the learning "
            "rate or the loss weights (e.g. beta), or clip the gradient norm (clipnorm)."
        )
        self.findings.append({"epoch": epoch + 1, "kind": kind, "accuracy": None if acc is None else float(acc),
                              "loss": None if value is None else float(value), "penalty": penalty,
                              "uniform_loss": uniform, "logit_spread": spread, "message": message})
        warnings.warn(message, NotLearningWarning, stacklevel=2)
        if self.stop:
            self.model.stop_training = True

    def get_config(self):
        return {"num_classes": self.num_classes, "patience": self.patience, "chance_margin": self.chance_margin,
                "rtol": self.rtol, "max_logit_spread": self.max_logit_spread, "stop": self.stop,
                "accuracy_key": self.accuracy_key}

    @classmethod
    def from_config(cls, config):
        """The monitor of :meth:`get_config` (``probe`` and ``loss`` are run-time objects, not config)."""
        return cls(**config)
