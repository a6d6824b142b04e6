"""Generative and discriminative training regimes side by side, recorded in function space.

The comparison of Hinton's lecture on fine-tuning generative models (and Hinton,
Osindero & Teh 2006): for every seed, one run per regime, all on the same training
digits, the same minibatches and the same held-out probe suite (= test set) as the
pre-training experiment (:func:`fspace.experiments.pretraining.load_data`), so all
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

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from fspace.errors import ConfigError, RunError
from fspace.experiments import _regimes
from fspace.experiments._regimes import REGIMES, Regime
from fspace.experiments.pretraining import _Data, _EpochData, load_data, test_error
from fspace.record import Recorder
from fspace.store import Experiment

__all__ = ["REGIMES", "GenerativeConfig", "run_generative", "train_run"]


@dataclass(frozen=True)
class GenerativeConfig:
    """Settings of a generative experiment. Each run records the fields its regime uses.

    ``hidden`` are the layers below the top; the MLPs have ``hidden + [n_top]`` hidden
    units, the joint model ``hidden`` and a top RBM of ``n_top`` units and the labels.
    ``epochs`` of fine-tuning apply to every regime.
    """

    dataset: str = "mnist5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    regimes: tuple[str, ...] = tuple(REGIMES)
    hidden: tuple[int, ...] = (500, 500)
    n_top: int = 2000
    n_probe: int = 1000
    n_train: int | None = None
    split_seed: int = 0
    distort: bool = False
    epochs: int = 10
    batch_size: int = 32
    lr: float = 0.3
    relu_lr: float = 0.05
    conv_lr: float = 0.05
    conv_channels: tuple[int, int] = (16, 32)
    pretrain_epochs: int = 10
    pretrain_lr: float = 0.05
    pretrain_batch_size: int = 20
    relu_pretrain_lr: float = 0.005
    wake_sleep_lr: float = 0.01
    wake_sleep_cd_k: int = 3
    wake_sleep_batch_size: int = 20
    dbn_lr: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown or not self.regimes:
            raise ConfigError(
                f"regimes must be a non-empty selection of {', '.join(REGIMES)}; "
                f"got {', '.join(self.regimes) or 'none'}"
            )
        if "wake-sleep+backprop" in self.regimes and "pretrained+wake-sleep" not in self.regimes:
            raise ConfigError(
                "regime 'wake-sleep+backprop' starts where 'pretrained+wake-sleep' ends; "
                "select both"
            )
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        if len(self.conv_channels) != 2:
            raise ConfigError(f"conv_channels takes two counts, got {self.conv_channels}")
        sizes = [*self.hidden, self.n_top, *self.conv_channels]
        if not self.hidden or min(int(s) for s in sizes) < 1:
            raise ConfigError(
                f"hidden, n_top and conv_channels must be positive sizes with at least one "
                f"hidden layer, got hidden={self.hidden}, n_top={self.n_top}, "
                f"conv_channels={self.conv_channels}"
            )
        for name in ("n_probe", "epochs", "batch_size", "pretrain_batch_size", "wake_sleep_cd_k"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.pretrain_epochs) < 0 or int(self.wake_sleep_batch_size) < 1:
            raise ConfigError("pretrain_epochs must be >= 0 and wake_sleep_batch_size >= 1")
        rates = [f for f in dataclasses.fields(self) if f.name.endswith("lr")]
        bad = [f.name for f in rates if not getattr(self, f.name) > 0]
        if bad:
            raise ConfigError(f"learning rates must be > 0: {', '.join(bad)}")

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def run_id(self, regime: str, seed: int) -> str:
        return f"{regime}-s{seed}"

    def plan(self) -> Iterator[tuple[int, str]]:
        """(seed, regime) of every run, seed-major and in :data:`REGIMES` order, so a
        seed's pre-trained stacks are reused and wake-sleep precedes what starts from it."""
        for seed in self.seeds:
            for regime in REGIMES:
                if regime in self.regimes:
                    yield int(seed), regime

    def run_config(self, regime: str) -> dict[str, Any]:
        """The settings recorded with a run of ``regime``: those it uses, plus scalar
        labels (architecture, units, init, fine_tuning) for grouping in analyses."""
        spec = REGIMES[regime]
        values = self.to_json()
        config = {k: values[k] for k in (*_regimes.COMMON_KEYS, *spec.keys)}
        config.update(dataclasses.asdict(spec))
        del config["name"], config["keys"]
        return config


