"""Reading tensor files: into fresh tensors, into the caller's memory, or mapped.

Every reader opens the file with :func:`~fspace.store.files.open_regular` (a plain
file, within the size limit, not sparse), validates the header before touching the
tensors, allocates nothing the header did not declare and the file does not hold, and
verifies the checksum by streaming over the tensors' bytes.

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
        _fill(path, f, header, tensors, start)
    if verify:
        files.verify(path, tensors, meta)
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
        _fill(path, f, header, out, start)
    if verify:
        files.verify(path, dict(out), meta)
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


def _fill(path: Path, f, header: dict, out: Mapping[str, torch.Tensor], start: int) -> None:
    for name, info in header.items():
        begin, end = info["data_offsets"]
        if end == begin:
            continue
        target = memoryview(out[name].reshape(-1).view(torch.uint8).numpy())
        done = 0
        while done < end - begin:  # one call reads at most ~2 GiB on Linux
            try:
                got = os.preadv(f.fileno(), [target[done:]], start + begin + done)
            except OSError as e:
                raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
            if got == 0:
                raise CheckpointError(f"{path}: tensor {name!r} is truncated")
            done += got


def _fits(header: dict, out: Mapping[str, torch.Tensor]) -> bool:
    if set(header) != set(out):
        return False
    return all(
        files.DTYPES[info["dtype"]] == out[name].dtype
        and list(info["shape"]) == list(out[name].shape)
        and out[name].is_contiguous()
        for name, info in header.items()
    )
