"""The one place that imports a backend framework directly.

Everything else in the library speaks `keras.ops`. What `keras.ops` cannot
express is gathered here: evaluating a function and its gradient with respect
to one input (the calibration solver differentiates the very loss objects
users train with), and the backend's name.
"""

import contextlib

import keras
import numpy as np


def name():
    """The active Keras backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def value_and_grad(fn, x):
    """Return ``(sum(fn(x)), d sum(fn(x)) / dx)`` as NumPy arrays.

    ``fn`` maps a float32 backend tensor to a tensor (any shape, summed);
    ``x`` is array-like. The gradient is taken by the backend's autodiff.
    """
    x = np.asarray(x, dtype="float32")
    backend = name()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        value, grad = jax.value_and_grad(lambda t: jnp.sum(fn(t)))(jnp.asarray(x))
        return np.asarray(value), np.asarray(grad)
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            value = tf.reduce_sum(fn(t))
        return value.numpy(), tape.gradient(value, t).numpy()
    if backend == "torch":
        import torch

        t = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        value = torch.sum(fn(t))
        (grad,) = torch.autograd.grad(value, t)
        return value.detach().cpu().numpy(), grad.detach().cpu().numpy()
    raise NotImplementedError(f"value_and_grad: unsupported backend {backend!r}")


def in_symbolic_build():
    """True while Keras builds a model's losses/metrics on placeholders (a `keras.SymbolicScope`).

    Keras enters that scope in ``compute_output_spec`` on every backend; on
    torch the placeholders are real tensors of ones, which must not be
    checked (or counted) as data. Entering a scope reveals the enclosing one.
    """
    with keras.SymbolicScope() as scope:
        return scope.original_scope is not None


def set_keras_mask(x, mask):
    """Attach a Keras mask to a per-example loss: `keras.losses.Loss` then averages over ``mask`` only.

    Keras' own ``SparseCategoricalCrossentropy(ignore_class=...)`` does the
    same; the setter is not in Keras' public API, hence here.
    """
    from keras.src.backend.common.masking import set_keras_mask as _set

    _set(x, mask)


def is_concrete(x):
    """True when ``x`` holds values (eager), False inside a traced/compiled graph or a symbolic build."""
    if in_symbolic_build():
        return False
    backend = name()
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and not isinstance(x, keras.KerasTensor)
    if backend == "torch":
        import torch

        if isinstance(x, keras.KerasTensor) or torch.compiler.is_compiling():
            return False
        return not (isinstance(x, torch.Tensor) and x.device.type == "meta")  # shapes only
    return True


def local_devices():
    """Devices a data-parallel run can use: JAX's devices, TensorFlow's GPUs, else one CPU."""
    backend = name()
    if backend == "jax":
        return list(keras.distribution.list_devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU")] or ["cpu:0"]
    return ["cpu:0"]


def processes():
    """``(index, count)`` of this process in a multi-process JAX run (`keras.distribution.initialize`).

    ``(0, 1)`` on one host and on the other backends.
    """
    if name() != "jax":
        return 0, 1
    import jax

    return jax.process_index(), jax.process_count()


@contextlib.contextmanager
def readable_outputs():
    """Within: Keras' ``predict`` returns outputs every process can read.

    Under a multi-process `keras.distribution.DataParallel`, ``predict`` shards
    its outputs over all hosts' devices and then fails to fetch the parts
    on other hosts (``RuntimeError: Fetching value for jax.Array that spans
    non-addressable devices``, measured with Keras 3.15, jax 0.10). Without a
    distribution set, every process computes the (replicated) outputs of the
    whole input with the same, replicated weights. One host: no change.
    """
    dist = keras.distribution.distribution()
    if dist is None or processes()[1] == 1:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(dist)


def mirrored_strategy():
    """TensorFlow's data-parallel strategy over the local GPUs."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def traced_as_constant(value, traced):
    """True when a JAX trace of ``traced`` reads ``value`` as a constant (a variable outside the model state).

    Inside a compiled JAX step the model's variables are tracers; any other
    variable's value is a concrete array that `jit` bakes into the step.
    """
    if name() != "jax":
        return False
    import jax

    return isinstance(traced, jax.core.Tracer) and not isinstance(value, jax.core.Tracer)
