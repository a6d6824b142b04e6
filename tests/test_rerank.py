"""Exact re-ranking of candidate neighbours over every value of the vectors."""

from __future__ import annotations

import numpy as np
import pytest
from _bigmap import drifting_rows
from sklearn.neighbors import NearestNeighbors

from fspace.embedding import ivf, rerank
from fspace.embedding import neighbors as nb
from fspace.errors import ConfigError


def _runs(runs: int = 12, per: int = 40, d: int = 400, seed: int = 0) -> np.ndarray:
    return drifting_rows(runs, per, d, seed)


def _exact(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = NearestNeighbors(n_neighbors=k).fit(matrix.astype(np.float64)).kneighbors()
    return idx, dist


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact, strict=True)])
    )


@pytest.mark.parametrize("block_rows", [1, 7, 64])
def test_every_row_as_candidate_gives_the_exact_neighbours(block_rows):
    matrix = _runs(runs=4, per=25)
    n, k = len(matrix), 10
    every = np.tile(np.arange(n), (n, 1))  # itself included: it must be skipped
    found = rerank.rerank_neighbors(matrix, every, k, block_rows=block_rows, chunk_bytes=4000)
    idx, dist = _exact(matrix, k)
    np.testing.assert_allclose(found.distances, dist, rtol=1e-4, atol=1e-4)
    assert np.mean(found.indices == idx) > 0.99  # ties may swap in float32
    assert (found.indices != np.arange(n)[:, None]).all()
    assert (np.diff(found.distances, axis=1) >= 0).all()


def test_distances_are_the_exact_ones_of_the_rows_chosen():
    matrix = _runs()
    coords = nb.principal_coordinates(matrix, 5).coords.numpy()
    coarse = ivf.ivf_neighbors(coords, 20, n_probe=2)
    found = rerank.rerank_neighbors(matrix, coarse.indices, 10, mean=matrix.mean(0))
    x = matrix.astype(np.float64)
    direct = np.linalg.norm(x[:, None] - x[found.indices], axis=2)
    np.testing.assert_allclose(found.distances, direct, rtol=1e-4, atol=1e-4)


def test_reranking_raises_the_recall_of_a_search_in_few_components():
    matrix = _runs()
    k = 15
    idx, _ = _exact(matrix, k)
    coords = nb.principal_coordinates(matrix, 4).coords.numpy()
    coarse = ivf.ivf_neighbors(coords, 3 * k, n_probe=3)
    before = _recall(coarse.indices[:, :k], idx)
    found = rerank.rerank_neighbors(matrix, coarse.indices, k)
    after = _recall(found.indices, idx)
    assert before < 0.8  # four components mix the runs up...
    assert after > 0.97 and after > before + 0.15  # ...the full vectors do not


def test_float16_memmap_equals_float32_of_the_same_values(tmp_path):
    from fspace.store import matrix as matrix_io

    rows = _runs(runs=5, per=20)
    mapped = matrix_io.allocate(*rows.shape, np.float16, memmap=tmp_path)
    mapped[:] = rows
    cand = ivf.ivf_neighbors(rows.astype(np.float32), 12, n_lists=4, n_probe=2).indices
    half = rerank.rerank_neighbors(mapped, cand, 8, block_rows=16)
    full = rerank.rerank_neighbors(rows.astype(np.float32), cand, 8, block_rows=16)
    np.testing.assert_array_equal(half.indices, full.indices)
    np.testing.assert_array_equal(half.distances, full.distances)


@pytest.mark.parametrize(
    ("matrix", "candidates", "k", "match"),
    [
        (np.zeros(5), np.zeros((5, 2), int), 1, "2-D"),
        (np.zeros((5, 3)), np.zeros((5, 2), int), 5, "k=5"),
        (np.zeros((5, 3)), np.zeros((4, 2), int), 1, r"candidates must be \(5, c\)"),
        (np.zeros((5, 3)), np.zeros((5, 1), int), 2, "c >= k=2"),
        (np.zeros((5, 3)), np.zeros((5, 2)), 1, "integers"),
        (np.zeros((5, 3)), np.full((5, 2), 5), 1, "rows 0 to 4"),
    ],
)
def test_bad_input_is_one_line_naming_it(matrix, candidates, k, match):
    with pytest.raises(ConfigError, match=match) as info:
        rerank.rerank_neighbors(matrix, candidates, k)
    assert "\n" not in str(info.value)


def test_too_few_distinct_candidates_name_the_row():
    matrix = np.arange(12, dtype=np.float32).reshape(6, 2)
    cand = np.tile(np.arange(6)[:, None], (1, 3))  # each row only itself
    with pytest.raises(ConfigError, match="row 0 has fewer than k=3"):
        rerank.rerank_neighbors(matrix, cand, 3, block_rows=1)


def test_pca_index_reranks_its_candidates_and_queries_among_components():
    matrix = _runs()
    k = 15
    idx, _ = _exact(matrix, k)
    plain = nb.PCAIndex(matrix, k, n_components=4, exact_up_to=0, random_state=0)
    plain.build()
    index = nb.PCAIndex(matrix, k, n_components=4, exact_up_to=0, candidates=3 * k, random_state=0)
    got, dist = index.build()
    assert _recall(plain.found.indices, idx) < 0.9  # four components mix the runs up
    assert _recall(got, idx) > 0.97
    x = matrix.astype(np.float64)
    direct = np.linalg.norm(x[:, None] - x[got], axis=2)
    np.testing.assert_allclose(dist, direct, rtol=1e-4, atol=1e-4)
    assert index.data is None  # the fitted rows are not kept
    placed, _ = index.query(matrix[:3], 5)  # new points: among the components
    assert placed.shape == (3, 5) and (placed[:, 0] == np.arange(3)).all()


def test_tsne_refuses_negative_candidates():
    import pandas as pd

    from fspace.embedding import embed
    from fspace.vectors import FunctionVectors

    rows = _runs(runs=2, per=10, d=20).astype(np.float32)
    vectors = FunctionVectors(rows, pd.DataFrame({"checkpoint": range(len(rows))}), "fp")
    with pytest.raises(ConfigError, match="pca_candidates"):
        embed(vectors, "tsne", pca_candidates=-1)
