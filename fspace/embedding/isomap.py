"""Isomap (Tenenbaum et al. 2000) on any distance, with scikit-learn (imported on use)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.embedding.base import DistanceMethod, register, warn_lowered
from fspace.registry import Param


@register(
    "isomap",
    label="Isomap",
    help="classical scaling of shortest-path distances along the k-nearest-neighbour graph",
    params=(Param("n_neighbors", int, 10, "neighbours in the graph", low=2),),
    metric=True,
    distances="any",
)
class IsomapMethod(DistanceMethod):
    """scikit-learn's Isomap on the precomputed distance matrix; new checkpoints are placed
    through their nearest fitted neighbours."""

    min_points = 4

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        if params["n_neighbors"] > n_points - 1:
            warn_lowered("n_neighbors", params["n_neighbors"], n_points - 1, n_points, "Isomap")
            params["n_neighbors"] = n_points - 1
        return params

    def fit_distances(
        self, distances: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from sklearn.manifold import Isomap

        model = Isomap(n_neighbors=params["n_neighbors"], n_components=2, metric="precomputed")
        coords = model.fit_transform(np.asarray(distances, dtype=np.float64))
        return np.asarray(coords, dtype=np.float64), model

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        raise ValueError("place new checkpoints by their distances (transform_distances)")

    def transform_distances(
        self, state: Any, distances: np.ndarray, params: dict[str, Any]
    ) -> np.ndarray:
        return np.asarray(state.transform(np.asarray(distances, np.float64)), dtype=np.float64)
