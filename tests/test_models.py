"""Models: parameter counts against the reference architectures, initialisation, forward passes."""

import keras
import numpy as np
import pytest

from keras_robust import models


def trainable(model):
    # PyTorch counts parameters; BatchNorm's running statistics are buffers there.
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def count(build):
    """Trainable parameters of ``build()`` without initialising its weights (cheap)."""
    with keras.StatelessScope(initialize_variables=False):
        return trainable(build())


# --- independent parameter formulas (from the reference PyTorch code) --------------


def conv(cin, cout, k):
    return cin * cout * k * k


def bn(c):
    return 2 * c


def cifar_resnet_params(depth, k, channels=3, option="A"):
    """akamaster/pytorch_resnet_cifar10: 16-32-64 basic blocks, option-A shortcuts."""
    n = (depth - 2) // 6
    total = conv(channels, 16, 3) + bn(16)
    cin = 16
    for w in (16, 32, 64):
        for _ in range(n):
            total += conv(cin, w, 3) + bn(w) + conv(w, w, 3) + bn(w)
            if option == "B" and cin != w:
                total += conv(cin, w, 1) + bn(w)
            cin = w
    return total + 64 * k + k


def resnet34_params(k, channels=3):
    """weiaicunzai/pytorch-cifar100 ResNet-34."""
    total = conv(channels, 64, 3) + bn(64)
    cin = 64
    for w, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for b in range(blocks):
            stride = 2 if (w != 64 and b == 0) else 1
            total += conv(cin, w, 3) + bn(w) + conv(w, w, 3) + bn(w)
            if stride != 1 or cin != w:
                total += conv(cin, w, 1) + bn(w)
            cin = w
    return total + 512 * k + k


def bottleneck_resnet_params(blocks, width_per_group, k):
    """torchvision.models.resnet.ResNet with Bottleneck blocks."""
    total = conv(3, 64, 7) + bn(64)
    cin = 64
    for planes, count in zip((64, 128, 256, 512), blocks):
        width = planes * width_per_group // 64
        for b in range(count):
            total += conv(cin, width, 1) + bn(width) + conv(width, width, 3) + bn(width)
            total += conv(width, planes * 4, 1) + bn(planes * 4)
            if b == 0:
                total += conv(cin, planes * 4, 1) + bn(planes * 4)
            cin = planes * 4
    return total + 2048 * k + k


def test_published_counts_match_formulas():
    # Published: akamaster's table (0.27M, 0.46M, 0.66M, 0.85M), torchvision's
    # wide_resnet101_2 (126,886,696), weiaicunzai's ResNet-34 (about 21.3M).
    assert [round(cifar_resnet_params(d, 10) / 1e6, 2) for d in (20, 32, 44, 56)] == [0.27, 0.46, 0.66, 0.85]
    assert cifar_resnet_params(32, 10) == 464_154
    assert bottleneck_resnet_params((3, 4, 23, 3), 128, 1000) == 126_886_696
    assert round(resnet34_params(100) / 1e6, 1) == 21.3


@pytest.mark.parametrize("depth", [20, 32, 44])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet_cifar_params(depth, channels):
    shape = (28, 28, channels) if channels == 1 else (32, 32, 3)
    assert count(lambda: models.resnet_cifar(depth, 10, shape)) == cifar_resnet_params(depth, 10, channels)


def test_resnet32_is_464154_and_option_b():
    assert count(lambda: models.get("resnet32", 10)) == 464_154
    assert count(lambda: models.resnet_cifar(20, 100, shortcut="B")) == cifar_resnet_params(20, 100, option="B")


def test_resnet34_params():
    assert count(lambda: models.resnet34(100)) == resnet34_params(100) == 21_328_292
    assert count(lambda: models.get("resnet34", 10, (64, 64, 1))) == resnet34_params(10, channels=1)


def test_wide_resnet101_2_params():
    # Parameter count does not depend on the spatial size: build at 32x32.
    assert count(lambda: models.wide_resnet101_2(1000, input_shape=(32, 32, 3))) == 126_886_696
    assert count(lambda: models.get("wide_resnet101_2", 17, (64, 64, 3))) == bottleneck_resnet_params(
        (3, 4, 23, 3), 128, 17)


