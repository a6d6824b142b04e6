"""t-SNE embedding with openTSNE (imported on first use)."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from fspace.embedding.base import (
    EmbeddingMethod,
    check_choice,
    check_int,
    check_positive,
    register,
    warn_lowered,
)
from fspace.errors import ConfigError

NEIGHBORS = ("auto", "exact", "annoy", "pynndescent", "approx")
INITIALIZATIONS = ("pca", "spectral", "random")
# openTSNE's default for placing new points; lowered for small maps like the fit perplexity.
TRANSFORM_PERPLEXITY = 5.0
PARALLEL_FROM = 1000


@register("tsne")
class TSNEMethod(EmbeddingMethod):
    """openTSNE's FFT/Barnes-Hut t-SNE; new checkpoints are placed with ``transform``."""

    min_points = 4
    defaults = {  # noqa: RUF012 - read-only class table
        "perplexity": 30.0,
        "metric": "euclidean",
        "initialization": "pca",
        "neighbors": "auto",
        "n_iter": 500,
        "learning_rate": "auto",
        "n_jobs": None,
    }

    def check(self, params: dict[str, Any]) -> None:
        check_positive("perplexity", params["perplexity"])
        check_choice("neighbors", params["neighbors"], NEIGHBORS)
        check_choice("initialization", params["initialization"], INITIALIZATIONS)
        check_int("n_iter", params["n_iter"], 1)
        if not isinstance(params["metric"], str):
            raise ConfigError(f"metric must be a metric name, got {params['metric']!r}")
        if params["learning_rate"] != "auto":
            check_positive("learning_rate", params["learning_rate"])
        if params["n_jobs"] is not None:
            check_int("n_jobs", params["n_jobs"], 1)

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        # openTSNE computes 3 * perplexity neighbours; it needs perplexity <= (n - 1) / 3.
        limit = math.floor((n_points - 1) / 3 * 100) / 100
        if params["perplexity"] > limit:
            warn_lowered("perplexity", params["perplexity"], limit, n_points, "t-SNE")
            params["perplexity"] = limit
        if params["n_jobs"] is None:
            # Below ~1,000 points openTSNE's per-iteration threading costs more than it
            # saves (measured 5-20x slower on 2 cores for 36 points).
            params["n_jobs"] = (os.cpu_count() or 1) if n_points >= PARALLEL_FROM else 1
        return params

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from openTSNE import TSNE

        model = TSNE(
            n_components=2,
            perplexity=params["perplexity"],
            metric=params["metric"],
            initialization=params["initialization"],
            neighbors=params["neighbors"],
            n_iter=params["n_iter"],
            learning_rate=params["learning_rate"],
            n_jobs=params["n_jobs"],
            random_state=params["random_state"],
            verbose=progress,
        )
        fitted = model.fit(matrix)
        return np.asarray(fitted, dtype=np.float64), fitted

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        from openTSNE import TSNEEmbedding

        n_fit = state.shape[0]
        # openTSNE's transform recentres the map in place; work on a copy and shift back.
        fitted = TSNEEmbedding(
            np.array(state),
            state.affinities,
            random_state=state.random_state,
            optimizer=state.optimizer.copy(),
            **state.gradient_descent_params,
        )
        centre = (np.max(state, axis=0) + np.min(state, axis=0)) / 2
        placed = fitted.transform(
            matrix,
            perplexity=min(TRANSFORM_PERPLEXITY, params["perplexity"]),
            k=min(25, n_fit),
        )
        return np.asarray(placed, dtype=np.float64) + centre
