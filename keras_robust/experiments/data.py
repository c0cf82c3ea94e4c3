"""A run's data: the (noisy) training set, its epoch order, and batches for `fit`.

Every epoch's example order and augmentation are functions of ``(seed,
epoch)`` only, so a resumed run sees exactly the batches of an uninterrupted
one. `EpochBatches` is a `keras.utils.PyDataset` (NumPy only: no TensorFlow
needed on JAX or torch) that serves one epoch after another inside one `fit`.
"""

import contextlib
import math

import keras
import numpy as np

from keras_robust import _backend, augment, datasets, noise


def load_data(config, verbose=0):
    """``(x, y, noisy, mask, x_test, y_test, K)``: raw images, clean and noisy labels, the noise mask."""
    opts = dict(config.data_options)
    if opts.get("image_size") is not None:
        opts["image_size"] = tuple(opts["image_size"])
    xt, yt = datasets.load(config.dataset, "test", limit=config.test_limit, verbose=verbose, **opts)
    k = datasets.num_classes(config.dataset)
    if config.noise in ("human", "human_matrix"):
        x, human, y, _ = datasets.load_cifar10n(config.labels, verbose=verbose)
        keep = _balanced(y, config.limit)
        x, human, y = x[keep], human[keep], y[keep]
        if config.noise == "human":
            return x, y, human, human != y, xt, yt, k
        matrix = noise.empirical_transition_matrix(y, human, k)
        noisy, mask = noise.transition_noise(y, matrix, seed=config.seed, exact=True)
        return x, y, noisy, mask, xt, yt, k
    x, y = datasets.load(config.dataset, "train", limit=config.limit, verbose=verbose, **opts)
    if config.noise == "symmetric" and config.noise_rate > 0:
        noisy, mask = noise.symmetric_noise(y, config.noise_rate, k, seed=config.seed,
                                            exclude_true=config.noise_exclude_true)
    elif config.noise == "asymmetric" and config.noise_rate > 0:
        noisy, mask = noise.asymmetric_noise(y, config.noise_rate, num_classes=k, seed=config.seed)
    else:
        noisy, mask = y.copy(), np.zeros(len(y), bool)
    return x, y, noisy, mask, xt, yt, k


