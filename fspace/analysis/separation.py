"""How well groups of runs separate in function space: leave-one-run-out
nearest-neighbour accuracy of the group label, on function vectors or map coordinates.

Example::

    vectors = evaluate(exp)
    print(separation(vectors)["function_space"])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from fspace.errors import ConfigError
from fspace.vectors import FunctionVectors

# Distance-matrix elements per chunk: 2**25 float32 values is 128 MiB.
_CHUNK_ELEMENTS = 2**25


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Refuse ``frame`` unless it has ``columns``, naming ``what`` needs them."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{what} needs column(s) {', '.join(missing)}, but the frame has "
            f"{', '.join(map(str, frame.columns)) or 'no columns'}; pass a points frame of "
            f"the pre-training experiment (fspace.evaluation.points_frame or an embedding's "
            f"frame)"
        )


def group_separation(
    matrix: np.ndarray | torch.Tensor,
    groups: Sequence[Any],
    runs: Sequence[Any],
    *,
    chunk_rows: int | None = None,
) -> float:
    """Leave-one-run-out nearest-neighbour accuracy of the group label.

    Each row of ``matrix`` (a function vector, or 2-D map coordinates) is given the
    group of its nearest row in Euclidean distance among the rows of *other* runs; the
    result is the fraction given their own group. Rows of the same run are left out
    because consecutive checkpoints of one run are each other's neighbours, which would
    make any grouping look perfectly separated. NaN if fewer than two runs.
    Distances are computed ``chunk_rows`` rows at a time (default: 128 MiB per chunk).
    """
    return accuracies(matrix, groups, runs, [None], chunk_rows)[0]


def accuracies(
    matrix: Any,
    groups: Sequence[Any],
    runs: Sequence[Any],
    subsets: list[np.ndarray | None],
    chunk_rows: int | None = None,
) -> list[float]:
    """:func:`group_separation` within each subset of rows (None: all rows), from one
    pass over the distances: the costly part is the distance matrix, not the subsets."""
    x = _as_tensor(matrix)
    n = x.shape[0] if x.ndim else 0
    if x.ndim != 2 or len(groups) != n or len(runs) != n:
        raise ConfigError(
            f"group_separation needs an (n, d) matrix and n groups and runs; got shape "
            f"{tuple(x.shape)}, {len(groups)} groups, {len(runs)} runs"
        )
    if not torch.isfinite(x).all():
        raise ConfigError("group_separation: the matrix holds NaN or infinite values")
    run_codes = np.unique(np.asarray(runs, dtype=str), return_inverse=True)[1]
    group_codes = torch.as_tensor(np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1])
    keeps = [np.ones(n, bool) if k is None else np.array(k, dtype=bool) for k in subsets]
    # Leave-one-run-out needs at least two runs among the rows kept.
    defined = [len(np.unique(run_codes[k])) >= 2 for k in keeps]
    keeps_t = [torch.as_tensor(k) for k in keeps]
    runs_t = torch.as_tensor(run_codes)
    correct = [0] * len(keeps)
    rows = chunk_rows or max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n if any(defined) else 0, rows):
        stop = min(start + rows, n)
        dist = torch.cdist(x[start:stop], x)
        dist.masked_fill_(runs_t[start:stop, None] == runs_t[None, :], math.inf)
        for i, keep in enumerate(keeps_t):
            if not defined[i]:
                continue
            nearest = dist.masked_fill(~keep[None, :], math.inf).argmin(dim=1)
            hits = (group_codes[nearest] == group_codes[start:stop]) & keep[start:stop]
            correct[i] += int(hits.sum())
    return [
        c / int(k.sum()) if ok else math.nan
        for c, k, ok in zip(correct, keeps, defined, strict=True)
    ]


def _as_tensor(matrix: Any) -> torch.Tensor:
    array = np.asarray(matrix, dtype=np.float32)
    if array.flags.writeable:
        return torch.as_tensor(array)
    # Embedding coordinates are read-only and the matrix is only read here; copying a
    # large one just to silence torch's warning would double the memory.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(array)


def separation(
    vectors: FunctionVectors, embedding_frame: pd.DataFrame | None = None
) -> dict[str, float | int]:
    """How well the groups separate, in the full function space and in the 2-D map.

    Returns :func:`group_separation` on the function vectors (``function_space``) and
    on the map's ``x, y`` (``map``, only with an ``embedding_frame`` of the same
    checkpoints), each also restricted to checkpoints taken after fine-tuning started
    (``*_finetuned``: epoch >= 1, neighbours among those only). ``chance`` is the
    accuracy of guessing in proportion to group sizes (sum of squared group fractions).
    """
    points = vectors.points
    require_columns(points, ("run", "group", "epoch", "checkpoint"), "separation")
    tuned = (points["epoch"] >= 1).to_numpy()
    fractions = points["group"].value_counts(normalize=True).to_numpy()
    out: dict[str, float | int] = {
        "n_points": len(points),
        "n_points_finetuned": int(tuned.sum()),
        "n_runs": int(points["run"].nunique()),
        "chance": float(np.sum(fractions**2)) if len(points) else math.nan,
    }
    out["function_space"], out["function_space_finetuned"] = _both(vectors.matrix, points)
    if embedding_frame is not None:
        require_columns(
            embedding_frame, ("run", "group", "epoch", "checkpoint", "x", "y"), "separation"
        )
        if set(embedding_frame["checkpoint"]) != set(points["checkpoint"]):
            raise ConfigError(
                f"the embedding frame holds {len(embedding_frame)} checkpoints and the "
                f"function vectors {len(points)}, not the same ones; embed these vectors"
            )
        xy = embedding_frame[["x", "y"]].to_numpy(dtype=np.float64)
        out["map"], out["map_finetuned"] = _both(xy, embedding_frame)
    return out


def _both(matrix: np.ndarray, points: pd.DataFrame) -> list[float]:
    tuned = (points["epoch"] >= 1).to_numpy()
    groups, runs = points["group"].to_numpy(), points["run"].to_numpy()
    return accuracies(matrix, groups, runs, [None, tuned])
