"""Distances between checkpoints: ``pairwise(vectors, "bhattacharyya")``.

Each distance is one module here, registered in :data:`DISTANCES`; plug-ins add more
through the entry-point group ``fspace.distances``.
"""

from fspace.distances import (  # noqa: F401 - registers the built-in distances
    bhattacharyya,
    disagreement,
    euclidean,
    hellinger,
    jensen_shannon,
    symmetric_kl,
)
from fspace.distances.base import (
    DISTANCES,
    Distance,
    check_applies,
    distance_entry,
    pairwise,
    probabilities,
    rowwise,
)
from fspace.distances.cache import cached_pairwise

__all__ = [
    "DISTANCES",
    "Distance",
    "cached_pairwise",
    "check_applies",
    "distance_entry",
    "pairwise",
    "probabilities",
    "rowwise",
]
