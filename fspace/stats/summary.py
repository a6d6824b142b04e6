"""Every trajectory and group statistic of some function vectors, in one call.

:func:`summarize` computes the distance matrix (or takes one), the distances of every
checkpoint to the two reference points of Mao et al. (the uniform prediction,
"ignorance", and the one-hot targets, "truth") where the distance and the probe suite
allow, and the tables of :mod:`fspace.stats.trajectory`, :mod:`fspace.stats.pairs` and
:mod:`fspace.stats.groups`.

Example::

    vectors = fspace.evaluate("checkpoints/demo")
    targets = fspace.Experiment("checkpoints/demo").probes().targets
    result = summarize(vectors, distance="hellinger", targets=targets, random_state=0)
    print(result.tests)          # 1-NN accuracy, distance ratio, silhouette with intervals
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.stats._index import check_distances, index_runs
from fspace.stats.groups import compare_groups, group_tests, select
from fspace.stats.pairs import epoch_distances, run_pairs
from fspace.stats.trajectory import run_table, trajectory_frame
from fspace.vectors import FunctionVectors

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class StatsResult:
    """The tables of :func:`summarize` and how they were made.

    ``trajectories``: one row per checkpoint; ``runs``: one per run; ``pairs``: one per
    pair of runs; ``epochs``: distances between runs at each epoch by kind of pair;
    ``tests``: group separation with intervals and p-values; ``comparisons``: per-run
    quantities by group. ``endpoints`` says why there are no distances to ignorance
    and truth, or is None when there are.
    """

    distance: str
    by: str
    selection: str
    trajectories: pd.DataFrame
    runs: pd.DataFrame
    pairs: pd.DataFrame
    epochs: pd.DataFrame
    tests: pd.DataFrame | None
    comparisons: pd.DataFrame | None
    endpoints: str | None


def reference_vectors(vectors: FunctionVectors, targets: Any = None) -> FunctionVectors:
    """The uniform prediction ("ignorance") and, with ``targets``, the one-hot targets
    ("truth") as two pseudo-checkpoints on the same probe suite, as probabilities.

    ``targets`` holds one class index per predicted distribution (per probe, or per
    probe and position for sequence outputs).
    """
    import pandas as pd

    from fspace.errors import ConfigError

    if vectors.kind == "regression" or not vectors.layout:
        raise ConfigError("ignorance and truth points need outputs that are distributions")
    first = dataclasses.replace(vectors, matrix=vectors.matrix[:1], points=vectors.points[:1])
    n_dist, outcomes = first.distributions().shape[1:]
    if n_dist * outcomes != vectors.matrix.shape[1] or vectors.layout[-1] != outcomes:
        raise ConfigError(
            f"function vectors of form {vectors.output!r} are compact (not one value per "
            f"outcome): no uniform or one-hot pseudo-checkpoints can be built for them"
        )
    rows = [np.full((n_dist, outcomes), 1.0 / outcomes)]
    names = ["(ignorance)"]
    if targets is not None:
        t = np.asarray(targets).reshape(-1)
        if t.size != n_dist or not np.issubdtype(t.dtype, np.integer):
            raise ConfigError(
                f"the probe suite's targets ({t.size} values of {t.dtype}) are not one class "
                f"per predicted distribution ({n_dist} of {outcomes} outcomes)"
            )
        if t.min() < 0 or t.max() >= outcomes:
            raise ConfigError(
                f"the probe suite's targets range over {t.min()}..{t.max()}, outside the "
                f"{outcomes} outcomes (padding or ignored positions have no one-hot truth)"
            )
        rows.append(np.eye(outcomes)[t])
        names.append("(truth)")
    matrix = np.stack([r.reshape(-1) for r in rows]).astype(np.float32)
    points = pd.DataFrame(
        {"run": names, "group": names, "epoch": 0, "step": 0, "checkpoint": names}
    )
    return dataclasses.replace(vectors, matrix=matrix, points=points, output="prob")


def endpoint_distances(
    vectors: FunctionVectors, distance: str, targets: Any = None, **params: Any
) -> tuple[np.ndarray | None, str | None]:
    """Distances ``(n, 2)`` of each checkpoint to ignorance and truth (NaN column
    without targets), or None and the reason they do not apply."""
    from fspace.distances import distance_entry, pairwise
    from fspace.errors import ConfigError

    if vectors.kind == "regression":
        return None, "regression outputs are not distributions: no ignorance or truth point"
    if distance_entry(distance).obj.raw and vectors.output != "prob":
        return None, (
            f"{distance} compares vectors as stored ({vectors.output}); the uniform and "
            f"one-hot points are probabilities: use a distance on distributions"
        )
    try:
        refs = reference_vectors(vectors, targets)
    except ConfigError as e:
        note = str(e)
        try:
            refs = reference_vectors(vectors)
        except ConfigError:
            return None, note
    else:
        note = None if targets is not None else "the probe suite has no targets: no truth point"
    d = pairwise(vectors, distance, other=refs, **params)
    out = np.full((len(vectors), 2), np.nan)
    out[:, : d.shape[1]] = d
    return out, note


def summarize(
    vectors: FunctionVectors,
    distances: np.ndarray | None = None,
    *,
    distance: str = "euclidean",
    by: str = "group",
    epoch: int | str | None = None,
    targets: Any = None,
    n_boot: int = 999,
    n_perm: int = 999,
    level: float = 0.95,
    random_state: int | None = 0,
    params: dict[str, Any] | None = None,
) -> StatsResult:
    """Trajectory, pair and group statistics of ``vectors`` under ``distance``.

    ``distances`` is the precomputed checkpoint matrix (e.g. from
    :func:`fspace.distances.cached_pairwise`); without it, it is computed here.
    ``targets`` (the probe suite's) give the truth point. ``by`` names the column that
    groups runs; ``epoch`` picks the checkpoints of the group statistics (None: all,
    ``"last"``, or an epoch). With a single group, ``tests`` and ``comparisons`` are None.
    """
    from fspace.distances import pairwise

    params = dict(params or {})
    points = vectors.points
    index = index_runs(points, by)
    if distances is None:
        distances = pairwise(vectors, distance, **params)
    d = check_distances(distances, len(points))
    ends, note = endpoint_distances(vectors, distance, targets, **params)
    frame = trajectory_frame(d, points, by=by, endpoints=ends, index=index)
    runs = run_table(frame)
    _, selection = select(index, epoch)
    tests = comparisons = None
    resampling = dict(n_boot=n_boot, n_perm=n_perm, level=level, random_state=random_state)
    if len(index.groups) >= 2 and np.bincount(index.codes).max() >= 2:
        tests = group_tests(d, points, by=by, epoch=epoch, **resampling)
        comparisons = compare_groups(d, points, runs, by=by, **resampling)
    return StatsResult(
        distance=distance,
        by=by,
        selection=selection,
        trajectories=frame,
        runs=runs,
        pairs=run_pairs(d, points, by=by),
        epochs=epoch_distances(d, index),
        tests=tests,
        comparisons=comparisons,
        endpoints=note,
    )
