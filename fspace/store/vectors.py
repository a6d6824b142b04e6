"""Cached function vectors: one small tensor file per checkpoint, probe suite and output.

``runs/RUN/vectors/FINGERPRINT-OUTPUT/CHECKPOINT.safetensors`` holds one 1-D tensor
``vector``; OUTPUT names the vector form and its settings (``prob``,
``sketch.k=1024``). Its header also records how the vector was computed (the output
kind, form, parameters and layout), which is how an experiment remembers what it was
recorded with. Each file is written atomically by whoever computed it (the Recorder
online, :func:`fspace.evaluate` offline, any number of processes at once) and read
through a memory map straight into a row of the caller's matrix.

A vector is stored in the float dtype it is given. Probabilities (the ``prob`` form,
the default) are stored as float16 unless ``dtype="float32"`` is asked for (see
``Form.storage_dtype`` and the form's ``dtype`` parameter in :mod:`fspace.outputs`):
half the files and the bytes read, memory-mapped and checksummed, for at most
:data:`FLOAT16_TOLERANCE` per value. ``benchmarks/bench_memory.py`` measures what that
does to maps and statistics against what changing the seed does (the tolerances the
tests hold it to: :data:`STATISTIC_TOLERANCE`, :data:`MAP_TOLERANCE`). Other forms
(log-probabilities, logits, raw values, sketches) stay float32. Files of either dtype
are always readable, as float32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch

from fspace.errors import CheckpointError, ProbeMismatchError
from fspace.store import files, layout
from fspace.store.reading import read_into, read_mapped


class Checkpoint(Protocol):
    """What a vector file needs of a checkpoint (:class:`fspace.store.CheckpointInfo`)."""

    run: str

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...


FLOAT16_TOLERANCE = 2.5e-4
"""Largest change float16 storage makes to a probability (values in [0, 1]: half the
float16 spacing below 1, 2**-12)."""
STATISTIC_TOLERANCE = 0.01
"""Float16 storage may change a statistic of function vectors (distances, path lengths)
by at most this fraction of what another seed changes it (measured: under 0.001)."""
MAP_TOLERANCE = 0.005
"""Float16 storage may change a map's trustworthiness and continuity by at most this
much (measured: under 0.001). The layout of a t-SNE map moves by about as much as with
another random seed (Procrustes disparity 0.9-1.1x the seed's on small maps, 0.4x on
2,000 checkpoints): t-SNE turns any change of 1e-4 into a different layout of the same
neighbourhoods."""

STORED_DTYPES = (torch.float32, torch.float16)
"""The dtypes a function vector is stored in; others are stored as float32."""


def save(
    root: Path,
    ckpt: Checkpoint,
    fingerprint: str,
    output: str,
    v: torch.Tensor,
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the function vector of ``ckpt`` (atomically, replacing an older one), with
    ``meta`` (how it was computed) in its header."""
    path = layout.writable(root, layout.vector_path(root, ckpt.run, fingerprint, output, ckpt.name))
    body = {**(meta or {}), "kind": "vector", "fingerprint": fingerprint, "output": output}
    body["checkpoint"] = ckpt.key
    dtype = v.dtype if v.dtype in STORED_DTYPES else torch.float32
    stored = v.detach().reshape(-1).to("cpu", dtype)
    return files.write(path, {"vector": stored}, body)


def load(
    root: Path,
    ckpt: Checkpoint,
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


def outputs(root: Path, fingerprint: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``(fingerprint, output)`` of every kind of function vector cached in any run,
    each with the header metadata of one of its files (the first readable one)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    runs = root / "runs"
    if not runs.is_dir():
        return found
    for run in sorted(os.scandir(runs), key=lambda e: e.name):
        vectors = Path(run.path) / "vectors"
        if run.name.startswith(".") or not vectors.is_dir():
            continue
        for entry in sorted(os.scandir(vectors), key=lambda e: e.name):
            fp, _, output = entry.name.partition("-")
            if not output or (fingerprint is not None and fp != fingerprint):
                continue
            if (fp, output) not in found:
                meta = _first_header(Path(entry.path))
                if meta is not None:
                    found[(fp, output)] = meta
    return found


def _first_header(directory: Path) -> dict[str, Any] | None:
    for path in sorted(directory.glob("*.safetensors")):
        if path.name.startswith("."):
            continue
        try:
            return files.read_header(path)[1]
        except CheckpointError:
            continue
    return None
