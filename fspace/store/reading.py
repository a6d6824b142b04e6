"""Reading tensor files without the extra copies: into the caller's memory, or mapped.

:func:`fspace.store.files.read` reads a whole file into memory and lets safetensors
copy every tensor out of it; evaluating thousands of checkpoints, or reading thousands
of cached function vectors into one matrix, makes those copies a large share of the
work. :func:`read_into` reads each tensor's bytes straight into a tensor the caller
owns (a slot of a stack of checkpoints, a row of a matrix); :func:`read_mapped` maps
the file copy-on-write and returns views of its bytes. Both validate the header and
verify the checksum exactly as :func:`~fspace.store.files.read` does.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from fspace.errors import CheckpointError
from fspace.store import files


def read_mapped(
    path: str | os.PathLike, *, verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors of a tensor file as views of a private memory map, and its metadata.

    The tensors stay valid after the file is closed or replaced (the map keeps the
    pages); writing to them never reaches the file.
    """
    path = Path(path)
    f, size = files._open(path)
    with f:
        if size < 8:
            raise CheckpointError(f"{path}: truncated ({size} bytes); not a safetensors file")
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: cannot be mapped ({e})") from None
    n = files._header_length(path, mm[:8], size)
    header, meta = files._parse_header(path, mm[8 : 8 + n], size - 8 - n)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = files._DTYPES[info["dtype"]]
        count = (end - begin) // dtype.itemsize
        flat = (
            torch.frombuffer(mm, dtype=dtype, count=count, offset=8 + n + begin)
            if count
            else torch.empty(0, dtype=dtype)
        )
        tensors[name] = flat.reshape(info["shape"])
    # Version 1 files were checksummed without their metadata (as in files.read).
    covered = None if meta["format_version"] == 1 else meta
    if verify and meta.get("checksum") != files.checksum(tensors, covered):
        raise CheckpointError(
            f"{path}: checksum mismatch; the file was corrupted after it was written"
        )
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
    f, size = files._open(path)
    with f:
        n = files._header_length(path, f.read(8), size)
        header, meta = files._parse_header(path, f.read(n), size - 8 - n)
        if not _fits(header, out):
            return None
        for name, info in header.items():
            begin, end = info["data_offsets"]
            if end == begin:
                continue
            target = memoryview(out[name].reshape(-1).view(torch.uint8).numpy())
            try:
                got = os.preadv(f.fileno(), [target], 8 + n + begin)
            except OSError as e:
                raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
            if got != end - begin:
                raise CheckpointError(f"{path}: tensor {name!r} is truncated")
    covered = None if meta["format_version"] == 1 else meta
    if verify and meta.get("checksum") != files.checksum(dict(out), covered):
        raise CheckpointError(
            f"{path}: checksum mismatch; the file was corrupted after it was written"
        )
    return meta


def _fits(header: dict, out: Mapping[str, torch.Tensor]) -> bool:
    if set(header) != set(out):
        return False
    return all(
        files._DTYPES[info["dtype"]] == out[name].dtype
        and list(info["shape"]) == list(out[name].shape)
        and out[name].is_contiguous()
        for name, info in header.items()
    )
