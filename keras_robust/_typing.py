"""Aliases used by the public signatures' type hints (annotations only: nothing here runs).

``Tensor``: a backend tensor (``tf.Tensor``, ``jax.Array``, ``torch.Tensor``)
or a NumPy array; Keras accepts each on every backend, so no single type fits.
"""

from typing import Any, Callable, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

Tensor = Any
# A seed: an int, a sequence of ints (e.g. (run seed, epoch, batch)), a NumPy Generator, or None (fresh entropy).
Seed = Union[int, Sequence[int], np.random.Generator, None]
# A logit bias: a number, "auto" (epsilon(K) of Eq. 4), a schedule epoch -> epsilon, or None (no bias).
LogitBias = Union[float, str, Callable[[int], float], None]
# What EpsilonScheduler and schedules.get take: a schedule, a number, "webvision", a config dict, or None.
ScheduleLike = Union[Callable[[int], float], float, str, dict, None]
# Noisy labels and the mask of corrupted ones (and the selected entries with return_selected=True).
NoisyLabels = Union[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

__all__ = ["ArrayLike", "LogitBias", "NoisyLabels", "ScheduleLike", "Seed", "Tensor"]
