"""Compiled kernels for the distances that need a logarithm per probe and pair.

Imported only when such a distance is computed (numba compiles on first use and caches
the machine code).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from fspace.distances._simd import (
    vbroadcast,
    vfma,
    vload,
    vmul,
    vmulmax,
    vrescale,
    vsplat,
    vstore,
)

CHUNK_PROBES = 256
"""Probes per pass: each thread's rows of ``a`` over one pass (5 MiB of float32 for 512
rows of 10 outcomes) stay in cache while every column tile of ``b`` goes by, so ``a``
is read from memory once."""
_SMALL = 0.25


def tile_width(dtype: np.dtype) -> int:
    """Columns of ``b`` per tile: two vector registers of ``dtype`` (32 float32 on AVX-512)."""
    from fspace.distances._simd import lanes

    return 2 * lanes(np.dtype(dtype).itemsize)


def log_bc_sums(a: np.ndarray, b: np.ndarray, floor: float, *, upper: bool = False) -> np.ndarray:
    """``sum_i log(max(sum_c a[x, i, c] b[y, i, c], floor))`` for every pair (x, y).

    ``a`` (na, m, c) and ``b`` (nb, m, c) hold square roots of probabilities (so every
    coefficient is at most 1 up to rounding), both float32 or both float64. The (na, nb,
    m) coefficients are never stored: four rows of ``a`` against a tile of two vector
    registers' worth of ``b``'s columns are summed over the outcomes in registers,
    floored and multiplied into running products, which are rescaled by an exact power
    of two every few probes so they stay normal floats; the logarithm is taken once per
    pair. With ``upper`` (``a`` and ``b`` the same rows) only the tiles on and above
    the diagonal are computed and the rest mirrored, so the result is exactly symmetric.
    ``floor`` must be at least 1e-100. Besides the result, it holds ``b`` once more
    (transposed into tiles) and two float arrays of the result's size.
    """
    plan = _rescaling(floor, a.dtype)
    if plan is None:  # the floor's powers underflow in float32: use float64 products
        a, b = a.astype(np.float64), b.astype(np.float64)
        plan = _rescaling(floor, a.dtype)
    assert plan is not None and a.dtype == b.dtype
    group, shift = plan
    dtype = a.dtype.type
    (na, m, c), nb = a.shape, len(b)
    width = tile_width(a.dtype)
    tiles = -(-nb // width)
    cols = np.empty((tiles, m, c, width), dtype=dtype)  # b's rows last within each tile
    for t in range(tiles):
        cut = min(width, nb - t * width)
        cols[t, :, :, :cut] = b[t * width : t * width + cut].transpose(1, 2, 0)
        cols[t, :, :, cut:] = 0.0
    groups = -(-na // 4)
    products = np.ones((4 * groups, tiles * width), dtype=dtype)  # whole groups of rows
    counts = np.zeros_like(products)
    threads = max(1, min(numba.get_num_threads(), groups))
    _bc_products(
        np.ascontiguousarray(a).reshape(-1), cols.reshape(-1), (na, m, c, width, tiles),
        CHUNK_PROBES, upper, (dtype(floor), dtype(_SMALL), dtype(2.0**shift)),
        group, products.reshape(-1), counts.reshape(-1), threads,
    )  # fmt: skip
    out = np.log(products[:na, :nb], dtype=np.float64)
    out -= counts[:na, :nb] * (shift * math.log(2.0))
    if upper:  # the tiles below the diagonal were skipped
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


@numba.njit(parallel=True, fastmath=True, cache=True)
def _bc_products(
    a, cols, shape, probes, upper, constants, group, products, counts, threads
):  # pragma: no cover
    """Running products (and rescaling counts) of every group of four rows and tile.

    Thread ``part`` takes groups ``part, part + threads, ...`` (an even share of the
    triangle with ``upper``) and walks the probes chunk by chunk, passing its rows of
    the chunk over every tile: no barrier until the end.
    """
    na, m, _, width, tiles = shape
    groups = (na + 3) // 4
    for part in numba.prange(threads):
        for i0 in range(0, m, probes):
            i1 = min(i0 + probes, m)
            for t in range(tiles):
                stop = min(groups, ((t + 1) * width + 3) // 4) if upper else groups
                for g in range(part, stop, threads):
                    _four_rows(a, cols, shape, 4 * g, t, i0, i1, constants, group, products, counts)


@numba.njit(fastmath=True, cache=True)
def _four_rows(
    a, cols, shape, x0, t, i0, i1, constants, group, products, counts
):  # pragma: no cover
    """Rows ``x0 .. x0 + 3`` of ``a`` against tile ``t`` over probes ``i0 .. i1``.

    Each row holds two vectors of coefficients and two of running products in
    registers: 8 independent chains of fused multiply-adds per outcome.
    """
    na, m, c, width, tiles = shape
    half = width // 2
    floor, small, scale = vsplat(constants[0]), vsplat(constants[1]), vsplat(constants[2])
    stride = tiles * width
    o0 = x0 * stride + t * width
    o1, o2, o3 = o0 + stride, o0 + 2 * stride, o0 + 3 * stride
    # rows past the end repeat the last one; their products are never read
    x1, x2, x3 = min(x0 + 1, na - 1), min(x0 + 2, na - 1), min(x0 + 3, na - 1)
    p00, p01 = vload(products, o0), vload(products, o0 + half)
    p10, p11 = vload(products, o1), vload(products, o1 + half)
    p20, p21 = vload(products, o2), vload(products, o2 + half)
    p30, p31 = vload(products, o3), vload(products, o3 + half)
    left = group - i0 % group  # probes until the next rescaling
    for i in range(i0, i1):
        r0, r1, r2, r3 = (x0 * m + i) * c, (x1 * m + i) * c, (x2 * m + i) * c, (x3 * m + i) * c
        at = (t * m + i) * c * width
        b0, b1 = vload(cols, at), vload(cols, at + half)
        v = vbroadcast(a, r0)
        s00, s01 = vmul(v, b0), vmul(v, b1)
        v = vbroadcast(a, r1)
        s10, s11 = vmul(v, b0), vmul(v, b1)
        v = vbroadcast(a, r2)
        s20, s21 = vmul(v, b0), vmul(v, b1)
        v = vbroadcast(a, r3)
        s30, s31 = vmul(v, b0), vmul(v, b1)
        for k in range(1, c):
            b0, b1 = vload(cols, at + k * width), vload(cols, at + k * width + half)
            v = vbroadcast(a, r0 + k)
            s00, s01 = vfma(v, b0, s00), vfma(v, b1, s01)
            v = vbroadcast(a, r1 + k)
            s10, s11 = vfma(v, b0, s10), vfma(v, b1, s11)
            v = vbroadcast(a, r2 + k)
            s20, s21 = vfma(v, b0, s20), vfma(v, b1, s21)
            v = vbroadcast(a, r3 + k)
            s30, s31 = vfma(v, b0, s30), vfma(v, b1, s31)
        p00, p01 = vmulmax(p00, s00, floor), vmulmax(p01, s01, floor)
        p10, p11 = vmulmax(p10, s10, floor), vmulmax(p11, s11, floor)
        p20, p21 = vmulmax(p20, s20, floor), vmulmax(p21, s21, floor)
        p30, p31 = vmulmax(p30, s30, floor), vmulmax(p31, s31, floor)
        left -= 1
        if left == 0:  # (i + 1) % group == 0, without a division per probe
            left = group
            p00 = vrescale(p00, counts, o0, small, scale)
            p01 = vrescale(p01, counts, o0 + half, small, scale)
            p10 = vrescale(p10, counts, o1, small, scale)
            p11 = vrescale(p11, counts, o1 + half, small, scale)
            p20 = vrescale(p20, counts, o2, small, scale)
            p21 = vrescale(p21, counts, o2 + half, small, scale)
            p30 = vrescale(p30, counts, o3, small, scale)
            p31 = vrescale(p31, counts, o3 + half, small, scale)
    vstore(products, o0, p00)
    vstore(products, o0 + half, p01)
    vstore(products, o1, p10)
    vstore(products, o1 + half, p11)
    vstore(products, o2, p20)
    vstore(products, o2 + half, p21)
    vstore(products, o3, p30)
    vstore(products, o3 + half, p31)


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
