"""The path for very many checkpoints: cache read into one (memory-mapped, float16) matrix
on threads, randomised PCA over row blocks, inverted-file neighbours, FFT t-SNE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _bigmap import drifting_rows
from conftest import record_experiment

from fspace import evaluate
from fspace.embedding import embed, ivf, tsne
from fspace.embedding import neighbors as nb
from fspace.errors import ConfigError, ProbeMismatchError
from fspace.store import matrix as matrix_io


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, suite_module):
    return record_experiment(tmp_path_factory.mktemp("large") / "exp", suite_module)


@pytest.fixture(scope="module")
def suite_module():
    from fspace import ProbeSuite

    gen = np.random.default_rng(0)
    return ProbeSuite.from_array(gen.normal(size=(20, 4)).astype(np.float32), name="probe")


@pytest.mark.parametrize("memmap", [False, True], ids=["in-memory", "memmap"])
def test_stored_dtype_matrix_equals_the_float32_one(experiment, tmp_path, memmap):
    reference = evaluate(experiment, progress=False)
    where = tmp_path if memmap else False
    got = evaluate(experiment, progress=False, dtype="stored", memmap=where)
    assert got.matrix.dtype == np.float16  # probabilities are cached as float16
    assert isinstance(got.matrix, np.memmap) == memmap
    np.testing.assert_array_equal(got.matrix.astype(np.float32), reference.matrix)
    assert list(got.points["checkpoint"]) == list(reference.points["checkpoint"])
    assert list(tmp_path.iterdir()) == []  # the mapped file is unlinked at once


def test_float32_memmap_equals_in_memory(experiment):
    reference = evaluate(experiment, progress=False)
    got = evaluate(experiment, progress=False, memmap=True)
    assert isinstance(got.matrix, np.memmap) and got.matrix.dtype == np.float32
    np.testing.assert_array_equal(got.matrix, reference.matrix)


def test_many_experiments_into_one_memmap(experiment):
    got = evaluate([experiment, experiment], progress=False, dtype="stored", memmap=True)
    one = evaluate(experiment, progress=False, dtype="stored")
    assert isinstance(got.matrix, np.memmap)
    np.testing.assert_array_equal(got.matrix, np.concatenate([one.matrix, one.matrix]))


@pytest.mark.parametrize("threads", [1, 3], ids=["one-thread", "threads"])
def test_read_rows_fills_every_cached_row_and_reports_the_missing(experiment, threads, monkeypatch):
    from fspace.store import Experiment

    monkeypatch.setattr(matrix_io, "ROWS_PER_TASK", 4)  # several tasks on several threads
    exp = Experiment(experiment)
    ckpts = exp.require_checkpoints()
    fp = exp.probes("probe").fingerprint
    missing = ckpts[5]
    vector = exp.load_vector(missing, fp, "prob")
    path = (
        experiment / "runs" / missing.run / "vectors" / f"{fp}-prob" / f"{missing.name}.safetensors"
    )
    path.rename(path.with_suffix(".moved"))
    try:
        matrix = matrix_io.allocate(len(ckpts), vector.numel(), np.float32)
        done = []
        found = matrix_io.read_rows(
            exp.path, ckpts, fp, "prob", matrix, threads=threads, on_done=done.append
        )
    finally:
        path.with_suffix(".moved").rename(path)
    assert sum(done) == len(ckpts)
    assert np.flatnonzero(~found).tolist() == [5]
    for i in (0, 4, 6, len(ckpts) - 1):
        np.testing.assert_array_equal(matrix[i], exp.load_vector(ckpts[i], fp, "prob").numpy())


def test_read_rows_refuses_another_length(experiment):
    from fspace.store import Experiment

    exp = Experiment(experiment)
    ckpts = exp.require_checkpoints()
    fp = exp.probes("probe").fingerprint
    matrix = np.zeros((len(ckpts), 7), np.float32)
    with pytest.raises(ProbeMismatchError, match="length"):
        matrix_io.read_rows(exp.path, ckpts, fp, "prob", matrix)


def test_allocate_names_a_bad_directory(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        matrix_io.allocate(3, 4, np.float16, memmap=tmp_path / "nowhere")


def _trajectories(runs: int = 8, per: int = 60, d: int = 300, seed: int = 0) -> np.ndarray:
    return drifting_rows(runs, per, d, seed)


def test_row_block_pca_of_float16_equals_numpy_svd():
    matrix = _trajectories()
    principal = nb.principal_coordinates(matrix, 4, power_iterations=4, chunk_bytes=4 * 300 * 50)
    x = matrix.astype(np.float64)
    u, s, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    reference = u[:, :4] * s[:4]
    got = principal.coords.double().numpy()
    signs = np.sign((got * reference).sum(0))
    # The leading components, well separated from the rest, to float32 precision.
    tol = 2e-3 * s[0] / np.sqrt(len(x))
    np.testing.assert_allclose(got[:, :3], (reference * signs)[:, :3], atol=tol)
    np.testing.assert_allclose(principal.mean.numpy(), x.mean(0), atol=1e-5)


def test_ivf_with_every_list_probed_is_exact():
    from sklearn.neighbors import NearestNeighbors

    coords = _trajectories(d=20).astype(np.float32)
    found = ivf.ivf_neighbors(coords, 10, n_lists=7, n_probe=7)
    dist, idx = NearestNeighbors(n_neighbors=10).fit(coords.astype(np.float64)).kneighbors()
    np.testing.assert_allclose(found.distances, dist, rtol=1e-3, atol=1e-4)
    assert np.mean(found.indices == idx) > 0.99  # ties may swap in float32


def test_ivf_recall_and_reproducibility():
    from sklearn.neighbors import NearestNeighbors

    coords = nb.principal_coordinates(_trajectories(runs=20), 20).coords.numpy()
    found = ivf.ivf_neighbors(coords, 30, n_probe=4, random_state=3)
    _, idx = NearestNeighbors(n_neighbors=30).fit(coords).kneighbors()
    recall = np.mean([len(set(a) & set(b)) / 30 for a, b in zip(found.indices, idx, strict=True)])
    assert recall > 0.9
    again = ivf.ivf_neighbors(coords, 30, n_probe=4, random_state=3)
    np.testing.assert_array_equal(found.indices, again.indices)
    assert (found.indices != np.arange(len(coords))[:, None]).all()  # never itself


@pytest.fixture
def large_path(monkeypatch):
    """Take the path for very many points on a few hundred."""
    monkeypatch.setattr(tsne, "FAST_FROM", 100)
    monkeypatch.setattr(tsne, "GRAM_UP_TO", 100)
    monkeypatch.setattr(nb, "PCA_EXACT_UP_TO", 0)


def test_large_path_affinities_from_a_float16_memmap_equal_the_float32_ones(large_path, tmp_path):
    rows = _trajectories()
    mapped = matrix_io.allocate(*rows.shape, np.float16, memmap=tmp_path)
    mapped[:] = rows
    params = {
        "perplexity": 30.0,
        "random_state": 0,
        "initialization": "pca",
        "neighbors": "pca",
        "pca_components": 20,
        "n_jobs": 1,
    }
    half, half_init = tsne._fast_affinities(mapped, params)
    full, full_init = tsne._fast_affinities(rows.astype(np.float32), params)
    assert isinstance(half.knn_index, nb.PCAIndex)
    assert (half.P != full.P).nnz == 0
    np.testing.assert_array_equal(half_init, full_init)


@pytest.mark.slow
def test_large_path_map_on_a_float16_memmap_keeps_neighbourhoods(large_path, tmp_path):
    import pandas as pd
    from openTSNE import TSNE
    from sklearn.manifold import trustworthiness

    from fspace.vectors import FunctionVectors

    rows = _trajectories(runs=6, per=50)
    mapped = matrix_io.allocate(*rows.shape, np.float16, memmap=tmp_path)
    mapped[:] = rows
    points = pd.DataFrame({"checkpoint": [f"c{i}" for i in range(len(rows))]})
    params = {"negative_gradient_method": "fft", "pca_components": 20, "n_jobs": 1}
    emb = embed(FunctionVectors(mapped, points, "fp"), "tsne", n_iter=200, **params)
    assert emb.params["neighbors"] == "pca"
    exact = np.asarray(TSNE(neighbors="exact", n_jobs=1, random_state=0).fit(rows.astype(float)))
    x = rows.astype(np.float64)
    assert trustworthiness(x, emb.coords, n_neighbors=10) > trustworthiness(x, exact) - 0.01


def test_non_finite_rows_are_named_in_row_blocks(monkeypatch):
    import pandas as pd

    from fspace.errors import EmbeddingError
    from fspace.vectors import FunctionVectors

    rows = _trajectories(runs=2, per=10, d=8)
    rows[13, 2] = np.nan
    points = pd.DataFrame({"checkpoint": [f"c{i}" for i in range(len(rows))]})
    with pytest.raises(EmbeddingError, match="c13"):
        embed(FunctionVectors(rows, points, "fp"), "tsne")


def test_principal_coordinates_of_a_float16_memmap_equal_the_float32_ones(tmp_path):
    rows = _trajectories(runs=2, per=30, d=40)
    mapped = matrix_io.allocate(*rows.shape, np.float16, memmap=tmp_path)
    mapped[:] = rows
    a = nb.principal_coordinates(mapped, 3, random_state=1)
    b = nb.principal_coordinates(rows.astype(np.float32), 3, random_state=1)
    torch.testing.assert_close(a.coords, b.coords)
