"""Reading tensor files: into fresh tensors, into the caller's memory, or mapped.

Every reader opens the file with :func:`~fspace.store.files.open_regular` (a plain
file, within the size limit, not sparse), validates the header before touching the
tensors, allocates nothing the header did not declare and the file does not hold, and
verifies the checksum. The readers that copy (:func:`read_copy`, :func:`read_into`) hash
each piece of a tensor right after reading it, while its bytes are still in the CPU's
cache: one pass over memory instead of two.

:func:`read_copy` returns tensors of their own; :func:`read_into` reads each tensor's
bytes straight into a tensor the caller owns (a slot of a stack of checkpoints, a row
of a matrix); :func:`read_mapped` maps the file copy-on-write and returns views of its
bytes, which costs no memory beyond the pages the caller touches.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from fspace.errors import CheckpointError
from fspace.store import files

_PIECE = 256 * 1024
"""Bytes read and hashed at a time: they are hashed while still in the CPU's cache."""


def read(
    path: str | os.PathLike, *, verify: bool = True, limit: int | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load all tensors of a tensor file and its fspace metadata, checking the checksum
    (the same as :func:`read_copy`, under the store's common verb)."""
    return read_copy(path, verify=verify, limit=limit)


def read_copy(
    path: str | os.PathLike, *, verify: bool = True, limit: int | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """All tensors of a tensor file, each in memory of its own, and its metadata."""
    path = Path(path)
    f, size = files.open_regular(path, limit)
    with f:
        header, meta, start = _header(path, f, size)
        tensors = {
            name: torch.empty(info["shape"], dtype=files.DTYPES[info["dtype"]])
            for name, info in header.items()
        }
        _fill(path, f, header, tensors, start, meta if verify else None)
    return tensors, meta


def read_mapped(
    path: str | os.PathLike, *, verify: bool = True, limit: int | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors of a tensor file as views of a private memory map, and its metadata.

    The tensors stay valid after the file is closed or replaced (the map keeps the
    pages); writing to them never reaches the file.
    """
    path = Path(path)
    f, size = files.open_regular(path, limit)
    with f:
        header, meta, start = _header(path, f, size)
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if size else None
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot be mapped ({e})") from None
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = files.DTYPES[info["dtype"]]
        count = (end - begin) // dtype.itemsize
        flat = (
            torch.frombuffer(mm, dtype=dtype, count=count, offset=start + begin)
            if count
            else torch.empty(0, dtype=dtype)
        )
        tensors[name] = flat.reshape(info["shape"])
    if verify:
        files.verify(path, tensors, meta)
    return tensors, meta


def read_into(
    path: str | os.PathLike, out: Mapping[str, torch.Tensor], *, verify: bool = True
) -> dict | None:
    """Read a tensor file's tensors straight into the contiguous tensors of ``out``.

    ``out`` must name exactly the file's tensors with their shapes and dtypes; if it
    does not, nothing is read and None is returned (the caller decides what that
    means). Returns the file's metadata. On a checksum mismatch ``out`` holds the bad
    bytes and CheckpointError is raised.
    """
    path = Path(path)
    f, size = files.open_regular(path)
    with f:
        header, meta, start = _header(path, f, size)
        if not _fits(header, out):
            return None
        _fill(path, f, header, out, start, meta if verify else None)
    return meta


def _header(path: Path, f, size: int) -> tuple[dict, dict, int]:
    """The validated header of the open file ``f``, and where its data begins."""
    try:
        n = files.header_length(path, f.read(8), size)
        raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    header, meta = files.parse_header(path, raw, size - 8 - n)
    return header, meta, 8 + n


def _fill(
    path: Path, f, header: dict, out: Mapping[str, torch.Tensor], start: int, meta: dict | None
) -> None:
    """Read every tensor of ``header`` into ``out``; with ``meta``, hash each piece as it
    arrives (in the checksum's name order) and check the stored checksum."""
    digest = files.Checksum() if meta is not None else None
    for name in sorted(header):
        if digest is not None:
            digest.tensor(name, out[name])
        begin, end = header[name]["data_offsets"]
        if end == begin:
            continue
        target = memoryview(out[name].reshape(-1).view(torch.uint8).numpy())
        done = 0
        while done < end - begin:
            # Pieces small enough to stay in the CPU's cache between the read and the hash.
            piece = target[done : done + _PIECE] if digest is not None else target[done:]
            try:
                got = os.preadv(f.fileno(), [piece], start + begin + done)
            except OSError as e:
                raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
            if got == 0:
                raise CheckpointError(f"{path}: tensor {name!r} is truncated")
            if digest is not None:
                digest.update(piece[:got])
            done += got
    if digest is not None:
        digest.check(path, meta)


def _fits(header: dict, out: Mapping[str, torch.Tensor]) -> bool:
    if set(header) != set(out):
        return False
    return all(
        files.DTYPES[info["dtype"]] == out[name].dtype
        and list(info["shape"]) == list(out[name].shape)
        and out[name].is_contiguous()
        for name, info in header.items()
    )
