"""Where a data set may be found, in order: the local folders, then TFDS."""

import dataclasses
import os
from pathlib import Path

from keras_robust.datasets.catalog import _CIFAR10_CLASSES
from keras_robust.datasets.readers import (
    _CIFAR_PICKLE,
    _find_idx,
    _list_image_folder,
    _read_cifar_pickle,
    _read_fashion_mnist,
    _read_image_files,
    _read_jpeg_tar,
    _read_omniglot,
    _read_tfds,
)


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
