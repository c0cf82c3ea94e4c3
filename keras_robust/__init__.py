"""keras-robust: noise-robust classification losses for Keras 3 at any number of classes."""

__version__ = "0.1.0"
