"""Maps on any distance and their faithfulness (trustworthiness, continuity, stress)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.manifold import trustworthiness as sklearn_trustworthiness

from fspace.distances import pairwise
from fspace.embedding import METHODS, Embedding, embed
from fspace.embedding.quality import explained_stress, trustworthiness
from fspace.errors import ConfigError
from fspace.vectors import FunctionVectors


@pytest.fixture(scope="module")
def vectors() -> FunctionVectors:
    """Two groups of 12 checkpoints on 8 probes x 4 classes."""
    rng = np.random.default_rng(0)
    centres = rng.dirichlet(np.ones(4), size=(2, 8))
    draws = [[rng.dirichlet(40 * c + 0.1, size=12) for c in group] for group in centres]
    p = np.asarray(draws).transpose(0, 2, 1, 3).reshape(24, 8, 4)
    points = pd.DataFrame(
        {"group": np.repeat(["a", "b"], 12), "checkpoint": [f"r/{i}" for i in range(24)]}
    )
    return FunctionVectors(p.reshape(24, -1), points, "fp", layout=(8, 4))


def test_trustworthiness_equals_scikit_learns_and_continuity_swaps_roles():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(30, 2))
    high, low = cdist(x, x), cdist(y, y)
    for k in (1, 5, 10):
        expected = sklearn_trustworthiness(high, y, n_neighbors=k, metric="precomputed")
        assert trustworthiness(high, low, k) == pytest.approx(expected, abs=1e-12)
        swapped = sklearn_trustworthiness(y, x, n_neighbors=k)
        assert trustworthiness(low, high, k) == pytest.approx(swapped, abs=1e-12)


def test_explained_stress_of_pca_is_the_share_of_squared_eigenvalues():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 5)) * [4, 3, 1, 0.5, 0.1]
    centred = x - x.mean(0)
    values = np.linalg.eigvalsh(centred @ centred.T)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    expected = np.sort(values)[-2:] @ np.sort(values)[-2:] / (values @ values)
    assert explained_stress(cdist(x, x), coords) == pytest.approx(expected, rel=1e-10)
    assert explained_stress(cdist(x, x), 7.0 * coords) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("method", ["inpca", "mds", "isomap", "tsne", "pca"])
def test_every_map_reports_its_faithfulness(vectors, method):
    distance = "euclidean" if method == "pca" else "bhattacharyya"
    emb = embed(vectors, method, distance=distance)
    q = emb.quality
    assert q["k"] == 10 and q["n"] == 24 and not q["sampled"]
    assert 0.5 < q["trustworthiness"] <= 1 and 0.5 < q["continuity"] <= 1
    assert ("explained_stress" in q) == METHODS.get(method).tags["metric"]
    high = np.sqrt(pairwise(vectors, distance)) if distance != "euclidean" else None
    if high is not None:
        low = cdist(emb.coords, emb.coords)
        assert q["continuity"] == pytest.approx(trustworthiness(low, high, 10))
    assert emb.distance == distance


def test_tsne_of_hellinger_is_tsne_of_the_square_root_rows(vectors):
    """t-SNE maps Hellinger exactly through its Euclidean rows (no precomputed matrix)."""
    emb = embed(vectors, "tsne", distance="hellinger", perplexity=5, n_iter=50)
    rows = np.sqrt(vectors.distributions() / vectors.distributions().sum(-1, keepdims=True))
    direct = FunctionVectors(rows.reshape(24, -1) / 4, vectors.points, "fp", layout=(8, 4))
    expected = embed(direct, "tsne", perplexity=5, n_iter=50)
    np.testing.assert_allclose(emb.coords, expected.coords, atol=1e-6)
    assert emb.params["metric"] == "euclidean"


def test_tsne_of_bhattacharyya_maps_the_precomputed_matrix(vectors):
    emb = embed(vectors, "tsne", distance="bhattacharyya", perplexity=5, n_iter=50)
    assert emb.params["metric"] == "precomputed"
    placed = emb.transform(
        FunctionVectors(
            vectors.matrix[:2],
            vectors.points.iloc[:2].assign(checkpoint=["n/0", "n/1"]),
            "fp",
            layout=(8, 4),
        )
    )
    assert np.isfinite(placed.coords).all() and len(placed) == 26


def test_a_precomputed_matrix_is_used_as_given(vectors):
    d = pairwise(vectors, "symmetric_kl")
    emb = embed(vectors, "mds", distance="symmetric_kl", precomputed=d)
    assert emb.quality == embed(vectors, "mds", distance="symmetric_kl").quality
    with pytest.raises(Exception, match="precomputed distances have shape"):
        embed(vectors, "mds", distance="symmetric_kl", precomputed=d[:3])


def test_phate_maps_any_distance(vectors):
    pytest.importorskip("phate")
    emb = embed(vectors, "phate", distance="hellinger", knn=4)
    assert emb.coords.shape == (24, 2) and "trustworthiness" in emb.quality
    assert "explained_stress" not in emb.quality


def test_quality_and_distance_are_saved_with_the_map(vectors, tmp_path):
    emb = embed(vectors, "inpca", distance="bhattacharyya", distance_params={"floor": 1e-9})
    loaded = Embedding.load(emb.save(tmp_path / "map.safetensors"))
    assert loaded.quality == emb.quality
    assert loaded.distance == "bhattacharyya" and loaded.distance_params["floor"] == 1e-9
    np.testing.assert_array_equal(loaded.coords, emb.coords)


def test_maps_refuse_distances_they_cannot_use(vectors):
    with pytest.raises(ConfigError, match="'pca' maps euclidean distances only.*inpca"):
        embed(vectors, "pca", distance="hellinger")
    with pytest.raises(ConfigError, match="metric='cosine' conflicts"):
        embed(vectors, "tsne", distance="bhattacharyya", metric="cosine")
    with pytest.raises(ConfigError, match="unknown distance 'cos'"):
        embed(vectors, "inpca", distance="cos")
    regression = FunctionVectors(vectors.matrix, vectors.points, "fp", kind="regression")
    with pytest.raises(ConfigError, match="regression; use euclidean"):
        embed(regression, "inpca", distance="bhattacharyya")


@pytest.mark.slow
def test_cli_maps_a_recorded_experiment_with_inpca_on_bhattacharyya(recorded, tmp_path, capsys):
    from fspace.cli import main

    csv = tmp_path / "map.csv"
    argv = ["embed", str(recorded), "--method", "inpca", "--distance", "bhattacharyya", "-q"]
    assert main([*argv, "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "30 checkpoints of 6 runs embedded with inpca" in out and "bhattacharyya" in out
    assert "trustworthiness" in out and "explained stress" in out and "axis eigenvalue" in out
    frame = pd.read_csv(csv)
    assert len(frame) == 30 and np.isfinite(frame[["x", "y"]].to_numpy()).all()
    assert main([*argv, "--floor", "1e-6", "--csv", "-"]) == 0  # a distance parameter
    streams = capsys.readouterr()  # '-': the table alone on stdout, the summary on stderr
    piped = pd.read_csv(io.StringIO(streams.out))
    pd.testing.assert_frame_equal(piped[frame.columns], frame, check_exact=False, atol=1e-3)
    assert "embedded with inpca" in streams.err and not Path("-").exists()
    assert main([*argv, "--distance", "hellinger", "--floor", "1e-6"]) == 2
    assert "--floor applies to --distance bhattacharyya or symmetric_kl only" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_cli_maps_two_experiments_on_one_probe_suite_together(tmp_path, suite, capsys):
    from conftest import record_experiment

    from fspace import ProbeSuite
    from fspace.cli import main

    a = record_experiment(tmp_path / "a", suite, groups=("x",), seeds=(0, 1), epochs=2)
    b = record_experiment(tmp_path / "b", suite, groups=("y",), seeds=(0, 1), epochs=2)
    csv = tmp_path / "both.csv"
    argv = ["embed", str(a), str(b), "--method", "mds", "--distance", "hellinger", "-q"]
    assert main([*argv, "--csv", str(csv)]) == 0
    frame = pd.read_csv(csv)
    assert len(frame) == 12 and frame["experiment"].nunique() == 2
    other = ProbeSuite.from_array(np.ones((20, 4), dtype=np.float32), name="probe")
    c = record_experiment(tmp_path / "c", other, groups=("z",), seeds=(0,), epochs=1)
    capsys.readouterr()
    assert main(["embed", str(a), str(c), "--method", "mds", "-q"]) == 2
    err = capsys.readouterr().err
    assert suite.fingerprint in err and other.fingerprint in err


def test_dashboard_status_line_shows_the_faithfulness_beside_the_map(vectors):
    from fspace.app import maps

    emb = embed(vectors, "mds", distance="hellinger")
    plot = type("Plot", (), {"runs": ["r"], "__len__": lambda self: 24})()
    entry = SimpleNamespace(
        busy=False,
        error=None,
        plot=plot,
        embedding=emb,
        note="",
        token="t",
        spec=maps.MapSpec.make("pca"),
    )
    text = maps.describe(entry).message
    assert "24 checkpoints of 1 runs; trustworthiness" in text and "explained stress" in text


@pytest.mark.slow
def test_cli_inpca_bhattacharyya_on_sequence_and_regression_experiments(tmp_path, capsys):
    import torch
    from test_stats_cli import TinySequenceModel, record_kind

    from fspace import ProbeSuite
    from fspace.cli import main

    tokens = np.random.default_rng(2).integers(0, 7, size=(6, 5))
    seq = record_kind(tmp_path / "seq", ProbeSuite.from_array(tokens, name="t"), TinySequenceModel)
    argv = ["--method", "inpca", "--distance", "bhattacharyya", "-q"]
    assert main(["embed", str(seq), *argv]) == 0
    assert "16 checkpoints of 4 runs embedded with inpca" in capsys.readouterr().out
    inputs = np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32)
    reg = record_kind(
        tmp_path / "reg",
        ProbeSuite.from_array(inputs, name="x"),
        lambda: torch.nn.Linear(4, 2),
        kind="regression",
        output="raw",
    )
    assert main(["embed", str(reg), *argv]) == 2
    assert "these function vectors are regression; use euclidean" in capsys.readouterr().err
    assert main(["embed", str(reg), "--method", "inpca", "-q"]) == 0


def test_large_maps_are_scored_on_a_seeded_sample(vectors, monkeypatch):
    from fspace.embedding import quality

    monkeypatch.setattr(quality, "SAMPLE", 15)
    first = embed(vectors, "mds", distance="hellinger").quality
    assert first["sampled"] and first["n"] == 15 and first["k"] == 7
    assert first == embed(vectors, "mds", distance="hellinger").quality
