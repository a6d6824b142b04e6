"""Bhattacharyya distance per probe, averaged over probes: the intensive form of Mao,
Griniasty et al. (PNAS 2024), which InPCA maps isometrically."""

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
    1e-12,
    "smallest per-probe Bhattacharyya coefficient: a probe adds at most -log(floor) "
    "(27.6), even where the two predictions share no outcome",
    low=1e-100,
    high=1.0,
)


@DISTANCES.register(
    "bhattacharyya",
    label="Bhattacharyya",
    help="mean over probes of -log sum_c sqrt(p_c q_c) (intensive Bhattacharyya distance)",
    params=(FLOOR, PRECISION),
    kinds=PROBABILITY_KINDS,
    metric=False,
    squared=True,
)
class Bhattacharyya(Distance):
    """``mean_i -log max(BC_i, floor)`` with ``BC_i = sum_c sqrt(p_ic q_ic)``.

    Zero for equal predictions, quadratic in small differences (it is 1/8 of the Fisher
    information metric locally), so InPCA uses it as a squared distance. It is not a
    metric. The per-probe coefficients of a block are small matrix products over the
    outcomes, fused with their logarithms (:func:`fspace.distances._kernels.log_bc_sums`)
    so that the work runs near the matrix-product rate; on a diagonal block of a
    symmetric matrix only the upper triangle is computed.
    """

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        p = probabilities(vectors, dtype_of(params))
        return (np.sqrt(p, out=p),)

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        from fspace.distances._kernels import log_bc_sums

        m = a[0].shape[1]
        sums = log_bc_sums(a[0], b[0], params["floor"], upper=_same_rows(a[0], b[0]))
        return np.maximum(-sums / m, 0.0)  # a coefficient may exceed 1 by rounding

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        import torch

        from fspace.distances._device import chunk

        x, y = a[0], b[0]
        floor = params["floor"]
        if floor < torch.finfo(x.dtype).tiny:  # the floor would round to 0 in float32
            x, y = x.double(), y.double()
        (na, m, _), nb = x.shape, len(y)
        sums = torch.zeros((na, nb), dtype=torch.float64, device=x.device)
        # (probes, na, nb) coefficients at a time: one batched product per chunk of probes
        step = chunk(m, 2 * na * nb * x.element_size(), budget)
        for i0 in range(0, m, step):
            xs, ys = x[:, i0 : i0 + step].transpose(0, 1), y[:, i0 : i0 + step].permute(1, 2, 0)
            bc = torch.bmm(xs, ys).clamp_(min=floor).log_()
            sums += bc.sum(0, dtype=torch.float64)
        return sums.div_(-m).clamp_(min=0.0)  # a coefficient may exceed 1 by rounding

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        bc = np.einsum("nic,nic->ni", a[0], b[0], dtype=np.float64)
        return -np.log(np.clip(bc, params["floor"], 1.0)).mean(axis=1)


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are views of the same memory (a diagonal block)."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )
