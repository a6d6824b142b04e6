"""Reading and writing the safetensors files an experiment is made of.

Every tensor file fspace writes is a plain safetensors file whose ``__metadata__`` holds
one JSON document under the key ``"fspace"``: what the file is, and a SHA-256 checksum
of its tensors and of that document itself. The header is parsed here by hand, with
size limits and type checks, so that metadata can be read without touching the tensors
and a hostile header cannot make us allocate gigabytes, hang or crash the caller: every
problem with a file is a :class:`~fspace.errors.CheckpointError` naming it. Nothing is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path
from typing import Any, BinaryIO

import torch

from fspace import _atomic
from fspace.errors import CheckpointError, ConfigError
from fspace.store import layout

# Version 1 checksums covered the tensors only; version 2 covers the metadata as well.
FORMAT_VERSION = 2
MAX_HEADER_BYTES = 64 * 1024 * 1024  # safetensors' own limit is 100 MB; ours are tiny
MAX_FILE_BYTES = 256 * 1024**3
"""Largest tensor file fspace reads (checkpoints of very large models included)."""
MAX_PROBE_BYTES = 16 * 1024**3
"""Largest probe suite file fspace reads: the whole suite is loaded into memory."""
MAX_CACHE_BYTES = 64 * 1024**3
"""Largest cache entry fspace reads (a distance matrix of 90,000 checkpoints)."""
SPARSE_RATIO = 64
SPARSE_MIN_BYTES = 16 * 1024**2
"""A file over SPARSE_MIN_BYTES that occupies less than 1/SPARSE_RATIO of its size on
disk is sparse and refused (compressing filesystems rarely reach 1/64 on real data)."""
_CHUNK = 16 * 1024 * 1024
DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def checksum(tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None = None) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order, then
    over ``meta`` (as sorted JSON, leaving out its own ``"checksum"``) if given."""
    h = Checksum()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.tensor(name, t)
        # reshape(-1) first: a 0-dim tensor (BatchNorm's num_batches_tracked) has no byte view
        raw = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""
        for i in range(0, len(raw), _CHUNK):  # in slices: no copy of a mapped tensor
            h.update(raw[i : i + _CHUNK])
    return h.finish(meta)


class Checksum:
    """The running SHA-256 of :func:`checksum`, fed by a reader as the bytes arrive:
    :meth:`tensor` for each tensor in name order, then its bytes through :meth:`update`,
    then :meth:`finish` (or :meth:`check`) with the metadata."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def tensor(self, name: str, t: torch.Tensor) -> None:
        """Start tensor ``name``: its name, dtype and shape."""
        self._h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())

    def update(self, data) -> None:
        """The next bytes of the current tensor (any buffer)."""
        self._h.update(data)

    def finish(self, meta: dict[str, Any] | None = None) -> str:
        """The hex digest, after ``meta`` (without its ``"checksum"``) if given."""
        if meta is not None:
            body = {k: v for k, v in meta.items() if k != "checksum"}
            self._h.update(b"meta|" + json.dumps(body, sort_keys=True).encode())
        return self._h.hexdigest()

    def check(self, path: Path, meta: dict) -> None:
        """Raise CheckpointError unless the bytes fed match ``meta``'s stored checksum."""
        _compare(path, meta, self.finish(_covered(meta)))


