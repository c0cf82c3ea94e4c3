"""Data sets on real local data, their cache and errors, and the appendix-1 tf.data pipelines."""

import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_robust import datasets as D
from keras_robust import models
from keras_robust.datasets import catalog, loading, sources

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CIFAR_JPEG = SHARED / "cifar10-jpeg.tar.gz"
OMNIGLOT_ZIPS = [SHARED / "omniglot" / f"images_background_small{i}.zip" for i in (1, 2)]
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """No test may reach a TFDS download (it takes minutes to fail offline)."""
    monkeypatch.setenv("KERAS_ROBUST_NO_DOWNLOAD", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("a test reached TFDS")

    monkeypatch.setattr(sources, "_read_tfds", refuse)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def fmnist(cache):
    return {s: D.load("fashion_mnist", s, cache_dir=cache, download=False, verbose=0) for s in ("train", "test")}


@pytest.fixture(scope="module")
def cifar10(cache):
    # One full decode of the 60,000 JPEGs per process (about 5 s), then cached.
    return {s: D.load("cifar10", s, cache_dir=cache, download=False, verbose=0) for s in ("train", "test")}


# --------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_debian_files(fmnist):
    (x, y), (xt, yt) = fmnist["train"], fmnist["test"]
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28, 1) and yt.shape == (10000,)
    assert np.issubdtype(y.dtype, np.integer)
    np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(yt), [1000] * 10)
    assert y[0] == 9 and yt[0] == 9  # the first images of both splits are ankle boots
    # Independent read of the first training image: IDX header of 16 bytes.
    import gzip

    with gzip.open(DEBIAN_FMNIST / "train-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(16 + 784), np.uint8, offset=16).reshape(28, 28)
    np.testing.assert_array_equal(x[0, :, :, 0], raw)


def test_fashion_mnist_constants_normalise(fmnist):
    # Appendix 1: mu = 0.286, sigma = 0.353 make the training set ~zero-mean, unit-variance.
    x, y = fmnist["train"]
    x, y = x[::3], y[::3]  # 20,000 training images
    batches = [b.numpy() for b, _ in D.pipeline(x, y, "fashion_mnist", batch_size=5000)]
    z = np.concatenate(batches).astype(np.float64)
    assert z.shape == (20000, 28, 28, 1)
    assert abs(z.mean()) < 0.005
    assert z.std() == pytest.approx(1.0, abs=0.005)


def test_cache_is_used_on_second_load(fmnist, cache, monkeypatch):
    assert list(cache.glob("fashion_mnist-*.npz"))

    def fail(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(sources, "_read_fashion_mnist", fail)
    x, y = D.load("fashion_mnist", "test", cache_dir=cache, download=False, verbose=0)
    np.testing.assert_array_equal(y, fmnist["test"][1])
    with pytest.raises(AssertionError, match="decoded again"):
        D.load("fashion_mnist", "test", cache_dir=False, download=False, verbose=0)


def test_fashion_mnist_from_data_dir(tmp_path, fmnist):
    # Raw (uncompressed) IDX files in a folder of the user's.
    import gzip

    for f in DEBIAN_FMNIST.glob("t10k-*.gz"):
        (tmp_path / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    for f in DEBIAN_FMNIST.glob("train-labels*.gz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(D.DatasetNotFoundError):  # train images missing
        D.load("fashion_mnist", "test", data_dir=tmp_path, cache_dir=False, download=False, verbose=0)
    (tmp_path / "train-images-idx3-ubyte.gz").symlink_to(DEBIAN_FMNIST / "train-images-idx3-ubyte.gz")
    x, y = D.load("fashion_mnist", "test", data_dir=tmp_path, cache_dir=False, limit=50, verbose=0)
    np.testing.assert_array_equal(np.bincount(y), [5] * 10)
    idx = np.flatnonzero(np.isin(np.arange(10000), np.concatenate(
        [np.flatnonzero(fmnist["test"][1] == k)[:5] for k in range(10)])))
    np.testing.assert_array_equal(x, fmnist["test"][0][idx])


# --------------------------------------------------------------------- CIFAR-10 / 100


def test_cifar10_from_jpeg_tarball(cifar10):
    (x, y), (xt, yt) = cifar10["train"], cifar10["test"]
    assert x.shape == (50000, 32, 32, 3) and x.dtype == np.uint8
    assert xt.shape == (10000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(y), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(yt), [1000] * 10)
    # The official CIFAR-10 training-set channel means (0.4914, 0.4822, 0.4465).
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64) / 255
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=1e-3)
    # An independently decoded file lands at its class and sorted position.
    from PIL import Image

    with tarfile.open(CIFAR_JPEG) as tar:
        member = next(m for m in tar if m.name.endswith(".jpg") and "/test/" in "/" + m.name and "/cat/" in m.name)
        img = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
    cats = xt[yt == 3]
    assert any(np.array_equal(img, c) for c in cats)


def test_cifar10_pipeline_constants(cifar10):
    # The paper normalises CIFAR-10 with ImageNet's constants, so the result is
    # not zero-mean: (official mean - mu) / sigma per channel.
    x, y = cifar10["test"]
    z = np.concatenate([b.numpy() for b, _ in D.pipeline(x, y, "cifar10", batch_size=5000)])
    test_mean = x.mean(axis=(0, 1, 2), dtype=np.float64) / 255
    expected = (test_mean - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(z.astype(np.float64).mean(axis=(0, 1, 2)), expected, atol=1e-5)
    test_std = x.std(axis=(0, 1, 2), dtype=np.float64) / 255
    np.testing.assert_allclose(z.astype(np.float64).std(axis=(0, 1, 2)), test_std / [0.229, 0.224, 0.225],
                               atol=1e-5)


def _images(n, rng, shape=(32, 32, 3)):
    return rng.integers(0, 256, size=(n,) + shape, dtype=np.uint8)


def _pickle_bytes(obj):
    return pickle.dumps(obj, protocol=2)


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _official_rows(x):
    # Official layout: 3072 bytes per image, the red plane, then green, then blue, row-major.
    return x.transpose(0, 3, 1, 2).reshape(len(x), 3072)


def test_cifar10_official_archive_fixture(tmp_path, rng):
    xs = [_images(4, rng) for _ in range(6)]
    ys = [rng.integers(0, 10, 4).tolist() for _ in range(6)]
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
            _add(tar, f"cifar-10-batches-py/{name}",
                 _pickle_bytes({b"data": _official_rows(xs[i]), b"labels": ys[i], b"batch_label": b"x"}))
    x, y = D.load("cifar10", "train", data_dir=tmp_path, cache_dir=tmp_path / "c", verbose=0)
    np.testing.assert_array_equal(x, np.concatenate(xs[:5]))
    np.testing.assert_array_equal(y, np.concatenate(ys[:5]))
    xt, yt = D.load("cifar10", "test", data_dir=tmp_path, cache_dir=False, verbose=0)
    np.testing.assert_array_equal(xt, xs[5])
    assert xt[0, 0, 0, 0] == _official_rows(xs[5])[0, 0] and xt[0, 0, 0, 2] == _official_rows(xs[5])[0, 2048]


def test_cifar100_official_archive_and_folder(tmp_path, rng):
    x_train, x_test = _images(6, rng), _images(3, rng)
    fine = {"train": [0, 5, 99, 42, 7, 1], "test": [3, 99, 0]}
    coarse = {"train": [0, 1, 19, 2, 3, 4], "test": [5, 19, 0]}
    payload = {
        s: _pickle_bytes({b"data": _official_rows(x), b"fine_labels": fine[s], b"coarse_labels": coarse[s],
                          b"filenames": [b"a"] * len(x)})
        for s, x in (("train", x_train), ("test", x_test))
    }
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "cifar-100-python.tar.gz", "w:gz") as tar:
        for s, data in payload.items():
            _add(tar, f"cifar-100-python/{s}", data)
    x, y = D.load("cifar100", "train", data_dir=archive_dir, cache_dir=False, verbose=0)
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(y, fine["train"])
    _, yc = D.load("cifar100", "test", data_dir=archive_dir, cache_dir=False, verbose=0, label_mode="coarse")
    np.testing.assert_array_equal(yc, coarse["test"])
    unpacked = tmp_path / "unpacked" / "cifar-100-python"
    unpacked.mkdir(parents=True)
    for s, data in payload.items():
        (unpacked / s).write_bytes(data)
    xt, yt = D.load("cifar100", "test", data_dir=unpacked.parent, cache_dir=False, verbose=0)
    np.testing.assert_array_equal(xt, x_test)
    np.testing.assert_array_equal(yt, fine["test"])


def test_missing_data_lists_every_source(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.load("cifar100", "train", data_dir=tmp_path, download=False, cache_dir=False, verbose=0)
    msg = str(err.value)
    assert "cifar100" in msg
    for expected in ("cifar-100-python.tar.gz", "cifar-100-python", "TFDS prepared", "TFDS download"):
        assert expected in msg
    assert str(tmp_path) in msg and "forbidden" in msg
    # Without data_dir: the local places and TFDS are all listed (downloads forbidden by the env var).
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.load("cifar100", "test", cache_dir=False, verbose=0)
    msg = str(err.value)
    assert str(SHARED / "cifar-100-python.tar.gz") in msg and "datasets" in msg and "forbidden" in msg
    # Every data set gives the error for an empty data_dir.
    for name in D.names():
        with pytest.raises(D.DatasetNotFoundError, match="Sources tried"):
            D.load(name, "test", data_dir=tmp_path, download=False, cache_dir=False, verbose=0)


# --------------------------------------------------------------------- Omniglot


def test_omniglot_split(cache):
    x, y = D.load("omniglot", "train", cache_dir=cache, verbose=0)
    xt, yt = D.load("omniglot", "test", cache_dir=cache, verbose=0)
    # The two zips hold 5,840 files; the Latin and Greek folders are in both,
    # byte for byte, so there are 4,840 distinct drawings of 242 characters.
    digests, classes = set(), set()
    total = 0
    for z in OMNIGLOT_ZIPS:
        with zipfile.ZipFile(z) as zf:
            for n in zf.namelist():
                if n.endswith(".png"):
                    total += 1
                    digests.add(hashlib.md5(zf.read(n)).hexdigest())
                    classes.add(tuple(n.split("/")[1:3]))
    assert total == 5840
    assert len(classes) == D.num_classes("omniglot") == 242
    assert len(x) + len(xt) == len(digests) == 4840
    assert x.shape[1:] == (105, 105, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y), [15] * 242)
    np.testing.assert_array_equal(np.bincount(yt), [5] * 242)
    train_rows = {hashlib.md5(a.tobytes()).digest() for a in x}
    assert not any(hashlib.md5(a.tobytes()).digest() in train_rows for a in xt)
    again = D.load("omniglot", "test", cache_dir=cache, verbose=0)
    np.testing.assert_array_equal(again[0], xt)
    other = D.load("omniglot", "test", cache_dir=cache, verbose=0, seed=1)
    assert not np.array_equal(other[0], xt)
    np.testing.assert_array_equal(other[1], yt)  # same stratification
    # Constants in INFO: measured on the 105x105 drawings.
    a = np.concatenate([x, xt])
    assert a.mean(dtype=np.float64) / 255 == pytest.approx(D.info("omniglot").mean[0], abs=1e-3)
    assert a.std(dtype=np.float64) / 255 == pytest.approx(D.info("omniglot").std[0], abs=1e-3)


def test_omniglot_resized(cache):
    x, y = D.load("omniglot", "test", cache_dir=cache, verbose=0, image_size=(28, 28), test_per_class=4)
    assert x.shape == (242 * 4, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(y), [4] * 242)


# --------------------------------------------------------------------- image folders


def test_image_folder(tmp_path, rng):
    from PIL import Image

    want = {}
    for cls, n in (("n02", 2), ("n01", 3), ("zebra", 1)):
        (tmp_path / cls / "sub").mkdir(parents=True)
        for i in range(n):
            img = _images(1, rng, (10, 12, 3))[0]
            Image.fromarray(img).save(tmp_path / cls / ("sub" if i == 0 else ".") / f"{i}.png")
            want.setdefault(cls, []).append(img)
    (tmp_path / "n01" / "notes.txt").write_text("not an image")
    x, y, names = D.image_folder(tmp_path, cache_dir=False, verbose=0)
    assert names == ["n01", "n02", "zebra"]
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 2])
    assert x.shape == (6, 10, 12, 3)
    assert any(np.array_equal(x[0], w) for w in want["n01"])
    xs, _, _ = D.image_folder(tmp_path, image_size=(8, 8), color_mode="grayscale", cache_dir=tmp_path / "c",
                              verbose=0)
    assert xs.shape == (6, 8, 8, 1)
    with pytest.raises(D.DatasetNotFoundError, match="no images"):
        D.image_folder(tmp_path / "zebra" / "sub", cache_dir=False, verbose=0)
    with pytest.raises(D.DatasetNotFoundError, match="path"):
        D.image_folder(tmp_path / "absent", verbose=0)
    with pytest.raises(ValueError, match="color_mode"):
        D.image_folder(tmp_path, color_mode="cmyk", verbose=0)


