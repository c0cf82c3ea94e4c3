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

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "INFO",
    "DatasetInfo",
    "DatasetNotFoundError",
    "default_cache_dir",
    "image_folder",
    "info",
    "list_image_folder",
    "load",
    "names",
    "num_classes",
    "pipeline",
]

_CACHE_VERSION = 1
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

_AUGMENTS = ("none", "flip_crop", "crop_flip_rotate", "flip_random_crop")


class DatasetNotFoundError(FileNotFoundError):
    """No source of a data set was found; the message lists every source tried."""


def names():
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


def info(name):
    """The :class:`DatasetInfo` of a data set (also ``"webvision"``)."""
    return INFO[_check_name(name, allow_webvision=True)]


def num_classes(name):
    """Number of classes of a data set, e.g. ``num_classes("cifar100") == 100``."""
    return info(name).num_classes


# --------------------------------------------------------------------------- paths


def default_cache_dir():
    """``$KERAS_ROBUST_CACHE`` or ``~/.cache/keras_robust``."""
    return Path(os.environ.get("KERAS_ROBUST_CACHE") or Path.home() / ".cache" / "keras_robust")


def _shared_data_dirs():
    """The offline data folder of ``$KERAS_ROBUST_DATA`` (the Makefile and the tests set it)."""
    return [Path(os.environ["KERAS_ROBUST_DATA"])] if os.environ.get("KERAS_ROBUST_DATA") else []


def _keras_datasets_dir():
    base = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(base) / "datasets"


def _tfds_data_dir():
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def _downloads_allowed(download):
    if download is None:
        return os.environ.get("KERAS_ROBUST_NO_DOWNLOAD", "").strip().lower() in ("", "0", "false", "no")
    if not isinstance(download, bool):
        raise TypeError(f"`download` must be True, False or None, got {download!r}")
    return download


