"""Test set-up: an isolated KERAS_HOME, and the backend under test in every report."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras-home-"))
# The offline data folder (CIFAR-10 JPEGs, CIFAR-10N labels, Omniglot): the package knows no
# repository layout; the tests, like the Makefile, point it at ../shared/data.
os.environ.setdefault("KERAS_ROBUST_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
