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

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fspace.errors import ConfigError, RunError
from fspace.probes import ProbeSuite
from fspace.record import Recorder
from fspace.store import Experiment

GROUPS = ("pretrained", "random")
FACTORY = "fspace.models.mlp:make_mlp"


@dataclass(frozen=True)
class PretrainingConfig:
    """Settings of a pre-training experiment; every field is recorded with each run."""

    dataset: str = "mnist5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (1, 2, 3)
    method: str = "rbm"
    width: int = 500
    n_probe: int = 1000
    n_train: int | None = None
    pretrain_epochs: int = 10
    pretrain_lr: float = 0.05
    pretrain_batch_size: int = 50
    finetune_epochs: int = 20
    lr: float = 0.3
    batch_size: int = 32
    distort: bool = True
    split_seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in ("rbm", "dae"):
            raise ConfigError(f"method must be 'rbm' or 'dae', got {self.method!r}")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        bad = [d for d in self.depths if not 1 <= int(d) <= 5]
        if bad or not self.depths:
            raise ConfigError(f"depths must be between 1 and 5 hidden layers, got {self.depths}")
        for name in ("width", "n_probe", "finetune_epochs", "batch_size", "pretrain_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("pretrain_epochs",):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not (self.lr > 0 and self.pretrain_lr > 0):
            raise ConfigError(f"learning rates must be > 0, got {self.lr}, {self.pretrain_lr}")

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def run_id(self, depth: int, seed: int, group: str) -> str:
        return f"{self.method}-d{depth}-s{seed}-{group}"

    def plan(self) -> Iterator[tuple[int, int, str]]:
        """(seed, depth, group) of every run, seed-major so a seed's data is reused."""
        for seed in self.seeds:
            for depth in self.depths:
                for group in GROUPS:
                    yield int(seed), int(depth), group


@dataclass
class _Data:
    train_x: torch.Tensor
    train_y: torch.Tensor
    image_shape: tuple[int, int]
    suite: ProbeSuite
    n_classes: int


def load_data(cfg: PretrainingConfig) -> _Data:
    """Training digits and the held-out probe suite (= test set) of ``cfg``."""
    from fspace.data import load_dataset, split_heldout

    digits = load_dataset(cfg.dataset)
    train, heldout = split_heldout(digits, cfg.n_probe, seed=cfg.split_seed)
    if cfg.n_train is not None and cfg.n_train < len(train):
        # a stratified sample: the shipped digits are sorted by label
        train = split_heldout(train, cfg.n_train, seed=cfg.split_seed)[1]
    suite = ProbeSuite.from_array(heldout.images, name="heldout", targets=heldout.labels)
    return _Data(
        train_x=torch.from_numpy(np.ascontiguousarray(train.images)),
        train_y=torch.from_numpy(np.ascontiguousarray(train.labels)),
        image_shape=tuple(train.image_shape),
        suite=suite,
        n_classes=digits.n_classes,
    )


class _EpochData:
    """The fine-tuning minibatches of one seed: identical for both groups and all depths."""

    def __init__(self, data: _Data, cfg: PretrainingConfig, seed: int) -> None:
        self.data, self.cfg, self.seed = data, cfg, seed
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._stream = None
        if cfg.distort:
            from fspace.data import Digits
            from fspace.data.distort import DistortedDigits

            base = Digits(data.train_x.numpy(), data.train_y.numpy(), data.image_shape, cfg.dataset)
            self._stream = DistortedDigits(base, seed=seed)

    def epoch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """All training inputs and labels of ``epoch`` (1-based), in minibatch order."""
        if epoch not in self._cache:
            n = len(self.data.train_x)
            if self._stream is not None:
                x, y = self._stream.items(np.arange((epoch - 1) * n, epoch * n))
                # uint8 keeps a seed's epochs small in memory; 1/255 steps are below noise
                x = (x * 255).round().to(torch.uint8)
            else:
                order = np.random.default_rng([self.seed, epoch]).permutation(n)
                x, y = self.data.train_x[order], self.data.train_y[order]
            self._cache[epoch] = (x, y)
        x, y = self._cache[epoch]
        return (x.float() / 255 if x.dtype == torch.uint8 else x), y


def model_kwargs(cfg: PretrainingConfig, data: _Data, depth: int, seed: int) -> dict[str, Any]:
    return {
        "n_in": int(data.train_x.shape[1]),
        "hidden": [cfg.width] * depth,
        "n_classes": data.n_classes,
        "seed": seed,
    }


@torch.no_grad()
def test_error(model: nn.Module, suite: ProbeSuite) -> float:
    """Fraction of the probe suite's labelled inputs that ``model`` gets wrong."""
    was = model.training
    model.eval()
    pred = model(suite.inputs).argmax(1)
    model.train(was)
    return float((pred != suite.targets).float().mean())


def finetune_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, bs: int) -> float:
    """One epoch of plain minibatch SGD on cross-entropy; returns the mean training loss.

    Plain SGD has no optimiser state, so a run resumed from a checkpoint continues
    exactly as if it had never stopped.
    """
    model.train()
    total = 0.0
    for start in range(0, len(x), bs):
        loss = nn.functional.cross_entropy(model(x[start : start + bs]), y[start : start + bs])
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        total += float(loss.detach()) * len(y[start : start + bs])
    return total / len(x)


