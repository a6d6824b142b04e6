"""Read and write IDX files, the format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from fspace.data.base import Digits
from fspace.errors import ConfigError, DataError

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain, or gzipped when the name ends in ``.gz``)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(
            f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'}; "
            "expected 0000 followed by a type code and the number of dimensions)"
        )
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{path}: size {len(data)} bytes does not match its header "
            f"(shape {shape} of {dtype.name} needs {expected} bytes); the file is "
            "truncated or corrupt"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot be read ({error})") from error


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``)."""
    array = np.asarray(array)
    code = next((c for c, t in _TYPES.items() if t.type is array.dtype.type), None)
    if code is None:
        raise ConfigError(
            f"IDX files hold uint8, int8, int16, int32, float32 or float64, not {array.dtype}"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_TYPES[code], copy=False).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def idx_paths(directory: str | Path, split: str = "train") -> tuple[Path, Path]:
    """Find the image and label files of ``split`` ("train" or "test") in ``directory``.

    Accepts the usual names, plain or gzipped: ``train-images-idx3-ubyte`` (the
    MNIST site and Debian's ``dataset-fashion-mnist``), ``train-images.idx3-ubyte``
    and the ``t10k-`` equivalents for the test split.
    """
    if split not in _PREFIXES:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory of IDX files")
    prefix = _PREFIXES[split]
    found = []
    for kind, dims in (("images", 3), ("labels", 1)):
        names = [
            f"{prefix}-{kind}{sep}idx{dims}-ubyte{gz}" for sep in ("-", ".") for gz in ("", ".gz")
        ]
        hits = [directory / n for n in names if (directory / n).is_file()]
        if not hits:
            raise DataError(f"{directory}: no {split} {kind} file (looked for {', '.join(names)})")
        found.append(hits[0])
    return found[0], found[1]


def load_idx(directory: str | Path, split: str = "train", name: str | None = None) -> Digits:
    """Load the ``split`` images and labels of an MNIST-style IDX directory.

    Images are scaled from 0..255 to float32 [0, 1]. Missing or malformed files raise
    :class:`~fspace.errors.DataError` naming the file.

    >>> load_idx("/usr/share/datasets/fashion-mnist", "test")  # doctest: +SKIP
    """
    image_path, label_path = idx_paths(directory, split)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{image_path}: expected a 3-D uint8 array (n, rows, cols), got "
            f"{images.ndim}-D {images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{label_path}: expected a 1-D integer array, got {labels.ndim}-D {labels.dtype}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path.name}"
        )
    if len(labels) and labels.min() < 0:
        raise DataError(f"{label_path}: negative label {labels.min()}")
    n, h, w = images.shape
    return Digits(
        images=images.reshape(n, h * w).astype(np.float32) / np.float32(255.0),
        labels=labels.astype(np.int64),
        image_shape=(h, w),
        name=name or f"{Path(directory).name}-{split}",
    )
