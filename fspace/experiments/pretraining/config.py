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
INITS = ("uniform", "normalized")
"""Initial weight schemes, those of :data:`fspace.models.mlp.INITS` (named here so that
reading the settings imports no torch)."""
RENAMED = {"method": "pretraining"}
"""Settings recorded under another name by earlier versions: old name -> today's."""


@dataclass(frozen=True)
class PretrainingConfig:
    """Settings of a pre-training experiment; every field is recorded with each run.

    ``pretraining`` is the pre-training scheme (:data:`SCHEMES`). Budgets are counted in
    updates (minibatches) drawn from each seed's stream of training digits (distorted
    afresh for every update with ``distort``): ``pretrain_updates`` per pre-trained
    layer, ``finetune_updates`` of fine-tuning, recorded at ``finetune_epochs`` equal
    intervals (the "epochs" of the recorded checkpoints, 0 being the start).

    With ``lr_grid`` (and ``pretrain_lr_grid``), each group's rates are chosen per depth
    on ``n_valid`` validation digits, by trials of ``select_updates`` updates (default:
    the fine-tuning budget) on the seed ``select_seed`` (see :mod:`.selection`); else
    ``lr`` and ``pretrain_lr`` are used as given.

    ``init`` is the scheme of the initial weights of every layer that is not
    pre-trained: the whole network of the random group and the output layer of the
    pre-trained group (:data:`fspace.models.mlp.INITS`: ``uniform`` as Erhan et al.,
    ``normalized`` as Glorot & Bengio 2010).
    """

    dataset: str = "mnist5k"
    seeds: tuple[int, ...] = (0, 1, 2)
    depths: tuple[int, ...] = (1, 2, 3)
    pretraining: str = "rbm"
    width: int = 500
    init: str = "uniform"
    n_probe: int = 1000
    n_valid: int = 500
    n_train: int | None = None
    pretrain_updates: int = 2000
    pretrain_lr: float = 0.05
    pretrain_lr_grid: tuple[float, ...] | None = None
    pretrain_batch_size: int = 50
    finetune_updates: int = 5000
    finetune_epochs: int = 10
    lr: float = 0.3
    lr_grid: tuple[float, ...] | None = (0.1, 0.3, 1.0, 3.0)
    batch_size: int = 32
    select_updates: int | None = None
    select_seed: int = 1000
    distort: bool = True
    split_seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pretraining not in SCHEMES:
            raise ConfigError(f"pretraining must be 'rbm' or 'dae', got {self.pretraining!r}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {self.init!r}")
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed")
        bad = [d for d in self.depths if not 1 <= int(d) <= 5]
        if bad or not self.depths:
            raise ConfigError(f"depths must be between 1 and 5 hidden layers, got {self.depths}")
        for name in ("width", "n_probe", "finetune_epochs", "batch_size", "pretrain_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("pretrain_updates", "n_valid"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must be at least 0, got {getattr(self, name)}")
        if int(self.finetune_updates) < int(self.finetune_epochs):
            raise ConfigError(
                f"finetune_updates ({self.finetune_updates}) must be at least finetune_epochs "
                f"({self.finetune_epochs}): every recorded epoch needs an update"
            )
        if self.select_updates is not None and int(self.select_updates) < 1:
            raise ConfigError(f"select_updates must be at least 1, got {self.select_updates}")
        rates = [self.lr, self.pretrain_lr, *(self.lr_grid or ()), *(self.pretrain_lr_grid or ())]
        if not all(r > 0 for r in rates):
            raise ConfigError(f"learning rates must be > 0, got {rates}")
        if self.selects and not self.n_valid:
            raise ConfigError(
                "choosing learning rates from lr_grid/pretrain_lr_grid needs validation "
                "digits: set n_valid > 0, or give a single rate"
            )

    @property
    def selects(self) -> bool:
        """Whether any rate is chosen on the validation digits (a grid of two or more)."""
        return len(self.lr_grid or ()) > 1 or len(self.pretrain_lr_grid or ()) > 1

    def lrs(self) -> tuple[float, ...]:
        """The fine-tuning rates to try (one: no choice)."""
        return tuple(self.lr_grid) if self.lr_grid else (self.lr,)

    def pretrain_lrs(self) -> tuple[float, ...]:
        """The pre-training rates to try (one: no choice)."""
        return tuple(self.pretrain_lr_grid) if self.pretrain_lr_grid else (self.pretrain_lr,)

    def update_range(self, epoch: int, updates: int | None = None) -> tuple[int, int]:
        """The fine-tuning updates ``start .. stop - 1`` of recorded epoch ``epoch``
        (1-based): ``updates`` (default ``finetune_updates``) split into
        ``finetune_epochs`` near-equal intervals."""
        total, parts = int(updates or self.finetune_updates), int(self.finetune_epochs)
        return (epoch - 1) * total // parts, epoch * total // parts

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PretrainingConfig:
        """The config of parsed registry settings (see :data:`PARAMS`)."""
        names = {f.name for f in dataclasses.fields(cls)}
        tuples = ("depths", "seeds", "lr_grid", "pretrain_lr_grid")
        return cls(
            **{
                k: tuple(v) if k in tuples and v is not None else v
                for k, v in settings.items()
                if k in names
            }
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values. ``init`` is left out when it is ``uniform``,
        the scheme of every run recorded before the setting existed, so that those
        runs and learning-rate trials still match and resume."""
        values = json.loads(json.dumps(dataclasses.asdict(self)))
        if values["init"] == "uniform":
            del values["init"]
        return values

    def run_id(self, depth: int, seed: int, group: str) -> str:
        return f"{self.pretraining}-d{depth}-s{seed}-{group}"

    def run_config(self, depth: int, group: str, rates: Mapping[str, Any]) -> dict[str, Any]:
        """The settings recorded with a run of ``depth`` hidden layers in ``group``,
        trained with ``rates`` (``lr``, ``pretrain_lr``, and whether each was chosen on
        the validation digits: ``lr_selected``, ``pretrain_lr_selected``)."""
        skip = ("seeds", "depths", "select_seed", "select_updates")
        config = {k: v for k, v in self.to_json().items() if k not in skip}
        config.update(depth=depth, lr=float(rates["lr"]), lr_selected=bool(rates["lr_selected"]))
        if self.selects:
            config.update(select_seed=self.select_seed, select_updates=self.trial_updates)
        if group == "pretrained":
            config.update(
                pretrain_lr=float(rates["pretrain_lr"]),
                pretrain_lr_selected=bool(rates["pretrain_lr_selected"]),
            )
        else:  # nothing is pre-trained: no pre-training settings
            for key in ("pretrain_lr", "pretrain_lr_grid", "pretrain_updates"):
                config.pop(key)
            config.pop("pretrain_batch_size")
        return config

    @property
    def trial_updates(self) -> int:
        """Fine-tuning updates of one selection trial."""
        return int(self.select_updates or self.finetune_updates)

    def plan(self) -> Iterator[tuple[int, int, str]]:
        """(seed, depth, group) of every run, seed-major so a seed's data is reused."""
        for seed in self.seeds:
            for depth in self.depths:
                for group in GROUPS:
                    yield int(seed), int(depth), group


PRESETS: dict[str, dict[str, Any]] = {
    "demo": dict(
        seeds=(0, 1, 2, 3),
        depths=(1, 2, 3),
        width=100,
        n_valid=500,
        pretrain_updates=600,
        finetune_updates=2000,
        finetune_epochs=10,
        lr_grid=(0.3, 1.0, 3.0),
        pretrain_lr_grid=None,
    ),
    "paper": dict(
        seeds=tuple(range(10)),
        depths=(1, 2, 3, 4, 5),
        width=100,
        init="normalized",
        n_valid=1000,
        pretrain_updates=4000,
        finetune_updates=10000,
        finetune_epochs=10,
        lr_grid=(0.3, 1.0, 3.0),
        pretrain_lr_grid=(0.01, 0.05),
        select_updates=5000,
    ),
}
"""Named settings: ``demo`` (what ``fspace demo`` records, a few minutes on two cores)
and ``paper`` (depths 1-5, ten seeds, 10,000 fine-tuning updates; under an hour of
one core). ``paper`` starts the layers that are not pre-trained with Glorot & Bengio's
normalized weights, in both groups so that they differ only in pre-training: with
``uniform`` weights, sigmoid nets of depth 5 stay at chance for thousands of updates.
It has 100 units per layer where the paper had 800-1000; ``--width 800`` is the
full-size run (about 3 hours of one core, see ``benchmarks/bench_paper_preset.py``).
Settings given explicitly override a preset's."""

_D = PretrainingConfig()
PARAMS = (
    Param("depths", int, _D.depths, "hidden layers of each run, e.g. 1,2,3", 1, 5, many=True),
    Param("pretraining", str, _D.pretraining, "pre-training scheme", choices=SCHEMES),
    Param("width", int, _D.width, "hidden units per layer", low=1),
    Param(
        "init",
        str,
        _D.init,
        "initial weights of the layers not pre-trained: uniform ±1/sqrt(fan_in) (Erhan et "
        "al.) or normalized (Glorot & Bengio 2010)",
        choices=INITS,
    ),
    *DATA_PARAMS,
    Param("n_valid", int, _D.n_valid, "validation digits for choosing learning rates", low=0),
    Param("pretrain_updates", int, _D.pretrain_updates, "pre-training updates per layer", low=0),
    Param("pretrain_lr", float, _D.pretrain_lr, "pre-training step size (no grid)", low=0),
    Param(
        "pretrain_lr_grid",
        float,
        _D.pretrain_lr_grid,
        "pre-training step sizes to choose from on the validation digits, e.g. 0.01,0.05",
        low=0,
        many=True,
    ),
    Param("pretrain_batch_size", int, _D.pretrain_batch_size, "pre-training minibatch", low=1),
    Param("finetune_updates", int, _D.finetune_updates, "fine-tuning SGD updates", low=1),
    Param("finetune_epochs", int, _D.finetune_epochs, "recorded intervals of fine-tuning", low=1),
    Param("lr", float, _D.lr, "fine-tuning SGD step (no grid)", low=0),
    Param(
        "lr_grid",
        float,
        _D.lr_grid,
        "fine-tuning steps to choose from per depth and group on the validation digits "
        "(one value: no choice)",
        low=0,
        many=True,
    ),
    Param("batch_size", int, _D.batch_size, "fine-tuning minibatch", low=1),
    Param("select_updates", int, _D.select_updates, "updates of a selection trial", low=1),
    Param("distort", bool, _D.distort, "train on elastically distorted digits"),
)
"""The experiment's parameters as ``fspace experiment pretraining`` shows them."""
