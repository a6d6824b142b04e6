"""Distance matrices on a torch device (a GPU), block by block, back into a host array.

Imported only when a matrix is computed on a GPU: :func:`fspace.distances.pairwise` with
``device="cuda"`` (or ``"auto"`` on a GPU machine). The per-row features come from the
distance's :meth:`~fspace.distances.Distance.prepare` on the host, as on the CPU; they
are moved to the device once when they fit in a quarter of the budget, else block by
block, and each block of the result (:meth:`~fspace.distances.Distance.device_block`) is copied
back into ``out``. The budget is a share of the GPU's free memory
(:func:`fspace.device.memory_budget`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

Prepared = tuple[np.ndarray, ...]
"""Per-row features (:data:`fspace.distances.base.Prepared`; not imported from there,
which imports this module)."""

MAX_BLOCK_ROWS = 8192
"""Rows per block at most: one block of the result is then 512 MiB of float64, enough
to keep a GPU busy; the host copies stay moderate."""
TEMPORARIES = 4
"""Result-sized temporaries a block may hold at once (the distances' own chunking keeps
theirs within the rest of the budget)."""


def block_rows(a: Prepared, b: Prepared, budget: int) -> int:
    """Rows per block so that a block of the result and its temporaries, and the rows of
    both blocks, stay within ``budget`` bytes."""
    row_bytes = sum(x[:1].nbytes for x in (*a, *b))
    by_result = math.isqrt(max(1, budget // (8 * TEMPORARIES)))
    by_rows = budget // (4 * max(1, row_bytes))
    return int(max(1, min(MAX_BLOCK_ROWS, by_result, by_rows)))


def fill_on_device(
    impl: Any,
    a: Prepared,
    b: Prepared,
    params: dict[str, Any],
    out: np.ndarray,
    *,
    symmetric: bool,
    device: torch.device,
    budget: int,
) -> None:
    """Fill ``out`` with ``impl``'s distances between ``a`` and ``b``, computed on
    ``device`` within ``budget`` bytes; exactly symmetric with a zero diagonal when
    ``symmetric`` (``a`` is ``b``)."""
    na, nb = out.shape
    rows = block_rows(a, b, budget)
    left = _Rows(b, device, budget // 4)
    right = left if symmetric else _Rows(a, device, budget // 4)
    for i0 in range(0, na, rows):
        part_a = right.take(slice(i0, min(i0 + rows, na)))
        for j0 in range(i0 if symmetric else 0, nb, rows):
            cols = slice(j0, min(j0 + rows, nb))
            d = impl.device_block(part_a, left.take(cols), params, budget)
            if symmetric and i0 == j0:
                d = (d + d.T) / 2  # exact symmetry despite rounding in the products
                d.fill_diagonal_(0.0)
            block = d.to(dtype=torch.float64).cpu().numpy()
            out[i0 : i0 + len(block), cols] = block
            if symmetric and i0 != j0:
                out[cols, i0 : i0 + len(block)] = block.T
        del part_a


class _Rows:
    """Prepared rows on the device: all moved once when they fit in ``room`` bytes,
    else the rows of each block as it is needed."""

    def __init__(self, prepared: Prepared, device: torch.device, room: int) -> None:
        self.prepared, self.device = prepared, device
        size = sum(x.nbytes for x in prepared)
        self.resident = _to_device(prepared, device) if size <= room else None

    def take(self, rows: slice) -> tuple[torch.Tensor, ...]:
        if self.resident is not None:
            return tuple(x[rows] for x in self.resident)
        return _to_device(tuple(x[rows] for x in self.prepared), self.device)


def _to_device(prepared: Prepared, device: torch.device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in prepared)


def chunk(total: int, per_item: int, budget: int) -> int:
    """Items (probes, rows) per chunk so that ``per_item`` bytes each fit in ``budget``."""
    return int(max(1, min(total, budget // max(1, per_item))))
