"""Nearest neighbours of long function vectors, computed with a few large matrix products.

Generic neighbour search (scikit-learn's exact search, Annoy, pynndescent) slows down in
proportion to the vectors' length; function vectors are long (probe inputs x classes,
often 10^5 values) but few (thousands). Here every pairwise distance comes from inner
products of the centred rows, computed by torch in column chunks of the data, so the
work is a handful of matrix products at the machine's matrix-product speed and the
memory is the data plus one chunk plus the Gram matrix's upper triangle.

- :func:`exact_neighbors`: the exact Euclidean neighbours (each inner product computed
  once), and optionally the top principal components from the same Gram matrix.
- :func:`principal_coordinates` (:mod:`fspace.embedding.principal`): the top principal
  components by randomised SVD, a few passes over the data; neighbours in that space
  approximate the exact ones.

:class:`GramIndex` and :class:`PCAIndex` wrap both as openTSNE nearest-neighbour
indexes, so that new points can be queried against the fitted ones
(``TSNEEmbedding.transform``). This module imports openTSNE; import it only on use.

Every function takes ``device`` (:mod:`fspace.device`; ``None`` or ``"auto"``: the GPU
if torch sees one): the data goes there chunk by chunk and the products run there; the
results come back to the host. On a GPU the Gram matrix may take a share of its free
memory and strips are wider; on the CPU the sizes are those below.

Example::

    found = exact_neighbors(matrix, k=90)   # found.indices, found.distances: (n, 90)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from openTSNE.nearest_neighbors import KNNIndex

from fspace.device import memory_budget, on_gpu, resolve_device
from fspace.embedding.principal import (  # principal components, here too
    CHUNK_BYTES,
    Principal,
    column_chunks,
    fix_signs,
    principal_coordinates,
    row_blocks,
)

STRIP_ROWS = 256
"""Rows per strip of the Gram matrix; a strip is multiplied with its own and later rows."""
GRAM_BYTES = 512 * 2**20
"""Gram strips held at once, at most; more than this take another pass over the data."""
GRAM_SHARE = 0.25
"""...and at most this fraction of the data's float32 size, so that the search adds
little to the memory the matrix itself takes (another pass re-reads the matrix, which
costs far less than the products)."""
GPU_STRIP_ROWS = 2048
"""Rows per strip on a GPU: wider products keep it busy."""
POWER_ITERATIONS = 8
PCA_EXACT_UP_TO = 5_000
"""Up to this many points the neighbours among principal components are exact; beyond,
an inverted file searches a few k-means lists per point (n^2 distances take minutes)."""


@dataclass(frozen=True)
class Neighbors:
    """The ``k`` nearest rows of every row, and what queries against them need."""

    indices: np.ndarray  # (n, k) int64, nearest first
    distances: np.ndarray  # (n, k) float64 Euclidean
    mean: torch.Tensor  # (d,) column mean the rows were centred on
    sqnorms: torch.Tensor  # (n,) squared norms of the centred rows
    components: torch.Tensor | None = None  # (n, r) top principal coordinates


def _groups(n: int, rows: int, budget: int) -> list[list[tuple[int, int]]]:
    # Strips whose products fit in ``budget`` bytes share one pass over the data.
    groups, current, used = [], [], 0
    for a in range(0, n, rows):
        b = min(a + rows, n)
        size = 4 * (b - a) * (n - a)
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current.append((a, b))
        used += size
    return [*groups, current]


class _Nearest:
    """The k smallest candidates seen so far for every row."""

    def __init__(self, n: int, k: int, device: torch.device | None = None) -> None:
        self.k = k
        self.dist = torch.full((n, k), float("inf"), device=device)
        self.index = torch.zeros((n, k), dtype=torch.int64, device=device)

    def offer(self, rows: slice, dist: torch.Tensor, first_column: int) -> None:
        cand = torch.arange(first_column, first_column + dist.shape[1], device=dist.device)
        cand = cand.expand(dist.shape[0], -1)
        d = torch.cat([self.dist[rows], dist], 1)
        i = torch.cat([self.index[rows], cand], 1)
        self.dist[rows], pos = torch.topk(d, self.k, dim=1, largest=False, sorted=True)
        self.index[rows] = torch.gather(i, 1, pos)

    def add_strip(self, a: int, b: int, sq: torch.Tensor, gram: torch.Tensor) -> None:
        """Offer the distances in one Gram strip (rows a:b, columns a:) both ways."""
        dist = (sq[a:b, None] + sq[None, a:]).sub_(gram, alpha=2).clamp_(min=0)
        dist[:, : b - a].fill_diagonal_(float("inf"))
        self.offer(slice(a, b), dist, a)
        if b < len(sq):  # the same products, seen from the later rows
            self.offer(slice(b, None), dist[:, b - a :].T, a)


def exact_neighbors(
    matrix: np.ndarray,
    k: int,
    *,
    n_components: int = 0,
    random_state: int = 0,
    strip_rows: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    gram_bytes: int | None = None,
    device: str | torch.device | None = None,
) -> Neighbors:
    """The ``k`` nearest rows of every row of ``matrix`` (itself excluded), exactly.

    Inner products of the centred rows are computed once per pair, in float32, from
    column chunks, on ``device``; with ``n_components`` the top principal coordinates
    come from the same Gram matrix (or, when it does not fit in ``gram_bytes``, by
    default the smaller of :data:`GRAM_BYTES` and :data:`GRAM_SHARE` of the data on the
    CPU, the device's budget on a GPU, from :func:`principal_coordinates`). Strips have
    ``strip_rows`` rows (default :data:`STRIP_ROWS`, :data:`GPU_STRIP_ROWS` on a GPU).
    """
    n = matrix.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k={k} neighbours need between 1 and {n - 1}")
    where = resolve_device(device)
    strip_rows = strip_rows or (GPU_STRIP_ROWS if on_gpu(where) else STRIP_ROWS)
    nearest, sq, means, components = _Nearest(n, k, where), torch.zeros(n, device=where), [], None
    if gram_bytes is None:
        gram_bytes = _gram_bytes(matrix, strip_rows, where)
    groups = _groups(n, strip_rows, gram_bytes)
    chunks = _gram_chunks(matrix, chunk_bytes, where)
    for g, group in enumerate(groups):
        gram = {s: torch.zeros(s[1] - s[0], n - s[0], device=where) for s in group}
        for _, chunk, mu in chunks():
            if g == 0:
                sq += (chunk * chunk).sum(1)
                means.append(mu)
            for a, b in group:
                gram[a, b].addmm_(chunk[a:b], chunk[a:].T)
        if n_components and len(groups) == 1:
            components = _gram_components(gram, n, n_components, random_state)
        for a, b in group:
            nearest.add_strip(a, b, sq, gram.pop((a, b)))
    if n_components and components is None:
        found = principal_coordinates(matrix, n_components, random_state=random_state, device=where)
        components = found.coords
    distances = nearest.dist.sqrt().double().cpu().numpy()
    return Neighbors(
        nearest.index.cpu().numpy(),
        distances,
        torch.cat(means).cpu(),
        sq.cpu(),
        None if components is None else components.cpu(),
    )


def _gram_bytes(matrix: np.ndarray, strip_rows: int, where: torch.device) -> int:
    """Gram strips held at once by default: a share of the data (and at most
    :data:`GRAM_BYTES`) on the CPU, half the budget on a GPU; one strip at least."""
    n, d = matrix.shape
    if on_gpu(where):
        return max(memory_budget(where) // 2, 4 * strip_rows * n)
    return min(GRAM_BYTES, max(int(GRAM_SHARE * 4 * n * d), 4 * strip_rows * n))


def _gram_chunks(matrix: np.ndarray, chunk_bytes: int, where: torch.device):
    """What gives one pass of centred column chunks for the Gram strips: on a GPU with
    room for the matrix as float32 (a quarter of the budget), the whole matrix as one
    chunk, read once in row blocks and kept there; else :func:`column_chunks` anew."""
    n, d = matrix.shape
    if not (on_gpu(where) and 4 * n * d <= memory_budget(where) // 4):
        return lambda: column_chunks(matrix, chunk_bytes=chunk_bytes, device=where)
    whole = torch.empty((n, d), device=where)
    for rows, block in row_blocks(matrix, block_bytes=chunk_bytes, device=where):
        whole[rows] = block
    mu = whole.mean(0)
    whole.sub_(mu)
    return lambda: iter([(slice(0, d), whole, mu)])


def _gram_times(gram: dict, n: int, q: torch.Tensor) -> torch.Tensor:
    # G @ q from the upper strips of the symmetric G.
    out = torch.zeros(n, q.shape[1], dtype=q.dtype, device=q.device)
    for (a, b), strip in gram.items():
        strip = strip.to(q.dtype)
        out[a:b] += strip @ q[a:]
        out[b:] += strip[:, b - a :].T @ q[a:b]
    return out


def _gram_components(gram: dict, n: int, r: int, random_state: int) -> torch.Tensor:
    """Top ``r`` principal coordinates from the centred Gram matrix (subspace iteration)."""
    gen = torch.Generator().manual_seed(int(random_state))  # on the CPU: the same anywhere
    start = torch.randn(n, min(r + 10, n), generator=gen, dtype=torch.float64)
    q = torch.linalg.qr(start.to(next(iter(gram.values())).device)).Q
    for _ in range(POWER_ITERATIONS):
        q = torch.linalg.qr(_gram_times(gram, n, q)).Q
    values, vectors = torch.linalg.eigh(q.T @ _gram_times(gram, n, q))
    values, vectors = values.flip(0)[:r].clamp(min=0), vectors.flip(1)[:, :r]
    return fix_signs((q @ vectors) * values.sqrt())[0].float()


def query_neighbors(
    reference: np.ndarray,
    found: Neighbors,
    queries: np.ndarray,
    k: int,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``reference`` (whose neighbours are ``found``) to each
    row of ``queries``, exactly, computed on ``device``."""
    n = reference.shape[0]
    where = resolve_device(device)
    mean, sqnorms = found.mean.to(where), found.sqnorms.to(where)
    qry = torch.from_numpy(np.array(queries, dtype=np.float32, order="C")).to(where).sub_(mean)
    ref = None if on_gpu(where) else _as_tensor(reference)  # a GPU takes it in chunks
    if ref is not None:
        # One product with the stored rows, no copy of them: (q - m).(r - m) is
        # (q - m).r - (q - m).m, and (q - m) is small, so little precision is lost.
        gram = (qry @ ref.T).sub_((qry @ mean)[:, None])
    else:
        gram = torch.zeros(qry.shape[0], n, device=where)
        for cols, chunk, _ in column_chunks(reference, mean, chunk_bytes, where):
            gram.addmm_(qry[:, cols], chunk.T)
    dist = ((qry * qry).sum(1)[:, None] + sqnorms[None]).sub_(gram, alpha=2).clamp_(min=0)
    top_d, top_i = torch.topk(dist, min(k, n), dim=1, largest=False, sorted=True)
    return top_i.cpu().numpy(), top_d.sqrt().double().cpu().numpy()


def _as_tensor(matrix: np.ndarray) -> torch.Tensor | None:
    """``matrix`` as a float32 tensor sharing its memory, or None if that needs a copy."""
    if matrix.dtype != np.float32 or not matrix.flags.c_contiguous:
        return None
    with warnings.catch_warnings():
        # Read-only (memory-mapped) arrays are only ever read here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.asarray(matrix))


class GramIndex(KNNIndex):
    """openTSNE index of exact neighbours by inner products; queries compare new rows
    with the fitted ones, so it keeps a reference to (not a copy of) the fitted matrix.
    """

    VALID_METRICS = ["euclidean"]  # noqa: RUF012 - openTSNE's class attribute

    def __init__(
        self, data: np.ndarray, k: int, *, n_components: int = 0, device: Any = None, **kwargs
    ) -> None:
        super().__init__(data, k, metric="euclidean", **kwargs)
        self.n_components, self.device = n_components, device
        self.found: Neighbors | None = None

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        self.found = exact_neighbors(
            self.data,
            self.k,
            n_components=self.n_components,
            random_state=self.random_state,
            device=self.device,
        )
        return self.found.indices, self.found.distances

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return query_neighbors(self.data, self.found, query, k, device=self.device)


class PCAIndex(KNNIndex):
    """openTSNE index of the neighbours among the rows' top principal components: exact
    up to ``exact_up_to`` points (default :data:`PCA_EXACT_UP_TO`), from an inverted
    file (:mod:`fspace.embedding.ivf`) beyond. With ``candidates > k``, that many are
    found among the components and the ``k`` nearest of them by exact distance over
    every value are kept (:mod:`fspace.embedding.rerank`). New points are placed by
    their neighbours among the components."""

    VALID_METRICS = ["euclidean"]  # noqa: RUF012 - openTSNE's class attribute

    def __init__(
        self,
        data: np.ndarray,
        k: int,
        *,
        n_components: int,
        exact_up_to: int | None = None,
        candidates: int = 0,
        device: Any = None,
        **kwargs,
    ) -> None:
        super().__init__(data, k, metric="euclidean", **kwargs)
        self.n_components, self.exact_up_to = n_components, exact_up_to
        self.candidates, self.device = candidates, device
        self.principal: Principal | None = None
        self.found: Neighbors | None = None
        self.space: Neighbors | None = None  # among the components, for queries

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        self.principal = principal_coordinates(
            self.data, self.n_components, random_state=self.random_state, device=self.device
        )
        coords = self.principal.coords.numpy()
        wanted = min(len(coords) - 1, max(self.k, self.candidates))
        limit = PCA_EXACT_UP_TO if self.exact_up_to is None else self.exact_up_to
        if len(coords) <= limit:
            self.space = exact_neighbors(coords, wanted, device=self.device)
        else:
            from fspace.embedding.ivf import ivf_neighbors

            found = ivf_neighbors(
                coords, wanted, random_state=self.random_state, device=self.device
            )
            self.space = Neighbors(*found)
        if wanted > self.k:
            from fspace.embedding.rerank import rerank_neighbors

            found = rerank_neighbors(
                self.data,
                self.space.indices,
                self.k,
                mean=self.principal.mean,
                device=self.device,
            )
            self.found = Neighbors(*found)
        else:
            self.found = self.space
        # Queries need only the components and their norms: not the fitted rows, nor the
        # candidates (n x candidates, as large as a tenth of float16 data of 10,000 values).
        self.data = None
        none = np.empty((len(coords), 0))
        self.space = replace(self.space, indices=none.astype(np.int64), distances=none)
        return self.found.indices, self.found.distances

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        coords = self.principal.coords.numpy()
        placed = self.principal.project(query, device=self.device).numpy()
        return query_neighbors(coords, self.space, placed, k, device=self.device)
