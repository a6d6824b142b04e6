"""The pre-training experiment: learning, exact resumption, figures, and the demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from fspace import Experiment
from fspace.errors import ConfigError, RunError
from fspace.experiments.pretraining import PretrainingConfig, run_pretraining
from fspace.experiments.pretraining.report import FIGURES, write_report

TINY = dict(
    dataset="digits",
    seeds=(0,),
    depths=(1,),
    width=32,
    n_probe=300,
    n_valid=0,
    pretrain_updates=150,
    finetune_updates=160,
    finetune_epochs=4,
    lr_grid=None,
    distort=False,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("pre") / "exp"
    cfg = PretrainingConfig(**TINY)
    counts = run_pretraining(path, cfg, progress=False)
    return path, cfg, counts


def test_records_both_groups_every_interval_of_the_update_budget(tiny):
    path, cfg, counts = tiny
    assert counts == {"recorded": 2, "resumed": 0, "skipped": 0}
    exp = Experiment(path)
    assert {r.group for r in exp.runs()} == {"pretrained", "random"}
    for run in exp.runs():
        ckpts = exp.checkpoints(run.id)
        assert [c.epoch for c in ckpts] == list(range(cfg.finetune_epochs + 1))
        assert [c.step for c in ckpts] == [0, 40, 80, 120, 160]  # updates done
        assert run.config["depth"] == 1 and run.config["pretraining"] == "rbm"
        assert run.config["lr"] == 0.3 and run.config["lr_selected"] is False
    suite = exp.probes()
    assert all(exp.load_vector(c, suite.fingerprint, "prob") is not None for c in exp.checkpoints())


def test_pretraining_then_finetuning_beats_chance_by_far(tiny):
    path, _, _ = tiny
    exp = Experiment(path)
    last = exp.checkpoints("rbm-d1-s0-pretrained")[-1]
    assert last.metrics["test_error"] < 0.3  # chance is 0.9 on ten classes


def test_pretrained_start_differs_from_random_start(tiny):
    exp = Experiment(tiny[0])
    a = exp.load_weights(exp.checkpoints("rbm-d1-s0-pretrained")[0])
    b = exp.load_weights(exp.checkpoints("rbm-d1-s0-random")[0])
    assert not torch.equal(a["hidden_layers.0.weight"], b["hidden_layers.0.weight"])
    torch.testing.assert_close(a["output.weight"], b["output.weight"])  # same output init


def test_resume_finishes_interrupted_runs_exactly_and_skips_complete_ones(tmp_path):
    cfg = PretrainingConfig(**{**TINY, "seeds": (0, 1)})
    path = tmp_path / "exp"
    run_pretraining(path, cfg, progress=False)
    exp = Experiment(path)
    interrupted = exp.checkpoints("rbm-d1-s0-random")
    finals = {c.run: exp.load_weights(c) for c in exp.checkpoints() if c.epoch == 4}
    for ckpt in interrupted[2:]:  # as if killed after epoch 1
        ckpt.path.unlink()
    for ckpt in exp.checkpoints("rbm-d1-s1-pretrained"):  # as if never started
        ckpt.path.unlink()

    counts = run_pretraining(path, cfg, progress=False)
    assert counts == {"recorded": 1, "resumed": 1, "skipped": 2}
    ckpts = Experiment(path).checkpoints()
    keys = [c.key for c in ckpts]
    assert len(keys) == len(set(keys)) == 4 * 5
    for run in ("rbm-d1-s0-random", "rbm-d1-s1-pretrained"):
        final = Experiment(path).checkpoints(run)[-1]
        for name, value in finals[run].items():  # plain SGD resumes bit for bit
            torch.testing.assert_close(Experiment(path).load_weights(final)[name], value)
    assert run_pretraining(path, cfg, progress=False)["skipped"] == 4


def test_resume_with_other_settings_is_refused(tiny):
    path, _, _ = tiny
    with pytest.raises(RunError, match="width"):
        run_pretraining(path, PretrainingConfig(**{**TINY, "width": 16}), progress=False)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param({"pretraining": "pca"}, "pretraining", id="unknown-scheme"),
        pytest.param({"depths": (0,)}, "depths", id="depth-0"),
        pytest.param({"depths": (6,)}, "depths", id="depth-6"),
        pytest.param({"seeds": ()}, "seeds", id="no-seeds"),
        pytest.param({"lr": 0.0}, "learning rates", id="lr"),
    ],
)
def test_bad_settings(change, match):
    with pytest.raises(ConfigError, match=match):
        PretrainingConfig(**{**TINY, **change})


@pytest.mark.slow
def test_every_figure_is_written_from_the_recorded_experiment(tiny, tmp_path):
    path, _, _ = tiny
    numbers, written = write_report(path, tmp_path / "out", formats=("png", "html"), progress=False)
    names = {p.name for p in written}
    for figure in FIGURES:
        assert {f"{figure}.png", f"{figure}.html"} <= names
        assert (tmp_path / "out" / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(stored["final_error"]) == {"pretrained", "random"}
    assert numbers["separation"]["n_points"] == 10


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fspace.cli",
            "demo",
            "--quick",
            "--no-serve",
            "-q",
            "-o",
            str(tmp_path / "exp"),
            "--export-dir",
            str(tmp_path / "figs"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "group separation" in out.stdout
    assert len(list((tmp_path / "figs").glob("*.png"))) == len(FIGURES)
