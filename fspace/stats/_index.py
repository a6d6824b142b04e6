"""Which checkpoints form which run, in training order: the bookkeeping every statistic shares.

A points frame (:attr:`fspace.FunctionVectors.points`) has one row per checkpoint, with
at least the columns ``run`` and ``epoch`` (``step`` orders checkpoints within an
epoch). :func:`index_runs` turns it into a :class:`RunIndex`: runs, the label each run
carries (its group, or any column constant within a run), each run's checkpoints in
order, and an epoch grid that lines runs up at equal epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RunIndex:
    """Runs of a points frame and where their checkpoints are.

    ``runs[r]`` is the id of run ``r`` (``EXPERIMENT/RUN`` when the frame mixes several
    experiments), ``labels[r]`` its label in the ``by`` column, ``codes[r]`` that label
    as an index into ``groups``. ``order[r]`` holds the frame rows of run ``r`` sorted by
    epoch and step; ``run_of[i]`` is the run of row ``i``. ``grid[r, e]`` is the row of
    run ``r``'s last checkpoint in epoch ``epochs[e]``, or -1 if it has none there.
    """

    runs: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    codes: np.ndarray
    order: tuple[np.ndarray, ...]
    run_of: np.ndarray
    epochs: np.ndarray
    grid: np.ndarray
    by: str

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    def final_rows(self) -> np.ndarray:
        """The row of each run's last checkpoint."""
        return np.array([o[-1] for o in self.order])


def run_ids(points: pd.DataFrame) -> np.ndarray:
    """Run ids that stay unique across experiments: ``EXPERIMENT/RUN`` when the frame has
    an ``experiment`` column with more than one value, else the plain run id."""
    runs = np.asarray(points["run"], dtype=str)
    if "experiment" in points.columns and points["experiment"].nunique() > 1:
        return np.char.add(np.char.add(np.asarray(points["experiment"], dtype=str), "/"), runs)
    return runs


def index_runs(points: pd.DataFrame, by: str = "group") -> RunIndex:
    """The :class:`RunIndex` of ``points``, labelling each run by its ``by`` column.

    Raises :class:`ConfigError` if a column is missing or ``by`` varies within a run.
    """
    missing = [c for c in ("run", "epoch", by) if c not in points.columns]
    if missing:
        raise ConfigError(
            f"the points frame has no column {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(str, points.columns)) or 'none'}); "
            f"--by must name a column such as group, seed or depth"
        )
    if len(points) == 0:
        raise ConfigError("no checkpoints to compute statistics of")
    runs_all = run_ids(points)
    runs, run_of = np.unique(runs_all, return_inverse=True)
    label_all = np.asarray(points[by], dtype=str)
    labels = np.empty(len(runs), dtype=object)
    for r in range(len(runs)):
        values = np.unique(label_all[run_of == r])
        if len(values) > 1:
            raise ConfigError(
                f"column {by!r} takes several values within run {runs[r]!r} "
                f"({', '.join(values[:4])}); group runs by a column that is constant per run"
            )
        labels[r] = values[0]
    labels = labels.astype(str)
    groups, codes = np.unique(labels, return_inverse=True)
    epoch = points["epoch"].to_numpy(dtype=np.int64)
    step = points["step"].to_numpy(dtype=np.int64) if "step" in points.columns else epoch * 0
    rank = np.lexsort((step, epoch, run_of))  # by run, then epoch, then step
    order = tuple(np.split(rank, np.cumsum(np.bincount(run_of, minlength=len(runs)))[:-1]))
    epochs = np.unique(epoch)
    grid = np.full((len(runs), len(epochs)), -1, dtype=np.int64)
    # Later rows of the same run and epoch overwrite earlier ones: the last step wins.
    grid[run_of[rank], np.searchsorted(epochs, epoch[rank])] = rank
    return RunIndex(runs, labels, groups, codes, order, run_of, epochs, grid, by)


def check_distances(distances: np.ndarray, n: int) -> np.ndarray:
    """``distances`` as a float64 (n, n) matrix with a zero diagonal, or a ConfigError.

    The matrix is used as it is (a cached memory map is not copied) unless it has to be
    cast or its diagonal and rounding negatives have to be zeroed.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.shape != (n, n):
        raise ConfigError(
            f"the distance matrix has shape {d.shape}, but there are {n} checkpoints: "
            f"pass the pairwise distances of the checkpoints in the points frame's order"
        )
    if not np.isfinite(d).all():
        raise ConfigError("the distance matrix holds NaN or infinite values")
    low = float(d.min()) if d.size else 0.0
    if low < -1e-9 * max(1.0, float(np.abs(d).max())):
        raise ConfigError("the distance matrix holds negative values")
    if low >= 0.0 and not np.diagonal(d).any():
        return d
    d = np.maximum(d, 0.0)  # a copy: rounding leaves tiny negatives and self-distances
    np.fill_diagonal(d, 0.0)
    return d
