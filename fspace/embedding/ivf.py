"""Approximate nearest neighbours of many low-dimensional points: an inverted file.

Exact neighbours of ``n`` points cost ``n^2`` distances, which at 100,000 points is
minutes on two cores even in 100 dimensions. Here the points are first grouped by
k-means into about ``sqrt(n)`` lists; the neighbours of the points in one list are then
searched, exactly, among the points of the ``n_probe`` lists whose centres lie nearest
to that list's centre (Jégou et al. 2011, with probing per list rather than per point
so that each list is one matrix product). The work is about ``n^1.5 * n_probe``
distances, in torch, in blocks of bounded size; the result is reproducible per
``random_state``. ``benchmarks/bench_scale.py`` measures its recall against exact
neighbours. On a GPU (``device``, :mod:`fspace.device`) the same steps run there, with
blocks of a share of its free memory; k-means starts from the same rows on any device,
but its sums there are atomic additions in no fixed order, so a point close to two
centres may change lists between runs (not measured: no GPU has run this yet).

Example::

    found = ivf_neighbors(coords, k=90)   # found.indices, found.distances: (n, 90)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from fspace.device import memory_budget, on_gpu, resolve_device

N_PROBE = 12
"""Lists searched for the neighbours of the points in one list (that one included)."""
KMEANS_ITERATIONS = 10
BLOCK_BYTES = 128 * 2**20
"""Largest block of candidate distances held at once (on the CPU)."""


class Found(NamedTuple):
    """The fields of :class:`fspace.embedding.neighbors.Neighbors`, in its order."""

    indices: np.ndarray  # (n, k) int64, nearest first
    distances: np.ndarray  # (n, k) float64 Euclidean
    mean: torch.Tensor  # (r,) column mean the points were centred on
    sqnorms: torch.Tensor  # (n,) squared norms of the centred points


def ivf_neighbors(
    points: np.ndarray,
    k: int,
    *,
    n_lists: int | None = None,
    n_probe: int = N_PROBE,
    iterations: int = KMEANS_ITERATIONS,
    random_state: int = 0,
    device: str | torch.device | None = None,
) -> Found:
    """The ``k`` nearest rows of every row of ``points`` (itself excluded), searched in
    the ``n_probe`` k-means lists nearest to the row's own list, on ``device``.

    With ``n_probe >= n_lists`` every row is a candidate and the result is exact.
    """
    n = points.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k={k} neighbours need between 1 and {n - 1}")
    where = resolve_device(device)
    # a block of distances is made from a product of its size: a quarter of a GPU's
    # budget leaves room for both, the boolean mask and the points themselves
    block = memory_budget(where) // 4 if on_gpu(where) else BLOCK_BYTES
    x = torch.from_numpy(np.array(points, dtype=np.float32)).to(where)
    mean = x.mean(0)
    x -= mean
    sq = (x * x).sum(1)
    lists = min(n, n_lists or max(1, round(math.sqrt(n))))
    centres, assign = kmeans(x, sq, lists, iterations, random_state, block_bytes=block)
    order = torch.argsort(assign, stable=True)
    counts = torch.bincount(assign, minlength=lists)
    ends = torch.cumsum(counts, 0)
    members = [order[e - c : e] for c, e in zip(counts.tolist(), ends.tolist(), strict=True)]
    near = _squared(centres, (centres * centres).sum(1), centres).argsort(dim=1, stable=True)
    dist = torch.empty(n, k, device=where)
    index = torch.empty(n, k, dtype=torch.int64, device=where)
    for c in range(lists):
        if len(members[c]) == 0:
            continue
        cand = _candidates(members, counts, near[c], n_probe, k)
        rows = max(1, block // (4 * len(cand)))
        for a in range(0, len(members[c]), rows):
            q = members[c][a : a + rows]
            d = _squared(x[q], sq[q], x[cand], sq[cand])
            d[q[:, None] == cand[None]] = float("inf")
            top_d, top_i = torch.topk(d, k, dim=1, largest=False, sorted=True)
            dist[q], index[q] = top_d, cand[top_i]
    distances = dist.clamp_(min=0).sqrt().double().cpu().numpy()
    return Found(index.cpu().numpy(), distances, mean.cpu(), sq.cpu())


def _squared(
    a: torch.Tensor, sq_a: torch.Tensor, b: torch.Tensor, sq_b: torch.Tensor | None = None
) -> torch.Tensor:
    # Squared Euclidean distances of the rows of a to the rows of b.
    sq_b = (b * b).sum(1) if sq_b is None else sq_b
    return (sq_a[:, None] + sq_b[None]).sub_(a @ b.T, alpha=2).clamp_(min=0)


def _candidates(
    members: list[torch.Tensor], counts: torch.Tensor, near: torch.Tensor, n_probe: int, k: int
) -> torch.Tensor:
    # The nearest n_probe lists, and more if they hold fewer than k other points.
    enough = torch.cumsum(counts[near], 0) > k
    probe = max(n_probe, int(torch.argmax(enough.int())) + 1)
    return torch.cat([members[j] for j in near[:probe].tolist()])


def kmeans(
    x: torch.Tensor,
    sq: torch.Tensor,
    lists: int,
    iterations: int,
    random_state: int,
    *,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from ``lists`` distinct rows drawn with ``random_state``: the
    centres and each row's list, on ``x``'s device."""
    gen = torch.Generator().manual_seed(int(random_state))  # on the CPU: the same anywhere
    start = torch.randperm(len(x), generator=gen)[:lists].to(x.device)
    centres = x[start].clone()
    for _ in range(iterations):
        assign = _nearest_centre(x, sq, centres, block_bytes)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=lists)
        filled = counts > 0  # an emptied list keeps its centre
        centres[filled] = sums[filled] / counts[filled, None].to(x.dtype)
    return centres, _nearest_centre(x, sq, centres, block_bytes)


def _nearest_centre(
    x: torch.Tensor, sq: torch.Tensor, centres: torch.Tensor, block_bytes: int = BLOCK_BYTES
) -> torch.Tensor:
    csq = (centres * centres).sum(1)
    rows = max(1, block_bytes // (4 * len(centres)))
    return torch.cat(
        [
            _squared(x[a : a + rows], sq[a : a + rows], centres, csq).argmin(1)
            for a in range(0, len(x), rows)
        ]
    )
