"""Settings of the generative experiment, its training regimes, and the parameters
``fspace experiment generative`` shows for them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fspace.errors import ConfigError
from fspace.experiments.base import DATA_PARAMS
from fspace.registry import Param

COMMON_KEYS = ("dataset", "n_probe", "n_train", "split_seed", "distort", "epochs", "extra")
_PRETRAIN = ("pretrain_epochs", "pretrain_lr", "pretrain_batch_size")
_WAKE_SLEEP = ("wake_sleep_lr", "wake_sleep_cd_k", "wake_sleep_batch_size")


@dataclass(frozen=True)
class Regime:
    """One training regime: its model, starting point and fine-tuning, and the config
    fields it uses (recorded with its runs; a rerun with other values is refused)."""

    name: str
    architecture: str  # "mlp", "dbn" (the joint model) or "conv"
    units: str  # "logistic" or "relu"
    init: str  # "random", "pretrained" or "wake-sleep"
    fine_tuning: str  # "backprop" or "wake-sleep"
    keys: tuple[str, ...]


def _regime(name: str, *args: str, keys: tuple[str, ...]) -> tuple[str, Regime]:
    return name, Regime(name, *args, keys=keys)


_MLP = ("hidden", "n_top", "batch_size")
REGIMES: dict[str, Regime] = dict(
    [
        _regime("random+backprop", "mlp", "logistic", "random", "backprop", keys=(*_MLP, "lr")),
        _regime(
            "pretrained+backprop",
            "mlp",
            "logistic",
            "pretrained",
            "backprop",
            keys=(*_MLP, "lr", *_PRETRAIN),
        ),
        _regime(
            "pretrained+wake-sleep",
            "dbn",
            "logistic",
            "pretrained",
            "wake-sleep",
            keys=("hidden", "n_top", *_PRETRAIN, *_WAKE_SLEEP),
        ),
        _regime(
            "wake-sleep+backprop",
            "dbn",
            "logistic",
            "wake-sleep",
            "backprop",
            keys=(*_MLP, *_PRETRAIN, *_WAKE_SLEEP, "dbn_lr"),
        ),
        _regime(
            "relu-random+backprop", "mlp", "relu", "random", "backprop", keys=(*_MLP, "relu_lr")
        ),
        _regime(
            "relu-pretrained+backprop",
            "mlp",
            "relu",
            "pretrained",
            "backprop",
            keys=(*_MLP, "relu_lr", "pretrain_epochs", "relu_pretrain_lr", "pretrain_batch_size"),
        ),
        _regime(
            "conv-random+backprop",
            "conv",
            "relu",
            "random",
            "backprop",
            keys=("conv_channels", "conv_lr", "batch_size"),
        ),
    ]
)
"""Every regime by name (= the runs' group), in the order they are recorded."""


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

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> GenerativeConfig:
        """The config of parsed registry settings (see :data:`PARAMS`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: _plain(v) for k, v in settings.items() if k in names})

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
        config = {k: values[k] for k in (*COMMON_KEYS, *spec.keys)}
        config.update(dataclasses.asdict(spec))
        del config["name"], config["keys"]
        return config


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_D = GenerativeConfig()
PARAMS = (
    Param(
        "regimes",
        str,
        _D.regimes,
        "which regimes (default: all): " + ", ".join(REGIMES),
        choices=tuple(REGIMES),
        many=True,
    ),
    Param("hidden", int, _D.hidden, "layers below the top, e.g. 500,500", low=1, many=True),
    Param("n_top", int, _D.n_top, "top layer", low=1),
    *DATA_PARAMS,
    Param("distort", bool, _D.distort, "train on elastically distorted digits"),
    Param("epochs", int, _D.epochs, "fine-tuning epochs of every regime", low=1),
    Param("pretrain_epochs", int, _D.pretrain_epochs, "pre-training epochs per layer", low=0),
    Param("pretrain_lr", float, _D.pretrain_lr, "pre-training step, logistic RBMs", low=0),
    Param("relu_pretrain_lr", float, _D.relu_pretrain_lr, "pre-training step, ReLU RBMs", low=0),
    Param("pretrain_batch_size", int, _D.pretrain_batch_size, "pre-training minibatch", low=1),
    Param("batch_size", int, _D.batch_size, "backprop minibatch", low=1),
    Param("lr", float, _D.lr, "SGD step, logistic MLPs", low=0),
    Param("relu_lr", float, _D.relu_lr, "SGD step, ReLU MLPs", low=0),
    Param("conv_lr", float, _D.conv_lr, "SGD step, convnet", low=0),
    Param("dbn_lr", float, _D.dbn_lr, "SGD step, joint model", low=0),
    Param("conv_channels", int, _D.conv_channels, "convnet channels, e.g. 16,32", low=1, many=True),
    Param("wake_sleep_lr", float, _D.wake_sleep_lr, "wake-sleep step", low=0),
    Param("wake_sleep_cd_k", int, _D.wake_sleep_cd_k, "Gibbs steps at the top", low=1),
    Param("wake_sleep_batch_size", int, _D.wake_sleep_batch_size, "wake-sleep minibatch", low=1),
)
"""The experiment's parameters as ``fspace experiment generative`` shows them."""
