"""Runs and evaluation spread over a local Ray instance write the same experiment."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.distributed import _chunks, connect
from fspace.errors import ConfigError
from fspace.experiments.pretraining import PretrainingConfig, run_pretraining
from fspace.experiments.pretraining.distributed import pretraining_units
from fspace.models.mlp import make_mlp

FACTORY = "fspace.models.mlp:make_mlp"
TINY = dict(
    dataset="digits",
    seeds=(0,),
    depths=(1, 2),
    width=16,
    n_probe=100,
    n_valid=100,
    pretrain_updates=20,
    finetune_updates=20,
    finetune_epochs=2,
    lr_grid=(0.3, 1.0),
    distort=False,
)


def test_units_cover_every_run_once_and_keep_a_seeds_stack_together():
    cfg = PretrainingConfig(**{**TINY, "seeds": (0, 1), "depths": (1, 2, 3)})
    units = pretraining_units(cfg)
    runs = [cfg.run_id(d, seed, group) for seed, group, depths in units for d in depths]
    assert sorted(runs) == sorted(cfg.run_id(d, s, g) for s, d, g in cfg.plan())
    assert (0, "pretrained", (1, 2, 3)) in units and (1, "random", (2,)) in units


def test_chunks_hold_one_run_each():
    class C:
        def __init__(self, run, i):
            self.run, self.key = run, f"{run}/{i}"

    ckpts = [C("a", i) for i in range(70)] + [C("b", i) for i in range(3)]
    chunks = _chunks(ckpts)
    assert [len(c) for c in chunks] == [64, 6, 3]
    assert all(len({k.split("/")[0] for k in chunk}) == 1 for chunk in chunks)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'fspace\[ray\]'"):
        connect()


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def _record(path, suite, runs=3, epochs=4):
    for r in range(runs):
        kwargs = {"n_in": 4, "hidden": [8], "n_classes": 3, "seed": r}
        model = make_mlp(**kwargs)
        with Recorder(
            path, run=f"r{r}", group="g", seed=r, model_factory=FACTORY, model_kwargs=kwargs
        ) as rec:
            for epoch in range(epochs):
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(0.1 * (epoch + 1))
                rec.record(model, epoch=epoch)
    Experiment(path).add_probes(suite)
    return path


@pytest.mark.slow
def test_evaluation_on_ray_equals_local_evaluation(ray_instance, tmp_path, suite):
    from fspace.distributed import evaluate_on_ray

    on_ray = evaluate_on_ray(_record(tmp_path / "a", suite), progress=False)
    local = evaluate(_record(tmp_path / "b", suite), progress=False)
    np.testing.assert_array_equal(on_ray.matrix, local.matrix)
    assert list(on_ray.points["checkpoint"]) == list(local.points["checkpoint"])


@pytest.mark.slow
def test_cli_evaluate_with_ray(ray_instance, tmp_path, suite, capsys):
    from fspace.cli import main

    path = _record(tmp_path / "exp", suite, runs=2)
    assert main(["evaluate", str(path), "--ray", "-q"]) == 0
    assert "8 function vectors of length 60" in capsys.readouterr().out
    exp = Experiment(path)
    assert all(exp.load_vector(c, suite.fingerprint, "prob") is not None for c in exp.checkpoints())


@pytest.mark.slow
def test_pretraining_on_ray_records_what_the_local_runner_records(ray_instance, tmp_path):
    from fspace.experiments.pretraining.distributed import record_pretraining_on_ray

    cfg = PretrainingConfig(**TINY)
    counts = record_pretraining_on_ray(tmp_path / "ray", cfg, progress=False)
    assert counts == {"recorded": 4, "resumed": 0, "skipped": 0}
    run_pretraining(tmp_path / "local", cfg, progress=False)
    on_ray, local = Experiment(tmp_path / "ray"), Experiment(tmp_path / "local")
    assert [r.id for r in on_ray.runs()] == [r.id for r in local.runs()]
    # the learning-rate trials ran as tasks, with the local runner's results and choice
    assert on_ray.trials().keys() == local.trials().keys() and len(local.trials()) == 8
    assert [r.config for r in on_ray.runs()] == [r.config for r in local.runs()]
    suite: ProbeSuite = local.probes()
    a = evaluate(on_ray, progress=False)
    b = evaluate(local, progress=False)
    assert list(a.points["checkpoint"]) == list(b.points["checkpoint"])
    # Tasks run torch on one thread; summation order may differ in the last bits, which
    # can move a probability cached as float16 by one float16 step (at most 4.9e-4).
    np.testing.assert_allclose(a.matrix, b.matrix, atol=5e-4)
    assert on_ray.probes().fingerprint == suite.fingerprint
    again = record_pretraining_on_ray(tmp_path / "ray", cfg, progress=False)
    assert again == {"recorded": 0, "resumed": 0, "skipped": 4}
