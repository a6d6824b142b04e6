"""The fast t-SNE route: matrix-product neighbours, Gram PCA, exact gradient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fspace.embedding import embed
from fspace.embedding import neighbors as nb
from fspace.embedding.gradient import kl_divergence_exact
from fspace.embedding.tsne import TSNEMethod
from fspace.errors import ConfigError
from fspace.vectors import FunctionVectors


def _low_rank(n: int, d: int, seed: int = 0, offset: float = 5.0) -> np.ndarray:
    """Rows with four dominant directions of decreasing spread, plus a little noise."""
    gen = np.random.default_rng(seed)
    scores = gen.normal(size=(n, 4)) * [10, 6, 3, 1]
    matrix = scores @ gen.normal(size=(4, d)) + 0.1 * gen.normal(size=(n, d)) + offset
    return matrix.astype(np.float32)


def _clusters(n_clusters: int, per: int, d: int, seed: int = 0) -> FunctionVectors:
    gen = np.random.default_rng(seed)
    centres = gen.normal(size=(n_clusters, d)) * 4
    matrix = np.repeat(centres, per, axis=0) + gen.normal(size=(n_clusters * per, d))
    points = pd.DataFrame(
        {
            "run": [f"r{i // per}" for i in range(n_clusters * per)],
            "checkpoint": [f"r{i // per}/c{i % per}" for i in range(n_clusters * per)],
        }
    )
    return FunctionVectors(matrix.astype(np.float32), points, "fp")


SPLITS = {
    "one-pass": {},
    "strips-chunks-and-passes": {
        "strip_rows": 64,
        "chunk_bytes": 300 * 4 * 50,
        "gram_bytes": 10**5,
    },
}


@pytest.mark.parametrize("split", list(SPLITS), ids=list(SPLITS))
def test_exact_neighbors_equal_scikit_learn(split):
    from sklearn.neighbors import NearestNeighbors

    matrix = _low_rank(300, 200)
    found = nb.exact_neighbors(matrix, 12, **SPLITS[split])
    dist, idx = NearestNeighbors(n_neighbors=12).fit(matrix.astype(np.float64)).kneighbors()
    np.testing.assert_array_equal(found.indices, idx)
    np.testing.assert_allclose(found.distances, dist, rtol=1e-3)
    np.testing.assert_allclose(found.mean.numpy(), matrix.mean(0), rtol=1e-5)


@pytest.mark.parametrize("split", list(SPLITS), ids=list(SPLITS))
def test_gram_components_equal_pca_up_to_sign(split):
    from sklearn.decomposition import PCA

    matrix = _low_rank(300, 200, seed=1)
    found = nb.exact_neighbors(matrix, 5, n_components=3, **SPLITS[split])
    expected = PCA(3).fit_transform(matrix.astype(np.float64))
    got = found.components.numpy()
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-3, atol=1e-2)
    # Signs are fixed: each component's largest coordinate is positive.
    assert (got[np.abs(got).argmax(0), range(3)] > 0).all()


def test_randomised_principal_coordinates_and_projection():
    from sklearn.decomposition import PCA

    matrix = _low_rank(300, 500, seed=2)
    principal = nb.principal_coordinates(matrix, 3, power_iterations=2, random_state=4)
    expected = PCA(3).fit_transform(matrix.astype(np.float64))
    np.testing.assert_allclose(np.abs(principal.coords.numpy()), np.abs(expected), atol=0.05)
    torch.testing.assert_close(principal.project(matrix), principal.coords, atol=0.05, rtol=0)
    again = nb.principal_coordinates(matrix, 3, power_iterations=2, random_state=4)
    torch.testing.assert_close(again.coords, principal.coords, rtol=0, atol=0)


@pytest.mark.parametrize(
    "reference_kind", ["float32-in-place", "float64-copied"], ids=["shared", "chunked"]
)
def test_queries_equal_scikit_learn(reference_kind):
    from sklearn.neighbors import NearestNeighbors

    matrix = _low_rank(250, 150, seed=3)
    queries = _low_rank(20, 150, seed=4)
    reference = matrix if reference_kind == "float32-in-place" else matrix.astype(np.float64)
    found = nb.exact_neighbors(reference, 5)
    idx, dist = nb.query_neighbors(reference, found, queries, 7)
    exp_dist, exp_idx = NearestNeighbors(n_neighbors=7).fit(matrix).kneighbors(queries)
    np.testing.assert_array_equal(idx, exp_idx)
    np.testing.assert_allclose(dist, exp_dist, rtol=1e-3)


def test_the_callers_matrix_is_never_modified():
    matrix = _low_rank(100, 30)
    before = matrix.copy()
    nb.exact_neighbors(matrix, 5, n_components=2)
    nb.principal_coordinates(matrix, 2)
    np.testing.assert_array_equal(matrix, before)


@pytest.mark.parametrize("mode", ["map", "new-points"])
def test_exact_gradient_equals_opentsne_without_approximation(mode):
    from openTSNE import affinity
    from openTSNE.tsne import kl_divergence_bh

    gen = np.random.default_rng(0)
    data = gen.normal(size=(200, 5))
    y = gen.normal(size=(200, 2)) * 5
    aff = affinity.PerplexityBasedNN(data, 10, method="exact")
    P, kwargs = aff.P, {}
    if mode == "new-points":
        P = aff.to_new(gen.normal(size=(30, 5)), perplexity=5)
        kwargs = {"reference_embedding": y}
        y = gen.normal(size=(30, 2)) * 5
    err, grad = kl_divergence_bh(y, P, 1, {"theta": 0.0}, should_eval_error=True, **kwargs)
    err2, grad2 = kl_divergence_exact(y, P, 1, should_eval_error=True, n_jobs=2, **kwargs)
    np.testing.assert_allclose(grad2, grad, rtol=1e-9, atol=1e-15)
    assert err2 == pytest.approx(err, rel=1e-9)


@pytest.mark.parametrize(
    ("n_points", "metric", "neighbors", "gradient"),
    [
        (999, "euclidean", "auto", "auto"),
        (1000, "euclidean", "gram", "exact"),
        (5001, "euclidean", "gram", "auto"),
        (20_001, "euclidean", "pca", "auto"),
        (3000, "cosine", "auto", "auto"),
    ],
    ids=["small", "large", "larger", "very-large", "other-metric"],
)
def test_auto_picks_the_fast_route_for_large_euclidean_maps(n_points, metric, neighbors, gradient):
    params = TSNEMethod().resolve({"metric": metric}, n_points)
    assert (params["neighbors"], params["negative_gradient_method"]) == (neighbors, gradient)


def test_matrix_product_neighbours_need_the_euclidean_metric():
    with pytest.raises(ConfigError, match="neighbors='gram' supports metric='euclidean'"):
        TSNEMethod().resolve({"neighbors": "gram", "metric": "cosine"}, 100)


@pytest.fixture(scope="module")
def clusters() -> FunctionVectors:
    return _clusters(8, 40, 60)


@pytest.fixture(scope="module")
def fast_map(clusters):
    params = {"neighbors": "gram", "negative_gradient_method": "exact", "perplexity": 15}
    return embed(clusters, "tsne", random_state=1, n_jobs=1, **params)


def test_fast_affinities_equal_opentsne_exact_ones(clusters):
    from openTSNE.affinity import MultiscaleMixture

    index = nb.GramIndex(clusters.matrix, 45)
    ours = MultiscaleMixture(perplexities=15, knn_index=index).P
    theirs = MultiscaleMixture(clusters.matrix, 15, method="exact").P
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("n_jobs", [1, 2], ids=["one-thread", "two-threads"])
def test_fast_map_is_reproducible(clusters, fast_map, n_jobs):
    params = {"neighbors": "gram", "negative_gradient_method": "exact", "perplexity": 15}
    again = embed(clusters, "tsne", random_state=1, n_jobs=n_jobs, **params)
    np.testing.assert_array_equal(again.coords, fast_map.coords)
    other = embed(clusters, "tsne", random_state=2, n_jobs=1, **params)
    assert not np.allclose(other.coords, fast_map.coords)


def test_fast_map_preserves_neighbourhoods_like_opentsne(clusters, fast_map):
    from openTSNE import TSNE
    from sklearn.manifold import trustworthiness

    ref = TSNE(perplexity=15, neighbors="exact", n_jobs=1, random_state=1).fit(clusters.matrix)
    ours = trustworthiness(clusters.matrix, fast_map.coords, n_neighbors=10)
    theirs = trustworthiness(clusters.matrix, np.asarray(ref), n_neighbors=10)
    assert ours > 0.95 and abs(ours - theirs) < 0.01


@pytest.mark.parametrize("route", ["gram", "pca"])
def test_fast_map_places_near_duplicates_next_to_their_originals(clusters, fast_map, route):
    emb = fast_map
    if route == "pca":
        emb = embed(clusters, "tsne", neighbors="pca", pca_components=10, perplexity=15, n_jobs=1)
    rows = [0, 100, 250]
    gen = np.random.default_rng(5)
    nudged = clusters.matrix[rows] + 1e-3 * gen.normal(size=(3, clusters.matrix.shape[1]))
    points = clusters.points.iloc[rows].assign(checkpoint=lambda f: f["checkpoint"] + "-new")
    grown = emb.transform(FunctionVectors(nudged.astype(np.float32), points, "fp"))
    np.testing.assert_array_equal(grown.coords[: len(clusters)], emb.coords)
    for placed, row in zip(grown.coords[len(clusters) :], rows, strict=True):
        nearest = np.argsort(np.linalg.norm(emb.coords - placed, axis=1))[:5]
        assert row in nearest


def test_default_gram_budget_takes_passes_within_a_share_of_the_data():
    from fspace.embedding import neighbors

    m = np.random.default_rng(3).normal(size=(300, 50)).astype(np.float32)
    # A quarter of the data's 60 kB cannot hold the 180 kB of Gram strips: several passes.
    assert len(neighbors._groups(300, 16, int(neighbors.GRAM_SHARE * m.nbytes))) > 1
    passes = neighbors.exact_neighbors(m, 5, strip_rows=16)
    one = neighbors.exact_neighbors(m, 5, strip_rows=16, gram_bytes=2**30)
    np.testing.assert_array_equal(passes.indices, one.indices)
    np.testing.assert_allclose(passes.distances, one.distances, rtol=1e-6)
