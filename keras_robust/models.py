"""The paper's networks as functional Keras models (appendix 1, "Networks").

* :func:`mlp1024` -- MLP1024: input -> 1024 -> 512 -> 512 -> K, ReLU,
  Xavier(Glorot)-uniform weights and zero biases.
* :func:`resnet_cifar` -- the 6n+2 CIFAR ResNet of He et al. (2016) as in
  akamaster/pytorch_resnet_cifar10 (the paper's ref. [2]): 3x3 stem with 16
  filters, three stages of n basic blocks (16, 32, 64 filters), option-A
  shortcuts (strided identity zero-padded in channels), global average pool,
  dense. ResNet-32 (``depth=32``) has 464,154 parameters for 10 classes.
* :func:`resnet34` -- ResNet-34 for CIFAR-100 as in weiaicunzai/pytorch-cifar100
  (ref. [3]): 3x3 stem with 64 filters, no max-pool, basic blocks [3, 4, 6, 3],
  1x1-convolution (option-B) shortcuts; 21,328,292 parameters for 100 classes.
* :func:`wide_resnet101_2` -- torchvision's ``wide_resnet101_2`` (bottleneck
  blocks [3, 4, 23, 3], inner width doubled); 126,886,696 parameters for
  1000 classes.

Parameter counts are trainable parameters, as PyTorch counts them (BatchNorm's
moving statistics are non-trainable weights here, buffers there). All models
are channels-last, output logits (no softmax), and use only Keras layers, so
they run on every backend. ResNets use Kaiming-normal (He) initialisation
(untruncated, like ``torch.nn.init.kaiming_normal_``) and PyTorch's BatchNorm
settings (momentum 0.1 there, i.e. ``momentum=0.9`` here; epsilon 1e-5).
Strided convolutions pad explicitly by ``kernel_size // 2`` on every side, as
PyTorch does, so that residual and shortcut paths sample the same pixels.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from keras_robust._checks import check_num_classes

__all__ = [
    "ZeroPadShortcut",
    "get",
    "mlp1024",
    "names",
    "resnet34",
    "resnet_cifar",
    "wide_resnet101_2",
]

_BN = dict(momentum=0.9, epsilon=1e-5)


def _check_input_shape(input_shape, ndim=None, arg="input_shape"):
    try:
        shape = tuple(int(d) for d in input_shape)
    except TypeError:
        raise TypeError(f"`{arg}` must be a tuple of ints, got {input_shape!r}") from None
    if any(d < 1 for d in shape) or not shape or (ndim is not None and len(shape) != ndim):
        want = f"{ndim} positive ints (height, width, channels)" if ndim else "positive ints"
        raise ValueError(f"`{arg}` must be {want}, got {input_shape!r}")
    return shape


def _he_normal(mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"`init_mode` must be 'fan_in' or 'fan_out', got {mode!r}")
    return keras.initializers.VarianceScaling(
        scale=2.0, mode=mode, distribution="untruncated_normal"
    )


def _torch_linear_init():
    # torch.nn.Linear's default weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def _conv(x, filters, kernel, stride, init, name):
    """Conv without bias; PyTorch-style symmetric padding of ``kernel // 2``."""
    pad = kernel // 2
    if pad and stride == 1:
        return layers.Conv2D(
            filters, kernel, strides=1, padding="same", use_bias=False,
            kernel_initializer=init, name=name,
        )(x)
    if pad:
        x = layers.ZeroPadding2D(pad, name=name + "_pad")(x)
    return layers.Conv2D(
        filters, kernel, strides=stride, padding="valid", use_bias=False,
        kernel_initializer=init, name=name,
    )(x)


def _bn(x, name):
    return layers.BatchNormalization(**_BN, name=name)(x)


