"""2-D principal component analysis with scikit-learn (imported on first use)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.embedding.base import EmbeddingMethod, check_choice, register
from fspace.registry import Param

SVD_SOLVERS = ("auto", "full", "covariance_eigh", "arpack", "randomized")


@register(
    "pca",
    label="PCA",
    help="projection on the first two principal axes; linear, keeps large distances",
    params=[Param("svd_solver", str, "auto", "scikit-learn's SVD solver", choices=SVD_SOLVERS)],
    dashboard=(),
    metric=True,
    distances=("euclidean",),
)
class PCAMethod(EmbeddingMethod):
    """Projection on the first two principal axes; linear, so distances stay comparable.

    ``svd_solver="auto"`` lets scikit-learn pick an exact solver for small matrices and
    a randomised one (seeded by ``random_state``) for large ones.
    """

    min_points = 2

    def check(self, params: dict[str, Any]) -> None:
        check_choice("svd_solver", params["svd_solver"], SVD_SOLVERS)

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from sklearn.decomposition import PCA

        # Two points, or vectors of length 1, have fewer than two axes: pad with zeros.
        k = min(2, *matrix.shape)
        model = PCA(
            n_components=k, svd_solver=params["svd_solver"], random_state=params["random_state"]
        )
        return _pad(model.fit_transform(matrix)), model

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return _pad(state.transform(matrix))


def _pad(coords: np.ndarray) -> np.ndarray:
    out = np.zeros((coords.shape[0], 2), dtype=np.float64)
    out[:, : coords.shape[1]] = coords
    return out
