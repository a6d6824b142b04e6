"""Placing new checkpoints into a map that has no fitted state, by their neighbours.

A map read from the cache (or computed elsewhere) cannot ``transform`` new checkpoints;
they are placed where openTSNE's ``transform`` starts them: at the median position of
their nearest neighbours in function space. The neighbours are looked for among
*reference* checkpoints of the map (:func:`reference_checkpoints`): every checkpoint of
the runs the new ones belong to, and an evenly spread sample of the others, at most
:data:`REFERENCE_LIMIT` in all, so that placing into a map of a million checkpoints reads
a bounded number of function vectors and answers within seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from fspace.errors import EmbeddingError

if TYPE_CHECKING:
    from fspace.embedding import Embedding
    from fspace.store import CheckpointInfo
    from fspace.vectors import FunctionVectors

NEIGHBOURS = 5
CHUNK_ELEMENTS = 2**24
REFERENCE_LIMIT = 20_000
"""Most checkpoints of a map whose function vectors placement reads (see module doc)."""


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


def reference_checkpoints(
    mapped: Iterable[str],
    recorded: Sequence[CheckpointInfo],
    runs: Iterable[str] = (),
    limit: int | None = None,
) -> list[CheckpointInfo]:
    """The checkpoints of ``recorded`` whose keys the map holds (``mapped``) that new
    checkpoints of ``runs`` are placed among: all of them up to ``limit`` (default
    :data:`REFERENCE_LIMIT`); beyond, every one of ``runs`` (up to ``limit``) and, filling
    up to ``limit``, others evenly spread over ``recorded`` (run by run, so every part of
    a sweep is among them). Checkpoints the store no longer holds are left out.

    >>> refs = reference_checkpoints(embedding.points["checkpoint"], scan.checkpoints)
    """
    limit = REFERENCE_LIMIT if limit is None else limit
    keys = set(_objects(mapped))
    present = [c for c in recorded if c.key in keys]
    if not present:
        raise EmbeddingError(
            f"none of the map's {len(keys):,} checkpoints is in the experiment any more, "
            f"so new checkpoints cannot be placed among them; re-fit the map"
        )
    if len(present) <= limit:
        return present
    wanted = set(runs)
    own = [c for c in present if c.run in wanted][:limit]
    others = [c for c in present if c.run not in wanted]
    room = limit - len(own)
    if room <= 0 or not others:
        return own
    picks = np.linspace(0, len(others) - 1, min(room, len(others))).round().astype(np.int64)
    return own + [others[i] for i in np.unique(picks)]


def place_by_neighbours(
    embedding: Embedding, references: FunctionVectors, new: FunctionVectors
) -> Embedding:
    """``embedding`` with the checkpoints of ``new`` added at :func:`neighbour_positions`
    among ``references``: the function vectors of some of the embedding's checkpoints,
    in any order (those the embedding does not hold are ignored).

    The existing checkpoints keep their coordinates exactly: nothing is re-fitted.
    """
    import pandas as pd

    from fspace.embedding import Embedding

    new.check_compatible(references)
    # A hash index, not a dict built key by key: a map may hold a million checkpoints.
    mapped = pd.Index(_objects(embedding.points["checkpoint"]))
    rows = mapped.get_indexer(_objects(references.points["checkpoint"]))
    found = rows >= 0
    if not found.any():
        raise EmbeddingError(
            f"none of the {len(rows):,} checkpoints whose function vectors were read is "
            f"in the map of {len(embedding):,} checkpoints; re-fit the map"
        )
    coords_of = np.asarray(embedding.coords)[rows[found]]
    placed = neighbour_positions(coords_of, references.matrix[found], new.matrix)
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


def _objects(values: Iterable[str]) -> Iterable[str]:
    """``values`` as a numpy array of objects if it is a pandas column (whose values are
    slow to iterate one by one), else as given."""
    to_numpy = getattr(values, "to_numpy", None)
    return to_numpy(dtype=object) if to_numpy is not None else values
