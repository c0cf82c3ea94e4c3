"""What code and packages trained a run: recorded in its history, one entry per training process.

A run is deterministic for a given code and environment (same config, same
numbers to the last digit on one core or two); when a retrained run does not
reproduce its history, this record says what differed.
"""

import importlib.metadata
import platform
import subprocess
from pathlib import Path

import keras

# The distributions that carry a Keras backend, where the name differs (the first one installed is reported).
_BACKEND_PACKAGES = {"jax": ("jax", "jaxlib"), "tensorflow": ("tensorflow", "tensorflow-cpu")}


def _version(*names):
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


_ROOT = Path(__file__).resolve().parents[2]  # the checkout holding keras_robust/, or site-packages


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment():
    """``{"keras_robust", "keras", "backend", "<backend>", "numpy", "python", "commit", "modified"}``.

    ``commit`` is the git commit of the checkout the library runs from (None
    when installed from a wheel), ``modified`` whether the library's files
    differ from it (None without git).
    """
    from keras_robust import __version__

    backend = keras.backend.backend()
    top = _git("rev-parse", "--show-toplevel")  # not a repository that merely contains site-packages
    commit = _git("rev-parse", "HEAD") if top and Path(top).resolve() == _ROOT else None
    status = _git("status", "--porcelain", "--", "keras_robust") if commit else None
    return {"keras_robust": __version__, "keras": keras.__version__, "backend": backend,
            backend: _version(*_BACKEND_PACKAGES.get(backend, (backend,))), "numpy": _version("numpy"),
            "python": platform.python_version(), "commit": commit,
            "modified": None if status is None else bool(status)}


def record(history):
    """Appends this process's `environment` to ``history["environments"]`` unless it equals the last one."""
    env = environment()
    entries = history.setdefault("environments", [])
    if not entries or entries[-1] != env:
        entries.append(env)
    return history
