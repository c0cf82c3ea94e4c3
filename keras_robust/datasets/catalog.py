"""The catalogue of data sets: their names, classes, shapes and normalisation constants."""

from __future__ import annotations

import dataclasses

_CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What :func:`load` returns for a data set and how :func:`pipeline` treats it.

    ``mean``/``std`` are per-channel constants for images scaled to [0, 1];
    ``augment`` is the ResNet training augmentation of appendix 1.
    """

    name: str
    num_classes: int
    image_shape: tuple
    mean: tuple
    std: tuple
    augment: str
    splits: tuple = ("train", "test")
    note: str = ""


#: The paper's data sets (appendix 1). Omniglot is not in the paper: its
#: constants were measured on its 4,840 distinct 105x105 drawings here.
INFO = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", 10, (28, 28, 1), (0.286,), (0.353,), "flip_crop",
        note="60,000 / 10,000 images; appendix 1 constants",
    ),
    "cifar10": DatasetInfo(
        "cifar10", 10, (32, 32, 3), _IMAGENET_MEAN, _IMAGENET_STD, "flip_crop",
        note="50,000 / 10,000 images; the paper normalises CIFAR-10 with ImageNet constants",
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, (32, 32, 3), (0.507, 0.487, 0.441), (0.267, 0.256, 0.276),
        "crop_flip_rotate", note="50,000 / 10,000 images, fine labels by default",
    ),
    "omniglot": DatasetInfo(
        "omniglot", 242, (105, 105, 1), (0.919,), (0.272,), "none",
        note="images_background_small1+2 without the duplicated Latin and Greek folders: "
        "242 characters x 20 drawings; seeded stratified split (15/5 by default)",
    ),
    "webvision": DatasetInfo(
        "webvision", 1000, (224, 224, 3), _IMAGENET_MEAN, _IMAGENET_STD, "flip_random_crop",
        splits=(), note="read with image_folder(); ImageNet constants",
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """No source of a data set was found; the message lists every source tried."""


def names() -> list[str]:
    """Names :func:`load` accepts."""
    return [n for n, i in INFO.items() if i.splits]


def _check_name(name, allow_webvision=False):
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {name!r}")
    key = name.lower().replace("-", "_")
    key = {"fashionmnist": "fashion_mnist", "cifar_10": "cifar10", "cifar_100": "cifar100"}.get(key, key)
    valid = list(INFO) if allow_webvision else names()
    if key not in valid:
        raise ValueError(f"`name` must be one of {valid}, got {name!r}")
    return key


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a data set (also ``"webvision"``)."""
    return INFO[_check_name(name, allow_webvision=True)]


def num_classes(name: str) -> int:
    """Number of classes of a data set, e.g. ``num_classes("cifar100") == 100``."""
    return info(name).num_classes


def _check_size(size, arg):
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise TypeError(f"`{arg}` must be a pair of positive ints (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"`{arg}` must be a pair of positive ints (height, width), got {size!r}")
    return (h, w)
