"""One run: a Keras `fit` with callbacks, resumable, in ``results_dir/<run id>/``.

`run` builds the model and loss of a `RunConfig`, restores the last committed
epoch if there is one, and trains the remaining epochs in one ``fit`` over
`EpochBatches` with Keras' own callbacks (`LearningRateScheduler`,
`TerminateOnNaN`) and the project's (`EpsilonScheduler` for scheduled logit
biases, `LearningMonitor`), plus two of this module: `HeldOutEvaluation`
(test accuracy and loss, false-label and noisy-label accuracy, with batches
padded for data parallelism, which Keras' own ``validation_data`` cannot do)
and `EpochCommit` (the history row and the atomic checkpoint of every epoch).

``history.json``: per epoch the training loss and accuracy (on the noisy
labels), test loss and accuracy (clean test set; the loss as in training,
logit bias included), false-label accuracy (the corrupted training examples
scored against their true labels, paper Fig. 4), noisy-label accuracy, the
number of unlearned classes (test accuracy 0), epsilon, learning rate, logit
spread and seconds; at the end ``"finished": true`` and the last epoch's
per-class test accuracy, with a warning when classes stayed unlearned;
``"environments"``: the code commit and package versions of each process that
trained the run (`provenance`).
"""

import math
import shutil
import time

import keras
import numpy as np

from keras_robust import datasets, losses, metrics, models, monitor
from keras_robust.experiments import checkpoint as ckpt_lib
from keras_robust.experiments import data, provenance
from keras_robust.experiments._io import read_json, write_json
from keras_robust.experiments.config import RunConfig, run_dir
from keras_robust.schedules import EpsilonScheduler


def build(config, k, input_shape):
    """The compiled model and its loss (the paper's parameters for the data set, then ``loss_params``)."""
    keras.utils.set_random_seed(config.seed)
    model = models.get(config.arch, k, input_shape=input_shape)
    dataset = config.dataset if config.dataset in ("fashion_mnist", "cifar10", "cifar100") else None
    loss = losses.get(config.loss, num_classes=k, dataset=dataset, **dict(config.loss_params))
    if config.l2:
        # Coupled L2 (torch.optim.SGD's weight_decay): the penalty l2/2 ||w||^2 adds l2 * w to each gradient.
        for variable in model.trainable_variables:
            variable.regularizer = keras.regularizers.L2(config.l2 / 2)
    common = dict(learning_rate=config.lr, weight_decay=config.weight_decay or None, global_clipnorm=config.clipnorm)
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov, **common)
    else:
        opt = keras.optimizers.Adam(**common)
    model.compile(optimizer=opt, loss=loss, metrics=["accuracy"])
    opt.build(model.trainable_variables)
    return model, loss


