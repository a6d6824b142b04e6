"""The pre-training experiment's runs spread over a Ray cluster.

Every worker records straight into one experiment directory on a filesystem all nodes
mount at the same path (see :mod:`fspace.distributed`). Example::

    record_pretraining_on_ray("/shared/exp", cfg, address="auto")

or ``fspace experiment pretraining --out /shared/exp --ray``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fspace.experiments.pretraining.config import GROUPS, PretrainingConfig


def pretraining_units(cfg: PretrainingConfig) -> list[tuple[int, str, tuple[int, ...]]]:
    """The independent pieces of work of ``cfg``: ``(seed, group, depths)``.

    A seed's pre-trained runs share its greedy stack (depth 2 reuses depth 1's first
    layer), so they form one unit, trained in depth order; every randomly initialised
    run is a unit of its own.
    """
    units = []
    for seed in cfg.seeds:
        for group in GROUPS:
            depths = tuple(int(d) for d in cfg.depths)
            if group == "pretrained":
                units.append((int(seed), group, depths))
            else:
                units.extend((int(seed), group, (d,)) for d in depths)
    return units


def record_unit(
    path: str, cfg: PretrainingConfig, seed: int, group: str, depths, rates=None
) -> list[str]:
    """Record the runs of one unit (see :func:`pretraining_units`) with the learning
    ``rates`` by (depth, group) (default: the fixed ones); what each run did."""
    from fspace.experiments.pretraining.runner import PretrainingTrainer
    from fspace.experiments.runner import record_run

    trainer = PretrainingTrainer(cfg, rates=rates)
    return [record_run(Path(path), trainer, trainer.run(seed, d, group)) for d in depths]


def record_trial(path: str, cfg: PretrainingConfig, trial) -> str:
    """Run and keep one learning-rate trial (see :mod:`.selection`); its status."""
    from fspace.experiments.pretraining.runner import PretrainingTrainer
    from fspace.experiments.pretraining.selection import keep_trial

    return keep_trial(Path(path), PretrainingTrainer(cfg), trial)["status"]


def record_pretraining_on_ray(
    path: str | os.PathLike,
    cfg: PretrainingConfig,
    *,
    address: str | None = None,
    cpus_per_task: int = 1,
    progress: bool = True,
) -> dict[str, int]:
    """:func:`~fspace.experiments.pretraining.run_pretraining` with its runs spread
    over a Ray cluster. Learning rates are chosen first: the trials the experiment does
    not yet keep run as tasks of their own (see :mod:`.selection`). Returns how many
    runs were recorded, resumed and skipped."""
    from fspace.distributed import absolute_path, connect, wait_all, with_threads
    from fspace.experiments.pretraining.runner import PretrainingTrainer
    from fspace.experiments.pretraining.selection import (
        chosen_rates,
        format_rates,
        missing_trials,
    )
    from fspace.store import Experiment

    ray = connect(address)
    path = absolute_path(path)
    trainer = PretrainingTrainer(cfg)
    Experiment.create(path).add_probes(trainer.suite)
    if cfg.selects:
        trial = ray.remote(num_cpus=cpus_per_task)(with_threads(record_trial, cpus_per_task))
        refs = [trial.remote(path, cfg, t) for t in missing_trials(path, cfg)]
        wait_all(ray, refs, progress, "lr trials")
        trainer.rates = chosen_rates(path, cfg)
        if progress:
            print(format_rates(trainer.rates))
    task = ray.remote(num_cpus=cpus_per_task)(with_threads(record_unit, cpus_per_task))
    units = pretraining_units(cfg)
    refs = [task.remote(path, cfg, *unit, trainer.rates) for unit in units]
    counts = {"recorded": 0, "resumed": 0, "skipped": 0}
    for outcomes in wait_all(ray, refs, progress, "runs"):
        for outcome in outcomes:
            counts[outcome] += 1
    return counts
