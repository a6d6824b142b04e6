"""Analyses of the pre-training experiment, checked against numpy on a tiny recording."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fspace import FunctionVectors, Recorder
from fspace.analysis import group_separation, separation
from fspace.errors import CheckpointError, ConfigError, EmptyExperimentError, RunError
from fspace.evaluation import points_frame
from fspace.experiments.pretraining.analysis import (
    error_summary,
    final_errors,
    format_summary,
    receptive_fields,
    summary,
    weight_changes,
)
from fspace.models.mlp import make_mlp
from fspace.store import Experiment

GROUPS = ("pretrained", "random")
SEEDS = (0, 1)
DEPTHS = (1, 2)
EPOCHS = 3
N_IN = 16  # 4 x 4 images


def expected_error(group: str, depth: int, seed: int, epoch: int) -> float:
    return 0.5 - 0.1 * epoch + 0.01 * seed + 0.02 * depth + (0.05 if group == "random" else 0)


def record_run(path, run, group, seed, depth, *, n_in=N_IN, width=5, zero_output=False):
    """Record epochs 0..EPOCHS of an fspace MLP whose weights move by a seeded amount
    each epoch; return the state dicts at epoch 0 and at the end."""
    gen = torch.Generator().manual_seed(1000 * seed + 10 * depth + len(group))
    kwargs = {"n_in": n_in, "hidden": [width] * depth, "n_classes": 3, "seed": seed}
    model = make_mlp(**kwargs)
    if zero_output:
        with torch.no_grad():
            model.output.weight.zero_()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = {"depth": depth, "method": "rbm", "width": width}
    with Recorder(
        path,
        run=run,
        group=group,
        seed=seed,
        config=config,
        model_factory="fspace.models.mlp:make_mlp",
        model_kwargs=kwargs,
    ) as rec:
        for epoch in range(EPOCHS + 1):
            if epoch:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(0.3 * torch.randn(p.shape, generator=gen))
            err = expected_error(group, depth, seed, epoch)
            rec.record(model, epoch=epoch, step=10 * epoch, metrics={"test_error": err})
    return start, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """2 groups x 2 seeds x depths 1, 2; returns the path and each run's start/end weights."""
    path = tmp_path_factory.mktemp("pretraining")
    weights = {}
    for group in GROUPS:
        for seed in SEEDS:
            for depth in DEPTHS:
                run = f"rbm-d{depth}-s{seed}-{group}"
                weights[run] = record_run(path, run, group, seed, depth)
    return path, weights


@pytest.fixture(scope="module")
def frame(recorded):
    exp = Experiment(recorded[0])
    return points_frame(exp, exp.checkpoints())


# final errors ------------------------------------------------------------------------


def test_final_errors_takes_each_runs_last_epoch(frame):
    shuffled = frame.sample(frac=1.0, random_state=0)
    final = final_errors(shuffled)
    assert len(final) == len(GROUPS) * len(SEEDS) * len(DEPTHS)
    assert list(final.columns) == ["run", "group", "depth", "seed", "epoch", "test_error"]
    for row in final.itertuples():
        assert row.epoch == EPOCHS
        assert row.test_error == pytest.approx(
            expected_error(row.group, row.depth, row.seed, EPOCHS)
        )


def test_final_errors_takes_the_last_step_within_the_last_epoch():
    frame = pd.DataFrame(
        {
            "run": ["a", "a", "a", "b"],
            "group": ["random"] * 3 + ["pretrained"],
            "seed": [0, 0, 0, 1],
            "epoch": [2, 2, 1, 0],
            "step": [30, 40, 99, 0],
            "checkpoint": ["a/1", "a/2", "a/3", "b/1"],
            "depth": [1, 1, 1, 1],
            "test_error": [0.3, 0.2, 0.9, 0.5],
        }
    )
    final = final_errors(frame).set_index("run")
    assert final.loc["a", "test_error"] == 0.2
    assert final.loc["b", "test_error"] == 0.5