def _finite_or_none(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _num(v):
    return "nan" if v is None else f"{v:.4f}"


class HeldOutEvaluation(keras.callbacks.Callback):
    """Logs ``test_accuracy``, ``test_loss``, ``test_class_accuracy`` (a list, one per class; NaN
    for a class absent from the test set), ``unlearned_classes`` (classes at 0 test accuracy) and,
    with corrupted examples, ``false_label_accuracy`` / ``noisy_label_accuracy`` at every epoch's end."""

    def __init__(self, loss, x_test, y_test, x_noisy=None, true_noisy=None, labels_noisy=None, devices=1):
        super().__init__()
        self.loss, self.x_test, self.y_test, self.devices = loss, x_test, y_test, devices
        self.x_noisy, self.true_noisy, self.labels_noisy = x_noisy, true_noisy, labels_noisy

    def on_epoch_end(self, epoch, logs=None):
        logits = data.predict(self.model, self.x_test, self.devices)
        predicted = np.argmax(logits, -1)
        logs["test_accuracy"] = float(np.mean(predicted == self.y_test))
        per_class = metrics.class_accuracy(predicted, self.y_test, num_classes=logits.shape[-1])
        logs["test_class_accuracy"] = [_finite_or_none(a) for a in per_class]
        logs["unlearned_classes"] = int(np.sum(per_class == 0))
        total = 0.0
        for i in range(0, len(self.y_test), 4096):
            y, z = self.y_test[i:i + 4096].astype("int32"), logits[i:i + 4096]
            total += float(keras.ops.convert_to_numpy(self.loss(y, z))) * len(y)
        logs["test_loss"] = total / len(self.y_test)
        if self.x_noisy is not None and len(self.x_noisy):
            pred = data.predict(self.model, self.x_noisy, self.devices)
            logs["false_label_accuracy"] = metrics.false_label_accuracy(pred, true_labels=self.true_noisy)
            logs["noisy_label_accuracy"] = metrics.false_label_accuracy(pred, true_labels=self.labels_noisy)


def _unlearned_warning(class_accuracy):
    """The history's warning when classes end the run at 0 test accuracy (None when none do)."""
    dead = [c for c, a in enumerate(class_accuracy or []) if a == 0]
    if not dead:
        return None
    return (f"{len(dead)} of {len(class_accuracy)} classes are never predicted correctly on the test set at the "
            f"end (class ids {', '.join(map(str, dead[:20]))}{', ...' if len(dead) > 20 else ''}). With a "
            "bounded loss (e.g. MAE) the likely cause is that their true-class probability started small, where "
            "the loss has almost no gradient (paper Sec. 3); a logit bias (e.g. MAEStar) lifts it.")


class EpochCommit(keras.callbacks.Callback):
    """Appends each epoch's row to the history, commits the checkpoint atomically, prints one line."""

    def __init__(self, config, out, history, watch, verbose):
        super().__init__()
        self.config, self.out, self.history, self.watch, self.verbose = config, out, history, watch, verbose

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {key: _finite_or_none(logs.get(key)) for key in (
            "loss", "accuracy", "test_loss", "test_accuracy", "false_label_accuracy", "noisy_label_accuracy")}
        row = {"epoch": epoch + 1, **row, "epsilon": _finite_or_none(logs.get("epsilon", self._epsilon())),
               "lr": self.config.learning_rate(epoch), "logit_spread": _finite_or_none(logs.get("logit_spread")),
               "unlearned_classes": logs.get("unlearned_classes"), "seconds": round(time.perf_counter() - self.t0, 3)}
        h = self.history
        h["epochs"].append(row)
        found = [f for f in self.watch.findings if f["epoch"] == epoch + 1]
        h["warnings"] += [f["message"] for f in found]
        stop = None
        if found and self.watch.stop:
            stop = f"{found[0]['kind']} after epoch {epoch + 1}"
        elif row["loss"] is None:
            stop = f"the training loss became NaN or inf in epoch {epoch + 1}"
        if stop:
            h["stopped_early"] = stop
        h["finished"] = epoch + 1 == self.config.epochs or stop is not None
        unlearned = None
        if h["finished"]:
            h["test_class_accuracy"] = logs.get("test_class_accuracy")
            unlearned = None if stop else _unlearned_warning(h["test_class_accuracy"])
            if unlearned:
                h["warnings"].append(unlearned)
        ckpt_lib.save_checkpoint(self.out / "checkpoint", self.model, epoch + 1, self.config, h)
        write_json(self.out / "history.json", h)
        if self.verbose:
            fla, eps = row["false_label_accuracy"], row["epsilon"]
            print(f"[{self.config.run_id}] epoch {epoch + 1:3d}/{self.config.epochs}  loss {_num(row['loss'])}  "
                  f"train {_num(row['accuracy'])}  test {_num(row['test_accuracy'])}"
                  + (f"  false-label {fla:.4f}" if fla is not None else "")
                  + (f"  ε {eps:.3g}" if eps is not None else "")
                  + (f"  unlearned {row['unlearned_classes']}" if row["unlearned_classes"] else "")
                  + f"  lr {row['lr']:.3g}  {row['seconds']:.1f} s", flush=True)
            for message in [f["message"] for f in found] + ([unlearned] if unlearned else []):
                print(f"[{self.config.run_id}] WARNING {message}", flush=True)

    def _epsilon(self):
        return getattr(self.model.loss, "epsilon", None)


def run(config, results_dir="results", callbacks=None, verbose=1, distribute="auto", force=False,
        stop_on_stall=False):
    """Train ``config`` (or resume it) and return its history dict.

    Args:
        config: a `RunConfig` (or its dict).
        results_dir: where ``<run id>/history.json`` and the checkpoint live.
        callbacks: extra Keras callbacks for the run's ``fit``.
        verbose: 0 silent, 1 one line per epoch (with seconds).
        distribute: ``"auto"`` (data-parallel when several devices), True, False.
        force: retrain from scratch even when a finished history or a
            (possibly damaged) checkpoint exists.
        stop_on_stall: stop when `keras_robust.monitor.LearningMonitor` finds
            the run not learning (at chance with a frozen loss or exploding
            logits) or failing (exploding logits above chance); it always
            warns and records the finding in the history.

    Returns:
        ``{"config", "run_id", "epochs": [{epoch, loss, accuracy, test_loss,
        test_accuracy, false_label_accuracy, noisy_label_accuracy, epsilon,
        lr, logit_spread, seconds}, ...], "finished", "warnings", ...}``.

    An unfinished history whose checkpoint folder is absent altogether (a
    fresh clone: checkpoints are not committed) trains again from epoch 0,
    with a warning in the history.

    Raises:
        RunError: the run's checkpoint is damaged (the message names the file;
            ``force=True`` restarts it) or another process is training it.
    """
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    if not isinstance(config, RunConfig):
        raise TypeError(f"`config` must be a RunConfig or dict, got {config!r}")
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"`verbose` must be 0, 1 or 2, got {verbose!r}")
    backend = keras.backend.backend()
    if config.backend is None:
        config = config.replace(backend=backend)
    elif config.backend != backend:
        raise ValueError(f"config.backend is {config.backend!r} but Keras runs on {backend!r}: "
                         f"set KERAS_BACKEND={config.backend} before importing keras")
    out = run_dir(config, results_dir)
    hist_path = out / "history.json"
    if hist_path.is_file() and not force:
        try:
            history = read_json(hist_path)
        except (OSError, ValueError):
            history = {}  # a damaged copy: the checkpoint decides below
        if history.get("finished"):
            if verbose:
                print(f"[{config.run_id}] finished already ({len(history['epochs'])} epochs): skipped", flush=True)
            return history
    out.mkdir(parents=True, exist_ok=True)
    with ckpt_lib.RunLock(out, config):
        return _train(config, out, callbacks, verbose, distribute, force, stop_on_stall)


