"""Trajectory, pair and group statistics against hand-computed references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fspace.errors import ConfigError
from fspace.stats import (
    compare_groups,
    distance_from_start,
    epoch_distances,
    equal_epoch_distances,
    frechet,
    frechet_distances,
    group_tests,
    nearest_neighbor_accuracy,
    path_length,
    progress,
    run_pairs,
    run_table,
    separation_ratio,
    silhouette,
    speeds,
    trajectory_frame,
)
from fspace.stats._index import index_runs


def euclidean(x: np.ndarray) -> np.ndarray:
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def frame(runs: dict[str, list[int]], groups: dict[str, str]) -> pd.DataFrame:
    """A points frame: for each run its epochs, in a shuffled row order."""
    rows = [
        {"run": r, "group": groups[r], "epoch": e, "step": 10 * e, "checkpoint": f"{r}@{e}"}
        for r, epochs in runs.items()
        for e in epochs
    ]
    order = np.random.default_rng(0).permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order]).reset_index(drop=True)


def line_runs():
    """Two runs on the real line: a at 0, 1, 3 and b at 0, 2, 2 (epochs 0, 1, 2)."""
    points = frame({"a": [0, 1, 2], "b": [0, 1, 2]}, {"a": "g", "b": "h"})
    where = {("a", 0): 0.0, ("a", 1): 1.0, ("a", 2): 3.0, ("b", 0): 0.0, ("b", 1): 2.0}
    where[("b", 2)] = 2.0
    x = np.array([[where[(r, e)]] for r, e in zip(points["run"], points["epoch"], strict=True)])
    return points, euclidean(x)


def test_path_length_speed_and_distance_from_start_by_hand():
    d = euclidean(np.array([[0.0], [1.0], [3.0], [2.0]]))
    assert path_length(d) == pytest.approx(1 + 2 + 1)
    np.testing.assert_allclose(distance_from_start(d), [0, 1, 3, 2])
    # epochs 0, 2, 2, 3: the epoch-2 speed spans two checkpoints over 2 epochs
    np.testing.assert_allclose(speeds(d, np.array([0, 2, 2, 3])), [np.nan, np.nan, 1.5, 1.0])


def test_progress_is_zero_at_ignorance_one_at_truth():
    np.testing.assert_allclose(progress([0.0, 1.0, 2.0], [2.0, 1.0, 0.0]), [0.0, 0.5, 1.0])


def test_trajectory_frame_orders_checkpoints_and_accumulates():
    points, d = line_runs()
    ends = np.column_stack([np.arange(6.0), np.full(6, 2.0)])
    f = trajectory_frame(d, points, endpoints=ends)
    a = f[f["run"] == "a"]
    assert a["epoch"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(a["path_length"], [0, 1, 3])
    np.testing.assert_allclose(a["distance_from_start"], [0, 1, 3])
    np.testing.assert_allclose(a["speed"], [np.nan, 1, 2])
    table = run_table(f).set_index("run")
    assert table.loc["b", "path_length"] == pytest.approx(2.0)
    assert table.loc["b", "straightness"] == pytest.approx(1.0)
    assert table.loc["a", "mean_speed"] == pytest.approx(1.5)
    row = points.index[(points["run"] == "a") & (points["epoch"] == 2)][0]
    assert table.loc["a", "progress"] == pytest.approx(row / (row + 2.0))


def test_frechet_by_hand():
    # P = 0, 1, 3 and Q = 0, 2, 2 on a line: the leash must reach from 3 to 2, and
    # from 1 to 0 or 2; the best coupling needs length 1.
    p, q = np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 2.0])
    assert frechet(np.abs(p[:, None] - q[None, :])) == pytest.approx(1.0)
    # A detour on one curve: P = 0, 5, 0, 1 against Q = 0, 1
    p, q = np.array([0.0, 5.0, 0.0, 1.0]), np.array([0.0, 1.0])
    assert frechet(np.abs(p[:, None] - q[None, :])) == pytest.approx(4.0)


def test_frechet_of_unequal_runs_equals_direct():
    rng = np.random.default_rng(3)
    points = frame(
        {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2], "c": [0, 2, 4, 5]}, dict.fromkeys("abc", "g")
    )
    x = rng.normal(size=(len(points), 3))
    d = euclidean(x)
    index = index_runs(points)
    f = frechet_distances(d, index)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        oi, oj = index.order[i], index.order[j]
        assert f[i, j] == pytest.approx(frechet(d[np.ix_(oi, oj)]))


def test_equal_epoch_distances_and_pairs():
    points, d = line_runs()
    index = index_runs(points)
    r = equal_epoch_distances(d, index)
    assert r[0, 1] == pytest.approx((0 + 1 + 1) / 3)
    pairs = run_pairs(d, points)
    assert pairs.loc[0, "final"] == pytest.approx(1.0)
    assert pairs.loc[0, "frechet"] == pytest.approx(1.0)
    ed = epoch_distances(d, index)
    assert ed["pair"].unique().tolist() == ["g | h"]
    np.testing.assert_allclose(ed["mean"], [0, 1, 1])


def test_equal_epoch_needs_shared_epochs():
    points = frame({"a": [0, 1], "b": [2, 3]}, {"a": "g", "b": "h"})
    with pytest.raises(ConfigError, match="share no epoch"):
        equal_epoch_distances(np.zeros((4, 4)), index_runs(points))


def blobs(rng, n_per_group, shift, dim=3, epochs=(0, 1, 2)):
    """Runs as small random walks around a per-run centre; group b shifted by ``shift``."""
    runs = {f"{g}{i}": list(epochs) for g in "ab" for i in range(n_per_group)}
    groups = {r: r[0] for r in runs}
    points = frame(runs, groups)
    centres = {r: rng.normal(size=dim) + (shift if r[0] == "b" else 0.0) for r in runs}
    x = np.stack([centres[r] + 0.1 * rng.normal(size=dim) for r in points["run"]])
    return points, x


def test_separation_statistics_match_references():
    from sklearn.metrics import silhouette_score

    from fspace.analysis import group_separation

    rng = np.random.default_rng(5)
    points, x = blobs(rng, 4, 1.0)
    index = index_runs(points)
    r = equal_epoch_distances(euclidean(x), index)
    within = [r[i, j] for i in range(8) for j in range(8) if i != j and i // 4 == j // 4]
    between = [r[i, j] for i in range(8) for j in range(8) if i // 4 != j // 4]
    assert separation_ratio(r, index.labels) == pytest.approx(np.mean(between) / np.mean(within))
    assert silhouette(r, index.labels) == pytest.approx(
        silhouette_score(r, index.codes, metric="precomputed")
    )
    # 1-NN leave-one-run-out equals the pre-training analysis' function on vectors
    x = x + rng.normal(scale=0.8, size=x.shape)  # mix the groups a little
    expected = group_separation(x, points["group"], points["run"])
    assert 0.5 < expected < 1.0
    assert nearest_neighbor_accuracy(euclidean(x), points["run"], points["group"]) == (
        pytest.approx(expected)
    )


def test_group_tests_separated_and_mixed():
    rng = np.random.default_rng(1)
    points, x = blobs(rng, 6, 4.0)
    tests = group_tests(euclidean(x), points, n_boot=199, n_perm=199).set_index("statistic")
    assert tests.loc["1-NN accuracy", "value"] == 1.0
    assert tests.loc["distance ratio", "value"] > 1.5
    # perfectly separated: only relabellings giving the same partition tie with the data
    # (2 of 924), so p sits at or next to its smallest possible value 1 / (1 + n_perm)
    assert tests["p_value"].between(1 / 200, 3 / 200).all()
    assert (tests["low"] <= tests["value"]).all() and (tests["value"] <= tests["high"]).all()
    points, x = blobs(rng, 6, 0.0)
    mixed = group_tests(euclidean(x), points, n_boot=199, n_perm=199).set_index("statistic")
    assert mixed.loc["distance ratio", "chance"] == pytest.approx(1.0, abs=0.05)


def test_group_tests_are_seeded_and_pick_epochs():
    rng = np.random.default_rng(2)
    points, x = blobs(rng, 4, 1.0)
    d = euclidean(x)
    a = group_tests(d, points, n_boot=99, n_perm=99, random_state=7)
    b = group_tests(d, points, n_boot=99, n_perm=99, random_state=7)
    pd.testing.assert_frame_equal(a, b)
    last = group_tests(d, points, epoch="last", n_boot=99, n_perm=99)
    at2 = group_tests(d, points, epoch=2, n_boot=99, n_perm=99)
    pd.testing.assert_frame_equal(last, at2)
    assert last["checkpoints"].iloc[0] == 8
    with pytest.raises(ConfigError, match="epoch 9"):
        group_tests(d, points, epoch=9)


def test_group_tests_refuse_one_group_and_unknown_column():
    points, d = line_runs()
    points["group"] = "g"
    with pytest.raises(ConfigError, match="at least two values"):
        group_tests(d, points)
    with pytest.raises(ConfigError, match="no column 'depth'"):
        group_tests(d, points, by="depth")


def test_compare_groups_difference_and_spread():
    rng = np.random.default_rng(4)
    points, x = blobs(rng, 5, 3.0)
    d = euclidean(x)
    runs = run_table(trajectory_frame(d, points))
    out = compare_groups(d, points, runs, n_boot=99, n_perm=99)
    path = out[out["quantity"] == "path_length"].set_index("label")
    means = runs.groupby("label")["path_length"].mean()
    assert path.loc["a", "value"] == pytest.approx(means["a"])
    assert path.loc["a - b", "value"] == pytest.approx(means["a"] - means["b"])
    assert 0 < path.loc["a - b", "p_value"] <= 1
    spread = out[out["quantity"] == "final spread"].set_index("label")
    index = index_runs(points)
    last = index.final_rows()[index.codes == 0]
    sub = d[np.ix_(last, last)]
    assert spread.loc["a", "value"] == pytest.approx(sub[np.triu_indices(5, 1)].mean())


def test_label_must_be_constant_within_a_run():
    points, _ = line_runs()
    points.loc[0, "group"] = "other"
    points.loc[points["run"] == points.loc[0, "run"], "group"] = ["x", "y", "x"]
    with pytest.raises(ConfigError, match="several values within run"):
        index_runs(points)


def test_distances_are_checked():
    points, d = line_runs()
    with pytest.raises(ConfigError, match="shape"):
        trajectory_frame(d[:3, :3], points)
    bad = d.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        trajectory_frame(bad, points)


def synthetic_vectors(rng, n_probes=5, classes=3, output="prob"):
    from fspace.vectors import FunctionVectors

    points = frame({"a": [0, 1, 2], "b": [0, 1, 2]}, {"a": "g", "b": "h"})
    logits = rng.normal(size=(len(points), n_probes, classes))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    matrix = (p if output == "prob" else logits).reshape(len(points), -1).astype(np.float32)
    fv = FunctionVectors(matrix, points, "fp", output, layout=(n_probes, classes))
    return fv, p


def test_ignorance_and_truth_distances_by_hand():
    from fspace.stats import endpoint_distances

    rng = np.random.default_rng(6)
    vectors, p = synthetic_vectors(rng)
    targets = rng.integers(0, 3, 5)
    ends, note = endpoint_distances(vectors, "euclidean", targets)
    assert note is None
    flat = p.reshape(len(p), -1)
    np.testing.assert_allclose(ends[:, 0], np.linalg.norm(flat - 1 / 3, axis=1), rtol=1e-5)
    onehot = np.eye(3)[targets].reshape(-1)
    np.testing.assert_allclose(ends[:, 1], np.linalg.norm(flat - onehot, axis=1), rtol=1e-5)
    # Hellinger per probe, averaged: the mean of 1/2 sum (sqrt p - sqrt q)^2, square-rooted
    ends, _ = endpoint_distances(vectors, "hellinger", targets)
    q = np.eye(3)[targets]
    expected = np.sqrt((0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum(-1)).mean(-1))
    np.testing.assert_allclose(ends[:, 1], expected, rtol=1e-5)


def test_endpoints_say_why_they_are_missing():
    from fspace.stats import endpoint_distances

    rng = np.random.default_rng(7)
    vectors, _ = synthetic_vectors(rng, output="logits")
    ends, note = endpoint_distances(vectors, "euclidean", None)
    assert ends is None and "distance on distributions" in note
    ends, note = endpoint_distances(vectors, "bhattacharyya", np.arange(4))
    assert np.isnan(ends[:, 1]).all() and np.isfinite(ends[:, 0]).all()
    assert "not one class per predicted distribution" in note