def test_final_errors_names_missing_columns(frame):
    with pytest.raises(ConfigError, match="depth"):
        final_errors(frame.drop(columns=["depth"]))


def test_error_summary_matches_numpy(frame):
    final = final_errors(frame)
    stats = error_summary(final)
    assert len(stats) == len(GROUPS) * len(DEPTHS)
    for row in stats.itertuples():
        values = final.loc[
            (final["group"] == row.group) & (final["depth"] == row.depth), "test_error"
        ].to_numpy()
        assert row.mean == pytest.approx(np.mean(values))
        assert row.std == pytest.approx(np.std(values, ddof=1))
        assert (row.min, row.max, row.n) == (values.min(), values.max(), len(values))


def test_error_summary_of_nothing_is_empty(frame):
    assert error_summary(final_errors(frame.iloc[:0])).empty


# weights -----------------------------------------------------------------------------


def test_weight_changes_equal_the_norm_ratio_by_hand(recorded):
    path, weights = recorded
    changes = weight_changes(path)
    assert len(changes) == len(GROUPS) * len(SEEDS) * sum(d + 1 for d in DEPTHS)
    for row in changes.itertuples():
        start, end = weights[row.run]
        key = "output.weight" if row.layer == "output" else None
        if key is None:
            key = f"hidden_layers.{int(row.layer.split()[1]) - 1}.weight"
        w0, w1 = start[key].double().numpy(), end[key].double().numpy()
        assert row.relative_change == pytest.approx(
            np.linalg.norm(w1 - w0) / np.linalg.norm(w0), rel=1e-6
        )
        assert row.change == pytest.approx(np.linalg.norm(w1 - w0), rel=1e-6)
        assert row.depth == int(row.run.split("-")[1][1:])


def test_weight_changes_names_layers_input_to_output(recorded):
    changes = weight_changes(recorded[0], runs=["rbm-d2-s1-random"])
    assert changes["layer"].tolist() == ["hidden 1", "hidden 2", "output"]
    assert set(changes["group"]) == {"random"} and set(changes["seed"]) == {1}


def test_weight_changes_of_an_unknown_run_names_it(recorded):
    with pytest.raises(RunError, match="no-such-run"):
        weight_changes(recorded[0], runs=["no-such-run"])


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """One run with 6 inputs (not a square image) and a zero-initialised output layer."""
    path = tmp_path_factory.mktemp("odd")
    weights = record_run(path, "odd", "random", 0, 1, n_in=6, zero_output=True)
    return path, weights


def test_weight_change_from_zero_is_nan_and_change_is_absolute(odd):
    path, (_, end) = odd
    output = weight_changes(path).set_index("layer").loc["output"]
    assert math.isnan(output["relative_change"])
    assert output["change"] == pytest.approx(np.linalg.norm(end["output.weight"].numpy()))


def test_weight_changes_refuses_other_architectures(tmp_path):
    with Recorder(tmp_path, run="seq", group="random") as rec:
        rec.record(nn.Sequential(nn.Linear(4, 3)), epoch=0)
    with pytest.raises(CheckpointError, match="hidden_layers"):
        weight_changes(tmp_path)


@pytest.mark.parametrize("n", [3, 5], ids=["some-units", "all-units"])
def test_receptive_fields_are_the_stored_first_layer_rows(recorded, n):
    path, weights = recorded
    start, end = weights["rbm-d2-s0-pretrained"]
    before, after = receptive_fields(path, "rbm-d2-s0-pretrained", n=n)
    w0, w1 = start["hidden_layers.0.weight"].numpy(), end["hidden_layers.0.weight"].numpy()
    units = np.argsort(-np.linalg.norm(w0, axis=1), kind="stable")[:n]
    assert before.shape == after.shape == (n, 4, 4)
    np.testing.assert_array_equal(before, w0[units].reshape(n, 4, 4))
    np.testing.assert_array_equal(after, w1[units].reshape(n, 4, 4))
    norms = np.linalg.norm(before.reshape(n, -1), axis=1)
    assert np.all(np.diff(norms) <= 0)


