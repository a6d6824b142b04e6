"""The generative experiment: every regime recorded into one experiment, exact
resumption, the convnet, the analyses and the command line."""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest
import torch

from fspace import Experiment, ProbeSuite, Recorder
from fspace.errors import ConfigError, RunError
from fspace.evaluation import function_vector
from fspace.experiments.generative import REGIMES, GenerativeConfig, run_generative
from fspace.factories import build_model
from fspace.models.conv import make_convnet
from fspace.models.mlp import make_mlp

TINY = dict(
    dataset="digits",
    seeds=(0,),
    hidden=(32,),
    n_top=64,
    n_probe=300,
    epochs=3,
    batch_size=10,
    lr=2.0,
    relu_lr=0.1,
    conv_lr=0.1,
    dbn_lr=0.1,
    conv_channels=(4, 8),
    pretrain_epochs=3,
    pretrain_lr=0.1,
    pretrain_batch_size=10,
    relu_pretrain_lr=0.01,
    wake_sleep_lr=0.03,
    wake_sleep_batch_size=10,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: torch's thread pool costs more than it saves. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("generative") / "exp"
    cfg = GenerativeConfig(**TINY)
    counts = run_generative(path, cfg, progress=False)
    return path, cfg, counts


def test_every_regime_is_recorded_at_every_epoch_into_one_experiment(tiny):
    path, cfg, counts = tiny
    assert counts == {"recorded": len(REGIMES), "resumed": 0, "skipped": 0}
    exp = Experiment(path)
    assert {r.group for r in exp.runs()} == set(REGIMES)
    suite = exp.probes()
    for run in exp.runs():
        ckpts = exp.checkpoints(run.id)
        assert [c.epoch for c in ckpts] == list(range(cfg.epochs + 1))
        assert all("test_error" in c.metrics for c in ckpts)
        assert run.model_factory and run.config["architecture"] == REGIMES[run.group].architecture
        vector = exp.load_vector(ckpts[-1], suite.fingerprint, "prob")
        assert vector is not None and vector.shape == (len(suite.inputs) * 10,)
        model = build_model(run)  # the factory rebuilds each architecture
        model.load_state_dict(exp.load_weights(ckpts[-1]))
        # cached as float16: within 2.5e-4 of a fresh float32 forward
        torch.testing.assert_close(function_vector(model, suite), vector, rtol=0, atol=2.5e-4)


def test_every_regime_beats_chance(tiny):
    exp = Experiment(tiny[0])
    finals = {r.group: exp.checkpoints(r.id)[-1].metrics["test_error"] for r in exp.runs()}
    assert max(finals.values()) < 0.5, finals  # chance is 0.9 on ten classes
    # The joint model starts (epoch 0) as a working classifier, the MLPs do not.
    start = exp.checkpoints("pretrained+wake-sleep-s0")[0].metrics["test_error"]
    assert start < 0.4


def test_wake_sleep_then_backprop_starts_where_wake_sleep_ended(tiny):
    exp = Experiment(tiny[0])
    end = exp.load_weights(exp.checkpoints("pretrained+wake-sleep-s0")[-1])
    start = exp.load_weights(exp.checkpoints("wake-sleep+backprop-s0")[0])
    torch.testing.assert_close(start, end, rtol=0, atol=0)


def test_mlps_share_the_pretrained_lower_layers_with_the_joint_model(tiny):
    exp = Experiment(tiny[0])
    mlp = exp.load_weights(exp.checkpoints("pretrained+backprop-s0")[0])
    dbn = exp.load_weights(exp.checkpoints("pretrained+wake-sleep-s0")[0])
    torch.testing.assert_close(mlp["hidden_layers.0.weight"], dbn["recognition.0.weight"])


def test_interrupted_runs_resume_exactly_without_duplicates(tiny, tmp_path):
    path, cfg, _ = tiny
    copy = tmp_path / "exp"
    shutil.copytree(path, copy)
    exp = Experiment(copy)
    finals = {r: exp.load_weights(exp.checkpoints(r)[-1]) for r in exp.run_ids()}
    cut = ["pretrained+wake-sleep-s0", "conv-random+backprop-s0", "wake-sleep+backprop-s0"]
    for run in cut[:2]:  # as if killed after epoch 1
        for ckpt in exp.checkpoints(run)[2:]:
            ckpt.path.unlink()
    for ckpt in exp.checkpoints(cut[2]):  # as if never started
        ckpt.path.unlink()

    counts = run_generative(copy, cfg, progress=False)
    assert counts == {"recorded": 1, "resumed": 2, "skipped": len(REGIMES) - 3}
    exp = Experiment(copy)
    keys = [c.key for c in exp.checkpoints()]
    assert len(keys) == len(set(keys)) == len(REGIMES) * (cfg.epochs + 1)
    for run in cut:  # plain SGD and seeded wake-sleep: bit for bit
        torch.testing.assert_close(exp.load_weights(exp.checkpoints(run)[-1]), finals[run])


def test_other_settings_are_refused_on_resume(tiny):
    path, _, _ = tiny
    with pytest.raises(RunError, match="n_top"):
        run_generative(path, GenerativeConfig(**{**TINY, "n_top": 16}), progress=False)


def test_settings_a_regime_does_not_use_do_not_block_it(tiny, tmp_path):
    path, _, _ = tiny
    copy = tmp_path / "exp"
    shutil.copytree(path, copy)
    cfg = GenerativeConfig(**{**TINY, "conv_lr": 0.5, "regimes": ("random+backprop",)})
    assert run_generative(copy, cfg, progress=False)["skipped"] == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param({"regimes": ("dropout",)}, "regimes", id="unknown-regime"),
        pytest.param({"regimes": ("wake-sleep+backprop",)}, "select both", id="orphan"),
        pytest.param({"hidden": ()}, "hidden", id="no-hidden"),
        pytest.param({"conv_channels": (4,)}, "conv_channels", id="one-channel"),
        pytest.param({"seeds": ()}, "seeds", id="no-seeds"),
        pytest.param({"wake_sleep_lr": 0.0}, "wake_sleep_lr", id="lr"),
    ],
)
def test_bad_settings(change, match):
    with pytest.raises(ConfigError, match=match):
        GenerativeConfig(**{**TINY, **change})