def _train(config, out, callbacks, verbose, distribute, force, stop_on_stall):
    hist_path, ckpt = out / "history.json", out / "checkpoint"
    if force and ckpt.is_dir():
        shutil.rmtree(ckpt)
    restarted = None
    if not force and hist_path.is_file() and not (ckpt / "LATEST").is_file():
        if ckpt.exists():
            raise ckpt_lib.damaged(config, ckpt / "LATEST", "missing, but history.json shows the run started")
        # No checkpoint folder at all: a copy without the run's checkpoint (a fresh clone: checkpoints
        # are not committed). The recorded epochs cannot be resumed; train again and say so.
        restarted = ("restarted from epoch 0: history.json recorded a started run but its checkpoint "
                     "folder is absent (checkpoints are not committed, e.g. a fresh clone)")
    raw, y, noisy, mask, raw_test, yt, k = data.load_data(config)
    x, xt = data.normalise(raw, config), data.normalise(raw_test, config)
    kind, n_dev, scope = data.strategy(distribute)
    with scope:
        model, loss = build(config, k, x.shape[1:])
    history = {"run_id": config.run_id, "config": config.to_dict(), "num_classes": k,
               "num_train": int(len(y)), "num_test": int(len(yt)), "num_noisy": int(mask.sum()),
               "distribution": kind, "devices": n_dev, "epochs": [], "warnings": [], "finished": False}
    start = 0
    if restarted:
        history["warnings"].append(restarted)
        if verbose:
            print(f"[{config.run_id}] WARNING {restarted}", flush=True)
    if (ckpt / "LATEST").is_file() and not force:
        start, old = ckpt_lib.load_checkpoint(ckpt, model, config)
        history.update(epochs=old["epochs"][:start], warnings=old.get("warnings", []),
                       finished=bool(old.get("finished")), environments=old.get("environments", []))
        if verbose:
            print(f"[{config.run_id}] resuming after epoch {start}/{config.epochs}", flush=True)
    elif verbose:
        noise = f"{config.noise} {config.labels or f'{config.noise_rate:g}'}"
        print(f"[{config.run_id}] {config.dataset} {config.arch} {config.label} {noise}: "
              f"{len(y)} train ({int(mask.sum())} noisy), {len(yt)} test, "
              f"{config.epochs} epochs, {keras.backend.backend()}"
              + (f", {kind} on {n_dev} devices" if n_dev > 1 else ""), flush=True)
    if history["finished"] or start >= config.epochs:
        write_json(hist_path, history)  # a kill between the last commit and its copy
        return history
    provenance.record(history)  # the code and packages of this process, which trains from `start`
    if config.augment:
        augment_kind = datasets.info(config.dataset).augment
        batches = data.EpochBatches(raw, noisy, config, start, n_dev, augment_kind=augment_kind)
    else:
        batches = data.EpochBatches(x, noisy, config, start, n_dev)
    probe = x[np.random.default_rng([int(config.seed), 0x9B0BE]).permutation(len(x))[:256]]
    watch = monitor.LearningMonitor(k, probe=probe, loss=loss, stop=stop_on_stall)
    noisy_idx = np.flatnonzero(mask)
    cbs = [keras.callbacks.LearningRateScheduler(lambda epoch, lr: config.learning_rate(epoch)),
           keras.callbacks.TerminateOnNaN()]
    if getattr(loss, "logit_bias_schedule", None) is not None:
        cbs.append(EpsilonScheduler())
    cbs += list(callbacks or []) + [
        HeldOutEvaluation(loss, xt, yt, x[noisy_idx], y[noisy_idx], noisy[noisy_idx], n_dev),
        watch,
        EpochCommit(config, out, history, watch, verbose),
    ]
    try:
        # shuffle=False: the batches are already in the order of (seed, epoch)
        model.fit(batches, initial_epoch=start, epochs=config.epochs, steps_per_epoch=batches.per_epoch,
                  shuffle=False, verbose=0, callbacks=cbs)
    finally:
        if kind == "jax-data-parallel":
            keras.distribution.set_distribution(None)
    return history
