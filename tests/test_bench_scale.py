"""The scale benchmark's exact-neighbour reference, against scikit-learn and openTSNE."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "_exact_knn.py"


@pytest.fixture(scope="module")
def knn():
    spec = importlib.util.spec_from_file_location("_exact_knn", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_exact_knn", module)
    spec.loader.exec_module(module)
    return module


def _matrix(n: int = 2000, d: int = 500) -> np.ndarray:
    """float16 rows with structure (clusters) so that neighbours are not all alike."""
    gen = np.random.default_rng(0)
    centres = gen.normal(size=(20, d))
    return (centres[gen.integers(0, 20, n)] + 0.5 * gen.normal(size=(n, d))).astype(np.float16)


def _reference(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, algorithm="brute")
    distances, indices = search.fit(matrix.astype(np.float64)).kneighbors()
    return indices, distances


@pytest.mark.parametrize("block", [300, 2000, 4096], ids=["uneven-blocks", "one-block", "big"])
def test_exact_knn_matches_scikit_learn(knn, block):
    matrix = _matrix()
    indices, distances = knn.exact_knn(matrix, 30, block=block)
    want_i, want_d = _reference(matrix, 30)
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    np.testing.assert_allclose(distances, want_d, rtol=1e-4, atol=1e-3)
    assert (indices == want_i).mean() > 0.999  # float32 products may swap near-ties
    assert knn.recall_all(want_i, indices) > 0.999


def test_exact_knn_resumes_after_an_interruption(knn, tmp_path, monkeypatch):
    matrix = _matrix(900, 200)
    want = knn.exact_knn(matrix, 10, block=200)
    state = tmp_path / "state.npz"
    offer, calls = knn._offer, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 19:  # inside the third row block (9 + 7 offers before it)
            raise KeyboardInterrupt
        offer(*args)

    monkeypatch.setattr(knn, "_offer", failing)
    with pytest.raises(KeyboardInterrupt):
        knn.exact_knn(matrix, 10, block=200, state=state)
    assert int(np.load(state)["next"]) == 2
    monkeypatch.setattr(knn, "_offer", offer)
    got = knn.exact_knn(matrix, 10, block=200, state=state)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_cached_exact_knn_is_computed_once(knn, tmp_path):
    matrix = _matrix(600, 100)
    indices, distances, cpu = knn.cached_exact_knn(matrix, 15, tmp_path, block=128, progress=False)
    assert cpu is not None and not (tmp_path / "exact-knn-15.partial.npz").exists()
    again = knn.cached_exact_knn(matrix, 15, tmp_path, progress=False)
    assert again[2] is None
    np.testing.assert_array_equal(again[0], indices)
    np.testing.assert_array_equal(again[1], distances)


def test_recall_all_counts_shared_neighbours(knn):
    exact = np.array([[1, 2], [0, 2], [0, 1]])
    found = np.array([[2, 0], [0, 1], [1, 0]], dtype=np.int32)
    assert knn.recall_all(exact, found) == pytest.approx(4 / 6)


def test_affinities_from_knn_are_opentsnes_with_exact_neighbours(knn):
    from openTSNE.affinity import MultiscaleMixture

    matrix = _matrix(400, 50)
    got = knn.affinities_from_knn(*knn.exact_knn(matrix, 90)).P
    want = MultiscaleMixture(matrix.astype(np.float32), 30, method="exact", n_jobs=2).P
    assert got.nnz == want.nnz
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-5, atol=1e-9)
