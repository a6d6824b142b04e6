"""Candidate neighbours re-ranked by their exact distances in the full space.

A search in a few principal components (:mod:`fspace.embedding.ivf`) finds most of a
point's nearest neighbours, not all: function vectors of different runs may agree on
their top components and differ in the rest. :func:`rerank_neighbors` takes such a
search's candidates, more of them than are needed, and keeps the ``k`` nearest by their
exact Euclidean distances over every value of the vectors.

The query rows are taken in blocks of consecutive rows, so the matrix (possibly float16
and memory-mapped) is read in order; the candidates of a whole block are read once, in
increasing row order, converted to float32 and centred, and the block's distances to all
of them come from one matrix product with float32 accumulation. Each row's neighbours
are chosen among the candidates of its whole block, a superset of its own: consecutive
rows are usually checkpoints of one run, whose candidates overlap. The result is exact
wherever the true neighbours are among those candidates. On a GPU (``device``,
:mod:`fspace.device`) the products run there, with chunks of candidates sized to a
share of its free memory; the blocks of query rows, and so the result, are the same.

Example::

    coarse = ivf_neighbors(coords, k=150)              # in 100 principal components
    found = rerank_neighbors(matrix, coarse.indices, k=90, mean=principal.mean)
"""

from __future__ import annotations

import numpy as np
import torch

from fspace.device import memory_budget, on_gpu, resolve_device
from fspace.embedding.ivf import Found
from fspace.errors import ConfigError

BLOCK_ROWS = 128
"""Query rows that share one read of their candidates."""
CHUNK_BYTES = 64 * 2**20
"""Largest float32 block of candidate rows held at once (on the CPU)."""


def rerank_neighbors(
    matrix: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    mean: torch.Tensor | np.ndarray | None = None,
    block_rows: int = BLOCK_ROWS,
    chunk_bytes: int | None = None,
    device: str | torch.device | None = None,
) -> Found:
    """The ``k`` nearest rows of every row of ``matrix`` (itself excluded) among the
    ``candidates`` (``(n, c)`` row indices, ``c >= k``) of the rows in its block of
    ``block_rows`` consecutive rows, by exact Euclidean distance.

    ``mean`` is subtracted from every row before the products (the column mean, if
    known, keeps the float32 products accurate); the distances do not depend on it. The
    products run on ``device``; ``chunk_bytes`` bounds the candidate rows held at once
    (default :data:`CHUNK_BYTES`, on a GPU a share of its free memory).
    """
    n, d = _check(matrix, candidates, k, block_rows)
    where = resolve_device(device)
    if chunk_bytes is None:
        chunk_bytes = memory_budget(where) // 4 if on_gpu(where) else CHUNK_BYTES
    centre = torch.zeros(d) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
    if centre.shape != (d,):
        raise ConfigError(f"mean has shape {tuple(centre.shape)}; expected ({d},)")
    centre = centre.to(where)
    dist = torch.empty(n, k, device=where)
    index = torch.empty(n, k, dtype=torch.int64, device=where)
    sqnorms = torch.empty(n, device=where)
    for a in range(0, n, block_rows):
        rows = np.arange(a, min(a + block_rows, n))
        union = np.unique(np.concatenate([candidates[rows].ravel(), rows]))
        query = _rows(matrix, rows, centre)
        sq_q = (query * query).sum(1)
        sqnorms[rows] = sq_q
        best_d = torch.full((len(rows), k), float("inf"), device=where)
        best_i = torch.zeros((len(rows), k), dtype=torch.int64, device=where)
        step = max(k, chunk_bytes // (4 * max(d, 1)))
        for b in range(0, len(union), step):
            part = union[b : b + step]
            block = _rows(matrix, part, centre)
            sq = (sq_q[:, None] + (block * block).sum(1)[None]).sub_(query @ block.T, alpha=2)
            sq.clamp_(min=0)
            itself = torch.from_numpy(rows[:, None] == part[None]).to(where)
            sq[itself] = float("inf")  # never itself
            cols = torch.from_numpy(part).to(where).expand(len(rows), -1)
            merged_d = torch.cat([best_d, sq], 1)
            merged_i = torch.cat([best_i, cols], 1)
            best_d, pos = torch.topk(merged_d, k, dim=1, largest=False, sorted=True)
            best_i = torch.gather(merged_i, 1, pos)
        if torch.isinf(best_d[:, -1]).any():
            row = int(rows[int(torch.isinf(best_d[:, -1]).int().argmax())])
            raise ConfigError(
                f"row {row} has fewer than k={k} distinct candidates other than itself in "
                f"its block; pass more candidates per row"
            )
        dist[rows], index[rows] = best_d, best_i
    distances = dist.sqrt_().double().cpu().numpy()
    return Found(index.cpu().numpy(), distances, centre.cpu(), sqnorms.cpu())


def _rows(matrix: np.ndarray, rows: np.ndarray, centre: torch.Tensor) -> torch.Tensor:
    # Rows (increasing indices: a forward read of a memory map) as centred float32.
    picked = matrix[rows[0] : rows[-1] + 1] if _consecutive(rows) else matrix[rows]
    block = torch.from_numpy(np.array(picked, dtype=np.float32, order="C"))
    return block.to(centre.device).sub_(centre)


def _consecutive(rows: np.ndarray) -> bool:
    return len(rows) > 0 and int(rows[-1]) - int(rows[0]) == len(rows) - 1


def _check(matrix: np.ndarray, candidates: np.ndarray, k: int, block_rows: int) -> tuple:
    if getattr(matrix, "ndim", 0) != 2:
        raise ConfigError(f"matrix must be 2-D (points x values), got shape {np.shape(matrix)}")
    n, d = matrix.shape
    if not 0 < k < n:
        raise ConfigError(f"k={k} neighbours need between 1 and {n - 1} for {n} rows")
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != n or cand.shape[1] < k:
        raise ConfigError(
            f"candidates must be ({n}, c) with c >= k={k}, one row per matrix row; "
            f"got shape {cand.shape}"
        )
    if not np.issubdtype(cand.dtype, np.integer):
        raise ConfigError(f"candidates must be row indices (integers), got dtype {cand.dtype}")
    if cand.size and (cand.min() < 0 or cand.max() >= n):
        raise ConfigError(
            f"candidates must index rows 0 to {n - 1}; got {cand.min()} to {cand.max()}"
        )
    if block_rows < 1:
        raise ConfigError(f"block_rows must be at least 1, got {block_rows}")
    return n, d
