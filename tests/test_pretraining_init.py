"""The initial-weight scheme of the pre-training experiment: which layers it sets, how
it is recorded, and the ``paper`` preset that uses it."""

from __future__ import annotations

import math

import pytest
import torch

from fspace.errors import ConfigError
from fspace.experiments.pretraining import PRESETS, PretrainingConfig
from fspace.experiments.pretraining.runner import PretrainingTrainer
from fspace.experiments.pretraining.selection import trial_settings

TINY = dict(
    dataset="digits",
    seeds=(0,),
    depths=(2,),
    width=12,
    n_probe=300,
    n_valid=0,
    pretrain_updates=20,
    finetune_updates=20,
    finetune_epochs=2,
    lr_grid=None,
    distort=False,
)


@pytest.fixture(scope="module")
def trainer():
    return PretrainingTrainer(PretrainingConfig(**TINY, init="normalized"))


def _bound(fan_in: int, fan_out: int, gain: float) -> float:
    return gain * math.sqrt(6 / (fan_in + fan_out))


def test_random_group_starts_every_layer_with_the_chosen_scheme(trainer):
    model = trainer.initial_model(0, 2, "random", None)
    n_in = trainer.data.train_x.shape[1]
    bounds = [_bound(n_in, 12, 4), _bound(12, 12, 4), _bound(12, trainer.data.n_classes, 1)]
    for layer, bound in zip([*model.hidden_layers, model.output], bounds, strict=True):
        assert 0.9 * bound < layer.weight.abs().max() <= bound


def test_pretrained_group_takes_the_scheme_only_in_its_output_layer(trainer):
    model = trainer.initial_model(0, 2, "pretrained", trainer.cfg.pretrain_lr)
    stack = trainer.pretrained_stack(0, 2, trainer.cfg.pretrain_lr)
    for layer, pretrained in zip(model.hidden_layers, stack, strict=True):
        torch.testing.assert_close(layer.weight, torch.as_tensor(pretrained.weight_).T.float())
    bound = _bound(12, trainer.data.n_classes, 1)
    assert 0.9 * bound < model.output.weight.abs().max() <= bound


def test_the_scheme_is_recorded_with_each_run_and_trial(trainer):
    run = trainer.run(0, 2, "random")
    assert run.config["init"] == "normalized" and run.model_kwargs["init"] == "normalized"
    assert trial_settings(trainer.cfg)["init"] == "normalized"


def test_uniform_runs_record_what_runs_before_the_setting_recorded():
    # a run recorded before `init` existed must still match its settings and resume
    cfg = PretrainingConfig(**TINY)
    assert cfg.init == "uniform" and "init" not in cfg.to_json()
    assert "init" not in cfg.run_config(2, "random", {"lr": 0.3, "lr_selected": False})


def test_unknown_scheme_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"^init must be one of .*'glorot'$") as error:
        PretrainingConfig(**TINY, init="glorot")
    assert "\n" not in str(error.value)


def test_paper_preset_fits_the_issue_and_starts_unpretrained_layers_normalized():
    cfg = PretrainingConfig(**PRESETS["paper"])
    assert cfg.depths == (1, 2, 3, 4, 5) and len(cfg.seeds) >= 10
    assert cfg.init == "normalized" and cfg.selects
    assert cfg.trial_updates < cfg.finetune_updates
    assert PretrainingConfig(**PRESETS["demo"]).init == "uniform"  # the demo is unchanged
