"""2-D principal component analysis: scikit-learn on the CPU, torch on a GPU (each
imported on first use)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.device import DEVICE, check_device, on_gpu, resolve_device
from fspace.embedding.base import EmbeddingMethod, check_choice, register
from fspace.registry import Param

SVD_SOLVERS = ("auto", "full", "covariance_eigh", "arpack", "randomized")
BLOCK_BYTES = 256 * 2**20
"""Rows (as float32) moved to the GPU at a time."""
EXACT_UP_TO = 10_000
"""On a GPU, the axes are exact while the smaller of the covariance and Gram matrices
has at most this many rows (800 MB of float64); beyond, randomised as on the CPU."""


@register(
    "pca",
    label="PCA",
    help="projection on the first two principal axes; linear, keeps large distances",
    params=[
        Param(
            "svd_solver",
            str,
            "auto",
            "scikit-learn's SVD solver (on the CPU; a GPU solves the covariance or Gram "
            "matrix's eigenproblem exactly)",
            choices=SVD_SOLVERS,
        ),
        DEVICE,
    ],
    dashboard=(),
    metric=True,
    distances=("euclidean",),
)
class PCAMethod(EmbeddingMethod):
    """Projection on the first two principal axes; linear, so distances stay comparable.

    ``svd_solver="auto"`` lets scikit-learn pick an exact solver for small matrices and
    a randomised one (seeded by ``random_state``) for large ones. On a GPU (``device``)
    the axes come from the eigenvectors of the smaller of the covariance and Gram
    matrices, accumulated there in float64 from row blocks, with scikit-learn's signs.
    """

    min_points = 2

    def check(self, params: dict[str, Any]) -> None:
        check_choice("svd_solver", params["svd_solver"], SVD_SOLVERS)
        check_device(params["device"])

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        # Two points, or vectors of length 1, have fewer than two axes: pad with zeros.
        k = min(2, *matrix.shape)
        where = resolve_device(params["device"])
        if on_gpu(where):
            model = principal_axes(matrix, k, where, params["random_state"])
            return _pad(model.transform(matrix)), model
        from sklearn.decomposition import PCA

        model = PCA(
            n_components=k, svd_solver=params["svd_solver"], random_state=params["random_state"]
        )
        return _pad(model.fit_transform(matrix)), model

    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return _pad(state.transform(matrix))


class Axes:
    """Principal axes found on a device: ``transform`` projects rows on them (host)."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean_, self.components_ = mean, components

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """``(matrix - mean) @ components.T``, (m, k) float64, in blocks of rows (the
        matrix may be float16 and memory-mapped; it is never converted whole)."""
        out = np.empty((len(matrix), len(self.components_)))
        rows = max(1, BLOCK_BYTES // (8 * max(1, len(self.mean_))))
        for a in range(0, len(matrix), rows):
            block = np.asarray(matrix[a : a + rows], dtype=np.float64) - self.mean_
            out[a : a + rows] = block @ self.components_.T
        return out


def principal_axes(matrix: np.ndarray, k: int, device: Any, random_state: int = 0) -> Axes:
    """The top ``k`` principal axes of ``matrix``'s rows, computed on ``device`` in
    float64: the eigenvectors of the covariance (d <= n, summed over blocks of rows) or
    of the Gram matrix (n < d, summed over blocks of columns); when both exceed
    :data:`EXACT_UP_TO`, a randomised SVD (seeded by ``random_state``). Each axis's
    largest entry is positive, as scikit-learn's ``svd_flip(..., u_based_decision=False)``
    makes it."""
    import torch

    n, d = matrix.shape
    f64 = {"dtype": torch.float64, "device": device}
    if min(n, d) > EXACT_UP_TO:
        from fspace.embedding.principal import principal_coordinates

        found = principal_coordinates(
            matrix, k, random_state=random_state, power_iterations=4, device=device
        )
        mean, axes = found.mean.double(), found.basis.double()
    elif d <= n:
        mean = torch.zeros(d, **f64)
        for block in _blocks(matrix, device, rows=True):
            mean += block.sum(0) / n
        scatter = torch.zeros(d, d, **f64)
        for block in _blocks(matrix, device, rows=True):
            centred = block - mean
            scatter.addmm_(centred.T, centred)
        axes = torch.linalg.eigh(scatter).eigenvectors.flip(1)[:, :k]
    else:
        gram, means = torch.zeros(n, n, **f64), []
        for chunk in _blocks(matrix, device, rows=False):
            means.append(chunk.mean(0))  # a chunk holds every row: the column means
            centred = chunk - means[-1]
            gram.addmm_(centred, centred.T)
        mean = torch.cat(means)
        values, vectors = torch.linalg.eigh(gram)
        values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]
        # an axis without variance (fewer rows than axes) projects everything to 0
        kept = values > values[0].clamp(min=0) * 1e-12
        vectors = torch.where(kept, vectors / values.clamp(min=1e-300).sqrt(), 0.0)
        axes = torch.cat(
            [
                (c - m).T @ vectors
                for c, m in zip(_blocks(matrix, device, rows=False), means, strict=True)
            ]
        )
    top = axes.gather(0, axes.abs().argmax(0, keepdim=True))
    axes = torch.where(top < 0, -axes, axes)
    return Axes(mean.cpu().numpy(), axes.T.contiguous().cpu().numpy())


def _blocks(matrix: np.ndarray, device: Any, *, rows: bool):
    """Blocks of rows (or of columns) of ``matrix`` as float64 on ``device``, each of at
    most :data:`BLOCK_BYTES` as float32."""
    import torch

    n, d = matrix.shape
    step = max(1, BLOCK_BYTES // (4 * max(1, d if rows else n)))
    for a in range(0, n if rows else d, step):
        part = matrix[a : a + step] if rows else matrix[:, a : a + step]
        yield torch.from_numpy(np.asarray(part, dtype=np.float32)).to(device).double()


def _pad(coords: np.ndarray) -> np.ndarray:
    out = np.zeros((coords.shape[0], 2), dtype=np.float64)
    out[:, : coords.shape[1]] = coords
    return out
