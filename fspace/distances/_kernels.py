"""Compiled kernels for the distances that need a logarithm per probe and pair.

Imported only when such a distance is computed (numba compiles on first use and caches
the machine code).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numba
import numpy as np

TILE = 64
"""Columns of ``b`` per pass, laid out last so the innermost loop is a run of vector
multiply-adds across them (compile-time width: 8 AVX2 vectors of float32 per row)."""
CHUNK_PROBES = 256
"""Most probes per pass over a column tile."""
CHUNK_BYTES = 512 * 1024
"""Largest transposed column tile per pass (probes x outcomes x TILE): it stays in L2."""
_QUARTER = 0.25


def log_bc_sums(a: np.ndarray, b: np.ndarray, floor: float, *, upper: bool = False) -> np.ndarray:
    """``sum_i log(max(sum_c a[x, i, c] b[y, i, c], floor))`` for every pair (x, y).

    ``a`` (na, m, c) and ``b`` (nb, m, c) hold square roots of probabilities (so every
    coefficient is at most 1 up to rounding), both float32 or both float64. The (na, nb,
    m) coefficients are never stored: four rows of ``a`` against a tile of ``b``'s
    columns are summed over the outcomes in vector registers, floored and multiplied
    into running products, which are rescaled by an exact power of two every few probes
    so they never leave the normal range; the logarithm is taken once per pair. With
    ``upper`` (``a`` and ``b`` the same rows) only pairs x <= y are computed and the
    others mirrored, so the result is exactly symmetric. ``floor`` must be at least
    1e-100.
    """
    plan = _rescaling(floor, a.dtype)
    if plan is None:  # the floor's powers underflow in float32: use float64 products
        a, b = a.astype(np.float64), b.astype(np.float64)
        plan = _rescaling(floor, a.dtype)
    assert plan is not None and a.dtype == b.dtype
    group, shift = plan
    dtype = a.dtype.type
    a = np.ascontiguousarray(a)
    (na, m, c), nb = a.shape, len(b)
    kernel = _products_kernel(c, TILE, dtype)
    probes = max(1, min(CHUNK_PROBES, CHUNK_BYTES // (c * TILE * a.itemsize)))
    cols = np.zeros((m, c, TILE), dtype=dtype)
    threads = numba.get_num_threads()
    products = np.empty((na, TILE), dtype=dtype)
    shifts = np.empty((na, TILE))
    out = np.empty((na, nb))
    for j0 in range(0, nb, TILE):
        width = min(TILE, nb - j0)
        rows = min(na, j0 + width) if upper else na  # rows below the tile are mirrored
        cols[:, :, :width] = b[j0 : j0 + width].transpose(1, 2, 0)
        kernel(
            a, cols, rows, probes, dtype(floor), group, dtype(2.0**shift), products, shifts, threads
        )
        logs = np.log(products[:rows, :width], dtype=np.float64)
        out[:rows, j0 : j0 + width] = logs - shifts[:rows, :width] * (shift * math.log(2.0))
    if upper:
        below = np.tril_indices(na, -1)
        out[below] = out.T[below]
    return out


def _rescaling(floor: float, dtype: np.dtype) -> tuple[int, int] | None:
    """``(group, shift)``: every ``group`` probes, products below 1/4 are multiplied by
    ``2**shift``; None if even one probe could underflow in ``dtype``.

    A product starts a group at >= 1/4 and each factor is >= floor >= 2**-bits, so
    within a group it stays >= 2**(-2 - group * bits) >= 2**(3 - emin), a normal float;
    after the rescaling it is back in [1/4, 2**(emin - 4)), far below overflow.
    """
    info = np.finfo(dtype)
    emin = -int(info.minexp)  # 126 (float32), 1022 (float64)
    rounded = float(dtype.type(floor))
    if rounded < info.tiny:
        return None
    bits = max(-math.log2(rounded), 1.0)
    group = int((emin - 3) // bits)
    if group < 1:
        return None
    return group, math.ceil(group * bits)


@functools.cache
def _products_kernel(classes: int, width: int, dtype: type) -> Callable[..., None]:
    """The compiled kernel for ``classes`` outcomes and ``width`` columns per tile.

    Both are compile-time constants, so the loop over outcomes is unrolled and the loop
    over the tile's columns, innermost, is vectorised with the four rows' coefficients
    in registers (numba's cache keys each compiled version by these constants).
    """
    one, zero, quarter = dtype(1.0), dtype(0.0), dtype(_QUARTER)

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def kernel(
        a, cols, rows, probes, floor, group, scale, products, shifts, threads
    ):  # pragma: no cover
        na = a.shape[0]
        groups = (rows + 3) // 4
        parts = min(threads, groups)
        # one contiguous range of row groups per thread, each thread walking the probes
        # chunk by chunk: no barrier until the tile is done
        for part in numba.prange(parts):
            for i0 in range(0, cols.shape[0], probes):
                i1 = min(i0 + probes, cols.shape[0])
                for q in range(part * groups // parts, (part + 1) * groups // parts):
                    x0 = 4 * q
                    x1, x2, x3 = min(x0 + 1, na - 1), min(x0 + 2, na - 1), min(x0 + 3, na - 1)
                    p = np.empty((4, width), dtype=products.dtype)
                    e = np.zeros((4, width), dtype=products.dtype)
                    for y in range(width):
                        if i0 == 0:
                            p[0, y], p[1, y], p[2, y], p[3, y] = one, one, one, one
                        else:
                            p[0, y], p[1, y] = products[x0, y], products[x1, y]
                            p[2, y], p[3, y] = products[x2, y], products[x3, y]
                    for i in range(i0, i1):
                        for y in range(width):
                            t = cols[i, 0, y]
                            s0, s1 = a[x0, i, 0] * t, a[x1, i, 0] * t
                            s2, s3 = a[x2, i, 0] * t, a[x3, i, 0] * t
                            for k in range(1, classes):
                                t = cols[i, k, y]
                                s0 += a[x0, i, k] * t
                                s1 += a[x1, i, k] * t
                                s2 += a[x2, i, k] * t
                                s3 += a[x3, i, k] * t
                            p[0, y] *= max(s0, floor)
                            p[1, y] *= max(s1, floor)
                            p[2, y] *= max(s2, floor)
                            p[3, y] *= max(s3, floor)
                        if (i + 1) % group == 0:
                            for r in range(4):
                                for y in range(width):
                                    small = p[r, y] < quarter
                                    p[r, y] *= scale if small else one
                                    e[r, y] += one if small else zero
                    for r in range(min(4, rows - x0)):
                        for y in range(width):
                            products[x0 + r, y] = p[r, y]
                            shifts[x0 + r, y] = e[r, y] if i0 == 0 else shifts[x0 + r, y] + e[r, y]

    return kernel


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
