"""Compiled kernels for the distances that need a logarithm per probe and pair.

Imported only when such a distance is computed (numba compiles on first use and caches
the machine code).
"""

from __future__ import annotations

import numba
import numpy as np

CHUNK_BYTES = 8 * 2**20
"""Bytes of per-probe coefficients held at once (fits in a core's L2 cache)."""


def log_bc_sums(a: np.ndarray, b: np.ndarray, floor: float) -> np.ndarray:
    """``sum_i log(clip(sum_c a[x, i, c] b[y, i, c], floor, 1))`` for every pair (x, y).

    ``a`` (na, m, c) and ``b`` (nb, m, c) hold square roots of probabilities; the
    (na, nb, m) coefficients are never held at once.
    """
    na, m, _ = a.shape
    nb = b.shape[0]
    total = np.zeros((na, nb))
    at = np.ascontiguousarray(a.transpose(1, 0, 2))  # (m, na, c)
    bt = np.ascontiguousarray(b.transpose(1, 2, 0))  # (m, c, nb)
    step = max(1, CHUNK_BYTES // (na * nb * a.itemsize))
    for i0 in range(0, m, step):
        bc = np.matmul(at[i0 : i0 + step], bt[i0 : i0 + step])
        np.clip(bc, floor, 1.0, out=bc)
        total += np.log(bc).sum(axis=0, dtype=np.float64)
    return total


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
