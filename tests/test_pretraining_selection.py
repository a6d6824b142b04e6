"""Learning rates chosen on validation digits, the update budget drawn from each seed's
stream, the chance rule, the table beside the paper, and the presets on the command line."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fspace import Experiment
from fspace.experiments.digits import Data, Stream
from fspace.experiments.pretraining import PRESETS, PretrainingConfig, run_pretraining
from fspace.experiments.pretraining.evidence import claims, paper_table, split_at_chance
from fspace.experiments.pretraining.selection import (
    SelectionError,
    Trial,
    choose_rates,
    select,
    trials,
)
from fspace.probes import ProbeSuite


def _row(lr, error, *, depth=1, group="random", status="ok", pretrain_lr=None):
    return {
        "depth": depth,
        "group": group,
        "lr": lr,
        "pretrain_lr": pretrain_lr,
        "valid_error": error,
        "status": status,
    }


def test_select_takes_the_lowest_validation_error_per_depth_and_group():
    rows = [
        _row(0.1, 0.20),
        _row(0.3, 0.05),
        _row(1.0, 0.07),
        _row(0.1, 0.90, depth=3),
        _row(1.0, 0.10, depth=3),
        _row(0.3, 0.04, group="pretrained", pretrain_lr=0.01),
        _row(0.3, 0.03, group="pretrained", pretrain_lr=0.05),
    ]
    chosen = select(rows)
    assert chosen[(1, "random")]["lr"] == 0.3
    assert chosen[(3, "random")]["lr"] == 1.0
    assert chosen[(1, "pretrained")]["pretrain_lr"] == 0.05
    assert chosen[(1, "pretrained")]["lr_selected"] is False  # one fine-tuning rate only
    assert chosen[(1, "pretrained")]["pretrain_lr_selected"] is True
    assert chosen[(1, "random")] | {"valid_error": 0.05} == chosen[(1, "random")]


@pytest.mark.parametrize(
    ("rows", "lr"),
    [
        pytest.param([_row(1.0, 0.9), _row(0.3, 0.9), _row(3.0, 0.9)], 0.3, id="tie-smaller-lr"),
        pytest.param([_row(0.1, 0.2), _row(1.0, 0.01, status="failed")], 0.1, id="failed"),
        pytest.param([_row(0.1, 0.2), _row(1.0, math.nan)], 0.1, id="nan-error"),
        pytest.param([_row(0.1, 0.2), _row(1.0, None)], 0.1, id="no-error"),
    ],
)
def test_select_breaks_ties_by_the_smaller_rate_and_never_takes_a_failed_trial(rows, lr):
    assert select(rows)[(1, "random")]["lr"] == lr


def test_select_names_the_depth_and_group_whose_trials_all_failed():
    rows = [_row(0.1, 0.2), _row(3.0, None, depth=2, status="failed")]
    with pytest.raises(SelectionError, match="depth 2, group 'random'"):
        select(rows)


class _Scored(nn.Module):
    """A model whose error on the validation inputs 0..99 is ``error`` exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.error = 1.0

    def forward(self, x):
        wrong = x[:, 0] < 100 * self.error
        return torch.stack([wrong.float(), (~wrong).float()], dim=1)  # class 1 is right


class _FakeTrainer:
    """Training that ends with validation error (log10(lr / 0.3))^2 + 0.01 (least at
    lr = 0.3), and diverges for lr >= 10."""

    def __init__(self, cfg):
        self.cfg = cfg
        x = torch.arange(100.0)[:, None]
        suite = ProbeSuite.from_array(np.zeros((2, 1), np.float32), name="t")
        self.data = Data(x, x, (1, 1), suite, 2, valid_x=x, valid_y=torch.ones(100).long())
        self.calls = 0

    def initial_model(self, seed, depth, group, pretrain_lr):
        return _Scored()

    def train_updates(self, model, seed, lr, start, stop):
        self.calls += 1
        model.error = min(1.0, math.log10(lr / 0.3) ** 2 + 0.01)
        return math.nan if lr >= 10 else 0.5


