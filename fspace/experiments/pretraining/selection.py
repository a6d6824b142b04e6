"""Learning rates chosen per depth and group on validation digits, as Erhan et al. did.

For every depth and group, one trial per candidate rate (fine-tuning rate, and for the
pre-trained group each pre-training rate) trains a network of the selection seed for the
trial budget and measures its error on the validation digits, which are held out from
training and disjoint from the probe suite (the test set). Each trial is kept in the
experiment (:meth:`fspace.store.Experiment.save_trial`) with its validation error, so the
choice can be audited and an interrupted search resumes where it stopped.

The choice itself is the pure function :func:`select`::

    rows = [{"depth": 1, "group": "random", "lr": 0.1, "pretrain_lr": None,
             "valid_error": 0.08, "status": "ok"}, ...]
    select(rows)[(1, "random")]["lr"]
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fspace.errors import ConfigError, FspaceError

if TYPE_CHECKING:
    from torch import nn

    from fspace.experiments.digits import Data
    from fspace.experiments.pretraining.config import PretrainingConfig


class TrialTrainer(Protocol):
    """What a trial needs of a trainer (:class:`.runner.PretrainingTrainer` is one)."""

    cfg: PretrainingConfig
    data: Data

    def initial_model(
        self, seed: int, depth: int, group: str, pretrain_lr: float | None
    ) -> nn.Module: ...

    def train_updates(
        self, model: nn.Module, seed: int, lr: float, start: int, stop: int
    ) -> float: ...


class SelectionError(FspaceError):
    """No trial of a depth and group finished, so no rate can be chosen."""


@dataclass(frozen=True)
class Trial:
    """One candidate: fine-tuning rate ``lr`` (and ``pretrain_lr`` for the pre-trained
    group, None for the random one) for networks of ``depth`` hidden layers."""

    depth: int
    group: str
    lr: float
    pretrain_lr: float | None = None

    def name(self, settings: Mapping[str, Any]) -> str:
        """A file name unique to this trial under ``settings``."""
        body = json.dumps({**settings, **self.__dict__}, sort_keys=True)
        digest = hashlib.sha256(body.encode()).hexdigest()[:10]
        plr = "" if self.pretrain_lr is None else f"-plr{self.pretrain_lr:g}"
        return f"{settings['pretraining']}-d{self.depth}-{self.group}-lr{self.lr:g}{plr}-{digest}"


def trials(cfg: PretrainingConfig) -> list[Trial]:
    """Every trial of ``cfg``: per depth, each fine-tuning rate for the random group and
    each (fine-tuning, pre-training) pair for the pre-trained group."""
    out = []
    for depth in cfg.depths:
        for lr in cfg.lrs():
            out.append(Trial(int(depth), "random", float(lr)))
            for p in cfg.pretrain_lrs():
                out.append(Trial(int(depth), "pretrained", float(lr), float(p)))
    return out


def trial_settings(cfg: PretrainingConfig) -> dict[str, Any]:
    """The settings a trial's result depends on besides the trial itself."""
    skip = ("seeds", "depths", "lr", "lr_grid", "pretrain_lr", "pretrain_lr_grid", "extra")
    settings = {k: v for k, v in cfg.to_json().items() if k not in skip}
    settings["select_updates"] = cfg.trial_updates
    return settings


def _finished(row: Mapping[str, Any]) -> bool:
    error = row.get("valid_error")
    return row.get("status") == "ok" and isinstance(error, (int, float)) and math.isfinite(error)