def test_pipeline_from_file_paths(tmp_path, rng):
    from PIL import Image

    imgs = _images(6, rng, (40, 40, 3))
    for i, img in enumerate(imgs):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / f"c{i % 2}" / f"{i}.png")
    files, y, names = D.list_image_folder(tmp_path)
    assert names == ["c0", "c1"] and len(files) == 6
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 1])
    ev = np.concatenate([b.numpy() for b, _ in D.pipeline(files, y, "webvision", batch_size=4, image_size=(40, 40),
                                                          crop_size=(32, 32))])
    order = [int(Path(f).stem) for f in files]
    np.testing.assert_allclose(_raw(ev, "webvision"), imgs[order][:, 4:36, 4:36] / 255.0, atol=1e-5)
    tr = next(iter(D.pipeline(files, y, "webvision", training=True, batch_size=6, image_size=(36, 36),
                               crop_size=(32, 32), seed=0)))[0]
    assert tr.shape == (6, 32, 32, 3)
    with pytest.raises(ValueError, match="image_size"):
        D.pipeline(files, y, "webvision")
    with pytest.raises(D.DatasetNotFoundError, match="path"):
        D.list_image_folder(tmp_path / "absent")


def test_cifar10_from_unpacked_jpeg_tree(tmp_path):
    # The tarball unpacked by hand: data_dir/{train,test}/<class>/*.jpg, two files each.
    left = {(s, c): 2 for s in ("train", "test") for c in catalog._CIFAR10_CLASSES}
    with tarfile.open(CIFAR_JPEG) as tar:
        for m in tar:
            parts = m.name.split("/")
            key = tuple(parts[-3:-1])
            if m.isfile() and left.get(key, 0) > 0:
                left[key] -= 1
                (tmp_path / key[0] / key[1]).mkdir(parents=True, exist_ok=True)
                (tmp_path / key[0] / key[1] / parts[-1]).write_bytes(tar.extractfile(m).read())
            if not any(left.values()):
                break
    x, y = D.load("cifar10", "test", data_dir=tmp_path, cache_dir=False, verbose=0)
    assert x.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 2))