def _check_recorded(exp: Experiment, run_id: str, config: dict[str, Any]) -> list:
    if run_id not in exp.run_ids():
        return []
    recorded = exp.run(run_id).config
    if recorded != config:
        changed = sorted(k for k in set(recorded) | set(config) if recorded.get(k) != config.get(k))
        raise RunError(
            f"run {run_id!r} in {exp.path} was recorded with other settings "
            f"({', '.join(changed)}); record this configuration into another experiment"
        )
    return exp.checkpoints(run_id)


def _metrics(model: nn.Module, data: _Data, spec: Regime) -> dict[str, float]:
    metrics = {"test_error": test_error(model, data.suite)}
    if spec.architecture == "dbn":
        from fspace.models.wakesleep import generative_error

        metrics["reconstruction_error"] = generative_error(model, data.suite.inputs)
    return metrics


def train_run(
    path: Path,
    cfg: GenerativeConfig,
    data: _Data,
    seed: int,
    regime: str,
    *,
    state: _regimes.SeedState,
) -> str:
    """Record one run, resuming after its last stored checkpoint. Returns what it did."""
    spec = REGIMES[regime]
    run_id = cfg.run_id(regime, seed)
    config = cfg.run_config(regime)
    exp = Experiment.create(path)
    done = _check_recorded(exp, run_id, config)
    last = max((c.epoch for c in done), default=-1)
    if last >= cfg.epochs:
        return "skipped"
    factory, kwargs = _regimes.factory(cfg, data, spec, seed)
    with Recorder(
        path,
        run=run_id,
        group=regime,
        seed=seed,
        config=config,
        probes=data.suite,
        model_factory=factory,
        model_kwargs=kwargs,
    ) as rec:
        if last < 0:
            model = _regimes.start_model(cfg, data, spec, seed, state, exp)
            rec.record(model, epoch=0, metrics=_metrics(model, data, spec))
        else:
            model = _regimes.build(factory, kwargs)
            model.load_state_dict(exp.load_weights(next(c for c in done if c.epoch == last)))
        for epoch in range(max(last, 0) + 1, cfg.epochs + 1):
            x, y = state.batches.epoch(epoch)
            metrics = _regimes.train_epoch(model, x, y, cfg, spec, seed, epoch)
            metrics.update(_metrics(model, data, spec))
            rec.record(model, epoch=epoch, step=epoch * len(x), metrics=metrics)
    return "resumed" if last >= 0 else "recorded"


def run_generative(
    path: str | Path, cfg: GenerativeConfig, *, progress: bool = True
) -> dict[str, int]:
    """Record every run of ``cfg`` into ``path``; completed runs are skipped, interrupted
    ones finished. Returns how many runs were recorded, resumed and skipped."""
    from tqdm.auto import tqdm

    path = Path(path)
    data = load_data(cfg)
    Experiment.create(path).add_probes(data.suite)
    counts = {"recorded": 0, "resumed": 0, "skipped": 0}
    state = None
    bar = tqdm(list(cfg.plan()), desc="runs", unit="run", disable=not progress)
    for seed, regime in bar:
        bar.set_postfix_str(cfg.run_id(regime, seed))
        if state is None or state.seed != seed:
            state = _regimes.SeedState(cfg, data, seed, _EpochData(data, cfg, seed))
        counts[train_run(path, cfg, data, seed, regime, state=state)] += 1
    return counts
