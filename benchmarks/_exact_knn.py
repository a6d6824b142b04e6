"""Exact neighbours of every row of a large matrix, and openTSNE's t-SNE from them.

Used by ``bench_scale.py --reference exact-full``: the exact Euclidean neighbours of all
``n`` rows in the full space, from blocked float32 matrix products of the float16 rows
(``|x_i - x_j|^2 = |x_i|^2 + |x_j|^2 - 2 x_i . x_j`` on the centred rows; each pair of
row blocks multiplied once and read both ways), cached on disk, then openTSNE's
defaults on those neighbours. At 100,000 x 10,000 that is 5 * 10^13 multiply-adds.

Example::

    indices, distances = cached_exact_knn(matrix, 90, root)   # (n, 90) int32, float32
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

BLOCK = 4096
"""Rows per block: two blocks as float32 (328 MB at 10,000 values) and their products."""


def _block(matrix: np.ndarray, lo: int, hi: int, mean: torch.Tensor) -> torch.Tensor:
    """Rows ``lo:hi`` as a centred float32 tensor (the only float32 copy made)."""
    return torch.from_numpy(np.asarray(matrix[lo:hi])).float().sub_(mean)


def _mean_and_norms(
    matrix: np.ndarray, bounds: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The column mean (float64 sums) and the centred rows' squared norms."""
    total = torch.zeros(matrix.shape[1], dtype=torch.float64)
    for lo, hi in bounds:
        total += torch.from_numpy(np.asarray(matrix[lo:hi])).double().sum(0)
    mean = (total / matrix.shape[0]).float()
    sq = torch.empty(matrix.shape[0])
    for lo, hi in bounds:
        block = _block(matrix, lo, hi, mean)
        sq[lo:hi] = (block * block).sum(1)
    return mean, sq


def _offer(best: tuple[torch.Tensor, torch.Tensor], dist: torch.Tensor, first: int) -> None:
    """Merge ``dist`` (rows x columns ``first:``) into ``best`` (distances, indices)."""
    kept_d, kept_i = best
    k = kept_d.shape[1]
    d, j = torch.topk(dist, min(k, dist.shape[1]), dim=1, largest=False, sorted=False)
    d, i = torch.cat([kept_d, d], 1), torch.cat([kept_i, j.add_(first)], 1)
    kept_d[:], pos = torch.topk(d, k, dim=1, largest=False, sorted=True)
    kept_i[:] = torch.gather(i, 1, pos)