def _log(verbose, msg):
    if verbose:
        print(f"[keras_robust.datasets] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- readers


def _read_idx(path, expected_magic):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{path}: not an IDX file of the expected kind (magic {magic}, expected {expected_magic})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim  # 16 for images (3 dims), 8 for labels (1 dim)
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def _find_idx(folder):
    """Paths of the four Fashion-MNIST IDX files in ``folder`` (gz or raw), or None."""
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        for kind in ("images-idx3", "labels-idx1"):
            stem = f"{prefix}-{kind}-ubyte"
            found = [folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()]
            if not found:
                return None
            out[(split, kind[:6])] = found[0]
    return out


def _read_fashion_mnist(files):
    return {
        split: (
            _read_idx(files[(split, "images")], 2051)[..., None],
            _read_idx(files[(split, "labels")], 2049).astype(np.int64),
        )
        for split in ("train", "test")
    }


def _unpickle(fileobj):
    return pickle.load(fileobj, encoding="bytes")


def _cifar_arrays(batches, label_key):
    x = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = np.concatenate([np.asarray(b[label_key], np.int64) for b in batches])
    return np.ascontiguousarray(x, np.uint8), y


_CIFAR_PICKLE = {
    "cifar10": ("cifar-10-python.tar.gz", "cifar-10-batches-py",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", {"train": ["train"], "test": ["test"]}),
}


def _read_cifar_pickle(name, path, label_key):
    _, folder, files = _CIFAR_PICKLE[name]
    out = {}
    if path.is_dir():
        for split, members in files.items():
            batches = []
            for m in members:
                with open(path / m, "rb") as f:
                    batches.append(_unpickle(f))
            out[split] = _cifar_arrays(batches, label_key)
        return out
    with tarfile.open(path) as tar:
        for split, members in files.items():
            batches = [_unpickle(tar.extractfile(f"{folder}/{m}")) for m in members]
            out[split] = _cifar_arrays(batches, label_key)
    return out


def _decode_image(data, mode, size=None):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert(mode)
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(img, np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")


def _progress(total, verbose, what):
    if not verbose:
        return None
    import keras

    print(f"[keras_robust.datasets] decoding {total} images from {what} (once; then cached)",
          file=sys.stderr, flush=True)
    return keras.utils.Progbar(total, unit_name="image")


def _read_jpeg_tar(path, classes, verbose, size=None, mode="RGB"):
    """Decode a ``<split>/<class>/<file>`` image tree packed in a tar archive."""
    pattern = re.compile(r"^(?:\./)?(?:[^/]+/)*?(train|test)/([^/]+)/([^/]+)$")
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(_IMAGE_EXT)]
        bar = _progress(len(members), verbose, path)
        items = {"train": [], "test": []}
        for i, m in enumerate(members):
            match = pattern.match(m.name)
            if not match:
                continue
            split, cls, fname = match.groups()
            if cls not in classes:
                raise ValueError(f"{path}: unknown class folder {cls!r} in {m.name!r}")
            img = _decode_image(tar.extractfile(m).read(), mode, size)
            items[split].append((classes.index(cls), fname, img))
            if bar is not None and (i % 2000 == 0 or i == len(members) - 1):
                bar.update(i + 1)
    out = {}
    for split, rows in items.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        out[split] = (np.stack([r[2] for r in rows]), np.asarray([r[0] for r in rows], np.int64))
    return out


def _list_image_folder(root):
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, labels = [], []
    for k, cls in enumerate(classes):
        for f in sorted((root / cls).rglob("*")):
            if f.is_file() and f.suffix.lower() in _IMAGE_EXT:
                files.append(f)
                labels.append(k)
    return classes, files, np.asarray(labels, np.int64)


def list_image_folder(path):
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


def _read_image_files(files, mode, size, verbose, what):
    bar = _progress(len(files), verbose, what)
    images = []
    for i, f in enumerate(files):
        images.append(_decode_image(Path(f).read_bytes(), mode, size))
        if bar is not None and (i % 2000 == 0 or i == len(files) - 1):
            bar.update(i + 1)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images in {what} have different shapes {sorted(shapes)[:4]}...; pass `image_size=(h, w)`"
        )
    return np.stack(images)


def _read_omniglot(zips, size, verbose):
    # The two zips share the Latin and Greek alphabets, file for file: keep one
    # copy, so that 5,840 files give 4,840 distinct drawings of 242 characters.
    entries = {}
    for z in zips:
        with zipfile.ZipFile(z) as zf:
            for n in zf.namelist():
                parts = n.split("/")
                if n.lower().endswith(".png") and len(parts) >= 3:
                    entries.setdefault((f"{parts[-3]}/{parts[-2]}", parts[-1]), (z, n))
    entries = sorted((cls, fname, z, n) for (cls, fname), (z, n) in entries.items())
    classes = sorted({e[0] for e in entries})
    bar = _progress(len(entries), verbose, "the Omniglot zips")
    images, labels = [], []
    handles = {z: zipfile.ZipFile(z) for z in zips}
    try:
        for i, (cls, _, z, n) in enumerate(entries):
            images.append(_decode_image(handles[z].read(n), "L", size))
            labels.append(classes.index(cls))
            if bar is not None and (i % 1000 == 0 or i == len(entries) - 1):
                bar.update(i + 1)
    finally:
        for h in handles.values():
            h.close()
    return {"all": (np.stack(images), np.asarray(labels, np.int64))}


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


def _read_tfds(name, split, data_dir, download, **kwargs):
    import tensorflow_datasets as tfds

    tfds_name = {"fashion_mnist": "fashion_mnist", "cifar10": "cifar10", "cifar100": "cifar100",
                 "omniglot": "omniglot"}[name]
    if name == "omniglot":
        parts = [tfds.as_numpy(tfds.load("omniglot", split=s, batch_size=-1, data_dir=data_dir,
                                         download=download)) for s in ("small1", "small2")]
        x = np.concatenate([p["image"][..., :1] for p in parts])
        raw = np.concatenate([p["label"] for p in parts])
        y = np.unique(raw, return_inverse=True)[1].astype(np.int64)
        size = kwargs.get("image_size")
        if size is not None:
            x = np.stack([_resize(im, size) for im in x])
        return {"all": (x.astype(np.uint8), y)}
    out = {}
    for s in ("train", "test"):
        d = tfds.as_numpy(tfds.load(tfds_name, split=s, batch_size=-1, data_dir=data_dir,
                                    download=download))
        label = d["label"] if not (name == "cifar100" and kwargs.get("label_mode") == "coarse") \
            else d["coarse_label"]
        out[s] = (d["image"].astype(np.uint8), np.asarray(label, np.int64))
    return out


def _resize(img, size):
    from PIL import Image

    mode = "L" if img.shape[-1] == 1 else "RGB"
    pil = Image.fromarray(img[..., 0] if mode == "L" else img, mode)
    arr = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR), np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


# --------------------------------------------------------------------------- sources


@dataclasses.dataclass
class _Source:
    description: str
    path: object  # Path of the source found, or None
    read: object  # callable() -> dict split -> (x, y)
    cacheable: bool = True


