"""What the ready-made experiments share: the training digits, their held-out probe
suite (= test set), each seed's minibatches, the test error and a plain SGD epoch.

Every ready-made experiment trains on the same digits and records on the same probe
suite for the same data settings, so runs of different experiments can share one
function-space map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from fspace.probes import ProbeSuite


class DataSettings(Protocol):
    """The fields of an experiment's config that choose its data."""

    dataset: str
    n_probe: int
    n_train: int | None
    split_seed: int
    distort: bool


@dataclass
class Data:
    """Training digits (flattened, in [0, 1]) and the held-out probe suite."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    image_shape: tuple[int, int]
    suite: ProbeSuite
    n_classes: int


def load_data(cfg: DataSettings) -> Data:
    """Training digits and the held-out probe suite (= test set) of ``cfg``."""
    from fspace.data import load_dataset, split_heldout

    digits = load_dataset(cfg.dataset)
    train, heldout = split_heldout(digits, cfg.n_probe, seed=cfg.split_seed)
    if cfg.n_train is not None and cfg.n_train < len(train):
        # a stratified sample: the shipped digits are sorted by label
        train = split_heldout(train, cfg.n_train, seed=cfg.split_seed)[1]
    suite = ProbeSuite.from_array(heldout.images, name="heldout", targets=heldout.labels)
    return Data(
        train_x=torch.from_numpy(np.ascontiguousarray(train.images)),
        train_y=torch.from_numpy(np.ascontiguousarray(train.labels)),
        image_shape=tuple(train.image_shape),
        suite=suite,
        n_classes=digits.n_classes,
    )


class EpochData:
    """The minibatches of one seed, epoch by epoch: identical for every run of the seed,
    so its runs differ only in what the experiment compares."""

    def __init__(self, data: Data, cfg: DataSettings, seed: int) -> None:
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


@torch.no_grad()
def test_error(model: nn.Module, suite: ProbeSuite) -> float:
    """Fraction of the probe suite's labelled inputs that ``model`` gets wrong."""
    was = model.training
    model.eval()
    pred = model(suite.inputs).argmax(1)
    model.train(was)
    return float((pred != suite.targets).float().mean())


def sgd_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, bs: int) -> float:
    """One epoch of plain minibatch SGD on cross-entropy; returns the mean training loss.

    Plain SGD has no optimiser state, so a run resumed from a checkpoint continues
    exactly as if it had never stopped. Parameters the loss does not reach (a joint
    model's generative weights) are left alone.
    """
    model.train()
    total = 0.0
    for start in range(0, len(x), bs):
        xb, yb = x[start : start + bs], y[start : start + bs]
        loss = nn.functional.cross_entropy(model(xb), yb)
        model.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.add_(p.grad, alpha=-lr)
        total += float(loss.detach()) * len(yb)
    return total / len(x)
