"""Statistics of one run's trajectory through function space.

All of them take distances between checkpoints, so they hold for any distance of
:mod:`fspace.distances`. A run's checkpoints are taken in training order (epoch, then
step).

- **path length**: the sum of distances between consecutive checkpoints;
- **speed**: path length covered per epoch, epoch by epoch;
- **distance from start**: each checkpoint's distance to the run's first one;
- **ignorance / truth**: distance to the uniform prediction and to the one-hot targets,
  and **progress** ``d(ignorance, P) / (d(ignorance, P) + d(P, truth))``: 0 at the
  uniform prediction, 1 at the targets, a position along the way between them in the
  spirit of Mao et al. (PNAS 2024), who follow trajectories from ignorance to truth.

Example::

    d = fspace.distances.pairwise(vectors, "bhattacharyya")
    frame = trajectory_frame(d, vectors.points)      # one row per checkpoint
    table = run_table(d, vectors.points)             # one row per run
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError
from fspace.stats._index import RunIndex, check_distances, index_runs

if TYPE_CHECKING:
    import pandas as pd

TRAJECTORY_COLUMNS = (
    "run",
    "label",
    "epoch",
    "step",
    "path_length",
    "distance_from_start",
    "speed",
    "to_ignorance",
    "to_truth",
    "progress",
)


def path_length(run_distances: np.ndarray) -> float:
    """Sum of distances between consecutive checkpoints of one run (``(m, m)`` matrix of
    its checkpoints in order)."""
    d = np.asarray(run_distances, dtype=np.float64)
    return float(np.sum(np.diagonal(d, offset=1)))


def distance_from_start(run_distances: np.ndarray) -> np.ndarray:
    """Each checkpoint's distance to the run's first checkpoint."""
    return np.asarray(run_distances, dtype=np.float64)[0].copy()


def speeds(run_distances: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Path length per epoch up to each checkpoint from the previous epoch's last one.

    ``epochs[i]`` is checkpoint ``i``'s epoch (non-decreasing). The value at a
    checkpoint is the path length from the last checkpoint of the previous epoch,
    through any checkpoints in between, divided by the epochs elapsed; NaN at the
    first epoch and at checkpoints that do not end their epoch.
    """
    d = np.asarray(run_distances, dtype=np.float64)
    epochs = np.asarray(epochs)
    if len(epochs) != len(d) or np.any(np.diff(epochs) < 0):
        raise ConfigError("speeds needs one non-decreasing epoch per checkpoint")
    cumulative = np.concatenate([[0.0], np.cumsum(np.diagonal(d, offset=1))])
    out = np.full(len(d), np.nan)
    last = np.flatnonzero(np.append(np.diff(epochs) > 0, True))  # last checkpoint per epoch
    elapsed = np.diff(epochs[last])
    out[last[1:]] = np.diff(cumulative[last]) / elapsed
    return out


def progress(to_ignorance: np.ndarray, to_truth: np.ndarray) -> np.ndarray:
    """``d(ignorance, P) / (d(ignorance, P) + d(P, truth))``, in [0, 1]."""
    a = np.asarray(to_ignorance, dtype=np.float64)
    b = np.asarray(to_truth, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / (a + b)


def trajectory_frame(
    distances: np.ndarray,
    points: pd.DataFrame,
    *,
    by: str = "group",
    endpoints: np.ndarray | None = None,
    index: RunIndex | None = None,
) -> pd.DataFrame:
    """One row per checkpoint, in training order within each run.

    Columns: ``run``, ``label`` (the ``by`` column), ``epoch``, ``step``, cumulative
    ``path_length``, ``distance_from_start``, ``speed`` (see :func:`speeds`), and, with
    ``endpoints`` (``(n, 2)`` distances of each checkpoint to the uniform prediction and
    to the one-hot targets; a NaN column where there is none), ``to_ignorance``,
    ``to_truth`` and ``progress``.
    """
    import pandas as pd

    index = index or index_runs(points, by)
    d = check_distances(distances, len(points))
    ends = _check_endpoints(endpoints, len(points))
    epoch = points["epoch"].to_numpy(dtype=np.int64)
    step = points["step"].to_numpy(dtype=np.int64) if "step" in points.columns else epoch * 0
    parts = []
    for r, rows in enumerate(index.order):
        sub = d[np.ix_(rows, rows)]
        parts.append(
            {
                "run": np.full(len(rows), index.runs[r]),
                "label": np.full(len(rows), index.labels[r]),
                "epoch": epoch[rows],
                "step": step[rows],
                "path_length": np.concatenate([[0.0], np.cumsum(np.diagonal(sub, 1))]),
                "distance_from_start": distance_from_start(sub),
                "speed": speeds(sub, epoch[rows]),
                "to_ignorance": ends[rows, 0],
                "to_truth": ends[rows, 1],
            }
        )
    frame = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    frame["progress"] = progress(frame["to_ignorance"], frame["to_truth"])
    return frame.loc[:, list(TRAJECTORY_COLUMNS)]


def run_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run from a :func:`trajectory_frame`: its label, first and last epoch,
    ``path_length``, ``start_to_end`` (distance from first to last checkpoint),
    ``straightness`` (``start_to_end / path_length``), ``mean_speed`` (path length per
    epoch) and, at the last checkpoint, ``to_ignorance``, ``to_truth`` and ``progress``.
    """
    g = frame.groupby("run", sort=False)
    last = g.tail(1).set_index("run")
    first = g.head(1).set_index("run")
    out = last[["label"]].copy()
    out["first_epoch"] = first["epoch"]
    out["last_epoch"] = last["epoch"]
    out["checkpoints"] = g.size()
    out["path_length"] = last["path_length"]
    out["start_to_end"] = last["distance_from_start"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["straightness"] = out["start_to_end"] / out["path_length"]
        elapsed = (out["last_epoch"] - out["first_epoch"]).replace(0, np.nan)
        out["mean_speed"] = out["path_length"] / elapsed
    for col in ("to_ignorance", "to_truth", "progress"):
        out[col] = last[col]
    return out.reset_index()


def _check_endpoints(endpoints: np.ndarray | None, n: int) -> np.ndarray:
    if endpoints is None:
        return np.full((n, 2), np.nan)
    e = np.asarray(endpoints, dtype=np.float64)
    if e.shape != (n, 2):
        raise ConfigError(
            f"endpoints must hold each checkpoint's distance to ignorance and to truth, "
            f"shape ({n}, 2); got {e.shape}"
        )
    return e
