"""What an embedding method is given for a distance: vectors, exact features or distances.

``embed(vectors, method, distance=...)`` feeds a method one of three inputs:

- ``"vectors"``: the function vectors themselves (the Euclidean distance, as before);
- ``"features"``: rows whose Euclidean distances equal the chosen distance exactly
  (Hellinger: square roots of probabilities), for methods that work on vectors, which
  then keep their fast paths;
- ``"distances"``: the (n, n) distance matrix, for methods that map distances (InPCA,
  MDS, Isomap, PHATE), and for vector methods with a ``metric`` parameter, which is
  set to ``"precomputed"``.

A distance tagged ``squared`` (Bhattacharyya, symmetric KL: divergences, quadratic in
small differences) is handed to the methods as its square root, so that every method
sees a distance and classical scaling squares it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError, EmbeddingError

if TYPE_CHECKING:
    from fspace.registry import Entry, Registry
    from fspace.vectors import FunctionVectors


def distance_of(name: str, vectors: FunctionVectors, params: dict[str, Any] | None) -> tuple:
    """The distance entry for ``name`` checked against ``vectors``, and its parsed params."""
    from fspace.distances import check_applies, distance_entry

    entry = distance_entry(name)
    check_applies(entry, vectors)
    return entry, entry.parse(dict(params or {}))


def check_method_takes(methods: Registry, method_entry: Entry, distance: str) -> None:
    """Raise unless the method's ``distances`` tag allows ``distance``; the message names
    the ``methods`` that can map any distance."""
    allowed = method_entry.tags.get("distances", ("euclidean",))
    if allowed == "any" or distance in allowed:
        return
    able = [e.name for e in methods if e.tags.get("distances") == "any"]
    raise ConfigError(
        f"method {method_entry.name!r} maps {', '.join(allowed)} distances only; for "
        f"distance {distance!r} use {', '.join(able) or 'another method'}"
    )


def input_mode(impl: Any, distance: Entry) -> str:
    """``"vectors"``, ``"features"`` or ``"distances"``: what ``impl`` is fitted to."""
    from fspace.distances import Distance

    if impl.needs_distances:
        return "distances"
    if distance.name == "euclidean":
        return "vectors"
    if type.__getattribute__(distance.obj, "features") is not Distance.features:
        return "features"
    if "metric" not in impl.defaults:
        raise ConfigError(
            f"method {impl.name!r} cannot map distance {distance.name!r}: it has no "
            f"precomputed-distance input; use a method that maps any distance"
        )
    return "distances"


def with_precomputed_metric(mode: str, impl: Any, params: dict) -> dict[str, Any]:
    """``params`` with ``metric="precomputed"`` where a vector method maps distances."""
    if mode != "distances" or impl.needs_distances:
        return params
    metric = params.get("metric", "precomputed")
    if metric != "precomputed":
        raise ConfigError(
            f"metric={metric!r} conflicts with a distance other than euclidean; give the "
            f"distance only (the method then maps the precomputed distances)"
        )
    return {**params, "metric": "precomputed"}


def as_distance(raw: np.ndarray, distance: Entry) -> np.ndarray:
    """The matrix a method sees: the square root of a ``squared`` distance, else itself."""
    if distance.tags.get("squared", False):
        return np.sqrt(np.maximum(raw, 0.0))
    return np.asarray(raw, dtype=np.float64)


def fit_input(
    mode: str,
    vectors: FunctionVectors,
    distance: Entry,
    params: dict[str, Any],
    precomputed: np.ndarray | None,
    *,
    device: Any = "auto",
) -> np.ndarray:
    """The matrix the method is fitted to: vectors, features or (n, n) distances (these
    computed on ``device``)."""
    if mode == "vectors":
        return vectors.matrix
    if mode == "features":
        return distance.obj().features(vectors, params)
    if precomputed is None:
        from fspace.distances import pairwise

        precomputed = pairwise(vectors, distance.name, device=device, **params)
    elif np.shape(precomputed) != (len(vectors), len(vectors)):
        raise EmbeddingError(
            f"precomputed distances have shape {np.shape(precomputed)}; expected "
            f"({len(vectors)}, {len(vectors)}) for {len(vectors)} checkpoints"
        )
    return as_distance(precomputed, distance)


def place_input(
    mode: str,
    new: FunctionVectors,
    reference: FunctionVectors | None,
    distance: Entry,
    params: dict[str, Any],
    *,
    device: Any = "auto",
) -> np.ndarray:
    """What the method's transform needs to place ``new`` checkpoints into the map."""
    if mode == "vectors":
        return new.matrix
    if mode == "features":
        return distance.obj().features(new, params)
    if reference is None:
        raise EmbeddingError(
            "this map was fitted to precomputed distances without its checkpoints' function "
            "vectors; re-fit it with embed() to add checkpoints"
        )
    from fspace.distances import pairwise

    found = pairwise(new, distance.name, other=reference, device=device, **params)
    return as_distance(found, distance)


def high_distances(
    mode: str,
    fitted: np.ndarray,
    vectors: FunctionVectors,
    distance: Entry,
    params: dict[str, Any],
    rows: np.ndarray,
) -> np.ndarray:
    """Function-space distances among ``rows``, as the method saw them, for the quality."""
    if mode == "distances":
        return fitted[np.ix_(rows, rows)]
    from fspace.distances import pairwise

    subset = vectors if len(rows) == len(vectors) else _take(vectors, rows)
    if "precision" in params:  # neighbour ranks need no more, and it halves the cost
        params = {**params, "precision": "float32"}
    return as_distance(pairwise(subset, distance.name, **params), distance)


def _take(vectors: FunctionVectors, rows: np.ndarray) -> FunctionVectors:
    import dataclasses

    return dataclasses.replace(
        vectors, matrix=vectors.matrix[rows], points=vectors.points.iloc[rows]
    )
