"""Mapping only some runs: ``--runs`` / ``--groups`` and :func:`fspace.pipeline.select_runs`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import record_experiment

from fspace import ProbeSuite
from fspace.cli import main
from fspace.errors import ConfigError
from fspace.pipeline import select_runs
from fspace.vectors import FunctionVectors


@pytest.fixture(scope="module")
def exp_path(tmp_path_factory):
    inputs = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    suite = ProbeSuite.from_array(inputs, name="probe")
    path = tmp_path_factory.mktemp("select") / "exp"
    return record_experiment(path, suite, seeds=(0, 1), epochs=2)


@pytest.mark.parametrize(
    ("options", "runs"),
    [
        (["--groups", "random"], {"random-s0", "random-s1"}),
        (["--runs", "pretrained-s1,random-s0"], {"pretrained-s1", "random-s0"}),
        (["--groups", "random", "--runs", "random-s1,pretrained-s0"], {"random-s1"}),
    ],
    ids=["a-group", "two-runs", "both"],
)
def test_only_the_chosen_runs_are_mapped(exp_path, tmp_path, options, runs):
    csv = tmp_path / "map.csv"
    argv = ["embed", str(exp_path), "--method", "pca", "-q", "--csv", str(csv), *options]
    assert main(argv) == 0
    frame = pd.read_csv(csv)
    assert set(frame["run"]) == runs and len(frame) == 3 * len(runs)


def test_select_runs_keeps_rows_and_labels_together():
    points = pd.DataFrame({"run": ["a", "a", "b", "c"], "group": ["x", "x", "y", "y"]})
    vectors = FunctionVectors(np.arange(8.0).reshape(4, 2), points, "fp", layout=(1, 2))
    chosen = select_runs(vectors, groups=["y"])
    np.testing.assert_array_equal(chosen.matrix, [[4, 5], [6, 7]])
    assert chosen.points["run"].tolist() == ["b", "c"] and chosen.layout == (1, 2)
    assert select_runs(vectors) is vectors
    with pytest.raises(ConfigError, match="no group 'z'.*there are: x, y"):
        select_runs(vectors, groups=["z"])
    with pytest.raises(ConfigError, match="both the chosen runs and the chosen groups"):
        select_runs(vectors, runs=["a"], groups=["y"])
