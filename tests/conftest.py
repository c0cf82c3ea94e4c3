"""Test set-up: an isolated KERAS_HOME, and the backend under test in every report."""

import os
import tempfile

os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="keras-home-"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
