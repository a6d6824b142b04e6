"""How faithful a 2-D map is to the function-space distances it was made from.

- **trustworthiness** at ``k`` (Venna & Kaski 2001; scikit-learn's
  ``sklearn.manifold.trustworthiness``): 1 when every point's ``k`` nearest neighbours
  in the map are also near it in function space; falls as the map invents neighbours.
- **continuity** at ``k``: the same with the roles swapped; 1 when every function-space
  neighbour stays among the map neighbours, falls as the map tears neighbours apart.
- **explained stress** (metric maps): ``1 - ||W - a W_map||^2 / ||W||^2`` where ``W`` is
  the double-centred matrix of squared function-space distances ``-1/2 J D^2 J``,
  ``W_map`` that of the map's squared distances and ``a`` the best scale; for InPCA and
  classical MDS it is the share of ``sum lambda^2`` carried by the two kept
  eigenvalues (Mao et al. 2024).

Maps of more than :data:`SAMPLE` checkpoints are scored on a seeded random sample of
that many, since every measure costs ``n^2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

K = 10
"""Neighbours considered by trustworthiness and continuity (fewer for tiny maps)."""
SAMPLE = 1000
"""Largest number of checkpoints scored exactly; larger maps are scored on a sample
(for maps fitted to vectors this bounds the extra distance computation to a tenth of a
second for vectors of length 1,000, a few seconds for length 100,000)."""


def neighbour_k(n: int, k: int = K) -> int:
    """``k`` lowered to what ``n`` points allow (scikit-learn needs k < n / 2); 0 if none."""
    return max(0, min(k, (n - 1) // 2))


def trustworthiness(high: np.ndarray, low: np.ndarray, k: int) -> float:
    """Trustworthiness at ``k`` from two (n, n) distance matrices.

    Equals ``sklearn.manifold.trustworthiness(high, coords, n_neighbors=k,
    metric="precomputed")`` when ``low`` holds the Euclidean distances of ``coords``;
    ``trustworthiness(low, high, k)`` is the continuity.
    """
    n = len(high)
    if not 1 <= k < n / 2:
        raise ValueError(f"k must be in [1, n/2) for n={n}, got {k}")
    high = np.array(high, dtype=np.float64)
    low = np.array(low, dtype=np.float64)
    np.fill_diagonal(high, np.inf)
    np.fill_diagonal(low, np.inf)
    rank = np.empty((n, n), dtype=np.int64)
    order = np.argsort(high, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    rank[rows, order] = np.arange(1, n + 1)
    near = np.argpartition(low, k - 1, axis=1)[:, :k]
    excess = rank[rows, near] - k
    total = excess[excess > 0].sum()
    return float(1.0 - total * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def double_centred(squared: np.ndarray) -> np.ndarray:
    """``-1/2 J S J`` with ``J`` the centring matrix: the Gram matrix classical MDS reads."""
    s = np.asarray(squared, dtype=np.float64)
    rows = s.mean(axis=1, keepdims=True)
    cols = s.mean(axis=0, keepdims=True)
    return -0.5 * (s - rows - cols + s.mean())


def explained_stress(high: np.ndarray, coords: np.ndarray, signs: Any = (1.0, 1.0)) -> float:
    """``1 - min_a ||W - a W_map||^2 / ||W||^2`` for distances ``high`` and map ``coords``.

    ``W`` and ``W_map`` are the double-centred squared distances of function space and
    of the map; the best scale ``a >= 0`` makes the score ignore the map's units (it is
    1 for the exact projections of PCA, classical MDS and InPCA, where this equals the
    share of ``sum lambda^2`` kept). ``signs`` weigh the squared differences along each
    axis (an InPCA axis with a negative eigenvalue counts -1).
    """
    w = double_centred(np.square(high))
    centred = coords - coords.mean(axis=0)
    w_map = (centred * np.asarray(signs, dtype=np.float64)) @ centred.T
    norm, norm_map = float(np.square(w).sum()), float(np.square(w_map).sum())
    if norm == 0.0:
        return 1.0
    inner = float((w * w_map).sum())
    if norm_map == 0.0 or inner <= 0.0:
        return 0.0
    return inner**2 / (norm * norm_map)


def assess(high: np.ndarray, coords: np.ndarray, *, metric: bool, k: int = K) -> dict[str, Any]:
    """Trustworthiness, continuity (at ``k``) and, for a metric map, explained stress.

    ``high`` are the function-space distances (n, n) among the checkpoints at
    ``coords`` (n, 2).
    """
    from scipy.spatial.distance import cdist

    n = len(coords)
    out: dict[str, Any] = {"k": neighbour_k(n, k), "n": n}
    low = cdist(coords, coords)
    if out["k"] >= 1:
        out["trustworthiness"] = trustworthiness(high, low, out["k"])
        out["continuity"] = trustworthiness(low, high, out["k"])
    if metric:
        out["explained_stress"] = explained_stress(high, coords)
    return out


def sample_rows(n: int, random_state: int, size: int | None = None) -> np.ndarray:
    """All rows, or a seeded sorted sample of ``size`` (default :data:`SAMPLE`) rows when
    there are more."""
    size = SAMPLE if size is None else size
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=size, replace=False))


def summary(quality: dict[str, Any]) -> str:
    """One line for people: ``trustworthiness 0.97, continuity 0.95 (k=10), ...``."""
    parts = []
    if "trustworthiness" in quality:
        parts.append(
            f"trustworthiness {quality['trustworthiness']:.3f}, continuity "
            f"{quality['continuity']:.3f} (k={quality['k']})"
        )
    if "explained_stress" in quality:
        parts.append(f"explained stress {quality['explained_stress']:.3f}")
    if "axis_signs" in quality:
        signs = "".join("+" if s > 0 else "-" for s in quality["axis_signs"])
        parts.append(f"axis eigenvalue signs {signs}")
    if quality.get("n") and quality.get("sampled"):
        parts.append(f"on a sample of {quality['n']}")
    return "; ".join(parts) or "no quality measures (too few checkpoints)"


def measure_fit(impl: Any, entry: Any, state: Any, coords: np.ndarray, fitted: tuple) -> dict:
    """The ``quality`` of a map just fitted by ``embed()``: :func:`assess` on (a sample
    of) its checkpoints, overlaid with what the method measures itself."""
    from fspace.embedding import inputs

    mode, matrix, vectors, dist, dparams = fitted
    rows = sample_rows(len(coords), random_state=0)
    high = inputs.high_distances(mode, matrix, vectors, dist, dparams, rows)
    own = impl.quality(state)
    metric = bool(entry.tags.get("metric")) and "explained_stress" not in own
    out = assess(high, coords[rows], metric=metric)
    out["sampled"] = len(rows) < len(coords)
    return {**out, **own}