def test_choose_rates_finds_the_known_best_rate_and_keeps_every_trial(tmp_path):
    cfg = PretrainingConfig(
        depths=(1, 2), lr_grid=(0.03, 0.3, 3.0, 10.0), finetune_updates=6, finetune_epochs=2
    )
    trainer = _FakeTrainer(cfg)
    rates = choose_rates(tmp_path / "exp", trainer, progress=False)
    assert {key: r["lr"] for key, r in rates.items()} == {
        (d, g): 0.3 for d in (1, 2) for g in ("pretrained", "random")
    }
    assert all(r["lr_selected"] for r in rates.values())
    kept = Experiment(tmp_path / "exp").trials()
    assert len(kept) == len(trials(cfg)) == 16
    by_lr = {r["lr"]: r for r in kept.values() if r["depth"] == 1 and r["group"] == "random"}
    assert by_lr[0.3]["valid_error"] == pytest.approx(0.01)
    assert by_lr[10.0]["status"] == "failed" and "diverged" in by_lr[10.0]["error"]
    assert len(by_lr[0.03]["valid_curve"]) == cfg.finetune_epochs
    calls = trainer.calls
    assert choose_rates(tmp_path / "exp", trainer, progress=False) == rates
    assert trainer.calls == calls  # kept trials are reused, not rerun


def test_trials_try_every_pair_for_the_pretrained_group():
    cfg = PretrainingConfig(depths=(2,), lr_grid=(0.1, 1.0), pretrain_lr_grid=(0.01, 0.05))
    got = trials(cfg)
    assert Trial(2, "random", 0.1) in got and Trial(2, "pretrained", 1.0, 0.05) in got
    assert len(got) == 2 + 4


def test_update_intervals_cover_the_budget_once():
    cfg = PretrainingConfig(finetune_updates=1003, finetune_epochs=7)
    bounds = [cfg.update_range(e) for e in range(1, 8)]
    assert bounds[0][0] == 0 and bounds[-1][1] == 1003
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert cfg.update_range(1, 70) == (0, 10)


def _data(n=50):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((n, 64), dtype=np.float32))
    suite = ProbeSuite.from_array(np.zeros((2, 64), np.float32), name="t")
    return Data(x, torch.arange(n) % 10, (8, 8), suite, 10)


@pytest.mark.parametrize("distort", [True, False], ids=["distorted", "shuffled"])
def test_stream_items_depend_only_on_seed_and_position(distort):
    class Cfg:
        dataset = "toy"

    Cfg.distort = distort
    data = _data()
    a = Stream(data, Cfg, seed=3)
    whole_x, whole_y = a.items(0, 160)
    x, y = Stream(data, Cfg, seed=3, cache_bytes=0).batches(2, 5, 32)  # minibatches 2..4
    torch.testing.assert_close(x, whole_x[64:160])
    assert torch.equal(y, whole_y[64:160])
    other = Stream(data, Cfg, seed=4).items(0, 160)[0]
    assert not torch.equal(other, whole_x)
    if not distort:  # each pass visits every training digit once
        assert sorted(whole_y[:50].tolist()) == sorted(data.train_y.tolist())


def test_validation_digits_are_disjoint_from_training_and_probe_digits():
    from fspace.experiments.digits import load_data

    cfg = PretrainingConfig(dataset="digits", n_probe=300, n_valid=200)
    data = load_data(cfg)
    assert len(data.valid_x) == 200 and len(data.train_x) == 1797 - 500
    rows = {tuple(r) for r in data.train_x.numpy().round(4)}
    valid = {tuple(r) for r in data.valid_x.numpy().round(4)}
    probes = {tuple(r) for r in data.suite.inputs.numpy().reshape(300, -1).round(4)}
    assert len(valid & probes) == 0 and len(valid & rows) <= 2  # 8x8 digits repeat rarely


def _final(errors):
    rows = [
        {"run": f"r{i}", "group": g, "depth": d, "seed": i, "epoch": 5, "test_error": e}
        for i, (g, d, e) in enumerate(errors)
    ]
    return pd.DataFrame(rows)