def test_image_folder_reads_cifar_jpegs(tmp_path):
    # A few files of the real CIFAR-10 JPEG tree, unpacked as a class-folder layout.
    wanted = {"airplane": 3, "truck": 2}
    with tarfile.open(CIFAR_JPEG) as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and parts[-3] == "test" and wanted.get(parts[-2], 0) > 0:
                wanted[parts[-2]] -= 1
                (tmp_path / parts[-2]).mkdir(exist_ok=True)
                (tmp_path / parts[-2] / parts[-1]).write_bytes(tar.extractfile(m).read())
            if not any(wanted.values()):
                break
    x, y, names = D.image_folder(tmp_path, cache_dir=False, verbose=0)
    assert names == ["airplane", "truck"] and x.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1])


# --------------------------------------------------------------------- pipelines


def test_pipeline_shapes_and_flatten(fmnist):
    x, y = fmnist["test"]
    ds = D.pipeline(x[:100], y[:100], "fashion_mnist", batch_size=32)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [32, 32, 32, 4]
    assert batches[0][0].shape[1:] == (28, 28, 1)
    assert batches[0][0].dtype.name == "float32" and batches[0][1].dtype.name == "int32"
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y[:100])  # no shuffle
    flat = next(iter(D.pipeline(x[:10], y[:10], "fashion_mnist", batch_size=10, flatten=True)))[0].numpy()
    assert flat.shape == (10, 784)
    np.testing.assert_allclose(flat[0], (x[0].ravel() / 255.0 - 0.286) / 0.353, rtol=1e-5, atol=1e-5)
    # MLP1024: training shuffles but does not augment.
    ds = D.pipeline(x[:64], y[:64], "fashion_mnist", training=True, augment=False, batch_size=64, seed=0)
    xb, yb = next(iter(ds))
    order = [int(np.flatnonzero((x[:64].reshape(64, -1) == np.rint((xb[i].numpy().ravel() * 0.353 + 0.286) * 255)
                                ).all(axis=1))[0]) for i in range(64)]
    assert sorted(order) == list(range(64)) and order != list(range(64))
    np.testing.assert_array_equal(yb.numpy(), y[:64][order])
    drop = list(D.pipeline(x[:100], y[:100], batch_size=32, drop_remainder=True))
    assert len(drop) == 3


