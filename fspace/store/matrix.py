"""Many cached function vectors read straight into the rows of one matrix, in parallel.

:func:`allocate` makes the ``(n, d)`` matrix once: in memory, or memory-mapped on a
temporary file that is unlinked as soon as it is mapped (nothing is left on disk, and
the kernel may write its pages out instead of holding them all in memory).
:func:`read_rows` then reads every checkpoint's cached vector into its row, on a few
threads: opening a file, reading it with ``preadv`` and hashing its bytes release the
GIL, so the threads overlap where one checkpoint at a time would wait.

Example::

    matrix = allocate(len(ckpts), 10_000, np.float16, memmap=True)
    found = read_rows(exp.path, ckpts, suite.fingerprint, "prob", matrix)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from fspace.errors import ConfigError, ProbeMismatchError, StoreWriteError
from fspace.store import files, layout
from fspace.store import vectors as vector_files

READ_THREADS = 4
"""Threads reading vector files; file system calls and hashing overlap on them."""
ROWS_PER_TASK = 512
"""Checkpoints one thread reads in one task (fewer tasks, less scheduling per file)."""


def allocate(
    n: int, d: int, dtype: np.dtype | type, memmap: bool | str | os.PathLike = False
) -> np.ndarray:
    """An uninitialised ``(n, d)`` matrix of ``dtype``, in memory or memory-mapped.

    ``memmap=True`` maps it on a temporary file in the system's temporary directory,
    ``memmap=DIRECTORY`` in that directory. The file is unlinked at once (its space is
    freed when the matrix is garbage-collected) and its blocks are reserved up front, so
    a full disk is a StoreWriteError here rather than a crash while filling it.
    """
    nbytes = int(n) * int(d) * np.dtype(dtype).itemsize
    if memmap is False or memmap is None or nbytes == 0:
        return np.empty((n, d), dtype=dtype)
    directory = None if memmap is True else Path(memmap)
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"memmap={str(memmap)!r} is not a directory; pass True or a directory")
    try:
        with tempfile.TemporaryFile(dir=directory, prefix="fspace-matrix-") as f:
            os.posix_fallocate(f.fileno(), 0, nbytes)
            return np.memmap(f, dtype=dtype, mode="r+", shape=(n, d))
    except OSError as e:
        where = directory or tempfile.gettempdir()
        raise StoreWriteError(
            f"cannot map a {nbytes / 2**30:.1f} GiB matrix in {where} ({e.strerror}); free "
            f"space there or pass memmap= another directory"
        ) from None


def first_cached(
    root: Path, ckpts: Sequence, fingerprint: str, output: str
) -> tuple[int, int, np.dtype] | None:
    """Index, length and stored dtype of the first cached vector among ``ckpts`` (from
    its header only), or None if none of them has one."""
    for i, ckpt in enumerate(ckpts):
        path = layout.vector_path(root, ckpt.run, fingerprint, output, ckpt.name)
        if not path.exists():
            continue
        header, _ = files.read_header(path)
        info = header.get("vector") or {}
        dtype = files.DTYPES.get(info.get("dtype"))
        shape = info.get("shape") or [0]
        stored = np.float16 if dtype == torch.float16 else np.float32
        return i, int(np.prod(shape)), np.dtype(stored)
    return None


def read_rows(
    root: Path,
    ckpts: Sequence,
    fingerprint: str,
    output: str,
    matrix: np.ndarray,
    *,
    on_mismatch: Callable[[int], None] | None = None,
    on_done: Callable[[int], None] | None = None,
    threads: int = READ_THREADS,
) -> np.ndarray:
    """Read the cached vector of ``ckpts[i]`` into ``matrix[i]`` for every ``i``; return
    which rows were found (a boolean array).

    A file of the matrix's dtype and length is read straight into its row; another dtype
    is converted into it. A vector of another length (or probe suite) calls
    ``on_mismatch(i)``, which raises the caller's error (without it, ProbeMismatchError).
    ``on_done(count)`` reports progress from the calling thread.
    """
    n = len(ckpts)
    if matrix.shape[0] != n:
        raise ConfigError(f"a matrix of {matrix.shape[0]} rows cannot hold {n} checkpoints")
    found = np.zeros(n, dtype=bool)

    def task(a: int, b: int) -> int:
        for i in range(a, b):
            ckpt = ckpts[i]
            row = torch.from_numpy(matrix[i])
            try:
                got = vector_files.load(root, ckpt, fingerprint, output, out=row)
            except ProbeMismatchError:
                if on_mismatch is None:
                    raise
                on_mismatch(i)
                got = row
            found[i] = got is not None
        return b - a

    bounds = [(a, min(a + ROWS_PER_TASK, n)) for a in range(0, n, ROWS_PER_TASK)]
    if threads <= 1 or len(bounds) <= 1:
        for a, b in bounds:
            done = task(a, b)
            if on_done is not None:
                on_done(done)
        return found
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fspace-read") as pool:
        for done in pool.map(lambda ab: task(*ab), bounds):  # in order; errors re-raised
            if on_done is not None:
                on_done(done)
    return found
