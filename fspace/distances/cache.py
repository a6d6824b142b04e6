"""Distance matrices cached in the experiment store, keyed by what determines them."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.distances.base import distance_entry, pairwise

if TYPE_CHECKING:
    from fspace.store import Experiment
    from fspace.vectors import FunctionVectors

KIND = "distances"


def cache_key(vectors: FunctionVectors, distance: str, params: dict[str, Any]) -> dict[str, Any]:
    """The key of a distance matrix: distance, its parameters, probe suite, checkpoints."""
    entry = distance_entry(distance)
    keys = [str(k) for k in vectors.points["checkpoint"]]
    if "experiment" in vectors.points.columns:
        keys = [f"{e}:{k}" for e, k in zip(vectors.points["experiment"], keys, strict=True)]
    checkpoints = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    return {
        "distance": entry.name,
        "params": entry.parse(params),
        "fingerprint": vectors.fingerprint,
        "output": vectors.output if entry.obj.raw else "distributions",
        "checkpoints": checkpoints,
        "n": len(vectors),
    }


def cached_pairwise(
    experiment: Experiment | None,
    vectors: FunctionVectors,
    distance: str = "euclidean",
    *,
    cache: bool = True,
    device: Any = "auto",
    **params: Any,
) -> np.ndarray:
    """:func:`pairwise` of ``vectors``, read from or written to the experiment's cache.

    The cache (``experiment.cache``, memory-mapped) is keyed by the distance, its
    parameters, the probe suite and the exact set of checkpoints, so any change to
    these computes a new matrix (not ``device``, where it is computed). Without an
    experiment, or with ``cache=False``, this is plain :func:`pairwise`.
    """
    store = getattr(experiment, "cache", None) if cache else None
    if store is None:
        return pairwise(vectors, distance, device=device, **params)
    key = cache_key(vectors, distance, params)
    hit = store.get(KIND, key)
    if hit is not None and hit[0].shape == (len(vectors), len(vectors)):
        return hit[0]
    matrix = pairwise(vectors, distance, device=device, **params)
    store.put(KIND, key, matrix, {"distance": key["distance"]})
    return matrix