def _raw(batch, dataset):
    i = D.info(dataset)
    return batch * np.asarray(i.std, np.float32) + np.asarray(i.mean, np.float32)


def test_flip_crop_augmentation():
    # A white image: padding shows as black borders after the random crop.
    x = np.full((64, 32, 32, 3), 255, np.uint8)
    y = np.arange(64) % 10
    ds = D.pipeline(x, y, "cifar10", training=True, batch_size=64, seed=3, shuffle=False)
    raw = _raw(next(iter(ds))[0].numpy(), "cifar10")
    assert raw.shape == (64, 32, 32, 3)
    np.testing.assert_allclose(raw.max(), 1.0, atol=1e-5)
    black = (np.abs(raw) < 1e-5).all(axis=-1)
    rows, cols = black.all(axis=2).sum(axis=1), black.all(axis=1).sum(axis=1)
    assert rows.max() <= 4 and cols.max() <= 4 and (rows + cols).mean() > 1  # shifts of up to 4 pixels
    assert len({(r, c) for r, c in zip(rows, cols)}) > 5
    # Seeded: the same pipeline gives the same batch; the next epoch differs.
    again = _raw(next(iter(D.pipeline(x, y, "cifar10", training=True, batch_size=64, seed=3, shuffle=False)))[0].numpy(),
                 "cifar10")
    np.testing.assert_array_equal(again, raw)
    epochs = [np.concatenate([b.numpy() for b, _ in ds]) for _ in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])
    # Flips: an image with a bright left half appears mirrored in some examples.
    half = np.zeros((64, 32, 32, 3), np.uint8)
    half[:, :, :16] = 255
    out = _raw(next(iter(D.pipeline(half, y, "cifar10", training=True, batch_size=64, seed=0)))[0].numpy(), "cifar10")
    left = out[:, 8:24, 4:12].mean(axis=(1, 2, 3)) > out[:, 8:24, 20:28].mean(axis=(1, 2, 3))
    assert 10 < left.sum() < 54
    # Evaluation: no augmentation at all.
    ev = next(iter(D.pipeline(half, y, "cifar10", training=False, batch_size=64)))[0].numpy()
    np.testing.assert_allclose(_raw(ev, "cifar10"), half / 255.0, atol=1e-5)


