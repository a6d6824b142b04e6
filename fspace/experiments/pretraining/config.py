"""Settings of the pre-training experiment and the parameters ``fspace experiment
pretraining`` shows for them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fspace.errors import ConfigError
from fspace.experiments.base import DATA_PARAMS
from fspace.registry import Param

GROUPS = ("pretrained", "random")
SCHEMES = ("rbm", "dae")
"""Pre-training schemes: a stack of RBMs or of denoising autoencoders."""
RENAMED = {"method": "pretraining"}
"""Settings recorded under another name by earlier versions: old name -> today's."""


@dataclass(frozen=True)
class PretrainingConfig:
    """Settings of a pre-training experiment; every field is recorded with each run.

    ``pretraining`` is the pre-training scheme (:data:`SCHEMES`).
    """

    dataset: str = "mnist5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (1, 2, 3)
    pretraining: str = "rbm"
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
        if self.pretraining not in SCHEMES:
            raise ConfigError(f"pretraining must be 'rbm' or 'dae', got {self.pretraining!r}")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        bad = [d for d in self.depths if not 1 <= int(d) <= 5]
        if bad or not self.depths:
            raise ConfigError(f"depths must be between 1 and 5 hidden layers, got {self.depths}")
        for name in ("width", "n_probe", "finetune_epochs", "batch_size", "pretrain_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.pretrain_epochs) < 0:
            raise ConfigError(f"pretrain_epochs must be at least 0, got {self.pretrain_epochs}")
        if not (self.lr > 0 and self.pretrain_lr > 0):
            raise ConfigError(f"learning rates must be > 0, got {self.lr}, {self.pretrain_lr}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PretrainingConfig:
        """The config of parsed registry settings (see :data:`PARAMS`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(
            **{k: tuple(v) if k == "depths" else v for k, v in settings.items() if k in names}
        )

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def run_id(self, depth: int, seed: int, group: str) -> str:
        return f"{self.pretraining}-d{depth}-s{seed}-{group}"

    def run_config(self, depth: int) -> dict[str, Any]:
        """The settings recorded with a run of ``depth`` hidden layers."""
        config = {k: v for k, v in self.to_json().items() if k not in ("seeds", "depths")}
        config["depth"] = depth
        return config

    def plan(self) -> Iterator[tuple[int, int, str]]:
        """(seed, depth, group) of every run, seed-major so a seed's data is reused."""
        for seed in self.seeds:
            for depth in self.depths:
                for group in GROUPS:
                    yield int(seed), int(depth), group


_D = PretrainingConfig()
PARAMS = (
    Param("depths", int, _D.depths, "hidden layers of each run, e.g. 1,2,3", 1, 5, many=True),
    Param("pretraining", str, _D.pretraining, "pre-training scheme", choices=SCHEMES),
    Param("width", int, _D.width, "hidden units per layer", low=1),
    *DATA_PARAMS,
    Param("pretrain_epochs", int, _D.pretrain_epochs, "pre-training epochs per layer", low=0),
    Param("pretrain_lr", float, _D.pretrain_lr, "pre-training step size", low=0),
    Param("pretrain_batch_size", int, _D.pretrain_batch_size, "pre-training minibatch", low=1),
    Param("finetune_epochs", int, _D.finetune_epochs, "fine-tuning epochs", low=1),
    Param("lr", float, _D.lr, "fine-tuning SGD step", low=0),
    Param("batch_size", int, _D.batch_size, "fine-tuning minibatch", low=1),
    Param("distort", bool, _D.distort, "train on elastically distorted digits"),
)
"""The experiment's parameters as ``fspace experiment pretraining`` shows them."""
