"""Unsupervised pre-training versus random initialisation, recorded in function space.

The experiment of Erhan, Bengio et al. (JMLR 2010): for every depth and seed, one MLP is
initialised from a greedily pre-trained stack (RBMs or denoising autoencoders) and one
from small random weights; both are then fine-tuned with backprop, with the same
optimiser and the same minibatches, each learning rate chosen per depth and group on
validation digits (:mod:`.selection`). Pre-training and fine-tuning draw their
minibatches from the seed's stream of distorted digits, one fresh minibatch per update.
The starting point and the end of every recording interval ("epoch") are recorded with
their function vector on held-out, undistorted digits, which are also the test set.

Example::

    cfg = PretrainingConfig(seeds=(0, 1), depths=(1, 2), finetune_updates=500)
    run_pretraining("checkpoints/pretraining", cfg)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from fspace.experiments.digits import Data, Stream, load_data, sgd_epoch, test_error
from fspace.experiments.pretraining.config import RENAMED, PretrainingConfig
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.store import Experiment

FACTORY = "fspace.models.mlp:make_mlp"
CHUNK = 100
"""Pre-training minibatches per ``partial_fit`` call (one pass over a chunk)."""

Rates = Mapping[tuple[int, str], Mapping[str, Any]]
"""Learning rates by (depth, group): ``lr``, ``pretrain_lr`` and whether each was chosen."""


def fixed_rates(cfg: PretrainingConfig) -> dict[tuple[int, str], dict[str, Any]]:
    """The rates of every (depth, group) when nothing is chosen: the first of each grid
    (or ``lr`` / ``pretrain_lr``)."""
    from fspace.experiments.pretraining.config import GROUPS

    rate = {"lr": cfg.lrs()[0], "pretrain_lr": cfg.pretrain_lrs()[0]}
    rate |= {"lr_selected": False, "pretrain_lr_selected": False}
    return {(int(d), g): dict(rate) for d in cfg.depths for g in GROUPS}


def model_kwargs(cfg: PretrainingConfig, data: Data, depth: int, seed: int) -> dict[str, Any]:
    return {
        "n_in": int(data.train_x.shape[1]),
        "hidden": [cfg.width] * depth,
        "n_classes": data.n_classes,
        "seed": seed,
        "init": cfg.init,
    }


class PretrainingTrainer(Trainer):
    """The runs of a pre-training experiment for :func:`fspace.experiments.runner.record`.

    ``rates`` holds each (depth, group)'s learning rates (default :func:`fixed_rates`).
    A seed's runs share its stream of minibatches and its greedy stack per pre-training
    rate (depth 2 reuses the first layer of depth 1), each built once, on first use.
    """

    renamed: ClassVar[dict[str, str]] = RENAMED

    def __init__(
        self, cfg: PretrainingConfig, data: Data | None = None, rates: Rates | None = None
    ) -> None:
        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.suite = self.data.suite
        self.rates = dict(rates) if rates is not None else fixed_rates(cfg)
        self._seed: int | None = None
        self._stream: Stream | None = None
        self._stacks: dict[float, list] = {}

    def rate(self, depth: int, group: str) -> Mapping[str, Any]:
        return self.rates[(int(depth), group)]

    def run(self, seed: int, depth: int, group: str) -> RunPlan:
        cfg = self.cfg
        return RunPlan(
            run_id=cfg.run_id(depth, seed, group),
            group=group,
            seed=seed,
            config=cfg.run_config(depth, group, self.rate(depth, group)),
            epochs=cfg.finetune_epochs,
            model_factory=FACTORY,
            model_kwargs=model_kwargs(cfg, self.data, depth, seed),
        )

    def plan(self) -> Iterator[RunPlan]:
        for seed, depth, group in self.cfg.plan():
            yield self.run(seed, depth, group)

    def stream(self, seed: int) -> Stream:
        """The seed's stream of training digits (one seed's is kept at a time)."""
        if self._seed != seed:
            self._seed, self._stream, self._stacks = seed, Stream(self.data, self.cfg, seed), {}
        return self._stream

    def build(self, run: RunPlan) -> nn.Module:
        from fspace.models.mlp import make_mlp

        return make_mlp(**run.model_kwargs)

    def start(self, run: RunPlan, exp: Experiment) -> nn.Module:
        depth = run.config["depth"]
        return self.initial_model(run.seed, depth, run.group, run.config.get("pretrain_lr"))

    def initial_model(
        self, seed: int, depth: int, group: str, pretrain_lr: float | None
    ) -> nn.Module:
        """The model of (seed, depth, group) before fine-tuning: random weights of
        ``seed``, the hidden layers copied from the seed's stack if pre-trained."""
        from fspace.models.mlp import make_mlp
        from fspace.training.pretrain import init_from_stack

        model = make_mlp(**model_kwargs(self.cfg, self.data, depth, seed))
        if group == "pretrained":
            init_from_stack(model, self.pretrained_stack(seed, depth, float(pretrain_lr)))
        return model

    def pretrained_stack(self, seed: int, depth: int, pretrain_lr: float) -> list:
        """Layers 1..depth of the seed's greedy stack trained with ``pretrain_lr``,
        training only layers not yet trained, each for ``pretrain_updates`` minibatches
        of the seed's stream."""
        from fspace.training.pretrain import pretrain_stack_online

        stream, cfg = self.stream(seed), self.cfg
        have = self._stacks.setdefault(pretrain_lr, [])
        if len(have) < depth:
            size = cfg.pretrain_batch_size
            total = cfg.pretrain_updates * size

            def chunks(layer: int) -> Iterator[torch.Tensor]:
                for start in range(0, total, CHUNK * size):
                    yield stream.items(start, min(start + CHUNK * size, total))[0]

            have += pretrain_stack_online(
                chunks,
                [cfg.width] * (depth - len(have)),
                method=cfg.pretraining,
                below=have,
                random_state=seed,
                learning_rate=pretrain_lr,
                batch_size=size,
            )
        return have[:depth]

    def train_updates(self, model: nn.Module, seed: int, lr: float, start: int, stop: int) -> float:
        """Fine-tune ``model`` on minibatches ``start .. stop - 1`` of the seed's stream
        with plain SGD at ``lr``; the mean training loss (NaN if it diverged)."""
        if stop <= start:
            return math.nan
        x, y = self.stream(seed).batches(start, stop, self.cfg.batch_size)
        return sgd_epoch(model, x, y, lr, self.cfg.batch_size)

    def train_epoch(self, model: nn.Module, run: RunPlan, epoch: int) -> tuple[dict, int]:
        start, stop = self.cfg.update_range(epoch)
        loss = self.train_updates(model, run.seed, run.config["lr"], start, stop)
        return {"train_loss": loss}, stop

    def evaluate(self, model: nn.Module, run: RunPlan) -> dict[str, float]:
        return {"test_error": test_error(model, self.suite)}


def run_pretraining(
    path: str | Path, cfg: PretrainingConfig, *, progress: bool = True
) -> dict[str, int]:
    """Record every run of ``cfg`` into ``path``; completed runs are skipped, interrupted
    ones finished. Learning rates are chosen first where ``cfg`` has grids (trials kept
    in the experiment, already finished ones reused; the choice is printed with
    ``progress``). Returns how many runs were recorded, resumed and skipped."""
    from fspace.experiments.pretraining.selection import choose_rates, format_rates

    trainer = PretrainingTrainer(cfg)
    if cfg.selects:
        trainer.rates = choose_rates(path, trainer, progress=progress)
        if progress:
            print(format_rates(trainer.rates))
    return record(path, trainer, progress=progress)