def test_cifar100_rotation():
    x = np.full((64, 32, 32, 3), 255, np.uint8)
    y = np.arange(64)
    ds = D.pipeline(x, y, "cifar100", training=True, batch_size=64, seed=0, shuffle=False)
    raw = _raw(next(iter(ds))[0].numpy(), "cifar100")
    black = (np.abs(raw) < 1e-5).all(axis=-1)
    # Rotations by up to 15 degrees blacken corners; the centre stays white.
    assert black[:, 14:18, 14:18].sum() == 0
    rotated = ~(black.all(axis=1).any(axis=1) | black.all(axis=2).any(axis=1)) & black.any(axis=(1, 2))
    assert rotated.sum() > 0
    # Pixels rotated off-grid but not fully black: a 15-degree rotation
    # blackens at most ~ (tan 15 deg / 2) of the border rows near a corner.
    assert black.mean() < 0.25
    # flip_crop alone never produces non-rectangular black regions.
    plain = _raw(next(iter(D.pipeline(x, y, "cifar10", training=True, batch_size=64, seed=0, shuffle=False)))[0].numpy(),
                 "cifar10")
    b2 = (np.abs(plain) < 1e-5).all(axis=-1)
    assert not (~(b2.all(axis=1).any(axis=1) | b2.all(axis=2).any(axis=1)) & b2.any(axis=(1, 2))).any()


