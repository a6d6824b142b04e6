"""Trajectory and group statistics of function vectors, on any distance.

``summarize(vectors, distance="hellinger")`` gives every table at once; the pure
functions below take a checkpoint distance matrix and a points frame.
"""

from fspace.stats.groups import compare_groups, group_tests
from fspace.stats.pairs import (
    epoch_distances,
    equal_epoch_distances,
    frechet,
    frechet_distances,
    run_pairs,
)
from fspace.stats.separation import nearest_neighbor_accuracy, separation_ratio, silhouette
from fspace.stats.summary import StatsResult, endpoint_distances, reference_vectors, summarize
from fspace.stats.trajectory import (
    distance_from_start,
    path_length,
    progress,
    run_table,
    speeds,
    trajectory_frame,
)

__all__ = [
    "StatsResult",
    "compare_groups",
    "distance_from_start",
    "endpoint_distances",
    "epoch_distances",
    "equal_epoch_distances",
    "frechet",
    "frechet_distances",
    "group_tests",
    "nearest_neighbor_accuracy",
    "path_length",
    "progress",
    "reference_vectors",
    "run_pairs",
    "run_table",
    "separation_ratio",
    "silhouette",
    "speeds",
    "summarize",
    "trajectory_frame",
]
