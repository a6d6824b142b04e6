"""Statistics between groups of runs, each with a bootstrap interval and a permutation test.

:func:`group_tests` asks whether the groups separate (ratio, silhouette, 1-NN accuracy
of :mod:`fspace.stats.separation`); :func:`compare_groups` asks how per-run quantities
(path length, distance travelled, progress, ...) and the spread of the runs' end points
differ between groups. Intervals resample runs within groups (never checkpoints);
p-values permute group labels across runs. Both take ``random_state``, so the same call
gives the same numbers.

Example::

    d = fspace.distances.pairwise(vectors, "hellinger")
    print(group_tests(d, vectors.points, by="group", n_boot=999, random_state=0))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError
from fspace.stats import separation as sep
from fspace.stats._index import RunIndex, check_distances, index_runs
from fspace.stats.pairs import equal_epoch_distances, final_distances
from fspace.stats.resampling import Statistic, bca_interval, permutation_test

if TYPE_CHECKING:
    import pandas as pd

TEST_COLUMNS = ("statistic", "value", "low", "high", "p_value", "chance", "runs", "checkpoints")
COMPARE_COLUMNS = ("quantity", "label", "value", "low", "high", "p_value", "runs")
STATISTICS = {
    "1-NN accuracy": "leave-one-run-out nearest-neighbour accuracy of the checkpoints' labels",
    "distance ratio": "mean distance between groups / mean distance within groups (runs)",
    "silhouette": "silhouette coefficient of the runs (scikit-learn, precomputed distances)",
}


def select(index: RunIndex, epoch: int | str | None) -> tuple[np.ndarray, str]:
    """The checkpoint rows a group statistic uses, and a description of them.

    ``None``: every checkpoint (runs compared at equal epoch); ``"last"``: each run's
    last checkpoint; an int: each run's last checkpoint of that epoch.
    """
    if epoch is None:
        return np.concatenate(index.order), "all epochs"
    if epoch == "last":
        return index.final_rows(), "last checkpoints"
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
        raise ConfigError(f"epoch must be None, 'last' or an int, got {epoch!r}")
    where = np.flatnonzero(index.epochs == epoch)
    rows = index.grid[:, where[0]] if len(where) else np.full(index.n_runs, -1)
    if np.any(rows < 0):
        lacking = index.runs[rows < 0]
        raise ConfigError(
            f"{len(lacking)} run(s) have no checkpoint at epoch {epoch} "
            f"(e.g. {str(lacking[0])!r}); "
            f"recorded epochs: {index.epochs.min()}-{index.epochs.max()}"
        )
    return rows, f"epoch {epoch}"


def _run_matrix(d: np.ndarray, index: RunIndex, epoch: int | str | None) -> np.ndarray:
    if epoch is None:
        return equal_epoch_distances(d, index)
    rows, _ = select(index, epoch)
    r = d[np.ix_(rows, rows)].copy()
    np.fill_diagonal(r, 0.0)
    return r


def _require_groups(index: RunIndex) -> None:
    if len(index.groups) < 2:
        raise ConfigError(
            f"statistics between groups need runs with at least two values of {index.by!r}; "
            f"all {index.n_runs} runs have {index.by}={index.groups[0]!r}"
        )
    if np.bincount(index.codes).max() < 2:
        raise ConfigError(
            f"every value of {index.by!r} has a single run; within-group distances need "
            f"at least two runs in some group"
        )


def group_tests(
    distances: np.ndarray,
    points: pd.DataFrame,
    *,
    by: str = "group",
    epoch: int | str | None = None,
    n_boot: int = 999,
    n_perm: int = 999,
    level: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """1-NN accuracy, distance ratio and silhouette of the runs grouped by ``by``.

    One row per statistic: its ``value``, a BCa bootstrap interval ``low``-``high`` at
    ``level`` (runs resampled within groups), the permutation ``p_value`` (labels
    shuffled across runs; small means the groups separate more than chance) and
    ``chance``, the mean of the permutation distribution. ``epoch`` picks the
    checkpoints (see :func:`select`).
    """
    import pandas as pd

    index = index_runs(points, by)
    _require_groups(index)
    d = check_distances(distances, len(points))
    rows, _ = select(index, epoch)
    sub_runs = index.run_of[rows]
    to_runs = sep.distances_to_runs(d[np.ix_(rows, rows)], sub_runs, index.n_runs)
    r = _run_matrix(d, index, epoch)
    k = len(index.groups)
    stats: dict[str, Statistic] = {
        "1-NN accuracy": sep.nearest_run_statistic(to_runs, sub_runs),
        "distance ratio": sep.ratio_statistic(r, k),
        "silhouette": sep.silhouette_statistic(r, k),
    }
    rng = np.random.default_rng(random_state)
    out = []
    for name, stat in stats.items():
        value = float(stat(np.ones((1, index.n_runs)), index.codes[None])[0])
        low, high = bca_interval(stat, index.codes, n_boot=n_boot, level=level, rng=rng)
        p, chance = permutation_test(stat, index.codes, n_perm=n_perm, rng=rng)
        out.append((name, value, low, high, p, chance, index.n_runs, len(rows)))
    return pd.DataFrame(out, columns=list(TEST_COLUMNS))


def compare_groups(
    distances: np.ndarray,
    points: pd.DataFrame,
    runs: pd.DataFrame,
    *,
    by: str = "group",
    quantities: tuple[str, ...] = ("path_length", "start_to_end", "to_truth", "progress"),
    n_boot: int = 999,
    n_perm: int = 999,
    level: float = 0.95,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Per-run quantities and the spread of end points, by group, with intervals.

    ``runs`` is :func:`~fspace.stats.trajectory.run_table`'s frame. For each quantity
    (columns of ``runs`` that hold a finite value for every run; others are left out)
    and each label: the mean over its runs with a bootstrap interval. ``final spread``
    is the mean distance between the last checkpoints of distinct runs of a label
    (small: the runs end close to one another). With exactly two labels ``a`` and
    ``b``, a row ``a - b`` holds the difference, its interval and a two-sided
    permutation p-value.
    """
    import pandas as pd

    index = index_runs(points, by)
    _require_groups(index)
    d = check_distances(distances, len(points))
    values = runs.set_index("run").reindex(index.runs)
    k = len(index.groups)
    per_group: dict[str, list[Statistic]] = {}
    for q in quantities:
        if q in values.columns and np.isfinite(values[q].to_numpy(dtype=np.float64)).all():
            v = values[q].to_numpy(dtype=np.float64)
            per_group[q] = [sep.mean_statistic(v, g) for g in range(k)]
    final = final_distances(d, index)
    per_group["final spread"] = [sep.spread_statistic(final, g) for g in range(k)]
    rng = np.random.default_rng(random_state)
    counts = np.bincount(index.codes, minlength=k)
    out = []
    for q, stats in per_group.items():
        for g, stat in enumerate(stats):
            value = float(stat(np.ones((1, index.n_runs)), index.codes[None])[0])
            low, high = bca_interval(stat, index.codes, n_boot=n_boot, level=level, rng=rng)
            out.append((q, index.groups[g], value, low, high, np.nan, int(counts[g])))
        if k == 2:
            diff = sep.difference(stats[0], stats[1])
            value = float(diff(np.ones((1, index.n_runs)), index.codes[None])[0])
            low, high = bca_interval(diff, index.codes, n_boot=n_boot, level=level, rng=rng)
            p, _ = permutation_test(
                diff, index.codes, n_perm=n_perm, rng=rng, alternative="two-sided"
            )
            label = f"{index.groups[0]} - {index.groups[1]}"
            out.append((q, label, value, low, high, p, index.n_runs))
    return pd.DataFrame(out, columns=list(COMPARE_COLUMNS))
