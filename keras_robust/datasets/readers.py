"""Readers of the on-disk formats: IDX files, CIFAR pickles, image trees (folders, tar
archives), the Omniglot zips and TFDS; each returns ``{split: (x, y)}`` or arrays."""

import gzip
import io
import pickle
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np


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
