"""`PreflightCheck`: the pre-flight check as a Keras callback, warning in one line when training begins."""

import warnings

import keras
import numpy as np

from keras_robust.diagnostics.check import preflight
from keras_robust.diagnostics.report import PreflightWarning

class PreflightCheck(keras.callbacks.Callback):
    """Runs `preflight` when training begins; warns in one line if the loss will not learn.

    At ``on_train_begin`` (the model is freshly initialised, or whatever
    ``fit`` starts from) it checks the model's compiled loss (or ``loss``)
    with the model's optimizer on ``x``, stores the `PreflightReport` in
    ``self.report``, and, when ``report.learns`` is False, emits one
    `PreflightWarning` whose message is one line naming the overlap and the
    fix (and saying so when the optimizer is adaptive). It checks once per
    callback object, so a second ``fit`` does not repeat it.

    Keras does not hand callbacks the training data, so give ``x``: a batch
    of training inputs as the model sees them (e.g. ``x_train[:256]``, or
    one batch of a ``tf.data`` pipeline). Without ``x`` the check uses 256
    standard-normal inputs of the model's input shape (the statistics of
    normalised images, not the data) and says so.

    Args:
        x: a batch of inputs, or None (synthetic N(0, 1) inputs).
        loss: the loss to check (default: the model's compiled loss).
        stop: also stop training (``model.stop_training = True``) when it does not learn.
        **kwargs: passed to `preflight` (``threshold``, ``samples``, ``seed``).
    """

    def __init__(self, x=None, loss=None, stop=False, **kwargs):
        super().__init__()
        if not isinstance(stop, bool):
            raise ValueError(f"`stop` must be True or False, got {stop!r}.")
        self.x = x
        self.loss = loss
        self.stop = stop
        self.kwargs = kwargs
        self.report = None

    def _inputs(self):
        if self.x is not None:
            return self.x, ""
        shape = getattr(self.model, "input_shape", None)
        if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
            raise ValueError("PreflightCheck needs `x` (a batch of training inputs) for a model without a "
                             f"single fixed input shape (got {shape!r}).")
        rng = np.random.default_rng(self.kwargs.get("seed", 0))
        return rng.standard_normal((256, *shape[1:])).astype("float32"), " [synthetic N(0, 1) inputs]"

    def on_train_begin(self, logs=None):
        if self.report is not None:
            return
        x, note = self._inputs()
        self.report = preflight(self.model, self.loss, x, optimizer=getattr(self.model, "optimizer", None),
                                **self.kwargs)
        if not self.report.learns:
            warnings.warn(self.report.summary() + note, PreflightWarning, stacklevel=2)
            if self.stop:
                self.model.stop_training = True