def test_random_crop_webvision_style():
    x = np.random.default_rng(0).integers(0, 256, (8, 40, 40, 3), dtype=np.uint8)
    y = np.zeros(8, int)
    tr = next(iter(D.pipeline(x, y, "webvision", training=True, batch_size=8, crop_size=(32, 32), seed=0)))[0]
    ev = next(iter(D.pipeline(x, y, "webvision", training=False, batch_size=8, crop_size=(32, 32))))[0].numpy()
    assert tr.shape == (8, 32, 32, 3)
    np.testing.assert_allclose(_raw(ev, "webvision"), x[:, 4:36, 4:36] / 255.0, atol=1e-5)


def test_pipeline_feeds_model_fit(fmnist, cifar10):
    x, y = fmnist["train"]
    mlp = models.mlp1024((28, 28, 1), 10)
    mlp.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = mlp.fit(D.pipeline(x[:64], y[:64], "fashion_mnist", training=True, augment=False, batch_size=32,
                              seed=0), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    xc, yc = cifar10["train"]
    net = models.resnet_cifar(8, 10, (32, 32, 3))
    net.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    hist = net.fit(D.pipeline(xc[:32], yc[:32], "cifar10", training=True, batch_size=16, seed=0), epochs=1,
                   verbose=0)
    assert np.isfinite(hist.history["loss"][0]) and 0 <= hist.history["accuracy"][0] <= 1


# --------------------------------------------------------------------- helpers and errors


def test_info_and_num_classes():
    assert [D.num_classes(n) for n in ("fashion_mnist", "cifar10", "cifar100", "webvision")] == [10, 10, 100, 1000]
    assert D.info("CIFAR-100").mean == (0.507, 0.487, 0.441)
    assert D.info("cifar100").std == (0.267, 0.256, 0.276)
    assert D.info("fashion_mnist").mean == (0.286,) and D.info("fashion_mnist").std == (0.353,)
    assert D.info("webvision").mean == D.info("cifar10").mean == (0.485, 0.456, 0.406)
    assert D.info("cifar100").augment == "crop_flip_rotate"


def test_limit_is_balanced():
    y = np.array([0, 0, 0, 0, 1, 2, 2, 1, 0])
    x = np.arange(9)
    xs, ys = loading._take(x, y, 5)
    np.testing.assert_array_equal(xs, [0, 1, 4, 5, 6])
    np.testing.assert_array_equal(ys, [0, 0, 1, 2, 2])


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_ROBUST_CACHE", str(tmp_path))
    assert D.default_cache_dir() == tmp_path
    monkeypatch.delenv("KERAS_ROBUST_CACHE")
    assert D.default_cache_dir() == Path.home() / ".cache" / "keras_robust"


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(name="mnist"), ValueError, "name"),
        (dict(name=10), TypeError, "name"),
        (dict(name="cifar10", split="validation"), ValueError, "split"),
        (dict(name="cifar10", limit=0), ValueError, "limit"),
        (dict(name="cifar10", label_mode="fine"), TypeError, "label_mode"),
        (dict(name="cifar100", label_mode="medium"), ValueError, "label_mode"),
        (dict(name="omniglot", image_size=(28,)), TypeError, "image_size"),
        (dict(name="cifar10", download="yes"), TypeError, "download"),
    ],
)
def test_load_bad_arguments(kwargs, exc, text, tmp_path):
    kwargs.setdefault("data_dir", tmp_path)
    with pytest.raises(exc, match=text):
        D.load(verbose=0, cache_dir=False, **kwargs)


def test_omniglot_test_per_class_too_large(cache):
    with pytest.raises(ValueError, match="test_per_class"):
        D.load("omniglot", "test", cache_dir=cache, verbose=0, test_per_class=20)


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(x=np.zeros((4, 8)), y=np.zeros(4, int)), ValueError, "`x`"),
        (dict(y=np.zeros(3, int)), ValueError, "`y`"),
        (dict(y=np.zeros(4)), ValueError, "`y`"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(augment="mixup"), ValueError, "augment"),
        (dict(dataset="imagenet"), ValueError, "name"),
        (dict(mean=(0.1, 0.2)), ValueError, "mean"),
        (dict(std=(0.0,)), ValueError, "std"),
        (dict(seed=1.5), TypeError, "seed"),
        (dict(augment="flip_random_crop", crop_size=(64, 64)), ValueError, "crop_size"),
    ],
)
def test_pipeline_bad_arguments(kwargs, exc, text):
    args = dict(x=np.zeros((4, 8, 8, 3), np.uint8), y=np.zeros(4, int))
    args.update(kwargs)
    with pytest.raises(exc, match=text):
        D.pipeline(**args)
