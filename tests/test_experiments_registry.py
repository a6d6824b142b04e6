"""Experiments as plug-ins: the registry, the command line built from it, and the one
runner (claim, check settings, resume, loop over seeds) every experiment uses."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from typing import ClassVar

import pytest
import torch

from fspace import Experiment
from fspace.cli import build_parser, main
from fspace.errors import ConfigError, RunError
from fspace.experiments import EXPERIMENTS, SEEDS, run_experiment
from fspace.experiments.generative import GenerativeConfig
from fspace.experiments.pretraining import PretrainingConfig
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.probes import ProbeSuite
from fspace.registry import Param

PLUGIN = '''
"""A third-party experiment: noise regression with a linear model."""
from pathlib import Path

import torch

from fspace.experiments import EXPERIMENTS
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.probes import ProbeSuite
from fspace.registry import Param


def make_net(seed):
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 2)


class Noise(Trainer):
    def __init__(self, seeds, epochs, lr):
        self.seeds, self.epochs, self.lr = seeds, epochs, lr
        inputs = torch.rand(20, 3, generator=torch.Generator().manual_seed(0))
        self.suite = ProbeSuite.from_array(inputs)

    def plan(self):
        for seed in self.seeds:
            yield RunPlan(f"noise-s{seed}", "noise", seed, {"lr": self.lr}, self.epochs,
                          "noise_plugin:make_net", {"seed": seed})

    def build(self, run):
        return make_net(**run.model_kwargs)

    def start(self, run, exp):
        return self.build(run)

    def train_epoch(self, model, run, epoch):
        x = torch.rand(8, 3, generator=torch.Generator().manual_seed(epoch))
        loss = model(x).pow(2).mean()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= self.lr * p.grad
        return {"train_loss": float(loss)}, epoch * 8


@EXPERIMENTS.register(
    "noise",
    label="Noise",
    help="a linear model fitted to noise",
    params=(
        Param("epochs", int, 2, "training epochs", low=1),
        Param("lr", float, 0.1, "step", low=0),
    ),
)
def run(out, settings, *, progress=True):
    trainer = Noise(settings["seeds"], settings["epochs"], settings["lr"])
    return record(out, trainer, progress=progress)
'''


@pytest.fixture
def plugin_path(tmp_path):
    """A folder on which ``noise_plugin`` is installed with an ``fspace.experiments``
    entry point, as ``pip install`` of a third-party package would leave it."""
    site = tmp_path / "site"
    (site / "noise_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "noise_plugin.py").write_text(textwrap.dedent(PLUGIN))
    meta = site / "noise_plugin-1.0.dist-info"
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: noise_plugin\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[fspace.experiments]\nnoise = noise_plugin\n")
    return site


def _fspace(args: list[str], site, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "fspace.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_a_plugin_experiment_appears_in_help_and_runs(plugin_path, tmp_path):
    listing = _fspace(["experiment", "--help"], plugin_path, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "noise" in listing.stdout and "a linear model fitted to noise" in listing.stdout
    assert "pretraining" in listing.stdout and "generative" in listing.stdout
    own = _fspace(["experiment", "noise", "--help"], plugin_path, tmp_path)
    assert "--epochs N" in own.stdout and "--lr X" in own.stdout and "--seeds N" in own.stdout
    out = tmp_path / "exp"
    argv = ["experiment", "noise", "-o", str(out), "--seeds", "2", "--epochs", "3", "-q"]
    first = _fspace(argv, plugin_path, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 runs recorded, 0 resumed, 0 already complete" in first.stdout
    exp = Experiment(out)
    assert {r.id: r.seed for r in exp.runs()} == {"noise-s0": 0, "noise-s1": 1}
    assert [c.epoch for c in exp.checkpoints("noise-s1")] == [0, 1, 2, 3]
    again = _fspace(argv, plugin_path, tmp_path)
    assert "0 runs recorded, 0 resumed, 2 already complete" in again.stdout
    bad = _fspace([*argv[:-2], "--epochs", "0"], plugin_path, tmp_path)
    assert bad.returncode == 2 and "--epochs" in bad.stderr


# the shared runner ---------------------------------------------------------------------


class Counting(Trainer):
    """A tiny linear model trained on fixed data; counts the epochs it trains."""

    def __init__(self, seeds=(0, 1), epochs=3, lr=0.1, stop_after: int | None = None):
        self.seeds, self.epochs, self.lr, self.stop_after = seeds, epochs, lr, stop_after
        self.suite = ProbeSuite.from_array(torch.linspace(0, 1, 12).reshape(6, 2))
        self.trained: list[tuple[str, int]] = []

    def plan(self):
        for seed in self.seeds:
            yield RunPlan(f"r-s{seed}", "g", seed, {"lr": self.lr}, self.epochs, "m:f", {})

    def build(self, run):
        return torch.nn.Linear(2, 3)

    def start(self, run, exp):
        torch.manual_seed(run.seed)
        return self.build(run)

    def train_epoch(self, model, run, epoch):
        if self.stop_after is not None and len(self.trained) >= self.stop_after:
            raise KeyboardInterrupt
        self.trained.append((run.run_id, epoch))
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(0.5)
        return {"train_loss": 1.0 / epoch}, epoch * 10

    def evaluate(self, model, run):
        return {"norm": float(model.weight.norm())}


def test_runner_resumes_after_an_interruption_exactly(tmp_path):
    whole = tmp_path / "whole"
    record(whole, Counting(), progress=False)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        record(cut, Counting(stop_after=4), progress=False)
    assert [c.epoch for c in Experiment(cut).checkpoints("r-s1")] == [0, 1]
    trainer = Counting()
    counts = record(cut, trainer, progress=False)
    assert counts == {"recorded": 0, "resumed": 1, "skipped": 1}
    assert trainer.trained == [("r-s1", 2), ("r-s1", 3)]  # only what was missing
    a, b = Experiment(whole), Experiment(cut)
    for ca, cb in zip(a.checkpoints(), b.checkpoints(), strict=True):
        assert (ca.run, ca.epoch, ca.step) == (cb.run, cb.epoch, cb.step)
        assert ca.metrics == pytest.approx(cb.metrics)
        wa, wb = a.load_weights(ca), b.load_weights(cb)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_runner_refuses_other_settings_and_reads_renamed_ones(tmp_path):
    record(tmp_path, Counting(seeds=(0,)), progress=False)
    with pytest.raises(RunError, match=r"'r-s0'.*\(lr\)"):
        record(tmp_path, Counting(seeds=(0,), lr=0.2), progress=False)

    class Renamed(Counting):
        renamed: ClassVar[dict[str, str]] = {"lr": "step"}

        def plan(self):
            yield RunPlan("r-s0", "g", 0, {"step": self.lr}, self.epochs, "m:f", {})

    assert record(tmp_path, Renamed(seeds=(0,)), progress=False)["skipped"] == 1


def test_runner_restores_torch_threads(tmp_path):
    before = torch.get_num_threads()
    record(tmp_path, Counting(seeds=(0,), epochs=1), progress=False)
    assert torch.get_num_threads() == before


# the built-in experiments' entries -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "config"),
    [("pretraining", PretrainingConfig), ("generative", GenerativeConfig)],
    ids=["pretraining", "generative"],
)
def test_parameter_defaults_are_the_config_defaults(name, config):
    entry = EXPERIMENTS.get(name)
    settings = {**entry.defaults(), "seeds": (0, 1, 2)}
    assert config.from_settings(settings) == config()
    for p in entry.params:
        assert p.help, p.name


def test_command_line_options_follow_the_parameters():
    from fspace.cli.experiment import settings_from_args

    args = build_parser().parse_args(
        ["experiment", "pretraining", "--depths", "2,4", "--no-distort", "--pretraining", "dae"]
    )
    got = settings_from_args(EXPERIMENTS.get("pretraining"), args)
    assert (got["depths"], got["distort"], got["pretraining"]) == ((2, 4), False, "dae")
    assert got["seeds"] == (0, 1, 2)
    gen = build_parser().parse_args(["experiment", "generative", "--distort"])
    assert gen.distort is True and gen.regimes == GenerativeConfig().regimes
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "generative", "--regimes", "dropout"])


def test_the_old_method_option_still_works_with_a_warning(tmp_path, capsys):
    from fspace.cli.experiment import warn_deprecated

    args = build_parser().parse_args(["experiment", "pretraining", "--method", "dae"])
    assert args.pretraining == "dae"
    with pytest.warns(FutureWarning, match="--method is deprecated; use --pretraining"):
        warn_deprecated(args)
    demo = build_parser().parse_args(["demo", "--method", "dae"])
    assert demo.pretraining == "dae"
    with pytest.raises(SystemExit) as refused:
        main(["experiment", "pretraining", "--method", "pca", "-o", str(tmp_path)])
    assert refused.value.code == 2 and "pretraining" in capsys.readouterr().err


def test_param_lists_parse_to_tuples_and_check_each_value():
    depths = Param("depths", int, (1,), low=1, high=5, many=True)
    assert depths.parse("1, 2,3") == (1, 2, 3) and depths.parse([4]) == (4,)
    for bad, match in [("0,1", "at least 1"), ("a,b", "must be int"), (",", "at least one")]:
        with pytest.raises(ConfigError, match=match):
            depths.parse(bad)


def test_run_experiment_checks_parameters_before_recording(tmp_path):
    with pytest.raises(ConfigError, match="width"):
        run_experiment("pretraining", tmp_path / "x", width=0)
    with pytest.raises(ConfigError, match="no parameter 'depth'"):
        run_experiment("pretraining", tmp_path / "x", depth=2)
    with pytest.raises(ConfigError, match="seeds"):
        run_experiment("pretraining", tmp_path / "x", seeds=0)
    assert not (tmp_path / "x").exists()
    assert SEEDS.parse("2") == 2


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(ConfigError, match="pretraining"):
        EXPERIMENTS.get("nope")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "nope"])
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_each_experiment_declares_its_dashboard_page(tmp_path):
    import importlib.util

    class Labelled(Counting):
        def plan(self):
            yield RunPlan("a", "random+backprop", 0, {"depth": 1}, 1, "m:f", {})

    record(tmp_path / "both", Labelled(), progress=False)
    record(tmp_path / "neither", Counting(seeds=(0,), epochs=1), progress=False)
    # The results page is every experiment's (fspace.app.navigation); the generative
    # experiment adds a page of its own.
    for name in ("generative",):
        page = EXPERIMENTS.get(name).tags["page"]
        assert importlib.util.find_spec(page["module"]) is not None
        assert page["applies"](Experiment(tmp_path / "both"))
        assert not page["applies"](Experiment(tmp_path / "neither"))


@pytest.mark.parametrize("column", ["pretraining", "method"], ids=["today", "older-runs"])
def test_dashboard_filters_by_the_pretraining_scheme_of_old_and_new_runs(column):
    import pandas as pd

    from fspace.app.frames import PlotFrame

    frame = pd.DataFrame(
        {
            "run": ["a", "b", "c", "d"],
            "group": ["pretrained", "random"] * 2,
            "seed": [0] * 4,
            "epoch": [0] * 4,
            "step": [0] * 4,
            "checkpoint": ["a/0", "b/0", "c/0", "d/0"],
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [0.0, 1.0, 2.0, 3.0],
            column: ["rbm", "rbm", "dae", "dae"],
        }
    )
    assert set(PlotFrame.build(frame).values["method"]) == {"rbm", "dae"}


def test_a_report_creates_its_own_folder_but_no_missing_parents(tmp_path, monkeypatch):
    from fspace.errors import ExportError
    from fspace.experiments.base import report_folder

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert report_folder(tmp_path / "figs", ("png", "html")).is_dir()
    with pytest.raises(ExportError, match="does not exist"):
        report_folder(tmp_path / "typo" / "figs", ("png",))
    assert not (tmp_path / "typo").exists()
    with pytest.raises(ExportError, match="unknown suffix"):
        report_folder(tmp_path / "figs", ("exe",))