def test_receptive_fields_of_a_narrow_layer_give_every_unit(recorded):
    before, _ = receptive_fields(recorded[0], "rbm-d1-s0-random", n=50)
    assert before.shape == (5, 4, 4)


def test_receptive_fields_need_an_image_shape_for_non_square_inputs(odd):
    path = odd[0]
    with pytest.raises(ConfigError, match="image_shape"):
        receptive_fields(path, "odd")
    before, _ = receptive_fields(path, "odd", n=2, image_shape=(2, 3))
    assert before.shape == (2, 2, 3)
    with pytest.raises(ConfigError, match="6 inputs"):
        receptive_fields(path, "odd", image_shape=(4, 4))


def test_receptive_fields_of_a_run_without_checkpoints(tmp_path):
    # A run being recorded has no checkpoint until its first record() (a run closed
    # without one is removed).
    with Recorder(tmp_path, run="empty", group="random"):
        with pytest.raises(EmptyExperimentError, match="empty"):
            receptive_fields(tmp_path, "empty")


# group separation --------------------------------------------------------------------


def brute_force_separation(matrix, groups, runs):
    """Reference: the loop the vectorised version must agree with."""
    correct = 0
    for i in range(len(matrix)):
        dist = np.linalg.norm(matrix - matrix[i], axis=1)
        dist[np.asarray(runs) == runs[i]] = np.inf
        correct += groups[int(np.argmin(dist))] == groups[i]
    return correct / len(matrix)


def clusters(n_runs: int, per_run: int, spread: float, seed: int):
    """Runs of ``per_run`` points each around a run centre; groups alternate by run."""
    gen = np.random.default_rng(seed)
    runs = np.repeat([f"r{i}" for i in range(n_runs)], per_run)
    groups = np.repeat([GROUPS[i % 2] for i in range(n_runs)], per_run)
    centres = gen.normal(size=(n_runs, 3))
    matrix = np.repeat(centres, per_run, axis=0) + spread * gen.normal(size=(len(runs), 3))
    return matrix, groups, runs


def test_separation_is_perfect_for_separated_groups():
    matrix, groups, runs = clusters(10, 4, 0.1, seed=0)
    matrix[groups == "random"] += 100.0
    assert group_separation(matrix, groups, runs) == 1.0


def test_separation_is_near_chance_for_shuffled_groups():
    matrix, _, runs = clusters(200, 3, 0.5, seed=1)
    groups = np.repeat(np.random.default_rng(2).choice(GROUPS, size=200), 3)
    assert 0.35 < group_separation(matrix, groups, runs) < 0.65


def test_separation_is_not_fooled_by_neighbours_in_the_same_run():
    # Each run is a tight line of points; its nearest *other* run is of the other group.
    offsets = np.arange(4)[:, None] * np.array([[0.01, 0.0]])
    centres = {"a1": (0, 0), "b1": (0, 1), "a2": (50, 0), "b2": (50, 1)}
    runs = np.repeat(list(centres), 4)
    groups = np.array(["pretrained" if r[0] == "a" else "random" for r in runs])
    matrix = np.concatenate([np.array(c, dtype=float) + offsets for c in centres.values()])
    plain = np.linalg.norm(matrix[:, None] - matrix[None], axis=2) + np.diag([np.inf] * 16)
    assert np.mean(groups[plain.argmin(1)] == groups) == 1.0  # the trap is real
    assert group_separation(matrix, groups, runs) == 0.0


