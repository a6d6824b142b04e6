"""Cached function vectors: one small tensor file per checkpoint, probe suite and output.

``runs/RUN/vectors/FINGERPRINT-OUTPUT/CHECKPOINT.safetensors`` holds one 1-D tensor
``vector``. Each file is written atomically by whoever computed it (the Recorder
online, :func:`fspace.evaluate` offline, any number of processes at once) and read
through a memory map straight into a row of the caller's matrix.

The stored dtype per output is :data:`STORAGE_DTYPES`. It is float32 throughout, so
a cached vector is exactly the one the model produced. float16 halves the files and
the bytes read and checksummed; for probabilities it adds at most 2.4e-4 per value,
which ``benchmarks/bench_memory.py`` shows no embedding can tell apart (it embeds the
same vectors both ways and compares); set ``STORAGE_DTYPES["prob"] = torch.float16``
to store them so. Log-probabilities and logits are unbounded and should stay float32.
Files of either dtype are always readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fspace.errors import CheckpointError, ProbeMismatchError
from fspace.store import files, layout
from fspace.store.reading import read_into, read_mapped

if TYPE_CHECKING:
    from fspace.store.experiment import CheckpointInfo

STORAGE_DTYPES = {"prob": torch.float32, "logprob": torch.float32, "logits": torch.float32}
"""The dtype new function vectors are stored in, per output (see the module docstring)."""


def storage_dtype(output: str) -> torch.dtype:
    """The dtype function vectors holding ``output`` are stored in."""
    return STORAGE_DTYPES.get(output, torch.float32)


def as_stored(v: torch.Tensor, output: str) -> torch.Tensor:
    """``v`` as float32 with exactly the values a later :func:`load` returns."""
    return v.reshape(-1).to(storage_dtype(output)).float()


def save(root: Path, ckpt: CheckpointInfo, fingerprint: str, output: str, v: torch.Tensor) -> Path:
    """Write the function vector of ``ckpt`` (atomically, replacing an older one)."""
    path = layout.vector_path(root, ckpt.run, fingerprint, output, ckpt.name)
    meta = {"kind": "vector", "fingerprint": fingerprint, "output": output, "checkpoint": ckpt.key}
    stored = v.detach().reshape(-1).to("cpu", storage_dtype(output))
    return files.write(path, {"vector": stored}, meta)


def load(
    root: Path,
    ckpt: CheckpointInfo,
    fingerprint: str,
    output: str,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The cached function vector of ``ckpt`` as float32, or None if there is none.

    With ``out`` (a float32 tensor of the vector's length, e.g. a row of a matrix) the
    values are converted straight into it and ``out`` is returned.
    """
    path = layout.vector_path(root, ckpt.run, fingerprint, output, ckpt.name)
    if not path.exists():
        return None
    if out is not None:
        meta = read_into(path, {"vector": out})  # no copy but into ``out``
        if meta is not None:
            _check_suite(path, meta, fingerprint)
            return out
    tensors, meta = read_mapped(path)  # another dtype or length than ``out``
    _check_suite(path, meta, fingerprint)
    vector = tensors.get("vector")
    if vector is None or vector.dim() != 1:
        raise CheckpointError(f"{path}: holds no 1-D tensor 'vector'; delete it to recompute")
    if out is None:
        return vector.float() if vector.dtype != torch.float32 else vector.clone()
    if out.shape != vector.shape:
        raise ProbeMismatchError(
            f"{path}: function vector of length {vector.numel()}, but the other checkpoints' "
            f"have {out.numel()}; the models' output sizes differ"
        )
    return out.copy_(vector)


def _check_suite(path: Path, meta: dict, fingerprint: str) -> None:
    if meta.get("fingerprint") != fingerprint:
        raise ProbeMismatchError(f"{path}: cached for probe suite {meta.get('fingerprint')}")


def size(root: Path, fingerprint: str, output: str) -> int | None:
    """Length of the function vectors cached for ``fingerprint`` and ``output`` in any
    run (read from one file header), or None if there are none yet."""
    for path in root.glob(f"runs/*/vectors/{fingerprint}-{output}/*.safetensors"):
        if path.name.startswith("."):
            continue
        try:
            header, _ = files.read_header(path)
            return int(header["vector"]["shape"][0])
        except (CheckpointError, KeyError, IndexError, TypeError, ValueError):
            continue
    return None
