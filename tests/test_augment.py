"""The NumPy augmentation (appendix 1) and a ResNet run that needs no TensorFlow."""

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


_BLOCK_TF = """
import sys
sys.modules["tensorflow"] = sys.modules["tensorflow_datasets"] = None  # import raises ModuleNotFoundError
from recipes import resnet
h = resnet.main(["--dataset", "cifar10", "--loss", "mae*", "--epochs", "1", "--limit", "64", "--test-limit", "20",
                 "--results", sys.argv[1], "--no-distribute"])
print("RESULT", h["config"]["augment"], h["epochs"][-1]["test_accuracy"], sys.modules["tensorflow"] is not None)
"""


def test_resnet_recipe_with_augmentation_runs_without_tensorflow(tmp_path):
    # The TensorFlow backend needs TensorFlow by definition: its suite checks the JAX path here.
    backend = os.environ.get("KERAS_BACKEND", "jax")
    env = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="jax" if backend == "tensorflow" else backend)
    proc = subprocess.run([sys.executable, "-c", _BLOCK_TF, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    _, augmented, acc, tf_loaded = line.split()
    assert augmented == "True" and 0.0 <= float(acc) <= 1.0 and tf_loaded == "False"
