"""Classical (Torgerson) multidimensional scaling of any distance, and the eigen-solver
it shares with InPCA.

Both double-centre the squared distances, ``W = -1/2 J D^2 J``, and keep two
eigenvectors of ``W`` scaled by ``sqrt(|lambda|)``: classical MDS the two largest
eigenvalues (a Euclidean picture), InPCA (:mod:`fspace.embedding.inpca`) the two
largest in absolute value, negative ones included. New checkpoints are placed by
Gower's formula, exactly where a checkpoint already in the map is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fspace.embedding.base import DistanceMethod, register
from fspace.embedding.quality import double_centred

DENSE_UP_TO = 1500
"""Up to this many checkpoints every eigenvalue is computed (LAPACK); beyond, ARPACK
finds the two wanted ones."""


@dataclass(frozen=True)
class Scaling:
    """A fitted classical scaling: what placing new checkpoints and the quality need."""

    values: np.ndarray
    """The two kept eigenvalues of W (signed)."""
    vectors: np.ndarray
    """Their unit eigenvectors, (n, 2)."""
    column_means: np.ndarray
    """Mean squared distance from each fitted checkpoint to all of them, (n,)."""
    grand_mean: float
    total: float
    """``||W||_F^2 = sum of all lambda^2``."""

    @property
    def coords(self) -> np.ndarray:
        return self.vectors * np.sqrt(np.abs(self.values))

    def place(self, distances: np.ndarray) -> np.ndarray:
        """Coordinates of points with (m, n) ``distances`` to the fitted ones (Gower)."""
        s = np.square(np.asarray(distances, dtype=np.float64))
        w = -0.5 * (s - s.mean(axis=1, keepdims=True) - self.column_means + self.grand_mean)
        scale = np.zeros_like(self.values)
        kept = self.values != 0
        scale[kept] = np.sqrt(np.abs(self.values[kept])) / self.values[kept]
        return (w @ self.vectors) * scale

    def quality(self) -> dict[str, Any]:
        kept = float(np.square(self.values).sum())
        return {
            "explained_stress": 1.0 if self.total == 0 else min(1.0, kept / self.total),
            "eigenvalues": [float(v) for v in self.values],
            "axis_signs": [1 if v >= 0 else -1 for v in self.values],
        }


def classical_scaling(distances: np.ndarray, *, by_magnitude: bool) -> Scaling:
    """Fit classical scaling to an (n, n) distance matrix, keeping two eigenvalues.

    ``by_magnitude`` ranks eigenvalues by absolute value (InPCA); otherwise the two
    largest (classical MDS, which drops negative ones). Each eigenvector's sign is
    fixed so that its largest entry is positive, making maps reproducible.
    """
    s = np.square(np.asarray(distances, dtype=np.float64))
    w = double_centred(s)
    w = (w + w.T) / 2
    values, vectors = _eigen(w, by_magnitude)
    if not by_magnitude:
        keep = values > 0
        values, vectors = np.where(keep, values, 0.0), vectors * keep
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    vectors = vectors * np.where(flip == 0, 1.0, flip)
    return Scaling(
        values=values,
        vectors=vectors,
        column_means=s.mean(axis=0),
        grand_mean=float(s.mean()),
        total=float(np.square(w).sum()),
    )


def _eigen(w: np.ndarray, by_magnitude: bool) -> tuple[np.ndarray, np.ndarray]:
    n = len(w)
    if n <= DENSE_UP_TO:
        values, vectors = np.linalg.eigh(w)
    else:
        from scipy.sparse.linalg import eigsh

        v0 = np.ones(n) / np.sqrt(n)  # ARPACK's start vector, fixed for reproducibility
        values, vectors = eigsh(w, k=2, which="LM" if by_magnitude else "LA", v0=v0)
    order = np.argsort(-np.abs(values) if by_magnitude else -values, kind="stable")[:2]
    values, vectors = values[order], vectors[:, order]
    if len(values) < 2:  # a single checkpoint's map
        values = np.pad(values, (0, 2 - len(values)))
        vectors = np.pad(vectors, ((0, 0), (0, 2 - vectors.shape[1])))
    return values, vectors


class ScalingMethod(DistanceMethod):
    """Base of the methods fitted to a distance matrix by classical scaling."""

    by_magnitude = False

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        raise ValueError("place new checkpoints by their distances (transform_distances)")

    def fit_distances(
        self, distances: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        fitted = classical_scaling(distances, by_magnitude=self.by_magnitude)
        return fitted.coords, fitted

    def transform_distances(
        self, state: Any, distances: np.ndarray, params: dict[str, Any]
    ) -> np.ndarray:
        return state.place(distances)

    def quality(self, state: Any) -> dict[str, Any]:
        return state.quality()


@register(
    "mds",
    label="Classical MDS",
    help="classical (Torgerson) scaling: the two largest eigenvalues of -1/2 J D^2 J",
    params=(),
    metric=True,
    distances="any",
)
class MDSMethod(ScalingMethod):
    """Classical multidimensional scaling of any distance: the best 2-D Euclidean picture
    of the double-centred squared distances (negative eigenvalues are dropped)."""

    min_points = 2