def _pretrained_stack(cfg, data, seed, depth, stacks, progress):
    """Layers 1..depth of the seed's greedy stack, training only layers not yet trained."""
    from fspace.models.pretrain import pretrain_stack

    have = stacks.setdefault(seed, [])
    if len(have) < depth:
        below = data.train_x
        for layer in have:
            below = layer.transform(below)
        new = pretrain_stack(
            below,
            [cfg.width] * (depth - len(have)),
            method=cfg.method,
            epochs=cfg.pretrain_epochs,
            learning_rate=cfg.pretrain_lr,
            batch_size=cfg.pretrain_batch_size,
            random_state=seed * 100 + len(have),
            progress=progress,
        )
        have.extend(new)
    return have[:depth]


def _start_model(cfg, data, seed, depth, group, stacks, progress) -> nn.Module:
    from fspace.models.mlp import make_mlp
    from fspace.models.pretrain import init_from_stack

    model = make_mlp(**model_kwargs(cfg, data, depth, seed))
    if group == "pretrained":
        init_from_stack(model, _pretrained_stack(cfg, data, seed, depth, stacks, progress))
    return model


def train_run(
    path: Path,
    cfg: PretrainingConfig,
    data: _Data,
    seed: int,
    depth: int,
    group: str,
    *,
    batches: _EpochData,
    stacks: dict,
    progress: bool = False,
) -> str:
    """Record one run, resuming after its last stored checkpoint. Returns what it did."""
    run_id = cfg.run_id(depth, seed, group)
    config = {k: v for k, v in cfg.to_json().items() if k not in ("seeds", "depths")}
    config["depth"] = depth
    exp = Experiment.create(path)
    done = []
    if run_id in exp.run_ids():
        recorded = exp.run(run_id).config
        if recorded != config:
            changed = sorted(
                k for k in set(recorded) | set(config) if recorded.get(k) != config.get(k)
            )
            raise RunError(
                f"run {run_id!r} in {path} was recorded with other settings "
                f"({', '.join(changed)}); record this configuration into another experiment"
            )
        done = exp.checkpoints(run_id)
    last = max((c.epoch for c in done), default=-1)
    if last >= cfg.finetune_epochs:
        return "skipped"
    with Recorder(
        path,
        run=run_id,
        group=group,
        seed=seed,
        config=config,
        probes=data.suite,
        model_factory=FACTORY,
        model_kwargs=model_kwargs(cfg, data, depth, seed),
    ) as rec:
        if last < 0:
            model = _start_model(cfg, data, seed, depth, group, stacks, progress)
            rec.record(model, epoch=0, metrics={"test_error": test_error(model, data.suite)})
        else:
            from fspace.models.mlp import make_mlp

            model = make_mlp(**model_kwargs(cfg, data, depth, seed))
            resume = next(c for c in done if c.epoch == last)
            model.load_state_dict(exp.load_weights(resume))
        for epoch in range(max(last, 0) + 1, cfg.finetune_epochs + 1):
            x, y = batches.epoch(epoch)
            loss = finetune_epoch(model, x, y, cfg.lr, cfg.batch_size)
            metrics = {"test_error": test_error(model, data.suite), "train_loss": loss}
            rec.record(model, epoch=epoch, step=epoch * len(x), metrics=metrics)
    return "resumed" if last >= 0 else "recorded"


def run_pretraining(
    path: str | Path, cfg: PretrainingConfig, *, progress: bool = True
) -> dict[str, int]:
    """Record every run of ``cfg`` into ``path``; completed runs are skipped, interrupted
    ones finished. Returns how many runs were recorded, resumed and skipped."""
    from tqdm.auto import tqdm

    path = Path(path)
    data = load_data(cfg)
    Experiment.create(path).add_probes(data.suite)
    counts = {"recorded": 0, "resumed": 0, "skipped": 0}
    stacks: dict[int, list] = {}
    batches = None
    plan = list(cfg.plan())
    bar = tqdm(plan, desc="runs", unit="run", disable=not progress)
    threads = torch.get_num_threads()
    # These small minibatch products run fastest single-threaded on a few cores;
    # several threads mostly wait on each other.
    torch.set_num_threads(1)
    try:
        for seed, depth, group in bar:
            bar.set_postfix_str(cfg.run_id(depth, seed, group))
            if batches is None or batches.seed != seed:
                batches, stacks = _EpochData(data, cfg, seed), {}
            outcome = train_run(path, cfg, data, seed, depth, group, batches=batches, stacks=stacks)
            counts[outcome] += 1
    finally:
        torch.set_num_threads(threads)
    return counts
