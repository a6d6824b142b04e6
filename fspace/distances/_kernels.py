"""Compiled kernels for the distances that need a logarithm per probe and pair.

Imported only when such a distance is computed (numba compiles on first use and caches
the machine code).
"""

from __future__ import annotations

import numba
import numpy as np

TILE_BYTES = 256
"""Bytes of one row of a column tile: 64 float32 or 32 float64 columns, which the
per-probe coefficients of one row and tile keep in vector registers."""
CHUNK_PROBES = 256
"""Probes per pass over a column tile: 256 x 10 outcomes x 256 bytes stay in L2 cache."""


def log_bc_sums(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """``sum_i log(clip(sum_c a[x, i, c] b[y, i, c], floor, 1))`` for every pair (x, y).

    ``a`` (na, m, c) and ``b`` (nb, m, c) hold square roots of probabilities. The
    (na, nb, m) coefficients are never stored: each is summed over the outcomes in
    registers, clipped, and multiplied into a float64 running product of ``group``
    probes whose logarithm is taken once (the floor bounds the product away from
    underflow), so the cost is that of the multiply-adds, like a matrix product's.
    """
    a = np.ascontiguousarray(a)
    tile = max(1, TILE_BYTES // a.itemsize)
    # floor ** group must stay a normal float64 (> 1e-300) so that no product underflows
    group = int(max(1, min(16, -300 // np.log10(floor)))) if floor < 1 else 16
    out = np.empty((len(a), len(b)))
    for j0 in range(0, len(b), tile):
        cols = np.ascontiguousarray(b[j0 : j0 + tile].transpose(1, 2, 0))  # (m, c, tile)
        logs = np.zeros((len(a), cols.shape[2]))
        _log_bc_kernel(a, cols, float(floor), group, CHUNK_PROBES, logs)
        out[:, j0 : j0 + tile] = logs
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)
def _log_bc_kernel(a, cols, floor, group, chunk, logs):  # pragma: no cover - compiled
    na, m, c = a.shape
    nb = cols.shape[2]
    for i0 in range(0, m, chunk):
        i1 = min(i0 + chunk, m)
        for x in numba.prange(na):
            product = np.ones(nb)
            bc = np.empty(nb, dtype=a.dtype)
            count = 0
            for i in range(i0, i1):
                s = a[x, i, 0]
                for y in range(nb):
                    bc[y] = s * cols[i, 0, y]
                for k in range(1, c):
                    s = a[x, i, k]
                    for y in range(nb):
                        bc[y] += s * cols[i, k, y]
                for y in range(nb):
                    product[y] *= min(max(bc[y], floor), 1.0)
                count += 1
                if count == group:
                    for y in range(nb):
                        logs[x, y] += np.log(product[y])
                        product[y] = 1.0
                    count = 0
            for y in range(nb):
                logs[x, y] += np.log(product[y])


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
