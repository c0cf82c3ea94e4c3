"""Data sets of the paper as NumPy arrays, and its preprocessing as ``tf.data`` pipelines.

:func:`load` returns ``(x, y)``: uint8 images ``(N, H, W, C)`` and int64
labels. Sources are tried in a fixed order and the first one found is used:

1. ``data_dir`` when given (and then *only* it, plus TFDS with ``data_dir``
   as its data directory): the official archives or their unpacked folders,
   Debian/IDX files, a class-folder tree, the Omniglot zips.
2. Local copies: Debian's ``dataset-fashion-mnist`` files, Keras' download
   folder (``~/.keras/datasets``), the folder named by ``$KERAS_ROBUST_DATA``
   (e.g. a shared offline data folder; the package knows no repository
   layout), data sets TFDS has already prepared.
3. A TFDS download, only when downloads are allowed: ``download=False`` or the
   environment variable ``KERAS_ROBUST_NO_DOWNLOAD=1`` (unless
   ``download=True``) forbid it. Offline, a TFDS download retries for minutes.

When nothing is found, :class:`DatasetNotFoundError` lists every source tried.
Decoded arrays are cached as ``.npz`` files in ``cache_dir`` (default
``$KERAS_ROBUST_CACHE`` or ``~/.cache/keras_robust``), keyed by the source
file's path, size and modification time, so a second load takes seconds.

:func:`pipeline` builds the paper's input pipelines (appendix 1,
"Preprocessing"): per-channel normalisation with the constants in
:data:`INFO`; for ResNet training a random horizontal flip and a random crop
after 4-pixel zero padding (CIFAR-100: crop, flip, then a random rotation of
up to 15 degrees; WebVision: flip and a random 224x224 crop); for MLP1024
normalisation only (``augment=False``, optionally ``flatten=True``).
"""

from keras_robust.datasets.cache import default_cache_dir
from keras_robust.datasets.catalog import INFO, DatasetInfo, DatasetNotFoundError, info, names, num_classes
from keras_robust.datasets.cifar10n import LABEL_SETS as CIFAR10N_LABEL_SETS
from keras_robust.datasets.cifar10n import load_cifar10n
from keras_robust.datasets.loading import image_folder, list_image_folder, load
from keras_robust.datasets.pipelines import pipeline

__all__ = [
    "CIFAR10N_LABEL_SETS",
    "INFO",
    "DatasetInfo",
    "DatasetNotFoundError",
    "default_cache_dir",
    "image_folder",
    "info",
    "list_image_folder",
    "load",
    "load_cifar10n",
    "names",
    "num_classes",
    "pipeline",
]
