"""Generative and discriminative training regimes side by side, recorded in function space.

The comparison of Hinton's lecture on fine-tuning generative models (and Hinton,
Osindero & Teh 2006): for every seed, one run per regime, all on the same training
digits, the same minibatches and the same held-out probe suite (= test set) as the
pre-training experiment (:func:`fspace.experiments.digits.load_data`), so all
of them land in one function-space map. The regimes (the runs' groups):

============================  ==================================================
``random+backprop``           logistic MLP ``hidden + [n_top]``, random init, SGD
``pretrained+backprop``       the same MLP started from a greedy RBM stack, SGD
``pretrained+wake-sleep``     the joint model of images and labels (a DBN whose
                              top RBM includes the labels), greedily pre-trained
                              on the same lower RBMs, fine-tuned by up-down
                              (contrastive wake-sleep); labels by free energy
``wake-sleep+backprop``       that model after wake-sleep, then SGD on its
                              ``p(label | image)`` (softmax of minus free energies)
``relu-random+backprop``      the MLP with rectified linear units, random init
``relu-pretrained+backprop``  the ReLU MLP started from Gaussian-NReLU RBMs
``conv-random+backprop``      a small convnet with max pooling, random init
============================  ==================================================

Every run records epoch 0 and every epoch with its test error and model factory. A
rerun skips complete runs and finishes interrupted ones exactly: backprop is plain
SGD, and wake-sleep has no optimiser state and draws its samples from a generator
seeded by (seed, epoch).

Example::

    cfg = GenerativeConfig(seeds=(0, 1), hidden=(300, 300), n_top=600, epochs=8)
    run_generative("checkpoints/generative", cfg)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from torch import nn

from fspace.experiments.digits import Data, EpochData, load_data, test_error
from fspace.experiments.generative import regimes
from fspace.experiments.generative.config import REGIMES, GenerativeConfig
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.store import Experiment

__all__ = ["REGIMES", "GenerativeConfig", "GenerativeTrainer", "run_generative"]


class GenerativeTrainer(Trainer):
    """The runs of a generative experiment for :func:`fspace.experiments.runner.record`.

    A seed's runs share its minibatches and pre-trained stacks
    (:class:`~fspace.experiments.generative.regimes.SeedState`), each built once.
    """

    def __init__(self, cfg: GenerativeConfig, data: Data | None = None) -> None:
        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.suite = self.data.suite
        self._state: regimes.SeedState | None = None

    def run(self, seed: int, regime: str) -> RunPlan:
        factory, kwargs = regimes.factory(self.cfg, self.data, REGIMES[regime], seed)
        return RunPlan(
            run_id=self.cfg.run_id(regime, seed),
            group=regime,
            seed=seed,
            config=self.cfg.run_config(regime),
            epochs=self.cfg.epochs,
            model_factory=factory,
            model_kwargs=kwargs,
        )

    def plan(self) -> Iterator[RunPlan]:
        for seed, regime in self.cfg.plan():
            yield self.run(seed, regime)

    def state(self, seed: int) -> regimes.SeedState:
        """What the runs of ``seed`` share, built when the seed changes."""
        if self._state is None or self._state.seed != seed:
            batches = EpochData(self.data, self.cfg, seed)
            self._state = regimes.SeedState(self.cfg, self.data, seed, batches)
        return self._state

    def build(self, run: RunPlan) -> nn.Module:
        return regimes.build(run.model_factory, run.model_kwargs)

    def start(self, run: RunPlan, exp: Experiment) -> nn.Module:
        spec = REGIMES[run.group]
        return regimes.start_model(self.cfg, self.data, spec, run.seed, self.state(run.seed), exp)

    def train_epoch(self, model: nn.Module, run: RunPlan, epoch: int) -> tuple[dict, int]:
        x, y = self.state(run.seed).batches.epoch(epoch)
        spec = REGIMES[run.group]
        return regimes.train_epoch(model, x, y, self.cfg, spec, run.seed, epoch), epoch * len(x)

    def evaluate(self, model: nn.Module, run: RunPlan) -> dict[str, float]:
        metrics = {"test_error": test_error(model, self.suite)}
        if REGIMES[run.group].architecture == "dbn":
            from fspace.training.wakesleep import generative_error

            metrics["reconstruction_error"] = generative_error(model, self.suite.inputs)
        return metrics


def run_generative(
    path: str | Path, cfg: GenerativeConfig, *, progress: bool = True
) -> dict[str, int]:
    """Record every run of ``cfg`` into ``path``; completed runs are skipped, interrupted
    ones finished. Returns how many runs were recorded, resumed and skipped."""
    return record(path, GenerativeTrainer(cfg), progress=progress)
