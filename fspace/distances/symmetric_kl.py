"""Symmetric Kullback-Leibler divergence (Jeffreys) between the predicted distributions."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.distances.base import (
    DISTANCES,
    PRECISION,
    PROBABILITY_KINDS,
    Distance,
    Param,
    Prepared,
    dtype_of,
    probabilities,
)
from fspace.vectors import FunctionVectors

FLOOR = Param(
    "floor",
    float,
    1e-8,
    "probabilities are clipped below at this value inside the logarithm, so one "
    "outcome adds at most log(1/floor) (18.4) per unit of probability difference",
    low=1e-300,
    high=0.5,
)


@DISTANCES.register(
    "symmetric_kl",
    label="Symmetric KL",
    help="mean over probes of KL(p||q) + KL(q||p), probabilities clipped at floor in the log",
    params=(FLOOR, PRECISION),
    kinds=PROBABILITY_KINDS,
    metric=False,
    squared=True,
)
class SymmetricKL(Distance):
    """``mean_i sum_c (p_ic - q_ic) (log max(p_ic, floor) - log max(q_ic, floor))``.

    Without the floor this is ``KL(p||q) + KL(q||p)`` (Jeffreys divergence) averaged
    over probes; the floor keeps it finite where one prediction gives an outcome zero
    probability, and it stays >= 0 (both factors have the same sign). A block is two
    matrix products: ``p.lp + q.lq - p.lq - q.lp``.
    """

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        p = probabilities(vectors, dtype_of(params))
        logp = np.log(np.maximum(p, params["floor"]))
        self_term = np.einsum("nic,nic->n", p, logp, dtype=np.float64)
        return p, logp, self_term

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        (pa, la, ta), (pb, lb, tb) = a, b
        n, m = len(pa), pa.shape[1]
        cross = pa.reshape(n, -1) @ lb.reshape(len(lb), -1).T
        cross += la.reshape(n, -1) @ pb.reshape(len(pb), -1).T
        total = ta[:, None] + tb[None, :] - cross
        return np.maximum(total / m, 0.0)

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        (pa, la, ta), (pb, lb, tb) = a, b
        n, m = len(pa), pa.shape[1]
        cross = pa.reshape(n, -1) @ lb.reshape(len(lb), -1).T
        cross += la.reshape(n, -1) @ pb.reshape(len(pb), -1).T
        total = (ta[:, None] + tb[None, :]).sub_(cross)
        return total.div_(m).clamp_(min=0.0)

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        terms = (a[0].astype(np.float64) - b[0]) * (a[1].astype(np.float64) - b[1])
        return terms.sum(axis=(1, 2)) / a[0].shape[1]