@pytest.mark.parametrize("shape", [(8, 8), (28, 28), (12, 16)], ids=["8x8", "28x28", "12x16"])
def test_convnet_records_vectors_as_long_as_an_mlps(tmp_path, shape):
    n_pixels = shape[0] * shape[1]
    inputs = torch.rand(20, n_pixels, generator=torch.Generator().manual_seed(0))
    suite = ProbeSuite.from_array(inputs.numpy(), name="probe")
    models = {
        "conv": (make_convnet(shape, (3, 4), seed=0), "fspace.models.conv:make_convnet"),
        "mlp": (make_mlp(n_pixels, [8], seed=0), "fspace.models.mlp:make_mlp"),
    }
    kwargs = {"conv": {"image_shape": list(shape), "channels": [3, 4], "seed": 0}}
    kwargs["mlp"] = {"n_in": n_pixels, "hidden": [8], "seed": 0}
    for name, (model, factory) in models.items():
        with Recorder(
            tmp_path,
            run=name,
            group=name,
            probes=suite,
            model_factory=factory,
            model_kwargs=kwargs[name],
        ) as rec:
            rec.record(model, epoch=0)
    exp = Experiment(tmp_path)
    conv, mlp = (exp.load_vector(exp.checkpoints(r)[0], suite.fingerprint, "prob") for r in models)
    assert conv.shape == mlp.shape == (20 * 10,)
    rebuilt = build_model(exp.run("conv"))
    torch.testing.assert_close(rebuilt.state_dict(), models["conv"][0].state_dict())


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"image_shape": (3, 3)}, id="too-small"),
        pytest.param({"channels": (4,)}, id="one-channel"),
        pytest.param({"kernel_size": 4}, id="even-kernel"),
    ],
)
def test_bad_convnets_are_refused(kwargs):
    with pytest.raises(ConfigError):
        make_convnet(**{"image_shape": (8, 8), **kwargs})


@pytest.mark.slow
def test_report_builds_every_figure_and_the_numbers(tiny):
    from fspace.experiments.generative.analysis import format_generative_summary
    from fspace.experiments.generative.figures import FIGURES
    from fspace.experiments.generative.report import generative_report

    figures, numbers = generative_report(
        tiny[0], method="pca", progress=False, denoise_images=40, denoise_steps=3
    )
    assert set(figures) == set(FIGURES)
    assert set(numbers["final_error"]) == set(REGIMES)
    assert set(numbers["denoising"]) == {"pixels", "bars", "clutter", "overlay"}
    n_pairs = len(REGIMES) * (len(REGIMES) - 1) // 2
    assert len(numbers["pairwise_separation"]) == n_pairs
    text = format_generative_summary(numbers)
    assert "conv-random+backprop" in text and "overlay" in text
    trajectories = figures["trajectories"]
    checkpoints = [t for t in trajectories.data if (t.meta or {}).get("role") == "checkpoints"]
    symbols = {t.marker.symbol for t in checkpoints}
    assert len(symbols) == len(REGIMES)  # every regime drawn differently


def test_command_line_records_the_configured_regimes(tmp_path, capsys):
    from fspace.cli.experiment import add_options, run, settings_from_args
    from fspace.experiments import EXPERIMENTS

    entry = EXPERIMENTS.get("generative")
    parser = argparse.ArgumentParser()
    add_options(parser, entry)
    argv = ["-o", str(tmp_path / "exp"), "--dataset", "digits", "--seeds", "1", "--hidden", "16"]
    argv += ["--n-top", "16", "--n-probe", "300", "--epochs", "1", "--pretrain-epochs", "1"]
    args = parser.parse_args([*argv, "--regimes", "relu-random+backprop,conv-random+backprop"])
    assert GenerativeConfig.from_settings(settings_from_args(entry, args)).conv_channels == (16, 32)
    assert run(args) == 0
    assert "2 runs recorded" in capsys.readouterr().out
    assert {r.group for r in Experiment(tmp_path / "exp").runs()} == {
        "relu-random+backprop",
        "conv-random+backprop",
    }
    with pytest.raises(SystemExit):
        parser.parse_args([*argv, "--regimes", "dropout"])


def test_regime_errors_and_pairwise_separation_on_recorded_vectors(tiny):
    from fspace.evaluation import evaluate
    from fspace.experiments.generative.analysis import (
        pairwise_separation,
        regime_errors,
        regime_summary,
    )

    vectors = evaluate(tiny[0], progress=False)
    final = regime_errors(vectors.points)
    assert list(final["group"]) == list(REGIMES) and (final["epoch"] == 3).all()
    summary = regime_summary(final)
    np.testing.assert_allclose(summary["mean"], final["test_error"])
    pairs = pairwise_separation(vectors)
    # One run per regime: leave-one-run-out always finds the other regime's run.
    assert (pairs["accuracy"] == 0).all() and (pairs["n_points"] == 6).all()
