"""The NumPy augmentation (appendix 1), and the recipes in an environment with one backend extra only."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_robust import augment

ROOT = Path(__file__).resolve().parents[1]


def _images(n=16, h=8, w=8, c=3, seed=0):
    return np.random.default_rng(seed).integers(1, 256, (n, h, w, c)).astype(np.uint8)  # no zeros


def test_normalise_only():
    x = _images()
    out = augment.augment_batch(x, "flip_crop", [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], seed=0, training=False)
    np.testing.assert_allclose(out, (x / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32


def test_flip_crop_is_a_shifted_flipped_copy_with_black_padding():
    x = _images()
    out = np.rint(augment.augment_batch(x, "flip_crop", 0.0, 1.0 / 255.0, seed=(1, 2, 3)))  # pixel values
    again = np.rint(augment.augment_batch(x, "flip_crop", 0.0, 1.0 / 255.0, seed=(1, 2, 3)))
    np.testing.assert_array_equal(out, again)  # a function of the seed
    assert not np.array_equal(out, augment.augment_batch(x, "flip_crop", 0.0, 1.0 / 255.0, seed=(1, 2, 4)))
    for img, src in zip(out, x):
        found = False
        for flipped in (src, src[:, ::-1]):
            padded = np.pad(flipped, ((4, 4), (4, 4), (0, 0)))
            for dy in range(9):
                for dx in range(9):
                    if np.array_equal(padded[dy:dy + 8, dx:dx + 8], img):
                        found = True
        assert found  # every output is some pad-4 crop of the image or of its mirror


def test_rotation_keeps_the_centre_and_fills_black():
    x = _images(n=64, h=9, w=9)
    out = augment.augment_batch(x, "crop_flip_rotate", 0.0, 1.0 / 255.0, seed=0)
    assert out.shape == x.shape and (out == 0).any()  # padding/rotation bring in black pixels
    with pytest.raises(ValueError, match="kind"):
        augment.augment_batch(x, "mixup", 0.0, 1.0, seed=0)
    with pytest.raises(ValueError, match="shape"):
        augment.augment_batch(x[0, 0], "none", 0.0, 1.0, seed=0)


def _extra_closure(extra):
    """Normalised names of the distributions that ``pip install keras-robust[extra]`` brings: the
    project's own declaration (pyproject.toml) and, below it, each installed package's metadata."""
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"][extra]]
    found = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here, so nothing can import it
        found.add(name)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                todo.append(sub)
    return found


def _not_in_extra(extra):
    """Top-level modules of installed distributions that ``keras-robust[extra]`` does not bring."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    allowed = _extra_closure(extra)
    return sorted(module for module, dists in metadata.packages_distributions().items()
                  if module.isidentifier() and module not in ("keras_robust", "recipes")
                  and not any(canonicalize_name(d) in allowed for d in dists))


# What an environment with only `pip install keras-robust[<backend>]` holds: every module of a
# distribution outside that extra (TensorFlow, TFDS, the other backends, matplotlib, ...) fails to import.
_ONE_BACKEND = """
import json, sys
startup = set(sys.modules)  # e.g. setuptools' _distutils_hack, loaded by a .pth file
for name in json.loads(sys.argv[2]):
    if name not in sys.modules:
        sys.modules[name] = None  # `import name` raises ModuleNotFoundError, as when it is not installed
from recipes import mlp1024, resnet
m = mlp1024.main(["--dataset", "fashion_mnist", "--loss", "mae*", "--epochs", "1", "--limit", "256",
                  "--test-limit", "100", "--results", sys.argv[1], "--no-distribute", "--quiet"])
h = resnet.main(["--dataset", "cifar10", "--loss", "mae*", "--epochs", "1", "--limit", "64", "--test-limit", "20",
                 "--results", sys.argv[1], "--no-distribute"])
# The recipes may have read decoded arrays from the cache: decode one JPEG of the archive as they would.
import os, tarfile
from keras_robust.datasets import readers
with tarfile.open(os.path.join(os.environ["KERAS_ROBUST_DATA"], "cifar10-jpeg.tar.gz")) as tar:
    member = next(m for m in tar if m.isfile() and m.name.endswith(".jpg"))
    assert readers._decode_image(tar.extractfile(member).read(), "RGB").shape == (32, 32, 3)
loaded = sorted(n for n in json.loads(sys.argv[2]) if sys.modules.get(n) is not None and n not in startup)
print("RESULT", h["config"]["augment"], h["epochs"][-1]["test_accuracy"], m["epochs"][-1]["test_accuracy"],
      json.dumps(loaded))
"""


def test_recipes_run_with_only_one_backend_extra_installed(tmp_path):
    # Guards issue 13's fresh-venv runs (`pip install -e '.[jax]'` or `'.[torch]'`, no TensorFlow) without
    # a venv: the recipes must need nothing beyond the backend's extra (pillow for the JPEGs included).
    # The TensorFlow backend needs TensorFlow by definition: its suite checks the JAX path here.
    backend = os.environ.get("KERAS_BACKEND", "jax")
    backend = "jax" if backend == "tensorflow" else backend
    blocked = _not_in_extra(backend)
    assert "tensorflow" in blocked or not importlib.util.find_spec("tensorflow")
    assert "PIL" not in blocked and "keras" not in blocked  # pillow and keras come with every backend extra
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND=backend)
    proc = subprocess.run([sys.executable, "-c", _ONE_BACKEND, str(tmp_path), json.dumps(blocked)], env=env,
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    _, augmented, acc, mlp_acc, loaded = line.split(maxsplit=4)
    assert augmented == "True" and 0.0 <= float(acc) <= 1.0 and 0.0 <= float(mlp_acc) <= 1.0
    assert json.loads(loaded) == []  # nothing outside the extra was imported


def test_the_extras_declare_pillow_and_tensorflow_for_every_platform():
    import tomllib
    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for backend in ("tensorflow", "jax", "torch"):
        assert "pillow" in {Requirement(r).name for r in extras[backend]}, backend
    platforms = {("linux", "x86_64"): "tensorflow-cpu", ("linux", "aarch64"): "tensorflow",
                 ("darwin", "arm64"): "tensorflow", ("darwin", "x86_64"): "tensorflow",
                 ("win32", "AMD64"): "tensorflow"}
    for (system, machine), wanted in platforms.items():
        env = {"sys_platform": system, "platform_machine": machine, "extra": ""}
        chosen = [r.name for r in map(Requirement, extras["tensorflow"])
                  if r.name.startswith("tensorflow") and (r.marker is None or r.marker.evaluate(env))]
        assert chosen == [wanted], (system, machine, chosen)
