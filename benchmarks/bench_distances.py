"""Bhattacharyya distance matrix of 2,000 checkpoints x 100,000 values (prints ratios).

    python benchmarks/bench_distances.py                     # 2,000 x (10,000 probes x 10)
    python benchmarks/bench_distances.py --n 500 --probes 2000   # a quick, smaller check
    python benchmarks/bench_distances.py --device cuda       # on a GPU: every distance

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

``--device cuda`` (or ``auto`` on a GPU machine; the default is ``cpu``) times instead,
on the GPU, every registered distance's matrix in float32 and float64 (those with a
``precision``), and the exact neighbours of the same vectors from their Gram matrix
(``fspace.embedding.neighbors.exact_neighbors``, k = 90): wall seconds of the whole call
(host preparation and copies included, and without the preparation), the FLOP/s of the
products over the pairs computed, and that rate as a fraction of the device's peak
(``benchmarks/_gpu.py``: a table of common GPUs, else a measured large matmul) and of
an 8192^3 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from fspace.device import resolve_device
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
        device="cpu",
    )  # compile the kernel
    took, matrix = seconds(
        lambda: pairwise(vectors, "bhattacharyya", precision=precision, device="cpu")
    )
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


def gpu_pairs(n: int, rows: int) -> int:
    """Pairs the GPU's symmetric fill computes: whole blocks on and above the diagonal."""
    sizes = np.diff([*range(0, n, rows), n])
    return int(sum(sizes[i] * sizes[j] for i in range(len(sizes)) for j in range(i, len(sizes))))


PRODUCTS = {"symmetric_kl": 2}
"""Matrix products per pair and value (one for the others)."""


def bench_distance_on_gpu(vectors: FunctionVectors, name: str, precision: str | None, device):
    """Print one distance's matrix on ``device``: wall time and product rate."""
    import torch
    from _gpu import rate_line, wall

    from fspace.device import memory_budget
    from fspace.distances import DISTANCES
    from fspace.distances._device import block_rows

    params = {} if precision is None else {"precision": precision}
    impl = DISTANCES.get(name).obj()
    parsed = DISTANCES.get(name).parse(params)
    small = FunctionVectors(vectors.matrix[:8], vectors.points[:8], "b", layout=vectors.layout)
    pairwise(small, name, device=device, **params)  # warm up (CUDA context, kernels)
    prep = wall(lambda: impl.prepare(vectors, parsed), device)[0]
    prepared = impl.prepare(vectors, parsed)
    rows = block_rows(prepared, prepared, memory_budget(device))
    del prepared
    took, _ = wall(lambda: pairwise(vectors, name, device=device, **params), device)
    n, width = vectors.matrix.shape
    flops = 2.0 * PRODUCTS.get(name, 1) * gpu_pairs(n, rows) * width
    dtype = torch.float64 if (precision or "float64") == "float64" else torch.float32
    if name == "disagreement":
        dtype = torch.float32  # one-hot rows, always float32
    label = f"{name} {precision or ''}".strip()
    print(rate_line(f"{label:26s} whole call", flops, took, device, dtype))
    print(rate_line(f"{'':26s} without the host's prepare ({prep:.2f} s)", flops,
                    max(took - prep, 1e-9), device, dtype))  # fmt: skip


def bench_neighbors_on_gpu(vectors: FunctionVectors, device, k: int = 90) -> None:
    """Print the exact neighbours (Gram matrix in float32) on ``device``."""
    import torch
    from _gpu import rate_line, wall

    from fspace.embedding import neighbors as nb

    matrix = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
    nb.exact_neighbors(matrix[:200], 5, device=device)  # warm up
    took, _ = wall(lambda: nb.exact_neighbors(matrix, k, device=device), device)
    n, d = matrix.shape
    strips = [(a, min(a + nb.GPU_STRIP_ROWS, n)) for a in range(0, n, nb.GPU_STRIP_ROWS)]
    flops = 2.0 * d * sum((b - a) * (n - a) for a, b in strips)
    print(rate_line(f"{'exact neighbours, k=' + str(k):26s} whole call", flops, took, device,
                    torch.float32))  # fmt: skip


def bench_on_gpu(vectors: FunctionVectors, device) -> None:
    """Every registered distance, and the exact neighbours, on the GPU ``device``."""
    from _gpu import describe

    from fspace.distances import DISTANCES

    n, width = vectors.matrix.shape
    print(describe(device))
    print(f"rates count the multiply-adds of the products over the pairs computed ({n} x "
          f"{width:,} values); jensen_shannon's are elementwise, not products")  # fmt: skip
    for entry in DISTANCES:
        takes = any(p.name == "precision" for p in entry.params)
        for precision in ("float32", "float64") if takes else (None,):
            bench_distance_on_gpu(vectors, entry.name, precision, device)
    bench_neighbors_on_gpu(vectors, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="checkpoints (default 2000)")
    parser.add_argument("--probes", type=int, default=10_000, help="probes (default 10000)")
    parser.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    parser.add_argument("--subset", type=int, default=40, help="rows given to cdist")
    parser.add_argument(
        "--device", default="cpu", help="cpu (default), cuda, cuda:N or auto: see the docstring"
    )
    args = parser.parse_args()
    device = resolve_device(args.device, option="--device")
    vectors = predictions(args.n, args.probes, args.classes)
    if device.type == "cuda":
        bench_on_gpu(vectors, device)
        return
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
