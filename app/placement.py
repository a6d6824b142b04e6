"""Placing new checkpoints into a map that has no fitted state, by their neighbours."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from fspace.errors import EmbeddingError

if TYPE_CHECKING:
    from fspace.embedding import Embedding
    from fspace.vectors import FunctionVectors

NEIGHBOURS = 5
CHUNK_ELEMENTS = 2**24


def neighbour_positions(
    coords: np.ndarray, old: np.ndarray, new: np.ndarray, k: int = NEIGHBOURS
) -> np.ndarray:
    """For each row of ``new``, the median map position of its ``k`` nearest rows of
    ``old`` (Euclidean distance between function vectors); ``coords[i]`` places ``old[i]``.

    This is where openTSNE's ``transform`` starts new points before optimising them.
    """
    if len(old) == 0:
        raise EmbeddingError("cannot place checkpoints into an empty map")
    k = min(k, len(old))
    reference = torch.as_tensor(np.ascontiguousarray(old, dtype=np.float32))
    rows = max(1, CHUNK_ELEMENTS // max(len(old), 1))
    out = np.empty((len(new), 2), dtype=np.float64)
    for start in range(0, len(new), rows):
        chunk = torch.as_tensor(np.ascontiguousarray(new[start : start + rows], np.float32))
        nearest = torch.cdist(chunk, reference).topk(k, largest=False).indices.numpy()
        out[start : start + len(chunk)] = np.median(coords[nearest], axis=1)
    return out


def place_by_neighbours(
    embedding: Embedding, old: FunctionVectors, new: FunctionVectors
) -> Embedding:
    """``embedding`` with the checkpoints of ``new`` added at :func:`neighbour_positions`.

    ``old`` holds the function vectors of the embedding's checkpoints, in any order.
    """
    import pandas as pd

    from fspace.embedding import Embedding

    new.check_compatible(old)
    row_of = {key: i for i, key in enumerate(old.points["checkpoint"])}
    keys = embedding.points["checkpoint"].tolist()
    missing = [k for k in keys if k not in row_of]
    if missing:
        raise EmbeddingError(
            f"no function vectors for {len(missing)} checkpoints of the map "
            f"(e.g. {missing[0]}); re-fit the map"
        )
    matrix = old.matrix[[row_of[k] for k in keys]]
    placed = neighbour_positions(np.asarray(embedding.coords), matrix, new.matrix)
    coords = np.concatenate([embedding.coords, placed])
    coords.setflags(write=False)
    points = pd.concat([embedding.points, new.points], ignore_index=True)
    return Embedding(
        coords,
        points,
        embedding.method,
        dict(embedding.params),
        embedding.fingerprint,
        embedding.output,
        embedding.dimension,
    )
