"""The ``.npz`` cache of decoded arrays, keyed by the source file's path, size and time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$KERAS_ROBUST_CACHE`` or ``~/.cache/keras_robust``."""
    return Path(os.environ.get("KERAS_ROBUST_CACHE") or Path.home() / ".cache" / "keras_robust")


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
