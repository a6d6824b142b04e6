"""``fspace stats`` on tiny recorded experiments of every model kind, and its figures."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import record_experiment

from fspace import ProbeSuite, Recorder
from fspace.cli import main

FAST = ["-q", "--n-boot", "49", "--n-perm", "49"]


def stats(capsys, *args) -> tuple[int, str, str]:
    code = main(["stats", *map(str, args), *FAST])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def labelled(tmp_path):
    """2 groups x 3 seeds x 5 checkpoints of a 3-class MLP, on probes with targets."""
    gen = np.random.default_rng(0)
    suite = ProbeSuite.from_array(
        gen.normal(size=(20, 4)).astype(np.float32), targets=gen.integers(0, 3, 20), name="probe"
    )
    return record_experiment(tmp_path / "exp", suite)


def test_stats_on_a_classification_experiment(capsys, labelled, tmp_path):
    csv, fig = tmp_path / "runs.csv", tmp_path / "stats.html"
    code, out, err = stats(
        capsys, labelled, "--distance", "hellinger", "--csv", csv, "--figure", fig
    )
    assert code == 0, err
    for text in ("1-NN accuracy", "distance ratio", "silhouette", "path_length", "progress"):
        assert text in out
    assert "pretrained - random" in out and "Frechet" in out
    runs = pd.read_csv(csv)
    assert len(runs) == 6 and runs["progress"].between(0, 1).all()
    assert fig.stat().st_size > 1000


def test_stats_without_targets_says_there_is_no_truth(capsys, recorded):
    code, out, _ = stats(capsys, recorded, "--distance", "bhattacharyya", "--epoch", "last")
    assert code == 0
    assert "last checkpoints" in out
    assert "no truth point" in out


def test_stats_by_another_column_and_bad_options(capsys, recorded):
    code, out, _ = stats(capsys, recorded, "--by", "seed")
    assert code == 0 and "runs grouped by seed" in out
    code, _, err = stats(capsys, recorded, "--by", "colour")
    assert code == 2 and "no column 'colour'" in err
    code, _, err = stats(capsys, recorded, "--epoch", "soon")
    assert code == 2 and "--epoch takes all, last" in err
    code, _, err = stats(capsys, recorded, "--epoch", "99")
    assert code == 2 and "at epoch 99 (e.g. 'pretrained-s0')" in err, err
    code, _, err = stats(capsys, recorded, "--distance", "bhattacharyya", "--floor", "0")
    assert code == 2 and "argument --floor: floor must be at least" in err, err


def test_stats_help_lists_the_distances(capsys):
    with pytest.raises(SystemExit):
        main(["stats", "--help"])
    out = capsys.readouterr().out
    assert "--distance" in out and "bhattacharyya" in out and "--by COLUMN" in out


def record_kind(path, suite, make, *, kind=None, output=None, groups=("a", "b"), seeds=(0, 1)):
    for g, group in enumerate(groups):
        for seed in seeds:
            torch.manual_seed(10 * g + seed)
            model = make()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            with Recorder(
                path,
                run=f"{group}{seed}",
                group=group,
                seed=seed,
                probes=suite,
                kind=kind,
                output=output,
            ) as rec:
                for epoch in range(4):
                    if epoch:
                        loss = model(suite.inputs).float().pow(2).mean()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                    rec.record(model, epoch=epoch)
    return path


@pytest.mark.slow
def test_stats_on_a_regression_experiment(capsys, tmp_path):
    suite = ProbeSuite.from_array(
        np.random.default_rng(1).normal(size=(12, 4)).astype(np.float32), name="x"
    )
    exp = record_kind(
        tmp_path / "reg", suite, lambda: torch.nn.Linear(4, 2), kind="regression", output="raw"
    )
    code, out, err = stats(capsys, exp, "--distance", "euclidean")
    assert code == 0, err
    assert "distance ratio" in out and "no ignorance or truth point" in out
    code, _, err = stats(capsys, exp, "--distance", "hellinger")
    assert code == 2 and "regression" in err


class TinySequenceModel(torch.nn.Module):
    """Token ids (batch, positions) -> logits (batch, positions, vocabulary)."""

    def __init__(self, vocab: int = 7) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.out = torch.nn.Linear(8, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.embed(tokens)))


def test_stats_on_a_sequence_experiment(capsys, tmp_path):
    gen = np.random.default_rng(2)
    tokens = gen.integers(0, 7, size=(6, 5))
    suite = ProbeSuite.from_array(tokens, targets=np.roll(tokens, -1, axis=1), name="tokens")
    exp = record_kind(tmp_path / "seq", suite, TinySequenceModel)
    code, out, err = stats(capsys, exp, "--distance", "jensen_shannon")
    assert code == 0, err
    assert "1-NN accuracy" in out and "progress" in out and "note:" not in out


def test_stats_of_two_experiments_on_one_probe_suite(capsys, tmp_path, suite):
    a = record_experiment(tmp_path / "a", suite, groups=("x",), seeds=(0, 1), epochs=2)
    b = record_experiment(tmp_path / "b", suite, groups=("y",), seeds=(0, 1), epochs=2)
    code, out, err = stats(capsys, a, b, "--by", "experiment")
    assert code == 0, err
    assert "runs grouped by experiment" in out and "4 runs" in out


def test_stats_of_experiments_on_different_suites_names_both(capsys, tmp_path, suite):
    other = ProbeSuite.from_array(np.ones((20, 4), np.float32), name="probe")
    a = record_experiment(tmp_path / "a", suite, groups=("x",), seeds=(0,), epochs=1)
    b = record_experiment(tmp_path / "b", other, groups=("y",), seeds=(0,), epochs=1)
    code, _, err = stats(capsys, a, b)
    assert code == 2
    assert suite.fingerprint[:8] in err and other.fingerprint[:8] in err


def test_figures_of_trajectory_statistics():
    from fspace.plot.stats import group_distance_figure, trajectory_stat_figure
    from fspace.stats import epoch_distances, trajectory_frame
    from fspace.stats._index import index_runs

    points = pd.DataFrame(
        {"run": list("aaabbbccc"), "group": list("gggggghhh"), "epoch": [0, 1, 2] * 3}
    )
    x = np.array([0, 1, 3, 0, 2, 2, 5, 5, 6], float)[:, None]
    d = np.abs(x - x.T)
    fig = trajectory_stat_figure(trajectory_frame(d, points))
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["g (2 runs)", "h (1 run)"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert bands and all(t.mode == "lines" for t in bands)  # no markers on a band's corners
    np.testing.assert_allclose(lines[0].y, [0, 1.5, 2.5])  # mean of (0,1,3) and (0,2,2)
    fig = group_distance_figure(epoch_distances(d, index_runs(points)))
    names = [t.name for t in fig.data if t.mode == "lines+markers"]
    assert names[0].startswith("between g | h") and any(n.startswith("within g") for n in names)
    assert "fewer than two runs" in str(group_distance_figure(pd.DataFrame()).layout.annotations)


@pytest.fixture
def uneven(tmp_path, suite):
    """Group "a" of two runs, group "b" of one."""
    path = record_experiment(tmp_path / "exp", suite, groups=("a",), seeds=(0, 1), epochs=2)
    return record_experiment(path, suite, groups=("b",), seeds=(0,), epochs=2)


def test_stats_with_one_run_in_a_group_writes_everything(capsys, uneven, tmp_path):
    csv, fig = tmp_path / "runs.csv", tmp_path / "stats.png"
    code, out, err = stats(capsys, uneven, "--csv", csv, "--figure", fig)
    assert code == 0, err
    assert "a (2)" in out and "b (1)" in out
    assert len(pd.read_csv(csv)) == 3 and fig.stat().st_size > 1000


def test_stats_writes_the_table_to_standard_output(capsys, recorded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = stats(capsys, recorded, "--csv", "-")
    assert code == 0, err
    assert not (tmp_path / "-").exists()
    runs = pd.read_csv(io.StringIO(out))
    assert len(runs) == 6 and "path_length" in runs
    assert "1-NN accuracy" in err


def test_files_go_only_where_a_folder_exists_and_before_any_work(
    capsys, recorded, tmp_path, monkeypatch
):
    monkeypatch.chdir(recorded)  # missing folders are created only under here
    away = tmp_path / "not-here" / "deeper"
    for command in (["stats"], ["embed", "--method", "pca"]):
        code = main([command[0], str(recorded), *command[1:], "-q", "--csv", str(away / "x.csv")])
        err = capsys.readouterr().err
        assert code == 2 and "does not exist; create it first" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not (tmp_path / "not-here").exists()
    code = main(["stats", str(recorded), "-q", "--figure", str(tmp_path / "s.jpg")])
    assert code == 2 and "unknown suffix '.jpg'" in capsys.readouterr().err
    code = main(["embed", str(recorded), "-q", "--method", "pca", "--csv", "maps/x.csv"])
    assert code == 0 and (recorded / "maps" / "x.csv").is_file()


@pytest.mark.parametrize("level", ["2", "0", "x"])
def test_a_level_outside_0_1_is_refused_by_name(capsys, recorded, level):
    with pytest.raises(SystemExit) as exit_:
        main(["stats", str(recorded), "--level", level])
    assert exit_.value.code == 2 and "--level" in capsys.readouterr().err
