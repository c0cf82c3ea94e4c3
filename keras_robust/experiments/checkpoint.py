"""Checkpoints of a run directory: one atomic commit per epoch, a lock per run.

``<run dir>/checkpoint/epoch-NNNN/`` holds the model weights, the optimizer
variables, ``state.json`` and ``history.json`` of one epoch; writing
``checkpoint/LATEST`` (one ``os.replace``) commits it. A kill at any moment
leaves either the previous commit or the new one, never a mix (Keras'
``BackupAndRestore`` writes weights and its epoch record separately, so a kill
between the two resumes the wrong epoch: hence this). ``<run dir>/.lock`` is
an exclusive ``flock`` held while a process trains the run.
"""

import os
import shutil
from pathlib import Path

import keras
import numpy as np

from keras_robust.experiments._io import read_json, write_json


class RunError(RuntimeError):
    """A run cannot start: its directory is damaged, or another process trains it."""


def save_checkpoint(ckpt, model, epoch, config, history):
    """Commit one epoch atomically: weights, optimizer, state and history go into a
    fresh ``epoch-NNNN`` directory, then one ``os.replace`` of ``LATEST`` names it."""
    ckpt.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}"
    tmp = ckpt / f".{name}.tmp{os.getpid()}"
    tmp.mkdir()
    model.save_weights(tmp / "model.weights.h5")
    with open(tmp / "optimizer.npz", "wb") as f:
        np.savez(f, *[np.asarray(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables])
    write_json(tmp / "state.json", {"epoch": epoch, "seed": config.seed, "run_id": config.run_id})
    write_json(tmp / "history.json", history)
    final = ckpt / name
    if final.exists():  # left by a run killed between the rename and LATEST: not committed
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer = ckpt / f".LATEST.tmp{os.getpid()}"
    pointer.write_text(name + "\n")
    os.replace(pointer, ckpt / "LATEST")  # the commit
    for old in ckpt.iterdir():
        if old.name not in (name, "LATEST") and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def damaged(config, path, problem):
    return RunError(
        f"run {config.run_id}: {path} is damaged ({problem}). Restart the run from scratch with "
        f"`force=True` (recipes: --force), which discards its checkpoint."
    )


def load_checkpoint(ckpt, model, config):
    """Restore the committed epoch; returns ``(epoch, history)``. Raises `RunError` naming the damaged file."""
    pointer = ckpt / "LATEST"
    try:
        name = pointer.read_text().strip()
    except OSError as e:
        raise damaged(config, pointer, e) from None
    folder = ckpt / name
    docs = {}
    for name in ("state.json", "history.json"):
        try:
            docs[name] = read_json(folder / name)
            epoch = int(docs["state.json"]["epoch"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise damaged(config, folder / name, e) from None
    history = docs["history.json"]
    try:
        model.load_weights(folder / "model.weights.h5")
    except Exception as e:  # noqa: BLE001 - h5py/keras raise many kinds
        raise damaged(config, folder / "model.weights.h5", f"{type(e).__name__}: {e}") from None
    try:
        with np.load(folder / "optimizer.npz") as d:
            values = [d[f"arr_{i}"] for i in range(len(d.files))]
    except Exception as e:  # noqa: BLE001 - zipfile/numpy raise many kinds
        raise damaged(config, folder / "optimizer.npz", f"{type(e).__name__}: {e}") from None
    variables = model.optimizer.variables
    if len(values) != len(variables) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
        raise damaged(config, folder / "optimizer.npz", "its variables do not match the model's optimizer")
    for v, a in zip(variables, values):
        v.assign(a)
    return epoch, history


class RunLock:
    """An exclusive ``flock`` on ``<run dir>/.lock``: one process trains a run at a time.

    The lock dies with its process, so a killed run never leaves a stale lock."""

    def __init__(self, out, config):
        self.path, self.config, self.file = Path(out) / ".lock", config, None

    def __enter__(self):
        import fcntl

        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RunError(f"run {self.config.run_id} is being trained by {holder}; not starting it twice.") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()
