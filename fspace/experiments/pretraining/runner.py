"""Unsupervised pre-training versus random initialisation, recorded in function space.

The experiment of Erhan, Bengio et al. (JMLR 2010): for every depth and seed, one MLP is
initialised from a greedily pre-trained stack (RBMs or denoising autoencoders) and one
from small random weights; both are then fine-tuned with backprop, with the same
optimiser and the same minibatches. Every epoch (the starting point included) is
recorded with its function vector on held-out, undistorted digits, which are also the
test set.

Example::

    cfg = PretrainingConfig(seeds=(0, 1), depths=(1, 2), finetune_epochs=5)
    run_pretraining("checkpoints/pretraining", cfg)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from fspace.experiments.digits import Data, EpochData, load_data, sgd_epoch, test_error
from fspace.experiments.pretraining.config import RENAMED, PretrainingConfig
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.store import Experiment

FACTORY = "fspace.models.mlp:make_mlp"


def model_kwargs(cfg: PretrainingConfig, data: Data, depth: int, seed: int) -> dict[str, Any]:
    return {
        "n_in": int(data.train_x.shape[1]),
        "hidden": [cfg.width] * depth,
        "n_classes": data.n_classes,
        "seed": seed,
    }


class PretrainingTrainer(Trainer):
    """The runs of a pre-training experiment for :func:`fspace.experiments.runner.record`.

    A seed's runs share its minibatches and its greedy stack (depth 2 reuses the first
    layer of depth 1), each built once, on first use.
    """

    renamed: ClassVar[dict[str, str]] = RENAMED

    def __init__(self, cfg: PretrainingConfig, data: Data | None = None) -> None:
        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.suite = self.data.suite
        self._seed: int | None = None
        self._batches: EpochData | None = None
        self._stack: list = []

    def run(self, seed: int, depth: int, group: str) -> RunPlan:
        cfg = self.cfg
        return RunPlan(
            run_id=cfg.run_id(depth, seed, group),
            group=group,
            seed=seed,
            config=cfg.run_config(depth),
            epochs=cfg.finetune_epochs,
            model_factory=FACTORY,
            model_kwargs=model_kwargs(cfg, self.data, depth, seed),
        )

    def plan(self) -> Iterator[RunPlan]:
        for seed, depth, group in self.cfg.plan():
            yield self.run(seed, depth, group)

    def _use_seed(self, seed: int) -> None:
        if self._seed != seed:
            self._seed, self._batches, self._stack = seed, EpochData(self.data, self.cfg, seed), []

    def build(self, run: RunPlan) -> nn.Module:
        from fspace.models.mlp import make_mlp

        return make_mlp(**run.model_kwargs)

    def start(self, run: RunPlan, exp: Experiment) -> nn.Module:
        from fspace.training.pretrain import init_from_stack

        model = self.build(run)
        if run.group == "pretrained":
            init_from_stack(model, self.pretrained_stack(run.seed, run.config["depth"]))
        return model

    def pretrained_stack(self, seed: int, depth: int) -> list:
        """Layers 1..depth of the seed's greedy stack, training only layers not yet trained."""
        from fspace.training.pretrain import pretrain_stack

        self._use_seed(seed)
        cfg, have = self.cfg, self._stack
        if len(have) < depth:
            below = self.data.train_x
            for layer in have:
                below = layer.transform(below)
            have += pretrain_stack(
                below,
                [cfg.width] * (depth - len(have)),
                method=cfg.pretraining,
                epochs=cfg.pretrain_epochs,
                learning_rate=cfg.pretrain_lr,
                batch_size=cfg.pretrain_batch_size,
                random_state=seed * 100 + len(have),
            )
        return have[:depth]

    def train_epoch(self, model: nn.Module, run: RunPlan, epoch: int) -> tuple[dict, int]:
        self._use_seed(run.seed)
        x, y = self._batches.epoch(epoch)
        loss = sgd_epoch(model, x, y, self.cfg.lr, self.cfg.batch_size)
        return {"train_loss": loss}, epoch * len(x)

    def evaluate(self, model: nn.Module, run: RunPlan) -> dict[str, float]:
        return {"test_error": test_error(model, self.suite)}


def run_pretraining(
    path: str | Path, cfg: PretrainingConfig, *, progress: bool = True
) -> dict[str, int]:
    """Record every run of ``cfg`` into ``path``; completed runs are skipped, interrupted
    ones finished. Returns how many runs were recorded, resumed and skipped."""
    return record(path, PretrainingTrainer(cfg), progress=progress)
