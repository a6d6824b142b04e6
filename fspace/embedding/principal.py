"""Top principal components of many long rows, by randomised SVD over blocks of rows.

:func:`principal_coordinates` reads the matrix (possibly float16 and memory-mapped) in
blocks of consecutive rows, converted to float32 one block at a time, and runs the
products with torch on ``device`` (:mod:`fspace.device`; ``None`` or ``"auto"``: the
GPU if torch sees one); the result is on the CPU. :func:`column_chunks` and
:func:`row_blocks` are the two ways the neighbour searches
(:mod:`fspace.embedding.neighbors`) read such a matrix.

Example::

    principal = principal_coordinates(matrix, 100)   # .coords (n, 100), .mean, .basis
    placed = principal.project(new_rows)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fspace.device import memory_budget, on_gpu, resolve_device

CHUNK_BYTES = 64 * 2**20
"""Size of one block of the data, converted to float32 (and centred)."""


def column_chunks(
    matrix: np.ndarray,
    mean: torch.Tensor | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    device: torch.device | None = None,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Yield ``(columns, chunk, chunk_mean)``: those columns of all rows, centred, float32,
    on ``device`` (default the CPU).

    ``mean`` is the column mean to subtract (on ``device``); without it each chunk is
    centred on its own column means, which are the global ones since a chunk holds
    every row.
    """
    n, d = matrix.shape
    width = max(1, chunk_bytes // (4 * max(n, 1)))
    for start in range(0, d, width):
        cols = slice(start, min(start + width, d))
        # Always a copy: the chunk is centred in place, the caller's matrix never is.
        chunk = torch.from_numpy(np.array(matrix[:, cols], dtype=np.float32, order="C"))
        chunk = chunk.to(device) if device is not None else chunk
        mu = chunk.mean(0) if mean is None else mean[cols]
        yield cols, chunk.sub_(mu), mu


def fix_signs(coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``coords`` with each column's largest coordinate made positive, and the signs
    used (a component's sign is arbitrary; this makes it reproducible)."""
    signs = torch.sign(coords.gather(0, coords.abs().argmax(0, keepdim=True)))[0]
    signs[signs == 0] = 1
    return coords * signs, signs


@dataclass(frozen=True)
class Principal:
    """Top principal components of a matrix: ``coords = (matrix - mean) @ basis``."""

    coords: torch.Tensor  # (n, r)
    mean: torch.Tensor  # (d,)
    basis: torch.Tensor  # (d, r)

    def project(
        self,
        rows: np.ndarray,
        chunk_bytes: int = CHUNK_BYTES,
        device: str | torch.device | None = None,
    ) -> torch.Tensor:
        """Coordinates of new ``rows`` (m, d) on the same components, computed on
        ``device``; returned on the CPU."""
        where = resolve_device(device)
        mean, basis = self.mean.to(where), self.basis.to(where)
        out = torch.zeros(rows.shape[0], self.basis.shape[1], device=where)
        for cols, chunk, _ in column_chunks(rows, mean, chunk_bytes, where):
            out.addmm_(chunk, basis[cols])
        return out.cpu()


def row_blocks(
    matrix: np.ndarray,
    mean: torch.Tensor | None = None,
    block_bytes: int = CHUNK_BYTES,
    device: torch.device | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(rows, block)``: consecutive rows of ``matrix`` as a float32 copy on
    ``device`` (default the CPU), minus ``mean`` if given. Rows are contiguous in memory
    (and in a memory-mapped file), so a pass reads the matrix once, in order, whatever
    its dtype; only one block is ever converted to float32."""
    n, d = matrix.shape
    rows = max(1, block_bytes // (4 * max(d, 1)))
    for start in range(0, n, rows):
        part = slice(start, min(start + rows, n))
        block = torch.from_numpy(np.array(matrix[part], dtype=np.float32, order="C"))
        block = block.to(device) if device is not None else block
        yield part, block if mean is None else block.sub_(mean)


class RowPasses:
    """Passes over the row blocks of ``matrix`` on ``device`` (:func:`row_blocks`).

    On a GPU, when the matrix fits as float32 in a quarter of its budget
    (:func:`fspace.device.memory_budget`), the first pass's blocks stay there and later
    passes read them instead of the host's memory; elsewhere every pass reads anew.
    Calling it gives one pass, minus ``mean`` if given; blocks are not to be modified.
    """

    def __init__(self, matrix: np.ndarray, block_bytes: int, device: torch.device) -> None:
        self.matrix, self.block_bytes, self.device = matrix, block_bytes, device
        fits = on_gpu(device) and 4 * matrix.size <= memory_budget(device) // 4
        self.kept: list[tuple[slice, torch.Tensor]] | None = [] if fits else None
        self.complete = False

    def __call__(self, mean: torch.Tensor | None = None) -> Iterator[tuple[slice, torch.Tensor]]:
        if self.kept is None:
            yield from row_blocks(self.matrix, mean, self.block_bytes, self.device)
            return
        if not self.complete:
            self.kept = []
            for rows, block in row_blocks(self.matrix, None, self.block_bytes, self.device):
                self.kept.append((rows, block))
                yield rows, block if mean is None else block - mean
            self.complete = True
            return
        for rows, block in self.kept:
            yield rows, block if mean is None else block - mean


def principal_coordinates(
    matrix: np.ndarray,
    n_components: int,
    *,
    random_state: int = 0,
    oversample: int = 10,
    power_iterations: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
    device: str | torch.device | None = None,
) -> Principal:
    """The top ``n_components`` principal components of ``matrix``'s rows (randomised SVD).

    Halko, Martinsson & Tropp (2011), algorithm 4.4, over row blocks of ``chunk_bytes``
    (as float32): ``2 + 2 * power_iterations`` passes over the data, the column mean
    taken in the first. ``matrix`` may be float16 and memory-mapped; it is never copied
    whole. Each component's largest coordinate is positive; the same ``random_state``
    gives the same result. The products run on ``device`` (where the matrix stays
    between passes if it fits, :class:`RowPasses`); the result is on the CPU.
    """
    n, d = matrix.shape
    where = resolve_device(device)
    passes = RowPasses(matrix, chunk_bytes, where)
    width = min(n_components + oversample, n, d)
    gen = torch.Generator().manual_seed(int(random_state))  # on the CPU: the same anywhere
    omega = torch.randn(d, width, generator=gen).to(where)
    sketch = torch.empty(n, width, device=where)
    total = torch.zeros(d, dtype=torch.float64, device=where)
    for rows, block in passes():
        torch.mm(block, omega, out=sketch[rows])
        total += block.sum(0, dtype=torch.float64)
    mean = (total / n).float()
    sketch -= mean @ omega  # (X - 1 m^T) omega, the centring applied after the pass
    del omega
    q = torch.linalg.qr(sketch).Q
    for _ in range(power_iterations):
        z = _transposed_times(passes, mean, q)
        for rows, block in passes(mean):
            torch.mm(block, z, out=sketch[rows])
        q = torch.linalg.qr(sketch).Q
    bt = _transposed_times(passes, mean, q)
    values, vectors = torch.linalg.eigh((bt.T @ bt).double())
    r = min(n_components, width)
    values, vectors = values.flip(0)[:r].clamp(min=0), vectors.flip(1)[:, :r]
    coords, signs = fix_signs((q.double() @ vectors) * values.sqrt())
    basis = (bt.double() @ vectors) / values.sqrt().clamp(min=1e-30) * signs
    return Principal(coords.float().cpu(), mean.cpu(), basis.float().cpu())


def _transposed_times(passes: RowPasses, mean: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    # (X - 1 m^T)^T q, one pass over row blocks, on q's device.
    out = torch.zeros(passes.matrix.shape[1], q.shape[1], device=q.device)
    for rows, block in passes(mean):
        out.addmm_(block.T, q[rows])
    return out
