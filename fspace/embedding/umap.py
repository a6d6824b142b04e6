"""UMAP embedding with umap-learn (imported on first use: it compiles with numba)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.embedding.base import (
    EmbeddingMethod,
    check_choice,
    check_int,
    register,
    warn_lowered,
)
from fspace.errors import ConfigError
from fspace.registry import Param

INITS = ("spectral", "random", "pca")


PARAMS = (
    Param(
        "n_neighbors",
        int,
        15,
        "neighbours that shape the map; lowered to n - 1 for n checkpoints",
        low=2,
    ),
    Param("min_dist", float, 0.1, "how tightly points may pack", low=0.0, high=1.0),
    Param("metric", str, "euclidean", "distance between function vectors (umap-learn metric)"),
    Param("n_epochs", int, None, "optimisation epochs (default: umap-learn's choice)", low=1),
    Param("init", str, "spectral", "initial map", choices=INITS),
)


@register(
    "umap",
    label="UMAP",
    help="uniform manifold approximation and projection (umap-learn); keeps neighbourhoods",
    params=PARAMS,
    dashboard=("n_neighbors", "min_dist"),
    metric=False,
    distances="any",
)
class UMAPMethod(EmbeddingMethod):
    """umap-learn's UMAP, single-threaded so that ``random_state`` makes it deterministic."""

    min_points = 4

    def check(self, params: dict[str, Any]) -> None:
        check_int("n_neighbors", params["n_neighbors"], 2)
        min_dist = params["min_dist"]
        if isinstance(min_dist, bool) or not isinstance(min_dist, (int, float)):
            raise ConfigError(f"min_dist must be a number in [0, 1], got {min_dist!r}")
        if not 0 <= min_dist <= 1:
            raise ConfigError(f"min_dist must be a number in [0, 1], got {min_dist!r}")
        if params["n_epochs"] is not None:
            check_int("n_epochs", params["n_epochs"], 1)
        check_choice("init", params["init"], INITS)
        if not isinstance(params["metric"], str):
            raise ConfigError(f"metric must be a metric name, got {params['metric']!r}")

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        if params["n_neighbors"] > n_points - 1:
            warn_lowered("n_neighbors", params["n_neighbors"], n_points - 1, n_points, "UMAP")
            params["n_neighbors"] = n_points - 1
        return params

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from umap import UMAP

        model = UMAP(
            n_components=2,
            n_neighbors=params["n_neighbors"],
            min_dist=params["min_dist"],
            metric=params["metric"],
            n_epochs=params["n_epochs"],
            init=params["init"],
            random_state=params["random_state"],
            transform_seed=params["random_state"],
            n_jobs=1,
            verbose=progress,
        )
        coords = model.fit_transform(matrix)
        return np.asarray(coords, dtype=np.float64), model

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return np.asarray(state.transform(matrix), dtype=np.float64)
