"""Bhattacharyya distance matrix of 2,000 checkpoints x 100,000 values (prints ratios).

    python benchmarks/bench_distances.py                     # 2,000 x (10,000 probes x 10)
    python benchmarks/bench_distances.py --n 500 --probes 2000   # a quick, smaller check

Measured side by side in one process, in float32 and float64:

- the matrix product of the same size, ``X @ Y.T`` with X, Y of shape (n, probes x
  classes) (two different arrays, so BLAS does the full product, not the symmetric
  half): the machine's matrix-product rate;
- ``fspace.distances.pairwise(vectors, "bhattacharyya")``: the (n, n) matrix of the
  intensive Bhattacharyya distance (mean over probes of -log sum_c sqrt(p q)), its
  preparation (square roots) included. It computes the pairs on and above the diagonal
  only (whole blocks off the diagonal, column tiles down to the diagonal inside diagonal
  blocks), so its multiply-add rate over the pairs it computed is printed too;
- ``scipy.spatial.distance.cdist`` with a Python callable computing the same distance,
  on a subset of rows, extrapolated to the full matrix.

The figure of merit is the time ratio ``matrix product time / Bhattacharyya time``
(target >= 0.5): both produce an (n, n) matrix from the same (n, 100,000) inputs. The
rate ratio compares multiply-add rates, so it does not count the symmetry. The matrix
product is timed before and after the distance matrix and the faster run is kept.
Times are CPU seconds of all threads (comparable on a shared machine, where wall
times are not). The vectors are random Dirichlet predictions; the timing does not
depend on the values.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from fspace.distances import _kernels, base, pairwise
from fspace.vectors import FunctionVectors

FLOOR = 1e-12


def predictions(n: int, probes: int, classes: int, seed: int = 0) -> FunctionVectors:
    """Random softmax-like predictions (float32), as stored function vectors."""
    rng = np.random.default_rng(seed)
    p = rng.standard_gamma(1.0, size=(n, probes, classes), dtype=np.float32)
    p /= p.sum(axis=-1, keepdims=True)
    points = pd.DataFrame({"checkpoint": [f"run/{i}" for i in range(n)]})
    return FunctionVectors(p.reshape(n, -1), points, "bench", layout=(probes, classes))


def seconds(fn) -> tuple[float, object]:
    """CPU seconds (all threads of this process) spent in ``fn()``, and its result.

    CPU time, not wall time: on a shared machine other processes stretch wall times
    unevenly, while the CPU time of each computation stays comparable.
    """
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def computed_pairs(n: int, dtype: np.dtype) -> int:
    """Pairs the symmetric blockwise computation evaluates.

    Off-diagonal blocks whole; in a diagonal block each column tile down to its last row.
    """
    edges = [*range(0, n, base.BLOCK_ROWS), n]
    sizes = np.diff(edges)
    pairs = sum(
        int(sizes[i] * sizes[j]) for i in range(len(sizes)) for j in range(i + 1, len(sizes))
    )
    tile = _kernels.tile_width(dtype)
    for size in sizes:
        for j0 in range(0, size, tile):
            width = min(tile, size - j0)
            pairs += min(size, j0 + width) * width
    return pairs


def callable_distance(u: np.ndarray, v: np.ndarray, classes: int) -> float:
    bc = np.sqrt(u * v).reshape(-1, classes).sum(axis=1)
    return float(-np.log(np.clip(bc, FLOOR, 1.0)).mean())


def matrix_product_seconds(vectors: FunctionVectors, dtype: np.dtype) -> float:
    """Seconds of the full product ``X @ Y.T`` of two (n, width) arrays."""
    x = np.sqrt(vectors.matrix.astype(dtype))
    y = x[::-1].copy()
    x[:2] @ y[:2].T  # load BLAS
    return seconds(lambda: x @ y.T)[0]


def bench_precision(vectors: FunctionVectors, precision: str) -> tuple[np.ndarray, float]:
    """Print the matrix product and the Bhattacharyya matrix in ``precision``."""
    n, width = vectors.matrix.shape
    before = matrix_product_seconds(vectors, np.dtype(precision))
    pairwise(
        FunctionVectors(vectors.matrix[:4], vectors.points[:4], "b", layout=vectors.layout),
        "bhattacharyya",
        precision=precision,
    )  # compile the kernel
    took, matrix = seconds(lambda: pairwise(vectors, "bhattacharyya", precision=precision))
    gemm = min(before, matrix_product_seconds(vectors, np.dtype(precision)))
    flops = 2.0 * n * n * width
    fused = 2.0 * computed_pairs(n, np.dtype(precision)) * width
    ratio = gemm / took
    print(
        f"{precision}: matrix product {gemm:7.1f} CPU s ({flops / gemm / 1e9:5.1f} GFLOP per "
        f"CPU s) | Bhattacharyya matrix {took:7.1f} CPU s ({fused / took / 1e9:5.1f} GFLOP of "
        f"multiply-adds per CPU s) | time ratio {ratio:.2f} (target 0.5: "
        f"{'met' if ratio >= 0.5 else 'NOT met'}), rate ratio "
        f"{(fused / took) / (flops / gemm):.2f}"
    )
    return matrix, took


def bench_callable(vectors: FunctionVectors, matrix: np.ndarray, rows: int, took: float) -> None:
    from scipy.spatial.distance import cdist

    classes = vectors.layout[-1]
    sub = vectors.matrix[:rows].astype(np.float64)
    slow, d = seconds(lambda: cdist(sub, sub, lambda u, v: callable_distance(u, v, classes)))
    n = len(vectors)
    per_pair = slow / (rows * rows)
    full = per_pair * n * (n - 1) / 2  # a symmetric matrix needs each pair once
    err = float(np.abs(d - matrix[:rows, :rows]).max())
    print(
        f"scipy cdist, Python callable: {rows}x{rows} in {slow:.1f} s ({per_pair * 1e3:.2f} ms "
        f"a pair); the full matrix would take {full / 3600:.2f} CPU h = {full / took:,.0f} x "
        f"fspace float64 (max difference {err:.1e})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="checkpoints (default 2000)")
    parser.add_argument("--probes", type=int, default=10_000, help="probes (default 10000)")
    parser.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    parser.add_argument("--subset", type=int, default=40, help="rows given to cdist")
    args = parser.parse_args()
    vectors = predictions(args.n, args.probes, args.classes)
    print(
        f"{args.n} checkpoints x {args.probes} probes x {args.classes} classes = "
        f"{args.probes * args.classes:,} values each; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )
    bench_precision(vectors, "float32")
    matrix, took = bench_precision(vectors, "float64")
    bench_callable(vectors, matrix, args.subset, took)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
