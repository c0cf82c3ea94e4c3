"""CIFAR-10N: real human label noise on the CIFAR-10 training images (Wei et al., ICLR 2022).

Three annotators labelled each of the 50,000 training images. The label sets
(the ``*_label`` arrays of the official ``CIFAR-10_human.pt``, in the official
training order): ``clean`` (the CIFAR-10 labels), ``aggre`` (majority vote,
9.03 % wrong), ``random1``/``random2``/``random3`` (one annotator each, about
17-18 % wrong) and ``worse`` (a wrong annotation whenever one exists, 40.21 %
wrong).

Offline, the labels come from ``cifar10n-human-labels.npz`` (in ``label_file``,
``data_dir`` or ``$KERAS_ROBUST_DATA``) and the images from
`keras_robust.datasets.load`; the two are aligned through the clean labels:

* images in the official order (the official python archive): as they are;
* images ordered by class (the JPEG copy ``train/<c>/<i>.jpg``, where the i-th
  image of class c in the official order is file ``i``): each class block
  takes the official indices of that class in order. This reading was
  *verified on the images* (docs/results/cifar10n.md, `mapping_check`): a
  model trained on the clean labels of one half of the images is less
  confident in the true class on the other half's images whose human label is
  wrong (within-class gap 0.046 ± 0.008 in confidence), and shows no such gap
  when the labels are shuffled within each class (0.002 ± 0.003);
* any other order (e.g. TFDS's ``cifar10``) cannot be aligned: use TFDS's
  ``cifar10_n`` (``download`` allowed), which ships images and labels together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_robust.datasets.loading import load
from keras_robust.datasets.sources import _downloads_allowed

LABEL_SETS = {"clean": "clean_label", "aggre": "aggre_label", "random1": "random_label1",
              "random2": "random_label2", "random3": "random_label3", "worse": "worse_label"}
LABEL_FILE = "cifar10n-human-labels.npz"
NUM_TRAIN = 50_000


def _check_label_set(labels):
    if labels not in LABEL_SETS:
        raise ValueError(f"Unknown CIFAR-10N label set {labels!r}; known: {', '.join(LABEL_SETS)}.")
    return labels


def _find_label_file(label_file, data_dir):
    if label_file is not None:
        return Path(label_file)
    folders = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("KERAS_ROBUST_DATA"):
        folders.append(Path(os.environ["KERAS_ROBUST_DATA"]))
    for folder in folders:
        if (folder / LABEL_FILE).is_file():
            return folder / LABEL_FILE
    return None


def read_label_file(path):
    """``{label set: uint8 array of 50,000}`` from a CIFAR-10N ``.npz``; checks length and range."""
    path = Path(path)
    try:
        with np.load(path) as z:
            arrays = {name: np.asarray(z[key]) for name, key in LABEL_SETS.items() if key in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable CIFAR-10N label file ({e}).") from None
    missing = sorted(set(LABEL_SETS) - set(arrays))
    if missing:
        raise ValueError(f"{path}: missing label sets {missing} (arrays {', '.join(LABEL_SETS.values())}).")
    for name, a in arrays.items():
        if a.shape != (NUM_TRAIN,):
            raise ValueError(f"{path}: `{LABEL_SETS[name]}` must hold {NUM_TRAIN} labels, got shape {a.shape}.")
        if a.dtype.kind not in "iu" or a.min() < 0 or a.max() > 9:
            raise ValueError(f"{path}: `{LABEL_SETS[name]}` must hold class ids 0-9, got values in "
                             f"[{a.min()}, {a.max()}] ({a.dtype}).")
    return {name: a.astype(np.int64) for name, a in arrays.items()}


def align(clean_official, clean_loaded):
    """Indices ``idx`` into the official order with ``clean_official[idx] == clean_loaded``.

    Official order: the identity; class-major order (the JPEG copy): the
    official indices of each class, in order. Raises when neither fits.
    """
    clean_official, clean_loaded = np.asarray(clean_official), np.asarray(clean_loaded)
    if clean_loaded.shape != clean_official.shape:
        raise ValueError(f"CIFAR-10N labels cover {clean_official.size} training images, the loaded set has "
                         f"{clean_loaded.size}: load the full training split (no `limit`).")
    if np.array_equal(clean_loaded, clean_official):
        return np.arange(clean_official.size)
    idx = np.concatenate([np.flatnonzero(clean_official == c) for c in range(10)])
    if np.array_equal(clean_official[idx], clean_loaded):
        return idx
    raise ValueError("The loaded CIFAR-10 training images are neither in the official order nor ordered by "
                     "class: the CIFAR-10N labels cannot be aligned to them. Use TFDS's `cifar10_n` "
                     "(download allowed), which ships images and labels together.")


def _from_tfds(labels, data_dir):
    import tensorflow_datasets as tfds

    ds = tfds.load("cifar10_n", split="train", data_dir=data_dir, batch_size=-1)
    arrays = tfds.as_numpy(ds)
    key = {"clean": "label"}.get(labels, LABEL_SETS[labels])
    return arrays["image"], arrays[key].astype(np.int64), arrays["label"].astype(np.int64)


def load_cifar10n(labels: str = "worse", label_file: str | os.PathLike | None = None,
                  data_dir: str | os.PathLike | None = None, download: bool | None = None, verbose: int = 0,
                  **load_kwargs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10's training images with a CIFAR-10N label set.

    Args:
        labels: ``"clean"``, ``"aggre"``, ``"random1"``, ``"random2"``,
            ``"random3"`` or ``"worse"``.
        label_file: the CIFAR-10N ``.npz`` (default: found in ``data_dir`` or
            ``$KERAS_ROBUST_DATA``; else TFDS ``cifar10_n`` when downloads are allowed).
        data_dir, download, verbose, **load_kwargs: as `keras_robust.datasets.load`.

    Returns:
        ``(x, noisy, clean, mask)``: uint8 images ``(50000, 32, 32, 3)``, the
        label set's labels, the clean labels, and ``mask = noisy != clean``.
    """
    _check_label_set(labels)
    path = _find_label_file(label_file, data_dir)
    if path is None:
        if not _downloads_allowed(download):
            raise FileNotFoundError(f"No {LABEL_FILE} in `label_file`, `data_dir` or $KERAS_ROBUST_DATA, and "
                                    "downloads are not allowed (TFDS `cifar10_n`).")
        x, noisy, clean = _from_tfds(labels, data_dir)
        return x, noisy, clean, noisy != clean
    sets = read_label_file(path)
    x, y = load("cifar10", "train", data_dir=data_dir, download=download, verbose=verbose, **load_kwargs)
    idx = align(sets["clean"], y)
    noisy = sets[labels][idx]
    return x, noisy, y.astype(np.int64), noisy != y
