"""Datasets: published Yin-Yang splits, IDX reading, MNIST layout search and encoding."""
import gzip

import numpy as np
import pytest

from pynn_ttfs.training import datasets as ds


def test_yinyang_reproduces_published_class_counts():
    data = ds.load_yinyang()
    assert ds.class_counts(data.train.labels, 3) == [1681, 1702, 1617]
    assert ds.class_counts(data.val.labels, 3) == [316, 336, 348]
    assert ds.class_counts(data.test.labels, 3) == [350, 316, 334]


def test_yinyang_features_labels_and_times():
    split = ds.yinyang_split(200, seed=42)
    x, y = split.values[:, 0], split.values[:, 1]
    np.testing.assert_allclose(split.values[:, 2], 1 - x)
    np.testing.assert_allclose(split.values[:, 3], 1 - y)
    assert np.all((x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25)
    for xi, yi, label in zip(x, y, split.labels):
        assert ds.yinyang_class(xi, yi) == label
    np.testing.assert_allclose(split.times, 0.15 + split.values * 1.85)
    # a shortened split is a prefix of the published one
    full = ds.load_yinyang()
    np.testing.assert_array_equal(full.train.labels[:200], split.labels)


def test_yinyang_class_regions():
    assert ds.yinyang_class(0.75, 0.5) == 2  # right dot
    assert ds.yinyang_class(0.25, 0.5) == 2  # left dot
    assert ds.yinyang_class(0.5, 0.9) == 1  # upper half, far from the right dot
    assert ds.yinyang_class(0.5, 0.1) == 0


def _write_tiny_mnist(directory, n_train=12, n_test=5, gz=True, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        ds.write_idx(directory / (name + suffix), array)
    return arrays


def test_idx_round_trip_raw_and_gz(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        ds.write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(ds.read_idx(tmp_path / name), array)
    with gzip.open(tmp_path / "a.idx.gz") as handle:
        assert handle.read(4) == bytes([0, 0, 8, 3])
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        ds.read_idx(tmp_path / "bad")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_directory_and_encoding(tmp_path, gz):
    arrays = _write_tiny_mnist(tmp_path, gz=gz)
    data = ds.load_dataset("mnist", data_dir=tmp_path)
    assert data.train.times.shape == (12, 784) and data.test.times.shape == (5, 784)
    brightness = arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255.0
    # inverted: bright pixels spike early, black pixels at t_late
    np.testing.assert_allclose(data.train.times, 0.15 + (1 - brightness) * 1.85)
    np.testing.assert_array_equal(data.test.labels, arrays["t10k-labels-idx1-ubyte"])


def test_mnist_torchvision_layout_and_env_var(tmp_path, monkeypatch):
    _write_tiny_mnist(tmp_path / "MNIST" / "raw")
    assert ds.load_dataset("mnist", data_dir=tmp_path).train.times.shape[0] == 12
    monkeypatch.setenv(ds.MNIST_ENV_VAR, str(tmp_path))
    assert ds.load_dataset("mnist16").train.times.shape == (12, 256)


def test_mnist_missing_files_error_names_files_and_dirs(tmp_path, monkeypatch):
    monkeypatch.delenv(ds.MNIST_ENV_VAR, raising=False)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        ds.load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message
    assert str(tmp_path / "MNIST" / "raw") in message
    with pytest.raises(FileNotFoundError, match=ds.MNIST_ENV_VAR):
        ds.load_dataset("mnist")


def _thirteen_image_mnist(tmp_path):
    """IDX files of 13 training images (the last 3 with a bright centre pixel) and 4 test
    images; with MNIST_N_TRAIN patched to 10 they split 10 / 3 / 4 like the reference."""
    directory = tmp_path / "big"
    directory.mkdir()
    images = np.zeros((13, 28, 28), dtype=np.uint8)
    images[10:, 14, 14] = 255
    ds.write_idx(directory / "train-images-idx3-ubyte", images)
    ds.write_idx(directory / "train-labels-idx1-ubyte", np.arange(13) % 10)
    ds.write_idx(directory / "t10k-images-idx3-ubyte", images[:4])
    ds.write_idx(directory / "t10k-labels-idx1-ubyte", np.arange(4))
    return directory


def test_reference_split_sizes(tmp_path, monkeypatch):
    assert ds.MNIST_N_TRAIN == 50000  # the reference split
    monkeypatch.setattr(ds, "MNIST_N_TRAIN", 10)  # same rule on a tiny file
    data = ds.load_dataset("mnist", data_dir=_thirteen_image_mnist(tmp_path))
    assert len(data.train) == 10 and len(data.val) == 3 and len(data.test) == 4
    assert np.all(data.val.times[:, 14 * 28 + 14] == 0.15)
    assert np.all(data.train.times[:, 14 * 28 + 14] == 2.0)


def test_training_splits_join_train_and_validation_only_when_asked(tmp_path, monkeypatch):
    """train_on_val: the training samples followed by the validation samples, no
    validation split left; the test split is never joined in."""
    monkeypatch.setattr(ds, "MNIST_N_TRAIN", 10)
    data = ds.load_dataset("mnist", data_dir=_thirteen_image_mnist(tmp_path))
    train, val = data.training_splits()
    assert train is data.train and val is data.val
    train, val = data.training_splits(train_on_val=True)
    assert val is None and len(train) == 13
    np.testing.assert_array_equal(train.times, np.concatenate([data.train.times, data.val.times]))
    np.testing.assert_array_equal(train.labels, np.arange(13) % 10)
    assert train.image_shape == (28, 28) and train.blank_time == data.train.blank_time
    yinyang = ds.load_yinyang(sizes={"train": 50, "val": 20, "test": 10})
    with pytest.raises(ValueError, match="cannot join splits"):
        yinyang.train.concat(data.val)


def test_mnist16_crop_resize_and_black_pixels_silent(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    images[0, 2:26, 2:26] = 255  # the whole crop white
    images[1, 0:2, :] = 255  # white only outside the crop: all black after cropping
    images[2, 2:5, 2:5] = 255  # top-left corner of the crop
    small = ds.downscale_mnist16(images / 255.0)
    assert small.shape == (3, 16, 16)
    np.testing.assert_allclose(small[0], 1.0)
    assert np.all(small[1] == 0)
    assert small[2, 0, 0] == pytest.approx(1.0) and small[2, 0, 1] > 0 and small[2, 8, 8] == 0
    # the resize preserves the mean brightness (area averaging)
    rng = np.random.default_rng(1)
    random_images = rng.random((2, 28, 28))
    np.testing.assert_allclose(ds.downscale_mnist16(random_images).mean(axis=(1, 2)),
                               random_images[:, 2:26, 2:26].mean(axis=(1, 2)), rtol=0.05)
    directory = tmp_path / "m"
    ds.write_idx(directory.mkdir() or directory / "train-images-idx3-ubyte", images)
    ds.write_idx(directory / "train-labels-idx1-ubyte", np.arange(3))
    ds.write_idx(directory / "t10k-images-idx3-ubyte", images)
    ds.write_idx(directory / "t10k-labels-idx1-ubyte", np.arange(3))
    data = ds.load_dataset("mnist16", data_dir=directory)
    assert np.all(np.isinf(data.train.times[1]))  # black pixels do not spike
    assert np.all(data.train.times[0] == pytest.approx(0.15))
    assert np.isinf(data.train.times[2, 8 * 16 + 8]) and data.train.times[2, 0] == pytest.approx(0.15)


def test_unknown_dataset_and_bad_encoding():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*yinyang"):
        ds.load_dataset("cifar")
    with pytest.raises(ValueError, match=r"t_late must be a finite number in \(2, inf\), got 1.0"):
        ds.encode_times(np.zeros(3), t_early=2.0, t_late=1.0)
    # an infinite t_late made every Yin-Yang time inf and MNIST times NaN (0 * inf)
    with pytest.raises(ValueError, match=r"t_late must be a finite number .* got inf"):
        ds.load_dataset("yinyang", t_late=np.inf, sizes={"train": 10, "val": 5, "test": 5})
    with pytest.raises(ValueError, match=r"t_early must be a finite number in \[0, inf\), got '0.1'"):
        ds.encode_times(np.zeros(3), t_early="0.1")


def test_a_split_checks_its_rows_and_subset_sizes():
    with pytest.raises(ValueError, match=r"same number of samples, got 30, 30 and 40"):
        ds.Split(np.zeros((30, 4)), np.zeros((30, 4)), np.zeros(40, np.int64))
    with pytest.raises(ValueError, match=r"shape \(N, n_features\)"):
        ds.Split(np.zeros(30), np.zeros(30), np.zeros(30, np.int64))
    split = ds.Split(np.zeros((30, 4)), np.zeros((30, 4)), np.zeros(30, np.int64))
    with pytest.raises(ValueError, match="subset size must be an integer >= 0 or None, got -1"):
        split.subset(-1)  # it silently dropped the last sample
    assert len(split.subset(0)) == 0 and len(split.subset(10)) == 10 and split.subset(None) is split


@pytest.mark.parametrize("sizes, message", [
    ({"train": -5}, r"sizes\['train'\] must be a whole number of samples >= 0, got -5"),
    ({"val": 2.5}, r"sizes\['val'\] must be a whole number"),
    ({"test": True}, r"sizes\['test'\] must be a whole number"),
    ({"validation": 10}, "unknown split 'validation'"),
])
def test_bad_split_sizes_are_named(tmp_path, monkeypatch, sizes, message):
    with pytest.raises(ValueError, match=message):
        ds.load_yinyang(sizes=sizes)
    rng = np.random.default_rng(0)
    for name, shape in (("train-images-idx3-ubyte", (12, 28, 28)), ("train-labels-idx1-ubyte", (12,)),
                        ("t10k-images-idx3-ubyte", (5, 28, 28)), ("t10k-labels-idx1-ubyte", (5,))):
        ds.write_idx(tmp_path / name, rng.integers(0, 10 if len(shape) == 1 else 256, shape))
    with pytest.raises(ValueError, match=message):
        ds.load_mnist(tmp_path, sizes=sizes)
    assert len(ds.load_yinyang(sizes={"train": 7, "val": None}).val) == 1000  # None: the default


def test_a_given_data_dir_does_not_fall_back_to_the_environment(tmp_path, monkeypatch):
    _write_tiny_mnist(tmp_path / "good")
    monkeypatch.setenv(ds.MNIST_ENV_VAR, str(tmp_path / "good"))
    assert ds.load_dataset("mnist").train.times.shape[0] == 12  # the variable alone
    with pytest.raises(FileNotFoundError, match="typo"):
        ds.load_dataset("mnist", data_dir=tmp_path / "typo")


@pytest.mark.parametrize("name, pixels", [("mnist", 784), ("mnist16", 256)])
def test_a_split_of_size_zero_keeps_its_shape_and_cannot_be_trained_or_evaluated(
        tmp_path, monkeypatch, name, pixels):
    """sizes 0 used to fail in numpy's reshape; an empty split now has its shape, and the
    trainer refuses it by name instead of reporting 0 % of nothing."""
    from pynn_ttfs.training.recipe import improved_recipe
    from pynn_ttfs.training.trainer import Trainer
    monkeypatch.setattr(ds, "MNIST_N_TRAIN", 10)
    data = ds.load_dataset(name, data_dir=_thirteen_image_mnist(tmp_path),
                           sizes={"train": 5, "val": 0, "test": 0})
    assert data.val.times.shape == (0, pixels) and data.test.times.shape == (0, pixels)
    assert data.train.times.shape == (5, pixels)
    trainer = Trainer.for_dataset(improved_recipe("yinyang", hidden=[6], batch_size=5),
                                  pixels, 10)
    with pytest.raises(ValueError, match="cannot evaluate a split of 0 samples"):
        trainer.evaluate(data.test)
    with pytest.raises(ValueError, match="cannot train on a split of 0 samples"):
        trainer.train_epoch(data.val)
    with pytest.raises(ValueError, match="the validation split holds 0 samples"):
        trainer.train_epoch(data.train, val_split=data.val)
    assert trainer.epoch == 0 and trainer.history == []
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got -5"):
        trainer.evaluate(data.train, batch_size=-5)  # it reported 0 % and a loss of 0
    trainer.train_epoch(data.train)
    assert trainer.epoch == 1
