"""The paper's training augmentation in NumPy (appendix 1), for any backend without TensorFlow.

``flip_crop`` (CIFAR-10, Fashion-MNIST): random horizontal flip, then a random
crop of the original size from the image padded by 4 black pixels;
``crop_flip_rotate`` (CIFAR-100): pad-4 random crop, flip, then a rotation by
up to 15 degrees (nearest neighbour, black fill); ``none``. Images are uint8
``(B, H, W, C)`` (or float in [0, 1]); the result is float32, normalised per
channel, ``(x / 255 - mean) / std``. The same seed gives the same batch.
`keras_robust.datasets.pipeline` does the same in ``tf.data`` for TensorFlow
users (its random streams differ).
"""

import numpy as np

AUGMENTS = ("none", "flip_crop", "crop_flip_rotate")


def _flip(x, rng):
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, ::-1]
    return out


def _pad_crop(x, rng, pad=4):
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None]  # (n, h)
    cols = dx[:, None] + np.arange(w)[None]  # (n, w)
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _rotate(x, rng, degrees=15.0):
    n, h, w, _ = x.shape
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    # inverse mapping: the source pixel of each output pixel
    src_y = np.rint(cos * yy - sin * xx + cy).astype(np.int64)
    src_x = np.rint(sin * yy + cos * xx + cx).astype(np.int64)
    inside = (src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w)
    out = x[np.arange(n)[:, None, None], np.clip(src_y, 0, h - 1), np.clip(src_x, 0, w - 1)]
    out[~inside] = 0
    return out


def augment_batch(x, kind, mean, std, seed, training=True):
    """Augment (when ``training``) and normalise a batch of images.

    Args:
        x: images ``(B, H, W, C)`` or ``(B, H, W)``, uint8 (0..255) or float in [0, 1].
        kind: one of :data:`AUGMENTS`.
        mean, std: per-channel constants for images in [0, 1].
        seed: an int or a sequence of ints (e.g. ``(run seed, epoch, batch)``).
        training: False normalises only.
    """
    if kind not in AUGMENTS:
        raise ValueError(f"`kind` must be one of {AUGMENTS}, got {kind!r}")
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"`x` must be images of shape (B, H, W) or (B, H, W, C), got shape {x.shape}")
    if training and kind != "none":
        rng = np.random.default_rng(seed)
        if kind == "flip_crop":
            x = _pad_crop(_flip(x, rng), rng)
        else:
            x = _rotate(_flip(_pad_crop(x, rng), rng), rng)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    out = x.astype(np.float32) / scale
    return (out - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