def _candidates(name, folders, options, verbose):
    """Local sources of ``name`` inside each folder, in order of preference."""
    out = []
    for folder in folders:
        folder = Path(folder).expanduser()
        if name == "fashion_mnist":
            for sub in (folder, folder / "fashion-mnist", folder / "fashion_mnist"):
                files = _find_idx(sub) if sub.is_dir() else None
                out.append(_Source(f"IDX files (train/t10k-*-ubyte[.gz]) in {sub}",
                                   sub if files else None,
                                   lambda files=files: _read_fashion_mnist(files)))
        elif name in _CIFAR_PICKLE:
            archive, unpacked, _ = _CIFAR_PICKLE[name]
            label_key = b"labels" if name == "cifar10" else (
                b"coarse_labels" if options.get("label_mode") == "coarse" else b"fine_labels")
            for p in (folder / archive, folder / unpacked):
                out.append(_Source(f"{p}", p if p.exists() else None,
                                   lambda p=p, k=label_key: _read_cifar_pickle(name, p, k)))
            if name == "cifar10":
                p = folder / "cifar10-jpeg.tar.gz"
                out.append(_Source(f"{p} (JPEG tree)", p if p.is_file() else None,
                                   lambda p=p: _read_jpeg_tar(p, _CIFAR10_CLASSES, verbose)))
                for sub in (folder, folder / "cifar10-jpeg", folder / "cifar10"):
                    ok = all((sub / s / c).is_dir() for s in ("train", "test") for c in _CIFAR10_CLASSES)
                    out.append(_Source(f"image tree {sub}/{{train,test}}/<class>/", sub if ok else None,
                                       lambda sub=sub: _read_cifar_tree(sub, verbose)))
        elif name == "omniglot":
            for sub in (folder, folder / "omniglot"):
                zips = [sub / f"images_background_small{i}.zip" for i in (1, 2)]
                ok = all(z.is_file() for z in zips)
                out.append(_Source(f"{sub}/images_background_small{{1,2}}.zip", sub if ok else None,
                                   lambda zips=zips: _read_omniglot(zips, options.get("image_size"), verbose)))
    return out


def _read_cifar_tree(root, verbose):
    out = {}
    for split in ("train", "test"):
        classes, files, y = _list_image_folder(root / split)
        if tuple(classes) != _CIFAR10_CLASSES:
            raise ValueError(f"{root / split}: class folders {classes} are not CIFAR-10's")
        out[split] = (_read_image_files(files, "RGB", None, verbose, root / split), y)
    return out


def _tfds_sources(name, data_dir, allowed, options):
    tfds_name = "omniglot" if name == "omniglot" else name
    base = Path(data_dir) if data_dir is not None else _tfds_data_dir()
    prepared = (base / tfds_name).is_dir()
    tfds_dir = None if data_dir is None else str(data_dir)
    out = [_Source(f"TFDS prepared data in {base / tfds_name}", base / tfds_name if prepared else None,
                   lambda: _read_tfds(name, None, tfds_dir, False, **options), cacheable=False)]
    if allowed:
        out.append(_Source(f"TFDS download of {tfds_name!r} into {base}", base,
                           lambda: _read_tfds(name, None, tfds_dir, True, **options), cacheable=False))
    else:
        out.append(_Source("TFDS download (forbidden: download=False or KERAS_ROBUST_NO_DOWNLOAD=1)",
                           None, None))
    return out


def _sources(name, data_dir, allowed, options, verbose):
    if data_dir is not None:
        return _candidates(name, [data_dir], options, verbose) + _tfds_sources(name, data_dir, allowed, options)
    local = []
    if name == "fashion_mnist":
        local.append(Path("/usr/share/datasets/fashion-mnist"))
    local += [_keras_datasets_dir()] + _shared_data_dirs()
    return _candidates(name, local, options, verbose) + _tfds_sources(name, None, allowed, options)


def _cache_path(cache_dir, name, source, variant):
    st = source.stat() if source.is_file() else None
    ident = f"{_CACHE_VERSION}|{source.resolve()}|{st.st_size if st else ''}|{st.st_mtime_ns if st else ''}|{variant}"
    digest = hashlib.sha1(ident.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{name}-{digest}.npz"


def _save_cache(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, **{f"{s}_{k}": v for s, (x, y) in arrays.items() for k, v in (("x", x), ("y", y))})
    os.replace(tmp, path)


def _load_cache(path):
    with np.load(path) as d:
        splits = {k[:-2] for k in d.files}
        return {s: (d[f"{s}_x"], d[f"{s}_y"]) for s in splits}


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


def load(name, split="train", data_dir=None, download=None, cache_dir=None, limit=None,
         verbose=1, **options):
    """Load a data set as NumPy arrays ``(x, y)``: uint8 ``(N, H, W, C)``, int64 labels.

    Args:
        name: ``"fashion_mnist"``, ``"cifar10"``, ``"cifar100"`` or ``"omniglot"``.
        split: ``"train"`` or ``"test"``.
        data_dir: a folder holding the data set in one of the formats named in
            the module docstring; when given, no other local source is tried.
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


def _check_size(size, arg):
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise TypeError(f"`{arg}` must be a pair of positive ints (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"`{arg}` must be a pair of positive ints (height, width), got {size!r}")
    return (h, w)


def image_folder(path, image_size=None, color_mode="rgb", cache_dir=None, limit=None, verbose=1):
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


# --------------------------------------------------------------------------- pipelines


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


def pipeline(x, y, dataset=None, training=False, batch_size=128, seed=None, shuffle=None,
             augment=None, flatten=False, mean=None, std=None, crop_size=None, drop_remainder=False,
             image_size=None, channels=3):
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