def test_runs_within_two_points_of_chance_are_left_out_of_the_table():
    final = _final(
        [
            ("random", 1, 0.05),
            ("random", 1, 0.07),
            ("random", 3, 0.881),  # within 2 points of 0.9: at chance
            ("random", 3, 0.10),
            ("random", 3, 0.90),
            ("pretrained", 3, 0.04),
            ("pretrained", 3, 0.878),  # 2.2 points below chance: kept
        ]
    )
    evidence, chance = split_at_chance(final)
    assert sorted(chance["test_error"]) == [0.881, 0.90] and len(evidence) == 5
    table = paper_table(final).set_index(["group", "depth"])
    assert table.loc[("random", 3), "n"] == 1 and table.loc[("random", 3), "at_chance"] == 2
    assert table.loc[("random", 3), "mean"] == pytest.approx(0.10)
    assert table.loc[("random", 1), "std"] == pytest.approx(np.std([0.05, 0.07], ddof=1))
    assert table.loc[("random", 1), "paper"] == "1.80%"
    assert table.loc[("pretrained", 3), "n"] == 2
    assert claims(paper_table(final))["best_depth"] == {"pretrained": 3, "random": 1}


def test_preset_fills_what_the_command_line_does_not_give():
    from fspace.cli import build_parser
    from fspace.cli.experiment import settings_from_args
    from fspace.experiments import EXPERIMENTS

    entry = EXPERIMENTS.get("pretraining")
    argv = ["experiment", "pretraining", "--preset", "paper", "--seeds", "2", "--width", "50"]
    settings = settings_from_args(entry, build_parser().parse_args(argv))
    assert settings["seeds"] == (0, 1) and settings["width"] == 50
    assert settings["depths"] == PRESETS["paper"]["depths"] == (1, 2, 3, 4, 5)
    assert settings["lr_grid"] == PRESETS["paper"]["lr_grid"]
    plain = settings_from_args(entry, build_parser().parse_args(argv[:2]))
    assert plain["seeds"] == (0, 1, 2) and plain["width"] == PretrainingConfig().width
    assert len(PRESETS["paper"]["seeds"]) >= 10


@pytest.mark.slow
def test_a_grid_records_the_chosen_rate_with_each_run_and_keeps_the_trials(tmp_path):
    cfg = PretrainingConfig(
        dataset="digits",
        seeds=(0,),
        depths=(1,),
        width=16,
        n_probe=300,
        n_valid=200,
        pretrain_updates=30,
        finetune_updates=60,
        finetune_epochs=2,
        lr_grid=(0.01, 1.0),
        distort=False,
    )
    run_pretraining(tmp_path / "exp", cfg, progress=False)
    exp = Experiment(tmp_path / "exp")
    kept = exp.trials()
    assert len(kept) == 4 and all(t["status"] == "ok" for t in kept.values())
    for run in exp.runs():
        assert run.config["lr_selected"] is True and run.config["lr"] in (0.01, 1.0)
        trial = [t for t in kept.values() if t["group"] == run.group]
        best = min(trial, key=lambda t: (t["valid_error"], t["lr"]))
        assert run.config["lr"] == best["lr"]


def test_the_printed_summary_flags_runs_at_chance_and_shows_intervals():
    from fspace.experiments.pretraining.analysis import format_summary
    from fspace.experiments.pretraining.report import results_markdown

    numbers = {
        "chance_rule": "final test error >= 0.90 - 0.02",
        "at_chance": [{"run": "rbm-d3-s1-random", "test_error": 0.9}],
        "final_error": {"random": {3: {"mean": 0.1, "std": float("nan"), "n": 1}}},
        "separation_tests": [
            {
                "statistic": "silhouette",
                "checkpoints_used": "all",
                "value": 0.2,
                "low": 0.1,
                "high": 0.3,
                "p_value": 0.01,
                "chance": 0.0,
                "runs": 8,
            }
        ],
        "paper_table": paper_table(_final([("random", 3, 0.1), ("random", 3, 0.9)])).to_dict(
            "records"
        ),
    }
    text = format_summary(numbers)
    assert "runs at chance (final test error >= 0.90 - 0.02): 1" in text
    assert "AT CHANCE  rbm-d3-s1-random" in text
    assert "silhouette" in text and "[0.100, 0.300]" in text
    page = results_markdown(numbers)
    assert "at chance: rbm-d3-s1-random" in page
    assert "| 3 | 10.00% (n=1, 1 at chance) | 1.85% |" in page
