"""The public loaders: :func:`load` (a named data set) and :func:`image_folder` (a class-folder tree)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from keras_robust.datasets.cache import _cache_path, _load_cache, _save_cache, default_cache_dir
from keras_robust.datasets.catalog import INFO, DatasetNotFoundError, _check_name, _check_size
from keras_robust.datasets.readers import _IMAGE_EXT, _list_image_folder, _read_image_files
from keras_robust.datasets.sources import _downloads_allowed, _sources


def _log(verbose, msg):
    if verbose:
        print(f"[keras_robust.datasets] {msg}", file=sys.stderr, flush=True)


def _stratified_split(y, test_per_class, seed):
    """Boolean mask of test examples: ``test_per_class`` drawn per class with ``seed``."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if test_per_class >= len(idx):
            raise ValueError(
                f"`test_per_class` must be smaller than the examples per class ({len(idx)} for class {k}), "
                f"got {test_per_class!r}"
            )
        test[rng.choice(idx, test_per_class, replace=False)] = True
    return test


def _take(x, y, limit):
    """At most ``limit`` examples, balanced over classes, in their original order."""
    if limit is None or limit >= len(y):
        return x, y
    order = np.argsort(y, kind="stable")
    rank = np.empty(len(y), np.int64)
    starts = np.searchsorted(y[order], y[order])
    rank[order] = np.arange(len(y)) - starts
    keep = np.sort(np.lexsort((np.arange(len(y)), rank))[:limit])
    return x[keep], y[keep]


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None, download: bool | None = None,
         cache_dir: str | os.PathLike | bool | None = None, limit: int | None = None, verbose: int = 1,
         **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set as NumPy arrays ``(x, y)``: uint8 ``(N, H, W, C)``, int64 labels.

    Args:
        name: ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"`` or ``"omniglot"``.
        split: ``"train"`` or ``"test"``.
        data_dir: a folder holding the data set in one of the formats named in
            the ``keras_robust.datasets`` docstring; when given, no other local source is tried.
        download: allow a TFDS download (``None``: unless
            ``KERAS_ROBUST_NO_DOWNLOAD=1``).
        cache_dir: where decoded arrays are cached (``None``: default cache
            dir; ``False``: no cache).
        limit: return at most this many examples, balanced over classes.
        verbose: report the source and decoding progress on stderr.
        **options: ``label_mode="fine"|"coarse"`` (CIFAR-100);
            ``image_size=(h, w)``, ``test_per_class=5``, ``seed=0``
            (Omniglot: 15/5 drawings per class for train/test by default).

    Raises:
        DatasetNotFoundError: no source was found (the message lists them).
    """
    name = _check_name(name)
    if split not in INFO[name].splits:
        raise ValueError(f"`split` must be one of {INFO[name].splits}, got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be a positive integer or None, got {limit!r}")
    allowed_opts = {"cifar100": {"label_mode"}, "omniglot": {"image_size", "test_per_class", "seed"}}.get(name, set())
    for key in options:
        if key not in allowed_opts:
            raise TypeError(f"load({name!r}): unexpected option {key!r} (accepted: {sorted(allowed_opts)})")
    if name == "cifar100" and options.get("label_mode", "fine") not in ("fine", "coarse"):
        raise ValueError(f"`label_mode` must be 'fine' or 'coarse', got {options['label_mode']!r}")
    if name == "omniglot" and options.get("image_size") is not None:
        options["image_size"] = _check_size(options["image_size"], "image_size")
    allowed = _downloads_allowed(download)
    if cache_dir is None:
        cache_dir = default_cache_dir()
    variant = repr(sorted((k, v) for k, v in options.items() if k in ("label_mode", "image_size")))

    tried = []
    for src in _sources(name, data_dir, allowed, options, verbose):
        if src.path is None:
            tried.append(f"  - {src.description}: not found")
            continue
        cache = _cache_path(cache_dir, name, Path(src.path), variant) if (cache_dir and src.cacheable) else None
        if cache is not None and cache.is_file():
            _log(verbose, f"{name}: cached arrays {cache} (from {src.description})")
            arrays = _load_cache(cache)
        else:
            _log(verbose, f"{name}: reading {src.description}")
            arrays = src.read()
            if cache is not None:
                _save_cache(cache, arrays)
                _log(verbose, f"{name}: cached decoded arrays in {cache}")
        if name == "omniglot":
            x, y = arrays["all"]
            test = _stratified_split(y, options.get("test_per_class", 5), options.get("seed", 0))
            keep = test if split == "test" else ~test
            x, y = x[keep], y[keep]
        else:
            x, y = arrays[split]
        return _take(x, y, limit)
    raise DatasetNotFoundError(
        f"Data set {name!r} ({split}) was not found. Sources tried, in order:\n" + "\n".join(tried)
        + "\nGive `data_dir=` a folder with the official archive (or its unpacked files), "
        "or allow a TFDS download (download=True, network needed)."
    )


def list_image_folder(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(files, labels, class_names)`` of a ``<class>/<image>`` tree, without decoding.

    ``files`` is a NumPy array of path strings for :func:`pipeline` (which
    then decodes and resizes each file), for folders too large for memory
    such as WebVision's. Classes follow the sorted subfolder names.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"`path` {str(path)!r} is not a folder")
    classes, files, labels = _list_image_folder(root)
    if not files:
        raise DatasetNotFoundError(f"no images (<class>/<file>{{{','.join(_IMAGE_EXT)}}}) under {root}")
    return np.asarray([str(f) for f in files]), labels, classes


def image_folder(path: str | os.PathLike, image_size: tuple[int, int] | None = None, color_mode: str = "rgb",
                 cache_dir: str | os.PathLike | bool | None = None, limit: int | None = None,
                 verbose: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a ``<class>/<image>`` folder tree (WebVision- or ImageFolder-style) into arrays.

    Class indices follow the sorted subfolder names. Images are resized to
    ``image_size=(h, w)`` when given (they must share a shape otherwise).
    Returns ``(x, y, class_names)``. Suited to data that fits in memory;
    decoded arrays are cached like :func:`load`'s (``cache_dir=False``: no
    cache).
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"`path` {str(path)!r} is not a folder")
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"`color_mode` must be 'rgb' or 'grayscale', got {color_mode!r}")
    if image_size is not None:
        image_size = _check_size(image_size, "image_size")
    classes, files, y = _list_image_folder(root)
    if not files:
        raise DatasetNotFoundError(f"no images (<class>/<file>{{{','.join(_IMAGE_EXT)}}}) under {root}")
    if cache_dir is None:
        cache_dir = default_cache_dir()
    listing = hashlib.sha1("\n".join(str(f) for f in files).encode()).hexdigest()
    cache = _cache_path(cache_dir, "folder", root, f"{image_size}|{color_mode}|{listing}") if cache_dir else None
    if cache is not None and cache.is_file():
        _log(verbose, f"image folder {root}: cached arrays {cache}")
        x, y = _load_cache(cache)["all"]
    else:
        x = _read_image_files(files, "RGB" if color_mode == "rgb" else "L", image_size, verbose, root)
        if cache is not None:
            _save_cache(cache, {"all": (x, y)})
    x, y = _take(x, y, limit)
    return x, y, classes
