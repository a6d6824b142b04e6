"""PHATE (Moon et al., Nature Biotechnology 2019) on any distance, with the optional
``phate`` package (``pip install fspace[phate]``), imported when a map is fitted."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.embedding.base import DistanceMethod, register, warn_lowered
from fspace.errors import ConfigError
from fspace.registry import Param


@register(
    "phate",
    label="PHATE",
    help="potential of heat-diffusion affinity-based transition embedding (phate extra)",
    params=(
        Param("knn", int, 5, "neighbours of the adaptive kernel", low=1),
        Param("decay", float, 40.0, "kernel decay (alpha)", low=0.0),
        Param("t", int, None, "diffusion time (default: chosen by the knee of the entropy)", low=1),
    ),
    metric=False,
    distances="any",
)
class PHATEMethod(DistanceMethod):
    """PHATE on the precomputed distance matrix; it keeps trajectories and branches.
    PHATE cannot place new points into a map fitted to precomputed distances."""

    min_points = 4

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        if params["knn"] > n_points - 2:
            warn_lowered("knn", params["knn"], n_points - 2, n_points, "PHATE")
            params["knn"] = n_points - 2
        return params

    def fit_distances(
        self, distances: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        try:
            import phate
        except ImportError:
            raise ConfigError(
                "method 'phate' needs the phate package: pip install 'fspace[phate]'"
            ) from None
        model = phate.PHATE(
            n_components=2,
            knn=params["knn"],
            decay=params["decay"],
            t="auto" if params["t"] is None else params["t"],
            knn_dist="precomputed_distance",
            random_state=params["random_state"],
            n_jobs=1,
            verbose=progress,
        )
        coords = model.fit_transform(np.asarray(distances, dtype=np.float64))
        return np.asarray(coords, dtype=np.float64), None

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        raise ValueError("PHATE cannot place new checkpoints into an existing map; re-fit it")
