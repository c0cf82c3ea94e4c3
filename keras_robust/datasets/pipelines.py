"""The paper's input pipelines (appendix 1) as ``tf.data``: normalisation and augmentation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from keras_robust._typing import ArrayLike
from keras_robust.datasets.catalog import INFO, _check_name, _check_size, info

_AUGMENTS = ("none", "flip_crop", "crop_flip_rotate", "flip_random_crop")


def _constants(dataset, mean, std, channels):
    if dataset is not None:
        i = info(dataset)
        mean = i.mean if mean is None else mean
        std = i.std if std is None else std
    mean = np.zeros(channels) if mean is None else np.atleast_1d(np.asarray(mean, np.float32))
    std = np.ones(channels) if std is None else np.atleast_1d(np.asarray(std, np.float32))
    for arg, v in (("mean", mean), ("std", std)):
        if v.ndim != 1 or len(v) not in (1, channels):
            raise ValueError(f"`{arg}` must have 1 or {channels} values (one per channel), got {v.tolist()}")
    if np.any(std <= 0):
        raise ValueError(f"`std` must be positive, got {std.tolist()}")
    return mean.astype(np.float32), std.astype(np.float32)


def pipeline(x: ArrayLike, y: ArrayLike, dataset: str | None = None, training: bool = False, batch_size: int = 128,
             seed: int | None = None, shuffle: bool | None = None, augment: str | bool | None = None,
             flatten: bool = False, mean: float | Sequence[float] | None = None,
             std: float | Sequence[float] | None = None, crop_size: tuple[int, int] | None = None,
             drop_remainder: bool = False, image_size: tuple[int, int] | None = None,
             channels: int = 3) -> Any:
    """A ``tf.data.Dataset`` of ``(float32 images, int32 labels)`` batches, as appendix 1.

    Images are scaled to [0, 1] (uint8 input is divided by 255), augmented
    when ``training`` and then normalised per channel: ``(x - mean) / std``.

    Args:
        x, y: images ``(N, H, W[, C])`` and integer labels ``(N,)``, e.g. from
            :func:`load` (``y`` may be noisy labels).
        dataset: a name in :data:`INFO`, giving the constants and the
            augmentation; ``None`` needs none (no normalisation unless
            ``mean``/``std`` are given).
        training: apply the augmentation and (by default) shuffle.
        batch_size: examples per batch.
        seed: seeds shuffling and augmentation (reproducible pipelines);
            each epoch still gets a new order and new augmentations.
        shuffle: shuffle each epoch (default: ``training``).
        augment: ``None`` (the data set's ResNet augmentation when
            ``training``), ``False``/``"none"`` (normalise only: MLP1024),
            ``"flip_crop"`` (flip, pad-4 random crop: CIFAR-10,
            Fashion-MNIST), ``"crop_flip_rotate"`` (pad-4 crop, flip,
            rotation up to 15 degrees: CIFAR-100), ``"flip_random_crop"``
            (flip, random ``crop_size`` crop; centre crop when not training:
            WebVision).
        flatten: reshape each batch to ``(B, H*W*C)`` (for MLPs).
        mean, std: override the data set's constants (images in [0, 1]).
        crop_size: output size of ``"flip_random_crop"`` (default 224).
        drop_remainder: drop the last, smaller batch.
        image_size, channels: when ``x`` is a 1-D array of image file paths
            (from :func:`list_image_folder`; data sets too large for memory,
            such as WebVision), each file is decoded with ``channels`` and
            resized to ``image_size=(h, w)`` (required then) in the pipeline.
    """
    import tensorflow as tf

    x = np.asarray(x)
    y = np.asarray(y)
    files = x.ndim == 1 and x.dtype.kind in "USO"
    if files:
        if image_size is None:
            raise ValueError("`image_size` is required when `x` holds file paths, got None")
        image_size = _check_size(image_size, "image_size")
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3, got {channels!r}")
        x = x.astype(str)
    elif x.ndim == 3:
        x = x[..., None]
    if not files and x.ndim != 4:
        raise ValueError(f"`x` must be images of shape (N, H, W) or (N, H, W, C), got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"`y` must be {len(x)} integer labels, got dtype {y.dtype} and shape {y.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    if dataset is not None:
        dataset = _check_name(dataset, allow_webvision=True)
    if augment is None:
        # Training: the data set's augmentation. Evaluation: none, except the
        # centre crop of "flip_random_crop" (WebVision).
        default = INFO[dataset].augment if dataset else "none"
        augment = default if (training or default == "flip_random_crop") else "none"
    elif augment is False:
        augment = "none"
    if augment not in _AUGMENTS:
        raise ValueError(f"`augment` must be None, False or one of {_AUGMENTS}, got {augment!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be an int or None, got {seed!r}")
    shuffle = training if shuffle is None else bool(shuffle)
    h, w, c = (*image_size, channels) if files else x.shape[1:]
    mean, std = _constants(dataset, mean, std, c)
    if crop_size is None:
        crop_size = (224, 224)
    crop_size = _check_size(crop_size, "crop_size")
    if augment == "flip_random_crop" and (crop_size[0] > h or crop_size[1] > w):
        raise ValueError(f"`crop_size` {crop_size} is larger than the images ({h}, {w})")
    scale = 255.0 if (files or x.dtype == np.uint8) else 1.0
    y = y.astype(np.int32)

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if files:
        def decode(path, label):
            img = tf.io.decode_image(tf.io.read_file(path), channels=c, expand_animations=False)
            img = tf.image.resize(tf.cast(img, tf.float32), (h, w), antialias=True)
            return tf.ensure_shape(tf.clip_by_value(img, 0.0, 255.0), (h, w, c)), label

        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def normalise(img, divisor):
        img = (tf.cast(img, tf.float32) / divisor - mean) / std
        if flatten:
            img = tf.reshape(img, (tf.shape(img)[0], -1))
        return img

    if augment == "none" or (augment != "flip_random_crop" and not training):
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda a, b: (normalise(a, scale), b), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def pad_crop(img, s):
        img = tf.pad(img, [[4, 4], [4, 4], [0, 0]])
        return tf.image.stateless_random_crop(img, (h, w, c), seed=s)

    def rotate(img, s):
        angle = tf.random.stateless_uniform((), s, -15.0, 15.0) * (np.pi / 180.0)
        cos, sin = tf.cos(angle), tf.sin(angle)
        x_off = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
        y_off = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
        transform = tf.stack([cos, -sin, x_off, sin, cos, y_off, 0.0, 0.0])[None]
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None], transforms=transform, output_shape=tf.constant([h, w]),
            fill_value=0.0, interpolation="NEAREST", fill_mode="CONSTANT",
        )
        return out[0]

    def augment_one(img, label, rnd):
        seeds = tf.random.experimental.stateless_split(tf.stack([rnd, tf.constant(0, tf.int64)]), 3)
        img = tf.cast(img, tf.float32) / scale  # augment in [0, 1]: padding and fill are black
        if augment == "flip_random_crop" and not training:
            img = tf.image.resize_with_crop_or_pad(img, crop_size[0], crop_size[1])
        elif augment == "flip_crop":
            img = pad_crop(tf.image.stateless_random_flip_left_right(img, seeds[0]), seeds[1])
        elif augment == "crop_flip_rotate":
            img = tf.image.stateless_random_flip_left_right(pad_crop(img, seeds[0]), seeds[1])
            img = rotate(img, seeds[2])
        else:
            img = tf.image.stateless_random_flip_left_right(img, seeds[0])
            img = tf.image.stateless_random_crop(img, (crop_size[0], crop_size[1], c), seed=seeds[1])
        return img, label

    rnd = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, rnd)).map(
        lambda ab, r: augment_one(ab[0], ab[1], r), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda a, b: (normalise(a, 1.0), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
