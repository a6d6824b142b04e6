"""Euclidean distance between function vectors as stored (probabilities, log-probabilities
or logits, whichever form the experiment records); the one distance for regression."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.distances.base import ALL_KINDS, DISTANCES, PRECISION, Distance, Prepared, dtype_of
from fspace.vectors import FunctionVectors

if TYPE_CHECKING:
    import torch


def gram_distances(a: Prepared, b: Prepared) -> np.ndarray:
    """Euclidean distances from ``(rows, squared norms)`` pairs: one matrix product."""
    x, x2 = a
    y, y2 = b
    squared = x2[:, None] + y2[None, :] - 2.0 * (x @ y.T)
    return np.sqrt(np.maximum(squared, 0.0, out=squared), out=squared)


def gram_distances_on_device(a: tuple, b: tuple) -> torch.Tensor:
    """:func:`gram_distances` of torch tensors, on their device: the squared norms are
    float64, the product in the rows' dtype (float32 or float64), as on the CPU."""
    x, x2 = a
    y, y2 = b
    squared = (x2[:, None] + y2[None, :]).sub_(x @ y.T, alpha=2.0)
    return squared.clamp_(min=0.0).sqrt_()


def with_norms(x: np.ndarray) -> Prepared:
    """``x`` and the squared norm of each row (accumulated in float64)."""
    return x, np.einsum("ij,ij->i", x, x, dtype=np.float64)


@DISTANCES.register(
    "euclidean",
    label="Euclidean",
    help="Euclidean distance between the function vectors in their stored form",
    params=(PRECISION,),
    kinds=ALL_KINDS,
    metric=True,
    squared=False,
)
class Euclidean(Distance):
    """``||x - y||`` of the stored function vectors, from one matrix product per block."""

    raw = True

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        return with_norms(np.asarray(vectors.matrix, dtype=dtype_of(params)))

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        return gram_distances(a, b)

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        return gram_distances_on_device(a, b)

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        diff = a[0].astype(np.float64) - b[0]
        return np.sqrt(np.einsum("ij,ij->i", diff, diff))

    def features(self, vectors: FunctionVectors, params: dict[str, Any]) -> np.ndarray:
        return np.asarray(vectors.matrix)
