"""Top-1 disagreement: how often two checkpoints predict different outcomes."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.distances.base import DISTANCES, PROBABILITY_KINDS, Distance, Prepared, probabilities
from fspace.vectors import FunctionVectors


@DISTANCES.register(
    "disagreement",
    label="Top-1 disagreement",
    help="fraction of probes where the most probable outcomes differ (Fort et al. 2019)",
    kinds=PROBABILITY_KINDS,
    metric=True,
    squared=False,
)
class Disagreement(Distance):
    """Fraction of the distributions whose most probable outcome differs.

    Ties go to the first outcome. The number of agreements of a block is one matrix
    product of one-hot predictions, exact in float32 up to 16 million probes.
    """

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        p = probabilities(vectors, np.float32)
        top = p.argmax(axis=-1)
        onehot = np.zeros(p.shape, dtype=np.float32)
        np.put_along_axis(onehot, top[..., None], 1.0, axis=-1)
        return onehot.reshape(len(p), -1), top

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        m = a[1].shape[1]
        agree = (a[0] @ b[0].T).astype(np.float64)
        return 1.0 - agree / m

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        m = a[1].shape[1]
        agree = (a[0] @ b[0].T).double()  # whole numbers, exact in float32
        return 1.0 - agree / m

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        return (a[1] != b[1]).mean(axis=1)
