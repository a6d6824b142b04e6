"""Placing new checkpoints into a map without fitted state: among a bounded set of the
map's checkpoints, the existing coordinates untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspace.app.placement import neighbour_positions, place_by_neighbours, reference_checkpoints
from fspace.embedding import Embedding
from fspace.errors import EmbeddingError
from fspace.store import CheckpointInfo
from fspace.vectors import FunctionVectors


def ckpts(runs: int, epochs: int) -> list[CheckpointInfo]:
    return [
        CheckpointInfo(f"r{r}", e, 0, {}, Path(".")) for r in range(runs) for e in range(epochs)
    ]


def vectors(keys: list[str], matrix: np.ndarray) -> FunctionVectors:
    points = pd.DataFrame(
        {
            "run": [k.split("/")[0] for k in keys],
            "group": "g",
            "seed": 0,
            "epoch": 0,
            "step": 0,
            "checkpoint": keys,
        }
    )
    return FunctionVectors(np.asarray(matrix, np.float32), points, "suite")


def embedding_of(keys: list[str], coords: np.ndarray) -> Embedding:
    points = vectors(keys, np.zeros((len(keys), 1))).points
    return Embedding(np.asarray(coords, float), points, "pca", {}, "suite", "prob", 2)


def test_references_are_every_mapped_checkpoint_up_to_the_limit():
    recorded = ckpts(4, 5)
    mapped = [c.key for c in recorded[:-3]]  # the last three are new
    refs = reference_checkpoints(mapped, recorded, limit=100)
    assert [c.key for c in refs] == mapped


def test_references_above_the_limit_keep_the_new_runs_and_spread_the_rest():
    recorded = ckpts(100, 10)  # 1,000 checkpoints of runs r0..r99
    mapped = [c.key for c in recorded]
    refs = reference_checkpoints(mapped, recorded, runs={"r42"}, limit=50)
    keys = [c.key for c in refs]
    assert len(keys) == len(set(keys)) == 50
    assert {c.key for c in recorded if c.run == "r42"} <= set(keys)
    others = [c for c in refs if c.run != "r42"]
    # evenly spread: from the first run to the last, at most one run between picks apart
    assert others[0].run == "r0" and others[-1].run == "r99"
    assert len({c.run for c in others}) >= 35


def test_references_leave_out_checkpoints_the_store_lost():
    recorded = ckpts(3, 4)
    mapped = [c.key for c in recorded] + ["gone/e000001-s0000000000"]
    assert len(reference_checkpoints(mapped, recorded)) == 12
    with pytest.raises(EmbeddingError, match="none of the map's 1 checkpoints"):
        reference_checkpoints(["gone/e000001-s0000000000"], recorded)


def test_placement_among_some_references_matches_brute_force():
    gen = np.random.default_rng(5)
    keys = [f"r{i}/e{j:06d}-s0000000000" for i in range(20) for j in range(5)]
    coords = gen.normal(size=(len(keys), 2))
    matrix = gen.normal(size=(len(keys), 6))
    emb = embedding_of(keys, coords)
    picked = gen.permutation(len(keys))[:40]  # some of the map's rows, in any order
    stray = np.zeros((1, 6))  # a reference the map does not hold is ignored
    refs = vectors([keys[i] for i in picked] + ["elsewhere/e0"], np.vstack([matrix[picked], stray]))
    new = vectors(["new/e000000-s0000000000"] * 3, gen.normal(size=(3, 6)))
    placed = place_by_neighbours(emb, refs, new)
    np.testing.assert_array_equal(placed.coords[: len(keys)], coords)  # nothing re-fitted
    expected = neighbour_positions(coords[picked], matrix[picked], new.matrix)
    np.testing.assert_allclose(placed.coords[len(keys) :], expected)
    assert placed.points["checkpoint"].tolist()[-3:] == new.points["checkpoint"].tolist()
    with pytest.raises(EmbeddingError, match="none of the 1 checkpoints"):
        place_by_neighbours(emb, vectors(["elsewhere/e0"], matrix[:1]), new)


@pytest.mark.slow
def test_a_cached_map_reads_a_bounded_set_of_vectors(tmp_path, suite, monkeypatch):
    import time

    from _bigmap import real_points
    from conftest import record_experiment
    from test_app_callbacks import record_one

    from fspace.app import placement
    from fspace.app.maps import MapSpec
    from fspace.app.state import ServerState

    record_experiment(tmp_path / "exp", suite)  # 30 checkpoints of 6 runs
    state = ServerState(tmp_path)
    try:
        handle = state.registry.get("exp")
        points = real_points(handle)
        coords = np.random.default_rng(0).normal(size=(len(points), 2))
        spec = MapSpec.make("pca")
        first = Embedding(coords, points, "pca", {}, "suite", "prob", 2)
        token = state.maps.adopt(handle, spec, first).token  # no fitted state
        monkeypatch.setattr(placement, "REFERENCE_LIMIT", 8)
        record_one(tmp_path / "exp", suite, run="random-s2", epoch=5, seed=2)
        end = time.monotonic() + 60
        while (status := state.maps.status(handle, spec)).token == token or status.busy:
            assert time.monotonic() < end, status.message
            time.sleep(0.05)
        entry = state.maps.find(status.token)
        # 8 references (the 5 of the run that went on among them) and the new checkpoint
        read = entry.vectors.points["checkpoint"].tolist()
        assert len(read) == 9 and read[-1].startswith("random-s2/e000005-")
        assert {k for k in read if k.startswith("random-s2/")} >= {
            k for k in points["checkpoint"] if k.startswith("random-s2/")
        }
        np.testing.assert_array_equal(entry.embedding.coords[:30], coords)
        assert "placed next to their nearest neighbours" in status.message
    finally:
        state.close()
