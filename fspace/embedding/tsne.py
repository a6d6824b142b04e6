"""t-SNE embedding with openTSNE (imported on first use).

Maps of 1,000 or more checkpoints take a faster route to the same kind of map: the
nearest neighbours come from matrix products of the function vectors
(:mod:`fspace.embedding.neighbors`, exact, or on the top principal components for very
many points), the PCA initialisation from the same Gram matrix, and, up to a few
thousand points, the gradient is summed exactly over all pairs
(:mod:`fspace.embedding.gradient`). openTSNE still computes the affinities, runs the
optimiser and places new points. Smaller maps are openTSNE's own, unchanged.

Very many points (``neighbors="pca"``, the automatic choice above :data:`GRAM_UP_TO`):
the principal components come from a randomised SVD over row blocks of the matrix,
which may be float16 and memory-mapped (``evaluate(..., dtype="stored", memmap=True)``)
and is never copied whole; the neighbours among them from an inverted file
(:mod:`fspace.embedding.ivf`); the gradient from openTSNE's FFT interpolation.
``pca_candidates`` (more than the ``3 x perplexity`` neighbours needed) finds that many
among the components and keeps the nearest by exact distance over every value
(:mod:`fspace.embedding.rerank`): at 100,000 x 10,000 it raised the recall of the exact
neighbours from 0.51 to 0.83 (180 candidates), but took about four more minutes of CPU.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from fspace.device import DEVICE, check_device
from fspace.embedding.base import (
    EmbeddingMethod,
    check_choice,
    check_int,
    check_positive,
    register,
    warn_lowered,
)
from fspace.errors import ConfigError
from fspace.registry import Param

NEIGHBORS = ("auto", "exact", "annoy", "pynndescent", "approx", "gram", "pca")
GRADIENTS = ("auto", "exact", "bh", "fft")
INITIALIZATIONS = ("pca", "spectral", "random")
# openTSNE's default for placing new points; lowered for small maps like the fit perplexity.
TRANSFORM_PERPLEXITY = 5.0
PARALLEL_FROM = 1000
FAST_FROM = 1000
"""From this many points, ``neighbors="auto"`` uses :mod:`fspace.embedding.neighbors`."""
GRAM_UP_TO = 20_000
"""Up to this many points ``"auto"`` neighbours are exact ("gram"), beyond on PCs ("pca")."""
EXACT_GRADIENT_UP_TO = 5_000
"""Up to this many points (and from FAST_FROM) ``"auto"`` sums the gradient exactly."""


PARAMS = (
    Param(
        "perplexity",
        float,
        30.0,
        "effective number of neighbours; lowered to (n - 1) / 3 for n checkpoints",
        low=1.0,
    ),
    Param("metric", str, "euclidean", "distance between function vectors (openTSNE metric)"),
    Param("initialization", str, "pca", "initial map", choices=INITIALIZATIONS),
    Param("neighbors", str, "auto", "nearest-neighbour search", choices=NEIGHBORS),
    Param("n_iter", int, 500, "optimisation steps after early exaggeration", low=1),
    Param("learning_rate", float, None, "step size > 0 (default: openTSNE's auto)"),
    Param("n_jobs", int, None, "threads (default: all cores from 1,000 points, else 1)", low=1),
    Param(
        "negative_gradient_method",
        str,
        "auto",
        "repulsive-force approximation",
        choices=GRADIENTS,
    ),
    Param("pca_components", int, 100, "principal components for neighbors='pca'", low=2),
    Param(
        "pca_candidates",
        int,
        0,
        "neighbors='pca': candidates found among the components and re-ranked by exact "
        "distance over every value, more than 3 x perplexity (0: none; slow on many points)",
        low=0,
    ),
    DEVICE,
)


@register(
    "tsne",
    label="t-SNE",
    help="t-distributed stochastic neighbour embedding (openTSNE); keeps neighbourhoods",
    params=PARAMS,
    dashboard=("perplexity",),
    metric=False,
    distances="any",
)
class TSNEMethod(EmbeddingMethod):
    """openTSNE's t-SNE; new checkpoints are placed with ``transform``.

    ``neighbors`` is one of openTSNE's searches (``"exact"``, ``"annoy"``, ...), or
    ``"gram"`` (exact, from matrix products; fast for long vectors) or ``"pca"``
    (among the top ``pca_components`` principal components, with ``pca_candidates``
    re-ranked by exact distance); ``"auto"`` picks
    ``"gram"`` from 1,000 points on. ``negative_gradient_method`` is ``"bh"``,
    ``"fft"`` or ``"exact"`` (every pair; fastest up to a few thousand points);
    ``"auto"`` picks ``"exact"`` for 1,000 to 5,000 points and openTSNE's choice
    otherwise. ``device`` is where the ``"gram"`` and ``"pca"`` searches run
    (:mod:`fspace.device`); openTSNE's own searches and optimiser stay on the CPU.
    ``learning_rate`` left unset (or ``"auto"``) is openTSNE's ``"auto"``.
    """

    min_points = 4

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("learning_rate") == "auto":  # openTSNE's spelling of the default
            params = {**params, "learning_rate": None}
        return super().validate(params)

    def check(self, params: dict[str, Any]) -> None:
        check_positive("perplexity", params["perplexity"])
        check_choice("neighbors", params["neighbors"], NEIGHBORS)
        check_choice("initialization", params["initialization"], INITIALIZATIONS)
        check_int("n_iter", params["n_iter"], 1)
        if not isinstance(params["metric"], str):
            raise ConfigError(f"metric must be a metric name, got {params['metric']!r}")
        if params["learning_rate"] is not None:
            check_positive("learning_rate", params["learning_rate"])
        if params["n_jobs"] is not None:
            check_int("n_jobs", params["n_jobs"], 1)
        check_choice("negative_gradient_method", params["negative_gradient_method"], GRADIENTS)
        check_int("pca_components", params["pca_components"], 2)
        check_int("pca_candidates", params["pca_candidates"], 0)
        check_device(params["device"])
        if params["neighbors"] in ("gram", "pca") and params["metric"] != "euclidean":
            raise ConfigError(
                f"neighbors={params['neighbors']!r} supports metric='euclidean' only, "
                f"got metric={params['metric']!r}; use neighbors='auto' for other metrics"
            )

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        # openTSNE computes 3 * perplexity neighbours; it needs perplexity <= (n - 1) / 3.
        limit = math.floor((n_points - 1) / 3 * 100) / 100
        if params["perplexity"] > limit:
            warn_lowered("perplexity", params["perplexity"], limit, n_points, "t-SNE")
            params["perplexity"] = limit
        if params["learning_rate"] is None:
            params["learning_rate"] = "auto"
        if params["n_jobs"] is None:
            # Below ~1,000 points openTSNE's per-iteration threading costs more than it
            # saves (measured 5-20x slower on 2 cores for 36 points).
            params["n_jobs"] = (os.cpu_count() or 1) if n_points >= PARALLEL_FROM else 1
        fast = n_points >= FAST_FROM and params["metric"] == "euclidean"
        if params["neighbors"] == "auto" and fast:
            params["neighbors"] = "gram" if n_points <= GRAM_UP_TO else "pca"
        small = n_points <= EXACT_GRADIENT_UP_TO
        if params["negative_gradient_method"] == "auto" and fast and small:
            params["negative_gradient_method"] = "exact"
        return params

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from openTSNE import TSNE

        fast = params["neighbors"] in ("gram", "pca")
        model = TSNE(
            n_components=2,
            perplexity=params["perplexity"],
            metric=params["metric"],
            initialization=params["initialization"],
            neighbors="auto" if fast else params["neighbors"],
            n_iter=params["n_iter"],
            learning_rate=params["learning_rate"],
            n_jobs=params["n_jobs"],
            random_state=params["random_state"],
            negative_gradient_method=_gradient(params["negative_gradient_method"]),
            verbose=progress,
        )
        if fast:
            affinities, init = _fast_affinities(matrix, params)
            fitted = model.fit(affinities=affinities, initialization=init)
        else:  # openTSNE's own search, on float32 (float16 only where we read it)
            fitted = model.fit(np.asarray(matrix, dtype=np.promote_types(matrix.dtype, "f4")))
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


def _gradient(name: str) -> Any:
    if name == "exact":
        from fspace.embedding.gradient import kl_divergence_exact

        return kl_divergence_exact
    return name


def _fast_affinities(matrix: np.ndarray, params: dict[str, Any]) -> tuple[Any, Any]:
    """openTSNE affinities from matrix-product neighbours, and the initial map."""
    from openTSNE import initialization
    from openTSNE.affinity import MultiscaleMixture

    from fspace.embedding.neighbors import GramIndex, PCAIndex

    k = min(matrix.shape[0] - 1, int(3 * params["perplexity"]))
    seed, device = params["random_state"], params.get("device", "auto")
    pca_init = params["initialization"] == "pca"
    if params["neighbors"] == "gram":
        components = 2 if pca_init else 0
        index = GramIndex(matrix, k, n_components=components, random_state=seed, device=device)
    else:
        index = PCAIndex(
            matrix,
            k,
            n_components=params["pca_components"],
            candidates=params.get("pca_candidates", 0),
            random_state=seed,
            device=device,
        )
    # The same affinities openTSNE's TSNE.fit computes, from our neighbours.
    affinities = MultiscaleMixture(
        perplexities=params["perplexity"], knn_index=index, n_jobs=params["n_jobs"]
    )
    if not pca_init:
        return affinities, params["initialization"]
    found = index.found.components if params["neighbors"] == "gram" else index.principal.coords
    coords = found[:, :2].double().numpy().copy()
    initialization.rescale(coords, inplace=True)
    return affinities, initialization.jitter(coords, inplace=True, random_state=seed)
