"""Tests of the embedding step: t-SNE, PCA and UMAP on tiny synthetic function vectors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspace.embedding import Embedding, EmbeddingMethod, embed, methods, register
from fspace.embedding import base as embed_base
from fspace.embedding.tsne import TSNEMethod
from fspace.errors import ConfigError, EmbeddingError, ProbeMismatchError
from fspace.vectors import FunctionVectors


def make_vectors(
    groups=("pretrained", "random"), runs=3, epochs=6, dim=50, seed=0, fingerprint="fp-a"
) -> FunctionVectors:
    """Random-walk function vectors: groups x runs x epochs checkpoints of length ``dim``."""
    gen = np.random.default_rng(seed)
    rows, matrix = [], []
    for g, group in enumerate(groups):
        for r in range(runs):
            position = gen.normal(size=dim) + 4 * g
            for epoch in range(epochs):
                position = position + 0.3 * gen.normal(size=dim)
                matrix.append(position.copy())
                rows.append(
                    {
                        "run": f"{group}-s{r}",
                        "group": group,
                        "seed": r,
                        "epoch": epoch,
                        "step": 10 * epoch,
                        "checkpoint": f"{group}-s{r}/epoch-{epoch}",
                        "test_error": 1.0 / (epoch + 1),
                    }
                )
    return FunctionVectors(np.array(matrix, dtype=np.float32), pd.DataFrame(rows), fingerprint)


def subset(vectors: FunctionVectors, rows, **changes) -> FunctionVectors:
    """Rows of ``vectors`` as new checkpoints (keys suffixed with "-new")."""
    points = vectors.points.iloc[rows].reset_index(drop=True)
    points["checkpoint"] = points["checkpoint"] + "-new"
    fields = {"fingerprint": vectors.fingerprint, "output": vectors.output, **changes}
    return FunctionVectors(vectors.matrix[rows], points, **fields)


@pytest.fixture(scope="module")
def vectors() -> FunctionVectors:
    return make_vectors()


@pytest.fixture(scope="module")
def tsne_map(vectors) -> Embedding:
    return embed(vectors, "tsne", perplexity=8, n_jobs=1, random_state=0)


def test_builtin_methods_are_registered():
    assert methods() == ("inpca", "isomap", "mds", "pca", "phate", "tsne", "umap")


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, fspace.embedding; "
        "print([m for m in ('umap', 'numba', 'openTSNE', 'sklearn') if m in sys.modules])"
    )
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "n_jobs", [None, pytest.param(2, marks=pytest.mark.slow)], ids=["default", "threads"]
)
def test_tsne_same_random_state_gives_identical_coordinates(vectors, n_jobs):
    # Threads must not make the result vary.
    first = embed(vectors, "tsne", perplexity=8, random_state=3, n_jobs=n_jobs)
    second = embed(vectors, "tsne", perplexity=8, random_state=3, n_jobs=n_jobs)
    np.testing.assert_array_equal(first.coords, second.coords)
    assert first.coords.shape == (len(vectors), 2)
    assert first.coords.dtype == np.float64


def test_tsne_different_random_state_gives_different_coordinates(vectors, tsne_map):
    other = embed(vectors, "tsne", perplexity=8, n_jobs=1, random_state=1)
    assert not np.allclose(other.coords, tsne_map.coords)


def test_tsne_matches_opentsne_run_directly(vectors, tsne_map):
    from openTSNE import TSNE

    direct = np.asarray(
        TSNE(perplexity=8, initialization="pca", metric="euclidean", n_jobs=1, random_state=0).fit(
            vectors.matrix
        )
    )
    np.testing.assert_allclose(tsne_map.coords, direct)
    # Same neighbourhoods: each point's 5 nearest neighbours in the map agree.
    assert (_knn(tsne_map.coords, 5) == _knn(direct, 5)).all()


def _knn(coords: np.ndarray, k: int) -> np.ndarray:
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    return np.sort(np.argsort(dist, axis=1)[:, :k], axis=1)


def test_tsne_records_resolved_parameters(tsne_map):
    assert tsne_map.method == "tsne"
    assert tsne_map.params["perplexity"] == 8
    assert tsne_map.params["random_state"] == 0
    assert tsne_map.params["n_jobs"] == 1
    assert tsne_map.params["initialization"] == "pca"
    assert tsne_map.fingerprint == "fp-a" and tsne_map.output == "prob"
    assert tsne_map.dimension == 50
    assert repr(tsne_map).startswith("Embedding(method='tsne', checkpoints=36, fingerprint='fp-a'")


@pytest.mark.parametrize(
    ("n_points", "expected"), [(36, 1), (5000, os.cpu_count())], ids=["small", "large"]
)
def test_tsne_uses_threads_only_for_large_maps(n_points, expected):
    assert TSNEMethod().resolve({"perplexity": 5}, n_points)["n_jobs"] == expected


def test_tsne_lowers_perplexity_for_few_checkpoints(vectors):
    # 36 checkpoints allow perplexity <= 35 / 3.
    with pytest.warns(UserWarning, match=r"perplexity=30\.0 .* perplexity=11\.66"):
        emb = embed(vectors, "tsne", n_jobs=1)
    assert emb.params["perplexity"] == 11.66


def test_tsne_keeps_small_enough_perplexity_silently(vectors):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb = embed(vectors, "tsne", perplexity=11, n_jobs=1)
    assert emb.params["perplexity"] == 11


@pytest.mark.parametrize(
    ("method", "n", "fits"),
    [
        ("tsne", 3, False),
        ("tsne", 4, True),
        ("pca", 1, False),
        ("pca", 2, True),
        ("umap", 3, False),
    ],
    ids=["tsne-3", "tsne-4", "pca-1", "pca-2", "umap-3"],
)
def test_minimum_number_of_checkpoints(vectors, method, n, fits):
    few = subset(vectors, list(range(n)))
    if fits:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            emb = embed(few, method, **({"n_jobs": 1} if method == "tsne" else {}))
        assert emb.coords.shape == (n, 2)
        assert np.isfinite(emb.coords).all()
    else:
        with pytest.raises(EmbeddingError, match=rf"got {n}; use method='pca'"):
            embed(few, method)


def test_empty_vectors_are_rejected(vectors):
    with pytest.raises(EmbeddingError, match="no function vectors"):
        embed(subset(vectors, []), "pca")


def test_unknown_method_lists_the_choices(vectors):
    with pytest.raises(ConfigError, match="'no-such-method'.*mds, pca, phate, tsne, umap"):
        embed(vectors, "no-such-method")


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("tsne", {"perplexity": 0}, "perplexity must be a number > 0"),
        ("tsne", {"perplexity": -5.0}, "perplexity must be a number > 0"),
        ("tsne", {"neighbors": "kd"}, "neighbors must be one of auto, exact"),
        ("tsne", {"n_iter": 0}, "n_iter must be an integer >= 1"),
        ("tsne", {"perplexty": 5}, "no parameter.*perplexty.*accepts.*perplexity"),
        ("umap", {"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
        ("umap", {"min_dist": -0.1}, "min_dist must be a number in"),
        ("pca", {"svd_solver": "qr"}, "svd_solver must be one of"),
        ("pca", {"random_state": -1}, "random_state must be an integer >= 0"),
        ("pca", {"random_state": 1.5}, "random_state must be an integer >= 0"),
    ],
    ids=[
        "perplexity-zero",
        "perplexity-negative",
        "neighbors",
        "n_iter",
        "misspelt",
        "n_neighbors",
        "min_dist",
        "svd_solver",
        "random_state-negative",
        "random_state-float",
    ],
)
def test_bad_parameters_name_the_argument(vectors, method, params, message):
    with pytest.raises(ConfigError, match=message):
        embed(vectors, method, **params)


def test_non_finite_vectors_name_the_checkpoints(vectors):
    matrix = vectors.matrix.copy()
    matrix[4, 7] = np.nan
    matrix[20, 0] = np.inf
    bad = FunctionVectors(matrix, vectors.points, vectors.fingerprint)
    with pytest.raises(EmbeddingError, match="2 function vector") as info:
        embed(bad, "pca")
    message = str(info.value)
    assert vectors.points["checkpoint"][4] in message
    assert vectors.points["checkpoint"][20] in message
    assert vectors.points["checkpoint"][5] not in message


def test_points_with_coordinate_columns_are_rejected(vectors):
    points = vectors.points.assign(x=1.0)
    with pytest.raises(EmbeddingError, match="column.*x"):
        embed(FunctionVectors(vectors.matrix, points, "fp-a"), "pca")


def test_pca_equals_svd_projection_up_to_sign(vectors):
    emb = embed(vectors, "pca")
    centred = vectors.matrix.astype(np.float64) - vectors.matrix.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    signs = np.sign((emb.coords * expected).sum(axis=0))
    np.testing.assert_allclose(emb.coords, expected * signs, rtol=1e-4, atol=1e-4)
    assert emb.params == {"svd_solver": "auto", "device": "auto", "random_state": 0}


def test_pca_pads_vectors_of_length_one():
    points = make_vectors(runs=1, epochs=3).points
    vectors = FunctionVectors(np.arange(6, dtype=np.float32)[:, None], points, "fp")
    emb = embed(vectors, "pca")
    np.testing.assert_allclose(np.abs(emb.coords[:, 0]), np.abs(np.arange(6) - 2.5))
    np.testing.assert_array_equal(emb.coords[:, 1], 0)


def test_frame_adds_coordinates_to_the_points(vectors, tsne_map):
    frame = tsne_map.frame
    assert list(frame.columns) == [*vectors.points.columns, "x", "y"]
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), tsne_map.coords)
    pd.testing.assert_frame_equal(frame[vectors.points.columns], vectors.points)


@pytest.mark.parametrize("method", ["tsne", "pca"], ids=["tsne", "pca"])
def test_transform_keeps_old_coordinates_and_places_near_duplicates(vectors, method):
    emb = embed(vectors, method, **({"perplexity": 8, "n_jobs": 1} if method == "tsne" else {}))
    rows = [0, 13, 29]
    gen = np.random.default_rng(5)
    nudged = vectors.matrix[rows] + 1e-3 * gen.normal(size=(3, vectors.matrix.shape[1]))
    new = subset(vectors, rows)
    new = FunctionVectors(nudged.astype(np.float32), new.points, new.fingerprint)
    grown = emb.transform(new)
    assert len(grown) == len(vectors) + 3
    np.testing.assert_array_equal(grown.coords[: len(vectors)], emb.coords)
    assert grown.points["checkpoint"].tolist()[-3:] == new.points["checkpoint"].tolist()
    for placed, row in zip(grown.coords[len(vectors) :], rows, strict=True):
        nearest = np.argsort(np.linalg.norm(emb.coords - placed, axis=1))[:3]
        assert row in nearest
    # The grown map can grow again: the fitted state is kept.
    again = grown.transform(subset(vectors, [5], fingerprint="fp-a"))
    np.testing.assert_array_equal(again.coords[: len(grown)], grown.coords)


def test_pca_transform_equals_projection(vectors):
    emb = embed(vectors, "pca")
    grown = emb.transform(subset(vectors, [3, 4]))
    # The same rows give the same coordinates (up to float32 rounding of the input).
    np.testing.assert_allclose(grown.coords[-2:], emb.coords[[3, 4]], atol=1e-4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fingerprint": "fp-b"}, "fp-b.*fp-a"),
        ({"output": "logits"}, "'logits'.*'prob'"),
    ],
    ids=["fingerprint", "output"],
)
def test_transform_rejects_other_probe_suites(vectors, tsne_map, changes, message):
    with pytest.raises(ProbeMismatchError, match=message):
        tsne_map.transform(subset(vectors, [0], **changes))


def test_transform_rejects_other_vector_lengths(vectors, tsne_map):
    new = FunctionVectors(np.zeros((1, 7), np.float32), subset(vectors, [0]).points, "fp-a")
    with pytest.raises(ProbeMismatchError, match="length 7.*length-50"):
        tsne_map.transform(new)


def test_transform_rejects_checkpoints_already_embedded(vectors, tsne_map):
    same = FunctionVectors(vectors.matrix[:2], vectors.points.iloc[:2], "fp-a")
    with pytest.raises(EmbeddingError, match="already in the embedding"):
        tsne_map.transform(same)


def test_save_load_round_trip_without_pickle(tmp_path, vectors, tsne_map, monkeypatch):
    points = vectors.points.copy()
    points.loc[3, "test_error"] = np.nan  # missing metric survives as NaN
    emb = Embedding(
        tsne_map.coords, points, "tsne", tsne_map.params, "fp-a", "prob", 50, tsne_map._state
    )
    path = emb.save(tmp_path / "map.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.safetensors"]

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    loaded = Embedding.load(path)
    np.testing.assert_array_equal(loaded.coords, emb.coords)
    pd.testing.assert_frame_equal(loaded.points, points)
    assert loaded.params == emb.params
    assert (loaded.method, loaded.fingerprint, loaded.output, loaded.dimension) == (
        "tsne",
        "fp-a",
        "prob",
        50,
    )
    # A safetensors file whose metadata is plain JSON.
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        assert list(f.keys()) == ["coords"]
        meta = json.loads(f.metadata()["fspace.embedding"])
    assert meta["points"][3]["test_error"] is None


def test_loaded_embedding_cannot_transform(tmp_path, vectors, tsne_map):
    loaded = Embedding.load(tsne_map.save(tmp_path / "map.safetensors"))
    with pytest.raises(EmbeddingError, match="re-fit"):
        loaded.transform(subset(vectors, [0]))


@pytest.mark.parametrize("content", [b"not a safetensors file", None], ids=["garbage", "missing"])
def test_load_rejects_non_embeddings(tmp_path, content):
    path = tmp_path / "map.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EmbeddingError, match="map.safetensors"):
        Embedding.load(path)


def test_a_new_method_is_one_registered_class(vectors, monkeypatch):
    monkeypatch.setattr(embed_base.METHODS, "_entries", dict(embed_base.METHODS._entries))

    @register("first-two")
    class FirstTwo(EmbeddingMethod):
        defaults = {"scale": 1.0}  # noqa: RUF012

        def fit(self, matrix, params, *, progress):
            return params["scale"] * matrix[:, :2], None

        def transform(self, state, matrix, params):
            return params["scale"] * matrix[:, :2]

    emb = embed(vectors, "first-two", scale=2.0)
    np.testing.assert_allclose(emb.coords, 2.0 * vectors.matrix[:, :2])
    assert "first-two" in methods()


@pytest.mark.slow
def test_umap_is_deterministic_and_places_new_points(vectors):
    with pytest.warns(UserWarning, match="n_neighbors=15 .* n_neighbors=9"):
        first = embed(subset(vectors, list(range(10))), "umap", random_state=2)
    assert first.params["n_neighbors"] == 9
    emb = embed(vectors, "umap", n_neighbors=8, random_state=2)
    again = embed(vectors, "umap", n_neighbors=8, random_state=2)
    np.testing.assert_array_equal(emb.coords, again.coords)
    other = embed(vectors, "umap", n_neighbors=8, random_state=3)
    assert not np.allclose(emb.coords, other.coords)
    grown = emb.transform(subset(vectors, [0, 20]))
    np.testing.assert_array_equal(grown.coords[: len(vectors)], emb.coords)
    # A copy of a point lands closer to it than a typical pair of points.
    spread = np.median(np.linalg.norm(emb.coords[:, None] - emb.coords[None], axis=-1))
    for placed, row in zip(grown.coords[-2:], [0, 20], strict=True):
        assert np.linalg.norm(placed - emb.coords[row]) < spread
