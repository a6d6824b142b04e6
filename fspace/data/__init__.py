"""Digit datasets and the distorted-digit stream."""

from fspace.data.digits import (
    DATASETS,
    Digits,
    load_dataset,
    load_mnist5k,
    load_sklearn_digits,
    split_heldout,
)
from fspace.data.distort import DistortedDigits, DistortionParams, distort
from fspace.data.idx import load_idx, read_idx, write_idx

__all__ = [
    "DATASETS",
    "Digits",
    "DistortedDigits",
    "DistortionParams",
    "distort",
    "load_dataset",
    "load_idx",
    "load_mnist5k",
    "load_sklearn_digits",
    "read_idx",
    "split_heldout",
    "write_idx",
]
