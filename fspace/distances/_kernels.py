"""Compiled kernels for the distances that need a logarithm per probe and pair.

Imported only when such a distance is computed (numba compiles on first use and caches
the machine code).
"""

from __future__ import annotations

import math

import numba
import numpy as np

TILE = 16
"""Columns of ``b`` per pass: the coefficients of 4 rows x 16 columns stay in registers."""
CHUNK_PROBES = 256
"""Probes per pass over a column tile: 256 x 10 outcomes x 16 columns stay in L2 cache."""
_TINY = 2.0**-512
_SHIFT = 512 * math.log(2.0)


def log_bc_sums(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """``sum_i log(max(sum_c a[x, i, c] b[y, i, c], floor))`` for every pair (x, y).

    ``a`` (na, m, c) and ``b`` (nb, m, c) hold square roots of probabilities (so every
    coefficient is at most 1 up to rounding). The (na, nb, m) coefficients are never
    stored: four rows of ``a`` against a tile of ``b``'s columns are summed over the
    outcomes, floored and multiplied into float64 running products, which are
    rescaled by an exact power of two when they get small; the logarithm is taken once
    per pair. ``floor`` must be at least 1e-100.
    """
    a = np.ascontiguousarray(a)
    # floor ** group times 2**-512 must stay a normal float64: no product underflows
    group = 8 if floor >= 1e-19 else 1
    products = np.empty((len(a), TILE))
    shifts = np.empty((len(a), TILE))
    out = np.empty((len(a), len(b)))
    for j0 in range(0, len(b), TILE):
        cols = np.ascontiguousarray(b[j0 : j0 + TILE].transpose(1, 2, 0))  # (m, c, tile)
        width = cols.shape[2]
        products[:, :width] = 1.0
        shifts[:, :width] = 0.0
        for i0 in range(0, a.shape[1], CHUNK_PROBES):
            i1 = min(i0 + CHUNK_PROBES, a.shape[1])
            _bc_products(a, cols, i0, i1, float(floor), group, products, shifts)
        out[:, j0 : j0 + width] = np.log(products[:, :width]) - shifts[:, :width] * _SHIFT
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _bc_products(a, cols, i0, i1, floor, group, products, shifts):  # pragma: no cover
    na, _, c = a.shape
    nb = cols.shape[2]
    for q in numba.prange((na + 3) // 4):
        x0 = 4 * q
        rows = np.minimum(np.arange(x0, x0 + 4), na - 1)
        p = np.empty((4, nb))
        e = np.empty((4, nb))
        bc = np.empty((4, nb), dtype=a.dtype)
        for r in range(4):
            for y in range(nb):
                p[r, y] = products[rows[r], y]
                e[r, y] = shifts[rows[r], y]
        x1, x2, x3 = rows[1], rows[2], rows[3]
        for i in range(i0, i1):
            s0, s1, s2, s3 = a[x0, i, 0], a[x1, i, 0], a[x2, i, 0], a[x3, i, 0]
            for y in range(nb):
                t = cols[i, 0, y]
                bc[0, y], bc[1, y], bc[2, y], bc[3, y] = s0 * t, s1 * t, s2 * t, s3 * t
            for k in range(1, c):
                s0, s1, s2, s3 = a[x0, i, k], a[x1, i, k], a[x2, i, k], a[x3, i, k]
                for y in range(nb):
                    t = cols[i, k, y]
                    bc[0, y] += s0 * t
                    bc[1, y] += s1 * t
                    bc[2, y] += s2 * t
                    bc[3, y] += s3 * t
            for r in range(4):
                for y in range(nb):
                    p[r, y] *= max(bc[r, y], floor)
            if i % group == group - 1:
                for r in range(4):
                    for y in range(nb):
                        small = p[r, y] < _TINY
                        p[r, y] *= 1.0 / _TINY if small else 1.0
                        e[r, y] += 1.0 if small else 0.0
        for r in range(4):
            if x0 + r < na:
                for y in range(nb):
                    products[x0 + r, y] = p[r, y]
                    shifts[x0 + r, y] = e[r, y]


def mixture_entropy_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_i sum_c t log t`` with ``t = (a + b) / 2`` for every pair of rows, (na, nb)."""
    return _mixture_kernel(np.ascontiguousarray(a), np.ascontiguousarray(b))


@numba.njit(parallel=True, cache=True)
def _mixture_kernel(a, b):  # pragma: no cover - compiled
    na, m, c = a.shape
    nb = b.shape[0]
    out = np.empty((na, nb))
    for x in numba.prange(na):
        for y in range(nb):
            s = 0.0
            for i in range(m):
                for k in range(c):
                    t = 0.5 * (a[x, i, k] + b[y, i, k])
                    if t > 0.0:
                        s += t * np.log(t)
            out[x, y] = s
    return out