def test_mlp1024_params_and_init():
    model = models.mlp1024((28, 28, 1), 10)
    assert trainable(model) == 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    biases = [layer.bias for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    for k in kernels:
        w = keras.ops.convert_to_numpy(k)
        limit = np.sqrt(6.0 / (w.shape[0] + w.shape[1]))  # Glorot-uniform
        assert np.abs(w).max() <= limit
        assert np.std(w) == pytest.approx(limit / np.sqrt(3), rel=0.05)
    for b in biases:
        assert not np.any(keras.ops.convert_to_numpy(b))
    assert [k.shape[1] for k in kernels] == [1024, 512, 512, 10]


def test_resnet_kaiming_normal_untruncated():
    model = models.resnet_cifar(14, 10)
    stem = keras.ops.convert_to_numpy(model.get_layer("stem_conv").kernel).ravel()
    assert np.std(stem) == pytest.approx(np.sqrt(2.0 / 27.0), rel=0.15)  # akamaster: fan_in = 3*3*3
    big = keras.ops.convert_to_numpy(model.get_layer("stage3_block2_conv1").kernel).ravel()
    sigma = np.sqrt(2.0 / (9 * 64))
    assert np.std(big) == pytest.approx(sigma, rel=0.03)
    # Untruncated like torch's kaiming_normal_ (Keras' HeNormal truncates at 2 sigma): 4.55% beyond.
    assert np.mean(np.abs(big) > 2 * sigma) == pytest.approx(0.0455, abs=0.006)
    fan_out = models.resnet_cifar(8, 10, init_mode="fan_out")
    stem_out = keras.ops.convert_to_numpy(fan_out.get_layer("stem_conv").kernel)
    assert np.std(stem_out) == pytest.approx(np.sqrt(2.0 / (9 * 16)), rel=0.15)
    with keras.StatelessScope(initialize_variables=False):
        for model in (models.resnet34(10), models.wide_resnet101_2(10, (32, 32, 3))):
            init = model.get_layer("stem_conv").kernel_initializer
            assert (init.scale, init.mode, init.distribution) == (2.0, "fan_out", "untruncated_normal")


@pytest.mark.parametrize(
    "name, k, shape",
    [("mlp1024", 10, (28, 28, 1)), ("resnet20", 10, (28, 28, 1)), ("resnet32", 100, (32, 32, 3)),
     ("resnet34", 100, (32, 32, 3))],
)
def test_forward_pass(name, k, shape, rng):
    # (Training through model.fit on a tf.data pipeline: tests/test_datasets.py.)
    model = models.get(name, k, shape)
    x = rng.normal(size=(2,) + shape).astype("float32")
    out = keras.ops.convert_to_numpy(model(x, training=False))
    assert out.shape == (2, k)
    assert np.all(np.isfinite(out))
    out_train = keras.ops.convert_to_numpy(model(x, training=True))
    assert out_train.shape == (2, k)


def test_strided_conv_pads_like_pytorch(rng):
    # PyTorch: conv3x3(stride 2, padding 1) samples centres 0, 2, 4, ... the
    # same pixels the option-A shortcut x[:, ::2, ::2] keeps.
    x = rng.normal(size=(1, 6, 6, 1)).astype("float32")
    inp = keras.Input((6, 6, 1))
    out = models._conv(inp, 1, 3, 2, "ones", "c")
    y = keras.ops.convert_to_numpy(keras.Model(inp, out)(x))[0, :, :, 0]
    padded = np.pad(x[0, :, :, 0], 1)
    ref = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(0, 6, 2)] for i in range(0, 6, 2)])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_zero_pad_shortcut(rng):
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(models.ZeroPadShortcut(2, 1)(x))
    assert y.shape == (2, 2, 2, 5)
    np.testing.assert_array_equal(y[..., 1:4], x[:, ::2, ::2, :])
    assert not np.any(y[..., 0]) and not np.any(y[..., 4])
    layer = models.ZeroPadShortcut(2, 3, name="s")
    clone = models.ZeroPadShortcut.from_config(layer.get_config())
    assert (clone.stride, clone.pad, clone.name) == (2, 3, "s")


def test_model_save_load_round_trip(tmp_path, rng):
    model = models.resnet_cifar(8, 5, (16, 16, 3))
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "call, exc, text",
    [
        (lambda: models.resnet_cifar(33), ValueError, "depth"),
        (lambda: models.resnet_cifar(32, 1), ValueError, "num_classes"),
        (lambda: models.resnet_cifar(32, 10, (32, 32)), ValueError, "input_shape"),
        (lambda: models.resnet_cifar(32, 10, shortcut="C"), ValueError, "shortcut"),
        (lambda: models.resnet_cifar(32, 10, init_mode="fan_avg"), ValueError, "init_mode"),
        (lambda: models.mlp1024(None, 10), TypeError, "input_shape"),
        (lambda: models.mlp1024((28, 28), 10.0), ValueError, "num_classes"),
        (lambda: models.get("vgg16", 10), ValueError, "vgg16"),
        (lambda: models.get(3, 10), TypeError, "name"),
        (lambda: models.get("mlp1024", 10), ValueError, "input_shape"),
        (lambda: models.ZeroPadShortcut(stride=0), ValueError, "stride"),
        (lambda: models.ZeroPadShortcut(pad=-1), ValueError, "pad"),
    ],
)
def test_bad_arguments(call, exc, text):
    with pytest.raises(exc, match=text):
        call()


def test_registry_names():
    assert "resnet32" in models.names() and "wide_resnet101_2" in models.names()
    assert models.get("ResNet-34", 10).name == "resnet34"
