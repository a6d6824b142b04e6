"""What the ready-made experiments share: the training digits, their held-out probe
suite (= test set) and validation digits, each seed's minibatches (by epoch, or as an
endless stream of distorted digits drawn update by update), the test error and plain SGD.

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
    """Training digits (flattened, in [0, 1]), the held-out probe suite, and the
    validation digits (empty unless the settings ask for ``n_valid`` of them)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    image_shape: tuple[int, int]
    suite: ProbeSuite
    n_classes: int
    valid_x: torch.Tensor | None = None
    valid_y: torch.Tensor | None = None


def load_data(cfg: DataSettings) -> Data:
    """Training digits, the held-out probe suite (= test set) and the validation digits
    of ``cfg``.

    The probe suite is split off first, so it is the same whatever the other settings;
    ``n_valid`` validation digits (a setting only experiments that choose
    hyper-parameters have) are then split off the rest, disjoint from both the probe
    suite and the training digits; ``n_train`` limits what remains.
    """
    from fspace.data import load_dataset, split_heldout

    digits = load_dataset(cfg.dataset)
    train, heldout = split_heldout(digits, cfg.n_probe, seed=cfg.split_seed)
    valid = None
    n_valid = int(getattr(cfg, "n_valid", 0) or 0)
    if n_valid:
        train, valid = split_heldout(train, n_valid, seed=cfg.split_seed)
    if cfg.n_train is not None and cfg.n_train < len(train):
        # a stratified sample: the shipped digits are sorted by label
        train = split_heldout(train, cfg.n_train, seed=cfg.split_seed)[1]
    suite = ProbeSuite.from_array(heldout.images, name="heldout", targets=heldout.labels)
    return Data(
        train_x=_tensor(train.images),
        train_y=_tensor(train.labels),
        image_shape=tuple(train.image_shape),
        suite=suite,
        n_classes=digits.n_classes,
        valid_x=None if valid is None else _tensor(valid.images),
        valid_y=None if valid is None else _tensor(valid.labels),
    )


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


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


class Stream:
    """One seed's endless stream of training digits, read by position.

    Item ``i`` is item ``i`` of the seed's distorted-digit stream
    (:class:`~fspace.data.distort.DistortedDigits`, InfiniteMNIST-like: a fresh
    distortion for every item, the base digits visited in a new order every pass) or,
    without distortion, of shuffled passes over the training digits. An item depends
    only on (seed, i), so minibatch ``k`` of size ``b`` (items ``k*b .. k*b+b-1``) is
    the same in every process. Fine-tuning and pre-training read the same stream; every
    run of a seed reads it, so items are kept (as uint8, in blocks) up to
    ``cache_bytes``.
    """

    BLOCK = 4096

    def __init__(
        self, data: Data, cfg: DataSettings, seed: int, *, cache_bytes: int = 2**31
    ) -> None:
        self.data, self.seed = data, int(seed)
        self.cache_bytes = cache_bytes
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._distorted = None
        if cfg.distort:
            from fspace.data import Digits
            from fspace.data.distort import DistortedDigits

            base = Digits(data.train_x.numpy(), data.train_y.numpy(), data.image_shape, cfg.dataset)
            self._distorted = DistortedDigits(base, seed=self.seed)

    def batches(self, start: int, stop: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Minibatches ``start .. stop - 1`` of ``batch_size`` items, concatenated in order."""
        return self.items(start * batch_size, stop * batch_size)

    def items(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``start .. stop - 1`` as float images ``(n, h*w)`` and labels ``(n,)``."""
        first, last = start // self.BLOCK, (max(stop, start + 1) - 1) // self.BLOCK
        parts = [self._block(b) for b in range(first, last + 1)]
        x = torch.cat([p[0] for p in parts])
        y = torch.cat([p[1] for p in parts])
        lo = start - first * self.BLOCK
        return x[lo : lo + stop - start].float() / 255, y[lo : lo + stop - start]

    def _block(self, block: int) -> tuple[torch.Tensor, torch.Tensor]:
        if block in self._blocks:
            return self._blocks[block]
        index = np.arange(block * self.BLOCK, (block + 1) * self.BLOCK)
        if self._distorted is not None:
            x, y = self._distorted.items(index)
        else:
            n = len(self.data.train_x)
            base = np.empty_like(index)
            for epoch in np.unique(index // n):
                here = index // n == epoch
                order = np.random.default_rng([self.seed, int(epoch)]).permutation(n)
                base[here] = order[index[here] % n]
            x, y = self.data.train_x[base], self.data.train_y[base]
        # uint8 keeps a seed's stream small in memory; 1/255 steps are below noise
        entry = ((x * 255).round().to(torch.uint8), y)
        if (len(self._blocks) + 1) * x.shape[0] * x.shape[1] <= self.cache_bytes:
            self._blocks[block] = entry
        return entry


@torch.no_grad()
def test_error(model: nn.Module, suite: ProbeSuite) -> float:
    """Fraction of the probe suite's labelled inputs that ``model`` gets wrong."""
    return error_rate(model, suite.inputs, suite.targets)


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the inputs ``x`` that ``model`` labels otherwise than ``y``."""
    was = model.training
    model.eval()
    pred = torch.cat([model(x[i : i + 4096]).argmax(1) for i in range(0, len(x), 4096)])
    model.train(was)
    return float((pred != y).float().mean())


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
