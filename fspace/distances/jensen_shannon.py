"""Jensen-Shannon distance between the predicted distributions, over all probes at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from fspace.distances.base import (
    DISTANCES,
    PROBABILITY_KINDS,
    Distance,
    Prepared,
    probabilities,
)
from fspace.vectors import FunctionVectors


def neg_entropy(p: np.ndarray) -> np.ndarray:
    """``sum p log p`` over the last axis, with ``0 log 0 = 0``."""
    logs = np.log(np.where(p > 0, p, 1.0))
    return np.einsum("...c,...c->...", p, logs)


@DISTANCES.register(
    "jensen_shannon",
    label="Jensen-Shannon",
    help="sqrt of the mean over probes of the Jensen-Shannon divergence (natural log)",
    kinds=PROBABILITY_KINDS,
    metric=True,
    squared=False,
)
class JensenShannon(Distance):
    """``sqrt(mean_i JSD(p_i, q_i))``, natural logarithms; in [0, sqrt(log 2)], a metric.

    For one probe it is ``scipy.spatial.distance.jensenshannon(p, q)``; over many it is
    the Jensen-Shannon distance between the joint distributions of (probe drawn
    uniformly, predicted outcome). The mixture's entropy needs a logarithm per pair,
    probe and outcome (:func:`fspace.distances._kernels.mixture_entropy_sums`), so this
    distance costs far more than the matrix-product ones.
    """

    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        p = probabilities(vectors)
        return p, neg_entropy(p).sum(axis=1)

    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        from fspace.distances._kernels import mixture_entropy_sums

        m = a[0].shape[1]
        # sum_i JSD_i = 1/2 (sum p log p + sum q log q) - sum (p+q)/2 log((p+q)/2)
        total = 0.5 * (a[1][:, None] + b[1][None, :]) - mixture_entropy_sums(a[0], b[0])
        return np.sqrt(np.maximum(total / m, 0.0))

    def device_block(self, a: tuple, b: tuple, params: dict[str, Any], budget: int):
        import torch

        from fspace.distances._device import chunk

        (pa, ea), (pb, eb) = a, b
        (na, m, c), nb = pa.shape, len(pb)
        x, y = pa.reshape(na, -1), pb.reshape(nb, -1)
        mixture = torch.empty((na, nb), dtype=torch.float64, device=pa.device)
        # (rows, nb, m c) mixtures at a time; xlogy(0, 0) = 0 as in the CPU kernel
        step = chunk(na, 2 * nb * m * c * x.element_size(), budget)
        for r0 in range(0, na, step):
            t = (x[r0 : r0 + step, None, :] + y[None, :, :]).mul_(0.5)
            mixture[r0 : r0 + step] = torch.special.xlogy(t, t).sum(-1)
        total = (ea[:, None] + eb[None, :]).mul_(0.5).sub_(mixture)
        return total.div_(m).clamp_(min=0.0).sqrt_()

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        mix = (a[0] + b[0]) / 2
        jsd = 0.5 * (neg_entropy(a[0]) + neg_entropy(b[0])) - neg_entropy(mix)
        return np.sqrt(np.maximum(jsd.mean(axis=1), 0.0))