def _balanced(y, limit):
    """Indices of at most ``limit`` examples, balanced over classes, in their original order."""
    if limit is None or limit >= len(y):
        return np.arange(len(y))
    rank = np.empty(len(y), np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rank[members] = np.arange(members.size)
    return np.sort(np.lexsort((np.arange(len(y)), rank))[:limit])


def normalise(x, config):
    """Images scaled to [0, 1] and normalised with the data set's constants (flattened for MLP1024)."""
    info = datasets.info(config.dataset)
    x = x.astype("float32") / 255.0
    x = (x - np.asarray(info.mean, "float32")) / np.asarray(info.std, "float32")
    return x.reshape(len(x), -1) if config.arch == "mlp1024" else x


def epoch_order(seed, epoch, n):
    """The example order of ``epoch``: a function of ``(seed, epoch)`` only."""
    return np.random.default_rng([int(seed), int(epoch), 0x5EED]).permutation(n)


class EpochBatches(keras.utils.PyDataset):
    """The training batches of the epochs ``first_epoch .. config.epochs - 1``, one after the other.

    Batch ``j`` is batch ``j % per_epoch`` of epoch ``first_epoch + j // per_epoch``
    in the order of :func:`epoch_order`: what a batch holds depends on its index
    only, not on when Keras asks for it (prefetching, build-time peeks). Fit it
    with ``steps_per_epoch=per_epoch``.

    Args:
        x: normalised inputs (no augmentation) or raw images (``augment_kind`` set).
        labels: the (noisy) training labels.
        config: the run's `RunConfig` (seed, batch size, epochs, data set, arch).
        first_epoch: the first epoch served (0, or where a resumed run starts).
        devices: with data parallelism every batch must split evenly: each
            epoch's tail is trimmed to a multiple of the device count.
        augment_kind: `keras_robust.augment` kind applied to raw images, or None.
        process: ``(index, count)`` in a multi-process run (default: this
            process's, from `keras.distribution.initialize`): each process
            serves its contiguous part of every batch, Keras joins them.
    """

    def __init__(self, x, labels, config, first_epoch=0, devices=1, augment_kind=None, process=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.labels, self.config = x, labels, config
        self.first_epoch, self.devices, self.augment_kind = first_epoch, devices, augment_kind
        self.process = _backend.processes() if process is None else tuple(process)
        info = datasets.info(config.dataset)
        self.mean, self.std = info.mean, info.std
        self._cached = (None, None)
        self.per_epoch = math.ceil(len(self._order(first_epoch)) / config.batch_size)

    def _order(self, epoch):
        if self._cached[0] != epoch:
            order = epoch_order(self.config.seed, epoch, len(self.labels))
            if self.devices > 1:  # every batch, the last one included, must split evenly over the devices
                rest = len(order) % self.config.batch_size
                order = order[: len(order) - rest % self.devices]
            self._cached = (epoch, order)
        return self._cached[1]

    def __len__(self):
        return self.per_epoch * max(0, self.config.epochs - self.first_epoch)

    def __getitem__(self, j):
        epoch, i = self.first_epoch + j // self.per_epoch, j % self.per_epoch
        bs = self.config.batch_size
        idx = self._order(epoch)[i * bs:(i + 1) * bs]
        rank, count = self.process
        if count > 1:  # batches hold a multiple of the devices, hence of the processes
            part = len(idx) // count
            idx = idx[rank * part:(rank + 1) * part]
        if self.augment_kind is None:
            return self.x[idx], self.labels[idx]
        x = augment.augment_batch(self.x[idx], self.augment_kind, self.mean, self.std,
                                  seed=(int(self.config.seed), epoch, i))
        return (x.reshape(len(x), -1) if self.config.arch == "mlp1024" else x), self.labels[idx]


def devices():
    """Accelerators (or forced host devices) of the backend: a list of names; with several JAX
    processes (`keras.distribution.initialize`), every process's devices."""
    try:
        return _backend.local_devices()
    except Exception:  # noqa: BLE001 - no distribution support means one device
        return ["cpu:0"]


def strategy(distribute):
    """``(kind, n_devices, context manager)`` for ``distribute`` in ("auto", True, False)."""
    if distribute not in ("auto", True, False):
        raise ValueError(f"`distribute` must be 'auto', True or False, got {distribute!r}")
    if distribute is False:
        return "none", 1, contextlib.nullcontext()
    backend = keras.backend.backend()
    found = devices()
    if len(found) < 2:
        if distribute is True:
            raise ValueError(f"`distribute=True` needs more than one device; found {found}")
        return "none", 1, contextlib.nullcontext()
    if backend == "jax":
        # Several processes (keras.distribution.initialize): `found` holds every host's devices and
        # each process feeds its part of a batch (EpochBatches), so Keras must not shard it again.
        multi = _backend.processes()[1] > 1
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found,
                                                                            auto_shard_dataset=not multi))
        return "jax-data-parallel", len(found), contextlib.nullcontext()
    if backend == "tensorflow":
        mirrored = _backend.mirrored_strategy()
        return "tf-mirrored", mirrored.num_replicas_in_sync, mirrored.scope()
    if distribute is True:
        raise ValueError("`distribute=True` is supported on the jax and tensorflow backends only")
    return "none", 1, contextlib.nullcontext()


def predict(model, x, n_dev=1, batch_size=1024):
    """Logits as NumPy; the input is padded to a multiple of the device count and cut back."""
    n = len(x)
    pad = (-n) % n_dev
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
    batch_size = max(n_dev, batch_size - batch_size % n_dev)
    with _backend.readable_outputs():
        out = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")))[:n]  # bf16 models too