def dumps(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """Serialise ``tensors`` with ``meta`` (plus a checksum) as safetensors bytes."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    # Checksum the metadata as a reader will parse it back, so both sides hash the same.
    try:
        meta = json.loads(json.dumps({**meta, "format_version": FORMAT_VERSION}, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"metadata cannot be stored as JSON ({e}); use finite numbers") from None
    meta["checksum"] = checksum(tensors, meta)
    return save(tensors, metadata={"fspace": json.dumps(meta, sort_keys=True)})


def write(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    *,
    exclusive: bool = False,
) -> Path:
    """Write a tensor file atomically (see :mod:`fspace._atomic`)."""
    return _atomic.write_bytes(path, dumps(tensors, meta), exclusive=exclusive)


def open_regular(path: str | os.PathLike, limit: int | None = None) -> tuple[BinaryIO, int]:
    """Open a regular file for reading and return it with its size, after checking the
    size against ``limit`` (default :data:`MAX_FILE_BYTES`) and the space the file
    really occupies on disk.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer;
    anything but a regular file (FIFO, device, directory) is then refused. A file that
    claims far more bytes than it occupies is sparse: fspace never writes one, and
    reading its holes would take time and memory for nothing, so it is refused before
    anything is read.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{path}: not a regular file; fspace reads only plain files")
        _check_size(path, st, MAX_FILE_BYTES if limit is None else limit)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb"), st.st_size


def _check_size(path: Path, st: os.stat_result, limit: int) -> None:
    if st.st_size > limit:
        raise CheckpointError(
            f"{path}: {st.st_size} bytes, more than the {limit} fspace reads from such a file"
        )
    allocated = getattr(st, "st_blocks", None)  # in 512-byte units, where the OS has it
    sparse = allocated is not None and allocated * 512 * SPARSE_RATIO < st.st_size
    if sparse and st.st_size > SPARSE_MIN_BYTES:
        raise CheckpointError(
            f"{path}: sparse file ({st.st_size} bytes, {allocated * 512} on disk); "
            f"fspace never writes one, so it is damaged or not fspace's"
        )


def read_small(path: str | os.PathLike, limit: int) -> bytes:
    """The whole content of a small plain file (a run.json, a marker), at most ``limit``
    bytes; CheckpointError naming it otherwise."""
    f, size = open_regular(path, limit)
    try:
        with f:
            return f.read(size)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None


def header_length(path: Path, head: bytes, size: int) -> int:
    """The header length a tensor file's first 8 bytes ``head`` announce, checked
    against the file's ``size`` and :data:`MAX_HEADER_BYTES`."""
    if len(head) < 8:
        raise CheckpointError(f"{path}: truncated ({size} bytes); not a safetensors file")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise CheckpointError(
            f"{path}: header claims {n} bytes but the file holds {size}; "
            f"the file is truncated or not a safetensors file"
        )
    return n


def read_header(
    path: str | os.PathLike, *, limit: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(tensor_index, fspace_meta)`` of a tensor file without reading its tensors."""
    path = Path(path)
    f, size = open_regular(path, limit)
    try:
        with f:
            n = header_length(path, f.read(8), size)
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    return parse_header(path, raw, size - 8 - n)


def parse_header(path: Path, raw: bytes, data_size: int) -> tuple[dict, dict]:
    """Validate a tensor file's header ``raw``: return its tensor index and fspace metadata."""
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("not an object")
        meta_raw = (header.pop("__metadata__", None) or {}).get("fspace")
        meta = json.loads(meta_raw) if meta_raw is not None else None
    except (ValueError, TypeError, AttributeError, RecursionError) as e:
        # RecursionError: deeply nested JSON; UnicodeDecodeError is a ValueError.
        raise CheckpointError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not written by fspace (no fspace metadata in its header)")
    _check_meta(path, meta)
    for name, info in header.items():
        _check_entry(path, name, info, data_size)
    _check_layout(path, header, data_size)
    return header, meta


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_metrics(x: Any) -> bool:
    return isinstance(x, dict) and all(_is_number(v) for v in x.values())


# Fields fspace itself writes, and what each must be; other fields are left alone.
_FIELDS = {
    "checksum": (lambda x: isinstance(x, str), "a string"),
    "epoch": (lambda x: _is_int(x) and 0 <= x <= layout.MAX_EPOCH, "an int in the epoch range"),
    "step": (lambda x: _is_int(x) and 0 <= x <= layout.MAX_STEP, "an int in the step range"),
    "metrics": (_is_metrics, "an object of numbers"),
    "created": (_is_number, "a number"),
}


def _check_meta(path: Path, meta: dict[str, Any]) -> None:
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise CheckpointError(f"{path}: fspace metadata has no valid format_version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer fspace (format {version}; this one reads up to "
            f"{FORMAT_VERSION}); upgrade fspace to read it"
        )
    for key, (ok, what) in _FIELDS.items():
        if key in meta and not ok(meta[key]):
            raise CheckpointError(f"{path}: metadata field {key!r} must be {what}")


def _check_entry(path: Path, name: str, info: Any, data_size: int) -> None:
    try:
        dtype = DTYPES.get(info["dtype"])
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry") from None
    if dtype is None:
        raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']!r}")
    if not all(_is_int(x) for x in [begin, end, *shape]):
        raise CheckpointError(f"{path}: tensor {name!r} has non-integer shape or offsets")
    if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_size:
        raise CheckpointError(f"{path}: tensor {name!r} lies outside the file; it is truncated")
    numel = 1
    for s in shape:
        numel *= s
    if end - begin != numel * dtype.itemsize:
        raise CheckpointError(f"{path}: tensor {name!r} has {end - begin} bytes for shape {shape}")


def _check_layout(path: Path, header: dict[str, Any], data_size: int) -> None:
    # As safetensors requires: the tensors tile the data exactly, with no overlap, gap or
    # trailing bytes. Checked here too, so that every reader agrees on which files are valid.
    position = 0
    for begin, end, name in sorted((*info["data_offsets"], name) for name, info in header.items()):
        if begin != position:
            raise CheckpointError(f"{path}: tensor {name!r} overlaps another or follows a gap")
        position = end
    if position != data_size:
        raise CheckpointError(f"{path}: {data_size - position} bytes follow the last tensor")


def verify(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Raise CheckpointError unless ``tensors`` and ``meta`` match the stored checksum."""
    _compare(path, meta, checksum(tensors, _covered(meta)))


def _covered(meta: dict) -> dict | None:
    # Version 1 files were checksummed without their metadata.
    return None if meta["format_version"] == 1 else meta


def _compare(path: Path, meta: dict, digest: str) -> None:
    if meta.get("checksum") != digest:
        raise CheckpointError(
            f"{path}: checksum mismatch; the file was corrupted after it was written"
        )
