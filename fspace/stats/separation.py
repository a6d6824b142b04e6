"""How well groups of runs separate in function space: three statistics of distances.

- **ratio**: mean distance between runs of different groups over mean distance between
  different runs of the same group (1 when groups are mixed, larger when separated).
- **silhouette**: scikit-learn's silhouette coefficient of the runs on a precomputed
  run-by-run distance matrix (-1 to 1).
- **1-NN accuracy**: each checkpoint takes the group of its nearest checkpoint among the
  *other* runs (leave-one-run-out); the fraction that get their own group right.

Each comes as a :data:`~fspace.stats.resampling.Statistic` of run weights and group
codes, so :mod:`fspace.stats.resampling` can bootstrap and permute it; pairs of copies of
one run (a bootstrap may draw a run twice) are never counted, like pairs within a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fspace.errors import ConfigError
from fspace.stats.resampling import Statistic

# Elements of the (resamples, checkpoints, runs) array of the 1-NN statistic per chunk.
_CHUNK_ELEMENTS = 2**23


def _onehot(codes: np.ndarray, n_groups: int) -> np.ndarray:
    return (codes[..., None] == np.arange(n_groups)).astype(np.float64)


def _group_sums(run_distances: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    """``sum_j R[i, j] * weighted[b, j, g]`` as ``(B, n, G)``, by one matrix product."""
    b, n, g = weighted.shape
    flat = weighted.transpose(1, 0, 2).reshape(n, b * g)
    return (run_distances @ flat).reshape(n, b, g).transpose(1, 0, 2)


def ratio_statistic(run_distances: np.ndarray, n_groups: int) -> Statistic:
    """Between-group over within-group mean distance of distinct runs.

    ``run_distances`` is a symmetric run-by-run matrix with a zero diagonal.
    """
    r = np.asarray(run_distances, dtype=np.float64)

    def statistic(weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        wo = weights[..., None] * _onehot(codes, n_groups)
        sums = _group_sums(r, wo)
        within = np.einsum("big,big->b", wo, sums)
        total = np.einsum("bi,big->b", weights, sums)
        self_pairs = np.sum(weights**2, axis=1)  # a run and its copies with themselves
        n_within = np.sum(wo.sum(axis=1) ** 2, axis=1) - self_pairs
        n_total = weights.sum(axis=1) ** 2 - self_pairs
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((total - within) / (n_total - n_within)) / (within / n_within)

    return statistic


def silhouette_statistic(run_distances: np.ndarray, n_groups: int) -> Statistic:
    """Mean silhouette coefficient of the runs, weighted by how often each is drawn.

    With all weights 1 this is ``sklearn.metrics.silhouette_score(R, labels,
    metric="precomputed")``: a run alone in its group scores 0.
    """
    r = np.asarray(run_distances, dtype=np.float64)

    def statistic(weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        onehot = _onehot(codes, n_groups)
        wo = weights[..., None] * onehot
        sums = _group_sums(r, wo)
        # Other runs of each group as seen from run i: its own copies are not others.
        counts = wo.sum(axis=1)[:, None, :] - onehot * weights[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
            own = np.sum(np.where(onehot > 0, means, 0.0), axis=2)
            other = np.where((onehot > 0) | (counts <= 0), np.inf, means).min(axis=2)
            s = (other - own) / np.maximum(own, other)
        alone = np.sum(counts * onehot, axis=2) <= 0
        s = np.where(alone | (weights <= 0), 0.0, np.nan_to_num(s))
        return np.sum(weights * s, axis=1) / weights.sum(axis=1)

    return statistic


def nearest_run_statistic(to_runs: np.ndarray, run_of: np.ndarray) -> Statistic:
    """Leave-one-run-out 1-NN accuracy of checkpoints, from their distances to each run.

    ``to_runs[k, s]`` is the distance of checkpoint ``k`` to the nearest checkpoint of run
    ``s`` (``inf`` for its own run); ``run_of[k]`` is checkpoint ``k``'s run. Runs with
    weight 0 are absent; a checkpoint counts as often as its run is drawn.
    """
    m = np.asarray(to_runs, dtype=np.float64)
    run_of = np.asarray(run_of)
    # Runs by distance from each checkpoint: the nearest present run is the first
    # present one in this order, for any resample.
    ranked = np.argsort(m, axis=1, kind="stable")
    ranked_inf = np.take_along_axis(np.isinf(m), ranked, axis=1)

    chunk = max(1, _CHUNK_ELEMENTS // max(1, m.size))

    def statistic(weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                _accuracy(weights[i : i + chunk], codes[i : i + chunk], ranked, ranked_inf, run_of)
                for i in range(0, len(weights), chunk)
            ]
        )

    return statistic


def _accuracy(weights, codes, ranked, ranked_inf, run_of) -> np.ndarray:
    present = weights[:, ranked] > 0  # (B, checkpoints, runs), runs nearest first
    present &= ~ranked_inf[None]
    first = np.argmax(present, axis=2)
    nearest = np.take_along_axis(ranked[None], first[..., None], axis=2)[..., 0]
    rows = np.arange(len(codes))[:, None]
    hit = codes[rows, nearest] == codes[:, run_of]
    # A checkpoint counts as often as its run is drawn, if any other run is there.
    w = weights[:, run_of] * present.any(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(w * hit, axis=1) / w.sum(axis=1)


def spread_statistic(run_distances: np.ndarray, group: int) -> Statistic:
    """Mean distance between distinct runs of group ``group``: how far apart its runs are."""
    r = np.asarray(run_distances, dtype=np.float64)

    def statistic(weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        w = weights * (codes == group)
        pairs = w.sum(axis=1) ** 2 - np.sum(w**2, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("bi,ij,bj->b", w, r, w) / pairs

    return statistic


def mean_statistic(values: np.ndarray, group: int) -> Statistic:
    """Mean of a per-run value over the runs of group ``group``."""
    v = np.asarray(values, dtype=np.float64)

    def statistic(weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        w = weights * (codes == group)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w @ v) / w.sum(axis=1)

    return statistic


def difference(first: Statistic, second: Statistic) -> Statistic:
    """``first - second``, for comparing a quantity between two groups."""
    return lambda weights, codes: first(weights, codes) - second(weights, codes)


def separation_ratio(run_distances: np.ndarray, labels: Sequence[Any]) -> float:
    """Between- over within-group mean distance of the runs (see :func:`ratio_statistic`)."""
    groups, codes = _codes(labels, len(run_distances))
    return float(
        ratio_statistic(run_distances, len(groups))(np.ones((1, len(codes))), codes[None])[0]
    )


def silhouette(run_distances: np.ndarray, labels: Sequence[Any]) -> float:
    """scikit-learn's silhouette score of the runs on the precomputed ``run_distances``."""
    from sklearn.metrics import silhouette_score

    groups, codes = _codes(labels, len(run_distances))
    if not 2 <= len(groups) <= len(codes) - 1:
        return float("nan")
    return float(silhouette_score(np.asarray(run_distances), codes, metric="precomputed"))