def exact_knn(
    matrix: np.ndarray,
    k: int,
    *,
    block: int = BLOCK,
    progress: bool = False,
    state: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of every row (itself excluded), by Euclidean distance.

    Returns ``(indices, distances)``, ``(n, k)`` int32 and float32, nearest first.
    ``matrix`` may be float16 and memory-mapped: only two blocks of ``block`` rows are
    ever float32. ``progress`` prints the blocks done and an ETA to stderr; ``state``
    is a file where the search saves itself after each row block and resumes from.
    """
    n = matrix.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k={k} neighbours need between 1 and {n - 1} (n={n})")
    bounds = [(lo, min(lo + block, n)) for lo in range(0, n, block)]
    mean, sq = _mean_and_norms(matrix, bounds)
    best_d, best_i = torch.full((n, k), float("inf")), torch.full((n, k), -1, dtype=torch.int64)
    start_block = 0
    if state is not None and state.exists():
        saved = np.load(state)
        if saved["best_d"].shape == (n, k) and int(saved["block"]) == block:
            start_block = int(saved["next"])
            best_d[:], best_i[:] = (
                torch.from_numpy(saved["best_d"]),
                torch.from_numpy(saved["best_i"]),
            )
    pairs = len(bounds) * (len(bounds) + 1) // 2
    done = sum(len(bounds) - b for b in range(start_block))
    started, first_done = time.perf_counter(), done
    for b, (lo, hi) in enumerate(bounds[start_block:], start_block):
        rows = _block(matrix, lo, hi, mean)
        for lo2, hi2 in bounds[b:]:
            cols = rows if lo2 == lo else _block(matrix, lo2, hi2, mean)
            dist = torch.mm(rows, cols.T).mul_(-2).add_(sq[lo:hi, None]).add_(sq[None, lo2:hi2])
            dist.clamp_(min=0)
            if lo2 == lo:
                dist.fill_diagonal_(float("inf"))
            _offer((best_d[lo:hi], best_i[lo:hi]), dist, lo2)
            if lo2 != lo:  # the same products, seen from the later rows
                _offer((best_d[lo2:hi2], best_i[lo2:hi2]), dist.T, lo)
            done += 1
            if progress:
                _progress(done, pairs, first_done, started)
        if state is not None:
            _save_state(state, b + 1, block, best_d, best_i)
    return best_i.to(torch.int32).numpy(), best_d.sqrt_().numpy()


def _progress(done: int, pairs: int, first_done: int, started: float) -> None:
    took = time.perf_counter() - started
    eta = took / max(done - first_done, 1) * (pairs - done)
    print(
        f"exact neighbours: {done}/{pairs} block pairs, {took:.0f} s, ETA {eta:.0f} s",
        file=sys.stderr,
        flush=True,
    )


def _save_state(path: Path, next_block: int, block: int, best_d, best_i) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, next=next_block, block=block, best_d=best_d.numpy(), best_i=best_i.numpy())
    tmp.replace(path)


def cached_exact_knn(
    matrix: np.ndarray, k: int, root: Path, *, block: int = BLOCK, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """:func:`exact_knn` of ``matrix``, saved under ``root`` and read back from there on
    later calls (``root/exact-knn-K.indices.npy`` and ``.distances.npy``); the third
    value is the CPU seconds the search took, ``None`` when it was read back."""
    indices_path = root / f"exact-knn-{k}.indices.npy"
    distances_path = root / f"exact-knn-{k}.distances.npy"
    if indices_path.exists() and distances_path.exists():
        indices = np.load(indices_path)
        if indices.shape == (matrix.shape[0], k):
            return indices, np.load(distances_path), None
    cpu = time.process_time()
    state = root / f"exact-knn-{k}.partial.npz"
    indices, distances = exact_knn(matrix, k, block=block, progress=progress, state=state)
    cpu = time.process_time() - cpu
    np.save(distances_path, distances)
    np.save(indices_path, indices)  # written last: its presence marks a complete search
    state.unlink(missing_ok=True)
    return indices, distances, cpu


def recall_all(exact: np.ndarray, found: np.ndarray) -> float:
    """Mean fraction of each row's exact neighbours (``exact``, ``(n, k)``) that are among
    ``found`` (``(n, k')``), over all rows."""
    n = exact.shape[0]
    rows = np.arange(n, dtype=np.int64)[:, None]
    keys_exact = (rows * n + exact).ravel()
    keys_found = (rows * n + found).ravel()
    return float(np.isin(keys_exact, keys_found).sum() / exact.size)


def affinities_from_knn(indices: np.ndarray, distances: np.ndarray, perplexity: float = 30):
    """openTSNE's affinities (what ``TSNE.fit`` computes from its own neighbour search) from
    the given neighbours."""
    from openTSNE.affinity import MultiscaleMixture
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    knn = PrecomputedNeighbors(indices.astype(np.int64), distances.astype(np.float64))
    return MultiscaleMixture(perplexities=perplexity, knn_index=knn, n_jobs=2)


def opentsne_from_knn(
    indices: np.ndarray, distances: np.ndarray, init: np.ndarray, random_state: int = 0
) -> np.ndarray:
    """openTSNE's defaults (perplexity 30, FFT gradient, 750 iterations, 2 threads) on the
    given neighbours, from the initial map ``init`` (rescaled and jittered as openTSNE's
    PCA initialisation is)."""
    from openTSNE import TSNE, initialization

    affinities = affinities_from_knn(indices, distances)
    coords = np.array(init, dtype=np.float64)
    initialization.rescale(coords, inplace=True)
    initialization.jitter(coords, inplace=True, random_state=random_state)
    fitted = TSNE(n_jobs=2, random_state=random_state).fit(
        affinities=affinities, initialization=coords
    )
    return np.asarray(fitted, dtype=np.float64)
