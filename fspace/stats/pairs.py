"""Distances between whole runs: at equal epoch, and between trajectories as curves.

- **equal-epoch distance**: the distance between two runs' checkpoints of the same
  epoch, averaged over the epochs both runs have (their last checkpoint of each);
- **discrete Frechet distance** (Eiter and Mannila 1994): the shortest leash that lets
  two walkers traverse the trajectories in order, each at its own pace.

Example::

    index = index_runs(points)
    r = equal_epoch_distances(d, index)       # (n_runs, n_runs)
    pairs = run_pairs(d, points)               # one row per pair of runs
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError
from fspace.stats._index import RunIndex, check_distances, index_runs

if TYPE_CHECKING:
    import pandas as pd

# Pairs of runs per vectorised Frechet batch.
_FRECHET_BATCH = 4096


def frechet(cross: np.ndarray) -> float:
    """Discrete Frechet distance of two trajectories from their cross distances.

    ``cross[i, j]`` is the distance between checkpoint ``i`` of one run and checkpoint
    ``j`` of the other, both in training order.
    """
    return float(frechet_batch(np.asarray(cross, dtype=np.float64)[None])[0])


def frechet_batch(cross: np.ndarray) -> np.ndarray:
    """:func:`frechet` of many pairs at once: ``cross`` is ``(pairs, m1, m2)``."""
    c = np.asarray(cross, dtype=np.float64)
    if c.ndim != 3 or c.shape[1] == 0 or c.shape[2] == 0:
        raise ConfigError(f"frechet needs (pairs, m1, m2) cross distances, got shape {c.shape}")
    m1, m2 = c.shape[1:]
    f = np.empty_like(c)
    f[:, 0, :] = np.maximum.accumulate(c[:, 0, :], axis=1)
    f[:, :, 0] = np.maximum.accumulate(c[:, :, 0], axis=1)
    for i in range(1, m1):
        for j in range(1, m2):
            reach = np.minimum(np.minimum(f[:, i - 1, j], f[:, i, j - 1]), f[:, i - 1, j - 1])
            f[:, i, j] = np.maximum(reach, c[:, i, j])
    return f[:, -1, -1]


def equal_epoch_distances(distances: np.ndarray, index: RunIndex) -> np.ndarray:
    """Run-by-run mean distance at equal epoch: ``(n_runs, n_runs)``, zero diagonal.

    Raises :class:`ConfigError` if two runs share no epoch.
    """
    d = np.asarray(distances, dtype=np.float64)
    n = index.n_runs
    sums, counts = np.zeros((n, n)), np.zeros((n, n))
    for e in range(len(index.epochs)):
        rows = index.grid[:, e]
        have = np.flatnonzero(rows >= 0)
        sums[np.ix_(have, have)] += d[np.ix_(rows[have], rows[have])]
        counts[np.ix_(have, have)] += 1
    if np.any(counts == 0):
        a, b = np.argwhere(counts == 0)[0]
        raise ConfigError(
            f"runs {index.runs[a]!r} and {index.runs[b]!r} share no epoch, so they cannot be "
            f"compared at equal epoch; restrict the statistics to one epoch (--epoch)"
        )
    out = sums / counts
    np.fill_diagonal(out, 0.0)
    return out


def frechet_distances(distances: np.ndarray, index: RunIndex) -> np.ndarray:
    """Run-by-run discrete Frechet distance between whole trajectories."""
    d = np.asarray(distances, dtype=np.float64)
    n = index.n_runs
    length = max(len(o) for o in index.order)
    # Repeating a trajectory's last checkpoint leaves its Frechet distances unchanged and
    # gives every run the same length, so all pairs go through one vectorised recursion.
    padded = np.stack([np.concatenate([o, np.repeat(o[-1], length - len(o))]) for o in index.order])
    a, b = np.triu_indices(n, k=1)
    out = np.zeros((n, n))
    for start in range(0, len(a), _FRECHET_BATCH):
        ia, ib = a[start : start + _FRECHET_BATCH], b[start : start + _FRECHET_BATCH]
        cross = d[padded[ia][:, :, None], padded[ib][:, None, :]]
        out[ia, ib] = out[ib, ia] = frechet_batch(cross)
    return out


def final_distances(distances: np.ndarray, index: RunIndex) -> np.ndarray:
    """Run-by-run distance between the runs' last checkpoints."""
    rows = index.final_rows()
    out = np.asarray(distances, dtype=np.float64)[np.ix_(rows, rows)].copy()
    np.fill_diagonal(out, 0.0)
    return out


def run_pairs(distances: np.ndarray, points: pd.DataFrame, *, by: str = "group") -> pd.DataFrame:
    """One row per pair of runs: ``run_a, run_b, label_a, label_b, equal_epoch``
    (:func:`equal_epoch_distances`), ``frechet`` and ``final`` (distance between the
    last checkpoints)."""
    import pandas as pd

    index = index_runs(points, by)
    d = check_distances(distances, len(points))
    a, b = np.triu_indices(index.n_runs, k=1)
    return pd.DataFrame(
        {
            "run_a": index.runs[a],
            "run_b": index.runs[b],
            "label_a": index.labels[a],
            "label_b": index.labels[b],
            "equal_epoch": equal_epoch_distances(d, index)[a, b],
            "frechet": frechet_distances(d, index)[a, b],
            "final": final_distances(d, index)[a, b],
        }
    )


def epoch_distances(distances: np.ndarray, index: RunIndex) -> pd.DataFrame:
    """Distances between runs at each epoch, by kind of pair, for figures with bands.

    One row per epoch and pair of labels (``"a"`` with ``"a"`` for runs of one label,
    ``"a | b"`` across labels): ``mean``, ``std`` (over pairs of runs) and ``pairs``.
    """
    import pandas as pd

    d = np.asarray(distances, dtype=np.float64)
    rows_out = []
    for e, epoch in enumerate(index.epochs):
        have = np.flatnonzero(index.grid[:, e] >= 0)
        rows = index.grid[have, e]
        a, b = np.triu_indices(len(have), k=1)
        values = d[rows[a], rows[b]]
        ca, cb = index.codes[have[a]], index.codes[have[b]]
        kinds = np.minimum(ca, cb) * len(index.groups) + np.maximum(ca, cb)
        for kind in np.unique(kinds):
            first, second = (
                index.groups[kind // len(index.groups)],
                index.groups[kind % len(index.groups)],
            )
            name = first if first == second else f"{first} | {second}"
            v = values[kinds == kind]
            rows_out.append(
                {
                    "epoch": int(epoch),
                    "pair": str(name),
                    "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "pairs": len(v),
                }
            )
    return pd.DataFrame(rows_out, columns=["epoch", "pair", "mean", "std", "pairs"])


def pair_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """:func:`run_pairs` averaged by kind of pair (``"a"`` within label ``a``, ``"a | b"``
    across labels): ``pairs``, and the mean ``equal_epoch``, ``frechet`` and ``final``."""
    first = np.minimum(pairs["label_a"].astype(str), pairs["label_b"].astype(str))
    second = np.maximum(pairs["label_a"].astype(str), pairs["label_b"].astype(str))
    kind = np.where(first == second, first, first + " | " + second)
    out = pairs.assign(pair=kind).groupby("pair", sort=True)
    table = out[["equal_epoch", "frechet", "final"]].mean()
    table.insert(0, "pairs", out.size())
    return table.reset_index()