@keras.saving.register_keras_serializable(package="keras_robust")
class ZeroPadShortcut(layers.Layer):
    """Option-A ResNet shortcut (He et al. 2016, Sec. 4.2; akamaster's ``LambdaLayer``).

    Subsamples the input by ``stride`` in height and width and zero-pads
    ``pad`` channels on each side: parameter-free, used where a CIFAR ResNet
    stage doubles its filters and halves its resolution.
    """

    def __init__(self, stride: int = 2, pad: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for arg, value in (("stride", stride), ("pad", pad)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{arg}` must be a non-negative integer, got {value!r}")
        if stride < 1:
            raise ValueError(f"`stride` must be >= 1, got {stride!r}")
        self.stride = stride
        self.pad = pad

    def call(self, x):
        x = x[:, :: self.stride, :: self.stride, :]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [self.pad, self.pad]])

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        h = None if h is None else -(-h // self.stride)
        w = None if w is None else -(-w // self.stride)
        return (b, h, w, None if c is None else c + 2 * self.pad)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "pad": self.pad}


def mlp1024(input_shape: tuple[int, ...], num_classes: int, name: str = "mlp1024") -> keras.Model:
    """MLP1024 (appendix 1): Flatten -> 1024 -> 512 -> 512 -> ``num_classes`` logits.

    ReLU activations, Glorot(Xavier)-uniform weights, zero biases. For 28x28
    inputs and 10 classes it has 1,596,426 parameters.
    """
    shape = _check_input_shape(input_shape)
    num_classes = check_num_classes(num_classes)
    inputs = keras.Input(shape)
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate((1024, 512, 512)):
        x = layers.Dense(
            units, activation="relu", kernel_initializer="glorot_uniform",
            bias_initializer="zeros", name=f"dense_{i}",
        )(x)
    outputs = layers.Dense(
        num_classes, kernel_initializer="glorot_uniform", bias_initializer="zeros", name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _basic_block(x, in_planes, planes, stride, init, p, shortcut):
    """He et al.'s basic block: conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU.

    Where the shape changes the shortcut is option A (zero-padded identity,
    `ZeroPadShortcut`) or option B (1x1 conv + BN).
    """
    y = _conv(x, planes, 3, stride, init, p + "_conv1")
    y = layers.ReLU(name=p + "_relu1")(_bn(y, p + "_bn1"))
    y = _bn(_conv(y, planes, 3, 1, init, p + "_conv2"), p + "_bn2")
    if stride == 1 and in_planes == planes:
        s = x
    elif shortcut == "A":
        s = ZeroPadShortcut(stride, planes // 4, name=p + "_shortcut")(x)
    else:
        s = _bn(_conv(x, planes, 1, stride, init, p + "_shortcut_conv"), p + "_shortcut_bn")
    return layers.ReLU(name=p + "_out")(layers.Add(name=p + "_add")([y, s]))


def resnet_cifar(depth: int = 32, num_classes: int = 10, input_shape: tuple[int, ...] = (32, 32, 3),
                 shortcut: str = "A", init_mode: str = "fan_in", name: str | None = None) -> keras.Model:
    """CIFAR ResNet with ``depth = 6n + 2`` layers (He et al. 2016, Sec. 4.2).

    As akamaster/pytorch_resnet_cifar10 (the paper's choice for CIFAR-10 and
    Fashion-MNIST): stem conv3x3(16)-BN-ReLU, stages of ``n`` basic blocks
    with 16, 32, 64 filters (stride 2 at the start of stages 2 and 3), global
    average pooling and a dense layer. ``shortcut="A"`` (default, as there)
    uses the parameter-free :class:`ZeroPadShortcut`; ``"B"`` uses 1x1
    convolution + BN. Kaiming-normal weights with ``init_mode`` (akamaster
    calls ``kaiming_normal_`` with its default ``fan_in``) on convolutions
    and the dense layer; zero dense bias.

    Parameters (option A): ResNet-20 269,722; ResNet-32 464,154;
    ResNet-44 658,586; ResNet-56 853,018 (10 classes, RGB input).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth!r}")
    num_classes = check_num_classes(num_classes)
    shape = _check_input_shape(input_shape, ndim=3)
    if shortcut not in ("A", "B"):
        raise ValueError(f"`shortcut` must be 'A' or 'B', got {shortcut!r}")
    init = _he_normal(init_mode)
    n = (depth - 2) // 6
    inputs = keras.Input(shape)
    x = _conv(inputs, 16, 3, 1, init, "stem_conv")
    x = layers.ReLU(name="stem_relu")(_bn(x, "stem_bn"))
    in_planes = 16
    for stage, planes in enumerate((16, 32, 64)):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, in_planes, planes, stride, init, f"stage{stage + 1}_block{block + 1}", shortcut)
            in_planes = planes
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, kernel_initializer=init, bias_initializer="zeros", name="logits")(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def resnet34(num_classes: int = 100, input_shape: tuple[int, ...] = (32, 32, 3), init_mode: str = "fan_out",
             name: str = "resnet34") -> keras.Model:
    """ResNet-34 for 32x32 images as weiaicunzai/pytorch-cifar100 (used for CIFAR-100).

    Stem conv3x3(64)-BN-ReLU without max-pool; basic blocks [3, 4, 6, 3] with
    64, 128, 256, 512 filters; 1x1 conv + BN shortcuts where shapes change.
    Kaiming-normal convolutions (``fan_out`` as torchvision), dense layer
    initialised like ``torch.nn.Linear`` (zero bias). 21,328,292 parameters
    for 100 classes.
    """
    num_classes = check_num_classes(num_classes)
    shape = _check_input_shape(input_shape, ndim=3)
    init = _he_normal(init_mode)
    inputs = keras.Input(shape)
    x = layers.ReLU(name="stem_relu")(_bn(_conv(inputs, 64, 3, 1, init, "stem_conv"), "stem_bn"))
    in_planes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, in_planes, planes, stride, init, f"stage{stage + 1}_block{block + 1}", "B")
            in_planes = planes
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(
        num_classes, kernel_initializer=_torch_linear_init(), bias_initializer="zeros", name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _bottleneck_resnet(blocks, width_per_group, num_classes, input_shape, init_mode, name):
    """torchvision's ``ResNet`` with ``Bottleneck`` blocks (stride on the 3x3 conv)."""
    num_classes = check_num_classes(num_classes)
    shape = _check_input_shape(input_shape, ndim=3)
    init = _he_normal(init_mode)
    inputs = keras.Input(shape)
    x = _bn(_conv(inputs, 64, 7, 2, init, "stem_conv"), "stem_bn")
    x = layers.ReLU(name="stem_relu")(x)
    # Inputs are >= 0 after ReLU, so zero padding equals torch's -inf padding.
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    in_planes = 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks)):
        width = planes * width_per_group // 64
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            p = f"stage{stage + 1}_block{block + 1}"
            y = layers.ReLU(name=p + "_relu1")(_bn(_conv(x, width, 1, 1, init, p + "_conv1"), p + "_bn1"))
            y = layers.ReLU(name=p + "_relu2")(_bn(_conv(y, width, 3, stride, init, p + "_conv2"), p + "_bn2"))
            y = _bn(_conv(y, planes * 4, 1, 1, init, p + "_conv3"), p + "_bn3")
            if stride != 1 or in_planes != planes * 4:
                s = _bn(_conv(x, planes * 4, 1, stride, init, p + "_shortcut_conv"), p + "_shortcut_bn")
            else:
                s = x
            x = layers.ReLU(name=p + "_out")(layers.Add(name=p + "_add")([y, s]))
            in_planes = planes * 4
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(
        num_classes, kernel_initializer=_torch_linear_init(), bias_initializer="zeros", name="logits"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def wide_resnet101_2(num_classes: int = 1000, input_shape: tuple[int, ...] = (224, 224, 3),
                     init_mode: str = "fan_out", name: str = "wide_resnet101_2") -> keras.Model:
    """Wide-ResNet-101-2 as ``torchvision.models.wide_resnet101_2`` (used for WebVision).

    Stem conv7x7/2(64)-BN-ReLU-maxpool3x3/2; bottleneck blocks [3, 4, 23, 3]
    whose inner 1x1/3x3 convolutions are twice as wide as ResNet-101's;
    Kaiming-normal ``fan_out`` convolutions. 126,886,696 parameters for 1000
    classes (about 0.5 GB of float32 weights).
    """
    return _bottleneck_resnet((3, 4, 23, 3), 128, num_classes, input_shape, init_mode, name)


_DEFAULT_INPUT = {"mlp1024": None, "resnet34": (32, 32, 3), "wide_resnet101_2": (224, 224, 3)}
_CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def names() -> list[str]:
    """The names :func:`get` accepts."""
    return ["mlp1024"] + [f"resnet{d}" for d in _CIFAR_DEPTHS] + ["resnet34", "wide_resnet101_2"]


def get(name: str, num_classes: int, input_shape: tuple[int, ...] | None = None, **kwargs: Any) -> keras.Model:
    """Build a model by name: ``"mlp1024"``, ``"resnet{20,32,44,56,110}"`` (CIFAR,
    :func:`resnet_cifar`), ``"resnet34"``, ``"wide_resnet101_2"``.

    ``input_shape`` defaults to (32, 32, 3) for the CIFAR-size ResNets and
    (224, 224, 3) for Wide-ResNet; MLP1024 requires it. Any other keyword goes
    to the builder.
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {name!r}")
    key = name.lower().replace("-", "").replace("_", "")
    if key.startswith("resnet") and key[6:].isdigit() and int(key[6:]) != 34:
        depth = int(key[6:])
        return resnet_cifar(depth, num_classes, input_shape or (32, 32, 3), **kwargs)
    if key == "mlp1024":
        if input_shape is None:
            raise ValueError("`input_shape` is required for 'mlp1024', got None")
        return mlp1024(input_shape, num_classes, **kwargs)
    if key == "resnet34":
        return resnet34(num_classes, input_shape or _DEFAULT_INPUT["resnet34"], **kwargs)
    if key in ("wideresnet1012", "wrn1012"):
        return wide_resnet101_2(num_classes, input_shape or _DEFAULT_INPUT["wide_resnet101_2"], **kwargs)
    raise ValueError(f"`name` must be one of {names()}, got {name!r}")
