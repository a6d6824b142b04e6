"""Hellinger distance between the predicted distributions, over all probes at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.distances.base import (
    DISTANCES,
    PRECISION,
    PROBABILITY_KINDS,
    Distance,
    Prepared,
    dtype_of,
    probabilities,
)
from fspace.distances.euclidean import gram_distances, gram_distances_on_device, with_norms
from fspace.vectors import FunctionVectors


def root_features(vectors: FunctionVectors, dtype: Any) -> np.ndarray:
    """``sqrt(p) / sqrt(2 m)`` flattened: their Euclidean distance is the Hellinger one."""
    p = probabilities(vectors, dtype)
    m = p.shape[1]
    root = np.sqrt(p, out=p)
    root *= 1.0 / np.sqrt(2.0 * m)
    return root.reshape(len(p), -1)


@DISTANCES.register(
    "hellinger",
    label="Hellinger",
    help="Hellinger distance: sqrt of the mean over probes of 1/2 sum (sqrt p - sqrt q)^2",
    params=(PRECISION,),
    kinds=PROBABILITY_KINDS,
    metric=True,
    squared=False,
)
class Hellinger(Distance):
    """``sqrt(mean_i 1/2 sum_c (sqrt p_ic - sqrt q_ic)^2)`` over the m distributions.

    This is the Hellinger distance between the joint distributions of (probe drawn
    uniformly, predicted outcome): ``sqrt(1 - mean_i BC_i)`` with ``BC_i`` the
    Bhattacharyya coefficient of probe ``i``. It lies in [0, 1], is a metric, and is
    the Euclidean distance of the rows ``sqrt(p) / sqrt(2 m)``, so a block is one
    matrix product.
    """

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        return with_norms(root_features(vectors, dtype_of(params)))

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        return gram_distances(a, b)

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        return gram_distances_on_device(a, b)

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        diff = a[0].astype(np.float64) - b[0]
        return np.sqrt(np.einsum("ij,ij->i", diff, diff))

    def features(self, vectors: FunctionVectors, params: dict[str, Any]) -> np.ndarray:
        return root_features(vectors, np.float64)