def select(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """The chosen trial of every (depth, group) in ``rows``: the lowest validation error.

    Each row has ``depth, group, lr, pretrain_lr, valid_error, status``. A trial that
    failed (status other than ``"ok"``, or an error that is not a finite number) is
    never chosen. Ties go to the smaller ``lr``, then the smaller ``pretrain_lr``: the
    more cautious step. The result maps (depth, group) to ``lr``, ``pretrain_lr``,
    ``valid_error``, ``lr_selected`` / ``pretrain_lr_selected`` (true where that rate
    had more than one candidate) and ``candidates`` (how many trials finished).
    Raises :class:`SelectionError` naming a (depth, group) whose trials all failed.
    """
    by_key: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((int(row["depth"]), str(row["group"])), []).append(row)
    chosen = {}
    for key, group_rows in sorted(by_key.items()):
        ok = [r for r in group_rows if _finished(r)]
        if not ok:
            why = sorted({str(r.get("error") or r.get("status")) for r in group_rows})
            reasons = "; ".join(why)
            raise SelectionError(
                f"every learning-rate trial of depth {key[0]}, group {key[1]!r} failed "
                f"({reasons}); try smaller rates in lr_grid / pretrain_lr_grid"
            )
        best = min(ok, key=lambda r: (r["valid_error"], r["lr"], r.get("pretrain_lr") or 0.0))
        chosen[key] = {
            "lr": float(best["lr"]),
            "pretrain_lr": best.get("pretrain_lr"),
            "valid_error": float(best["valid_error"]),
            "lr_selected": len({r["lr"] for r in group_rows}) > 1,
            "pretrain_lr_selected": len({r.get("pretrain_lr") for r in group_rows}) > 1,
            "candidates": len(ok),
        }
    return chosen


def run_trial(trainer: TrialTrainer, trial: Trial) -> dict[str, Any]:
    """Train the network of ``trial`` on the selection seed for the trial budget and
    return its record: the trial, ``valid_error`` at the end, the validation error and
    training loss at every recording interval, ``status`` ("ok" or "failed": diverged,
    or pre-training failed, with ``error`` saying why) and the seconds it took."""
    from fspace.experiments.digits import error_rate

    cfg, seed = trainer.cfg, trainer.cfg.select_seed
    valid_x, valid_y = trainer.data.valid_x, trainer.data.valid_y
    if valid_x is None or not len(valid_x):
        raise ConfigError("choosing learning rates needs validation digits: set n_valid > 0")
    record: dict[str, Any] = {**trial.__dict__, "seed": seed, "updates": cfg.trial_updates}
    curve, losses, began = [], [], time.perf_counter()
    try:
        model = trainer.initial_model(seed, trial.depth, trial.group, trial.pretrain_lr)
        for epoch in range(1, cfg.finetune_epochs + 1):
            start, stop = cfg.update_range(epoch, cfg.trial_updates)
            loss = trainer.train_updates(model, seed, trial.lr, start, stop)
            if stop > start and not math.isfinite(loss):
                raise ConfigError(f"fine-tuning diverged (loss {loss}) in interval {epoch}")
            losses.append(loss)
            curve.append(error_rate(model, valid_x, valid_y))
        record |= {"status": "ok", "valid_error": curve[-1]}
    except ConfigError as error:
        record |= {"status": "failed", "valid_error": None, "error": str(error)}
    record |= {"valid_curve": curve, "train_loss": losses}
    record["seconds"] = round(time.perf_counter() - began, 3)
    return record


def missing_trials(path: str | Path, cfg: PretrainingConfig) -> list[Trial]:
    """The trials of ``cfg`` the experiment at ``path`` does not keep yet (a trial kept
    with other settings counts as missing)."""
    from fspace.store import Experiment

    kept, settings = Experiment.create(path).trials(), trial_settings(cfg)
    return [
        t for t in trials(cfg) if (kept.get(t.name(settings)) or {}).get("settings") != settings
    ]


def keep_trial(path: str | Path, trainer: TrialTrainer, trial: Trial) -> dict[str, Any]:
    """Run ``trial`` (:func:`run_trial`) and keep its record in the experiment at ``path``;
    each trial writes its own file, so trials may run in parallel processes."""
    from fspace.store import Experiment

    settings = trial_settings(trainer.cfg)
    record = {**run_trial(trainer, trial), "settings": settings}
    Experiment.create(path).save_trial(trial.name(settings), record)
    return record


def chosen_rates(path: str | Path, cfg: PretrainingConfig) -> dict[tuple[int, str], dict]:
    """:func:`select` of the kept trials of ``cfg`` in the experiment at ``path``."""
    from fspace.store import Experiment

    missing = missing_trials(path, cfg)
    if missing:
        raise SelectionError(
            f"{len(missing)} learning-rate trials of {path} are not done (first: {missing[0]}); "
            "record the experiment again to run them"
        )
    kept, settings = Experiment(path).trials(), trial_settings(cfg)
    return select(kept[t.name(settings)] for t in trials(cfg))


def choose_rates(
    path: str | Path, trainer: TrialTrainer, *, progress: bool = True
) -> dict[tuple[int, str], dict[str, Any]]:
    """Run the trials of ``trainer.cfg`` not yet kept in the experiment at ``path``, keep
    each as it finishes, and return :func:`select` of all of them."""
    import torch
    from tqdm.auto import tqdm

    todo = missing_trials(path, trainer.cfg)
    before = torch.get_num_threads()
    # One thread, as the runs get (see fspace.experiments.runner.record): these small
    # products only wait on each other with more, and crawl on a busy machine.
    torch.set_num_threads(1)
    try:
        for trial in tqdm(todo, desc="lr trials", unit="trial", disable=not progress):
            keep_trial(path, trainer, trial)
    finally:
        torch.set_num_threads(before)
    return chosen_rates(path, trainer.cfg)


def format_rates(rates: Mapping[tuple[int, str], Mapping[str, Any]]) -> str:
    """Lines of text naming the rates of every depth and group, and how each was set."""
    lines = ["learning rates (chosen on the validation digits where a grid was given):"]
    for (depth, group), r in sorted(rates.items()):
        how = "chosen" if r.get("lr_selected") else "fixed"
        text = f"  depth {depth} {group:<10}  lr {r['lr']:g} ({how})"
        if group == "pretrained" and r.get("pretrain_lr") is not None:
            phow = "chosen" if r.get("pretrain_lr_selected") else "fixed"
            text += f", pre-training lr {r['pretrain_lr']:g} ({phow})"
        if r.get("valid_error") is not None:
            text += f"; validation error {r['valid_error']:.4f}"
        lines.append(text)
    return "\n".join(lines)


def kept_trials(path: str | Path) -> list[dict[str, Any]]:
    """The trial records kept in the experiment at ``path``, as rows (for a table)."""
    from fspace.store import Experiment

    rows = []
    for name, rec in sorted(Experiment(path).trials().items()):
        row = {k: rec.get(k) for k in ("depth", "group", "lr", "pretrain_lr", "valid_error")}
        rows.append({"trial": name, **row, "status": rec.get("status")})
    return rows
