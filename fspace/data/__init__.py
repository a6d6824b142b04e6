"""Digit datasets and the distorted-digit stream.

The pure distortion function is ``fspace.data.distort.distort`` (not re-exported here,
so that ``fspace.data.distort`` stays the module).
"""

from fspace.data.digits import (
    DATASETS,
    Digits,
    load_dataset,
    load_mnist5k,
    load_sklearn_digits,
    split_heldout,
)
from fspace.data.distort import DistortedDigits, DistortionParams
from fspace.data.idx import load_idx, read_idx, write_idx

__all__ = [
    "DATASETS",
    "Digits",
    "DistortedDigits",
    "DistortionParams",
    "load_dataset",
    "load_idx",
    "load_mnist5k",
    "load_sklearn_digits",
    "read_idx",
    "split_heldout",
    "write_idx",
]
