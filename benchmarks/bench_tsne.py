"""t-SNE of 2,000 function vectors of length 100,000, and placing 100 more (prints ratios).

    python benchmarks/bench_tsne.py                     # fast path vs openTSNE exact
    python benchmarks/bench_tsne.py --with-default      # also openTSNE's defaults (~3 min)
    python benchmarks/bench_tsne.py --runs 6 --probes 2000   # a quick, smaller check

The vectors are softmax outputs of real training trajectories (``_vectors.py``: 22 runs
x 100 checkpoints on 10,000 probe digits); the first ``--runs`` runs are embedded and
100 checkpoints of the two held-out runs are placed into the map afterwards. Measured
side by side in one process:

- openTSNE with exact neighbours (``TSNE(neighbors="exact")``, its PCA initialisation
  and Barnes-Hut gradient): the reference map;
- ``fspace.embed(vectors, "tsne")``: neighbours and PCA initialisation from matrix
  products (:mod:`fspace.embedding.neighbors`), exact gradient
  (:mod:`fspace.embedding.gradient`), openTSNE's optimiser;
- ``Embedding.transform`` of 100 new checkpoints.

Neighbourhood preservation is sklearn's trustworthiness at k=10 against exact
distances in the original space. Wall times on a shared machine are noisy; CPU times
(all threads) are printed too.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _vectors import cached_vectors  # benchmarks/ is on sys.path when run as a script

from fspace.embedding import embed
from fspace.vectors import FunctionVectors

PER_RUN = 100


class Timer:
    """Wall and process CPU seconds of a ``with`` block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.1f} s wall, {self.cpu:6.1f} s CPU"


def distances(matrix: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of the rows, from the centred Gram matrix (float32
    products, accurate to ~1e-3 here: the same neighbours as scikit-learn's exact search)."""
    from fspace.embedding.neighbors import column_chunks

    n = matrix.shape[0]
    gram, sq = torch.zeros(n, n), torch.zeros(n)
    for _, chunk, _ in column_chunks(matrix):
        gram.addmm_(chunk, chunk.T)
        sq += (chunk * chunk).sum(1)
    gram, sq = gram.double(), sq.double()
    d = (sq[:, None] + sq[None] - 2 * gram).clamp(min=0).sqrt()
    d.fill_diagonal_(0)
    return d.numpy()


def trust(dist: np.ndarray, coords: np.ndarray) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(dist, np.asarray(coords), n_neighbors=10, metric="precomputed"))


def placement(dist_new_old: np.ndarray, coords_old: np.ndarray, coords_new: np.ndarray) -> float:
    """Fraction of new points whose nearest old point on the map is among their 10
    nearest old points in function space."""
    data_near = np.argsort(dist_new_old, axis=1)[:, :10]
    on_map = np.argmin(np.linalg.norm(coords_new[:, None] - coords_old[None], axis=-1), axis=1)
    return float(np.mean([m in near for m, near in zip(on_map, data_near, strict=True)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs in the map (100 ckpts each)")
    parser.add_argument("--probes", type=int, default=10_000, help="probe inputs (x 10 classes)")
    parser.add_argument("--with-default", action="store_true", help="also openTSNE defaults")
    parser.add_argument("--repeat", action="store_true", help="fit twice: same coordinates?")
    args = parser.parse_args(argv)
    all_vectors = cached_vectors(n_runs=args.runs + 2, n_ckpts=PER_RUN, n_probe=args.probes)
    n = args.runs * PER_RUN
    fit = np.ascontiguousarray(all_vectors.matrix[:n])
    new = np.ascontiguousarray(all_vectors.matrix[n::2][:100])
    vectors = FunctionVectors(fit, all_vectors.points.iloc[:n], "bench")
    print(f"{n} function vectors of length {fit.shape[1]}; torch threads {torch.get_num_threads()}")
    dist = distances(np.concatenate([fit, new]))
    d_fit = dist[:n, :n]

    from openTSNE import TSNE

    with Timer() as t_ref:
        ref = TSNE(neighbors="exact", n_jobs=torch.get_num_threads(), random_state=0).fit(fit)
    print(f"openTSNE, exact neighbours : {t_ref}; trustworthiness {trust(d_fit, ref):.4f}")
    if args.with_default:
        with Timer() as t_def:
            default = TSNE(n_jobs=torch.get_num_threads(), random_state=0).fit(fit)
        print(f"openTSNE, defaults (Annoy) : {t_def}; trustworthiness {trust(d_fit, default):.4f}")

    with Timer() as t_fast:
        emb = embed(vectors, "tsne", random_state=0)
    tw_fast, tw_ref = trust(d_fit, emb.coords), trust(d_fit, ref)
    print(f"fspace embed (fast path)   : {t_fast}; trustworthiness {tw_fast:.4f}")
    print(f"  params: {emb.params}")
    if args.repeat:
        again = embed(vectors, "tsne", random_state=0)
        print(f"  same random_state, same coordinates: {np.array_equal(again.coords, emb.coords)}")

    points = all_vectors.points.iloc[n::2].iloc[:100].copy()
    points["checkpoint"] = points["checkpoint"] + "-new"
    with Timer() as t_new:
        grown = emb.transform(FunctionVectors(new, points, "bench"))
    placed = placement(dist[n:, :n], emb.coords, grown.coords[n:])
    print(
        f"transform of 100 new       : {t_new}; nearest map neighbour among the 10 nearest "
        f"in function space for {placed:.0%} of them"
    )

    print(
        f"RESULT embed: {t_fast.wall:.1f} s (target <= 10 s), "
        f"{t_ref.wall / t_fast.wall:.1f}x faster than openTSNE exact "
        f"({t_ref.cpu / t_fast.cpu:.1f}x in CPU time); trustworthiness {tw_fast:.4f} vs "
        f"{tw_ref:.4f}, difference {tw_fast - tw_ref:+.4f} (target within 0.01)"
    )
    print(f"RESULT transform: {t_new.wall:.2f} s for 100 new checkpoints (target <= 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