def nearest_neighbor_accuracy(
    distances: np.ndarray, runs: Sequence[Any], labels: Sequence[Any]
) -> float:
    """Leave-one-run-out 1-NN accuracy of the checkpoints' labels under ``distances``.

    ``distances`` is checkpoint-by-checkpoint; ``runs`` and ``labels`` name each
    checkpoint's run and group. NaN with fewer than two runs.
    """
    run_names, run_of = np.unique(np.asarray(runs, dtype=str), return_inverse=True)
    label_of = np.asarray(labels, dtype=str)
    run_labels = np.empty(len(run_names), dtype=object)
    run_labels[run_of] = label_of
    _, codes = _codes(run_labels.astype(str), len(run_names))
    to_runs = distances_to_runs(np.asarray(distances, dtype=np.float64), run_of, len(run_names))
    stat = nearest_run_statistic(to_runs, run_of)
    return float(stat(np.ones((1, len(run_names))), codes[None])[0])


def distances_to_runs(distances: np.ndarray, run_of: np.ndarray, n_runs: int) -> np.ndarray:
    """``out[k, s]``: distance of checkpoint ``k`` to the nearest checkpoint of run ``s``;
    ``inf`` for its own run (leave-one-run-out)."""
    out = np.full((len(distances), n_runs), np.inf)
    for s in range(n_runs):
        cols = run_of == s
        if cols.any():
            out[:, s] = distances[:, cols].min(axis=1)
    out[np.arange(len(distances)), run_of] = np.inf
    return out


def _codes(labels: Sequence[Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(str)
    if labels.shape != (n,):
        raise ConfigError(f"{len(labels)} labels for {n} rows of the distance matrix")
    return np.unique(labels, return_inverse=True)