@pytest.mark.parametrize("chunk_rows", [None, 1, 7], ids=["auto", "one-row", "uneven"])
def test_separation_matches_brute_force(chunk_rows):
    matrix, groups, runs = clusters(12, 5, 1.0, seed=3)
    groups = np.random.default_rng(4).permutation(groups)
    got = group_separation(matrix, groups, runs, chunk_rows=chunk_rows)
    assert got == pytest.approx(brute_force_separation(matrix, groups, runs))


@pytest.mark.filterwarnings("error")
def test_separation_reads_read_only_matrices():
    matrix, groups, runs = clusters(4, 3, 0.1, seed=6)
    matrix = matrix.astype(np.float32)
    matrix.setflags(write=False)  # as embedding coordinates are
    assert group_separation(matrix, groups, runs) == brute_force_separation(matrix, groups, runs)


def test_separation_of_a_single_run_is_undefined():
    assert math.isnan(group_separation(np.zeros((3, 2)), ["a"] * 3, ["r"] * 3))


def test_separation_checks_lengths():
    with pytest.raises(ConfigError, match="2 groups"):
        group_separation(np.zeros((3, 2)), ["a", "b"], ["r", "s", "t"])


def synthetic_vectors(n_runs: int = 8, epochs: int = 3) -> tuple[FunctionVectors, pd.DataFrame]:
    matrix, groups, runs = clusters(n_runs, epochs + 1, 0.3, seed=5)
    epoch = np.tile(np.arange(epochs + 1), n_runs)
    points = pd.DataFrame(
        {
            "run": runs,
            "group": groups,
            "seed": np.repeat(np.arange(n_runs), epochs + 1),
            "epoch": epoch,
            "step": epoch,
            "checkpoint": [f"{r}/{e}" for r, e in zip(runs, epoch, strict=True)],
        }
    )
    vectors = FunctionVectors(matrix.astype(np.float32), points, "fp")
    frame = points.assign(x=matrix[:, 0] * 2, y=matrix[:, 2])
    return vectors, frame


def test_separation_reports_both_spaces_and_the_finetuned_subset():
    vectors, frame = synthetic_vectors()
    out = separation(vectors, frame.iloc[::-1])
    late = frame["epoch"].to_numpy() >= 1
    m, g, r = vectors.matrix, frame["group"].to_numpy(), frame["run"].to_numpy()
    xy = frame[["x", "y"]].to_numpy()
    assert out["function_space"] == pytest.approx(brute_force_separation(m, g, r))
    assert out["function_space_finetuned"] == pytest.approx(
        brute_force_separation(m[late], g[late], r[late])
    )
    assert out["map"] == pytest.approx(brute_force_separation(xy, g, r))
    assert out["map_finetuned"] == pytest.approx(brute_force_separation(xy[late], g[late], r[late]))
    assert (out["n_points"], out["n_points_finetuned"], out["n_runs"]) == (32, 24, 8)
    assert out["chance"] == pytest.approx(0.5)


def test_separation_without_a_map_and_with_a_mismatched_one():
    vectors, frame = synthetic_vectors()
    assert "map" not in separation(vectors)
    with pytest.raises(ConfigError, match="not the same"):
        separation(vectors, frame.iloc[1:])


def test_summary_collects_the_headline_numbers(recorded, frame):
    final = final_errors(frame)
    changes = weight_changes(recorded[0])
    sep = separation(synthetic_vectors()[0])
    numbers = summary(final=final, changes=changes, separation=sep)
    stats = error_summary(final).set_index(["group", "depth"])
    assert numbers["final_error"]["random"][2]["mean"] == pytest.approx(
        stats.loc[("random", 2), "mean"]
    )
    first = changes[(changes["layer"] == "hidden 1") & (changes["group"] == "pretrained")]
    assert numbers["first_layer_change"]["pretrained"] == pytest.approx(
        first["relative_change"].mean()
    )
    assert numbers["separation"]["n_points"] == 32
    text = format_summary(numbers)
    assert "depth 2" in text and "pretrained" in text and "function space" in text
    assert summary() == {}
