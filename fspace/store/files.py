"""Reading and writing the safetensors files an experiment is made of.

Every tensor file fspace writes is a plain safetensors file whose ``__metadata__`` holds
one JSON document under the key ``"fspace"``: what the file is, and a SHA-256 checksum
of its tensors. The header is parsed here by hand, with size limits, so that metadata
can be read without touching the tensors and a hostile header cannot make us allocate
gigabytes. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch

from fspace import _atomic
from fspace.errors import CheckpointError

FORMAT_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024 * 1024  # safetensors' own limit is 100 MB; ours are tiny
_DTYPES = {
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


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dumps(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """Serialise ``tensors`` with ``meta`` (plus a checksum) as safetensors bytes."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {**meta, "format_version": FORMAT_VERSION, "checksum": checksum(tensors)}
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


def _header(path: Path, head: bytes, size: int) -> dict[str, Any]:
    if len(head) < 8:
        raise CheckpointError(f"{path}: truncated ({size} bytes); not a safetensors file")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise CheckpointError(
            f"{path}: header claims {n} bytes but the file holds {size}; "
            f"the file is truncated or not a safetensors file"
        )
    return {"length": n}


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(tensor_index, fspace_meta)`` of a tensor file without reading its tensors."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = _header(path, f.read(8), size)["length"]
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    return _parse_header(path, raw, size - 8 - n)


def _parse_header(path: Path, raw: bytes, data_size: int) -> tuple[dict, dict]:
    try:
        header = json.loads(raw)
        if not isinstance(header, dict):
            raise ValueError("not an object")
        meta_raw = (header.pop("__metadata__", None) or {}).get("fspace")
        meta = json.loads(meta_raw) if meta_raw is not None else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: the header is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not written by fspace (no fspace metadata in its header)")
    for name, info in header.items():
        _check_entry(path, name, info, data_size)
    return header, meta


def _check_entry(path: Path, name: str, info: Any, data_size: int) -> None:
    try:
        dtype = _DTYPES[info["dtype"]]
        begin, end = (int(x) for x in info["data_offsets"])
        shape = [int(s) for s in info["shape"]]
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry") from None
    numel = 1
    for s in shape:
        numel *= s
    itemsize = torch.empty((), dtype=dtype).element_size()
    if min(shape, default=0) < 0 or not 0 <= begin <= end <= data_size:
        raise CheckpointError(f"{path}: tensor {name!r} lies outside the file; it is truncated")
    if end - begin != numel * itemsize:
        raise CheckpointError(f"{path}: tensor {name!r} has {end - begin} bytes for shape {shape}")


def read(path: str | os.PathLike, *, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Load all tensors of a tensor file and its fspace metadata, checking the checksum."""
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    n = _header(path, data[:8], len(data))["length"]
    _, meta = _parse_header(path, data[8 : 8 + n], len(data) - 8 - n)
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types for bad bytes
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from None
    if verify and meta.get("checksum") != checksum(tensors):
        raise CheckpointError(
            f"{path}: checksum mismatch; the file was corrupted after it was written"
        )
    return tensors, meta
