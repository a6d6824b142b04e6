"""The one runner of every ready-made experiment: claim each run, check its settings,
resume it after its last checkpoint, loop over the runs of every seed.

An experiment supplies a :class:`Trainer`: the plan of its runs, how a run's model
starts, is rebuilt and trains for one epoch. :func:`record` does the rest, the same way
for the built-in experiments and for plug-ins::

    class Noise(Trainer):
        def __init__(self, seeds, epochs):
            self.seeds, self.epochs = seeds, epochs
            self.suite = ProbeSuite.from_array(np.random.default_rng(0).random((50, 4)))

        def plan(self):
            for seed in self.seeds:
                yield RunPlan(f"noise-s{seed}", "noise", seed, {"epochs": self.epochs},
                              self.epochs, "my_pkg:make_net", {"seed": seed})

        def build(self, run):
            return make_net(**run.model_kwargs)

        def start(self, run, exp):
            return self.build(run)

        def train_epoch(self, model, run, epoch):
            ...  # one epoch of training
            return {"train_loss": loss}, epoch * 100   # metrics, step

    record("checkpoints/noise", Noise((0, 1), 5))

A rerun skips complete runs and finishes interrupted ones; a run recorded with other
settings is refused (:class:`~fspace.errors.RunError`) rather than mixed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fspace.errors import RunError

if TYPE_CHECKING:
    from torch import nn

    from fspace.probes import ProbeSuite
    from fspace.store import CheckpointInfo, Experiment

OUTCOMES = ("recorded", "resumed", "skipped")


@dataclass(frozen=True)
class RunPlan:
    """One run of an experiment: its id, group and seed, the settings recorded with it
    (a rerun with other settings is refused), the last epoch to train, and the model
    factory that rebuilds its architecture for offline evaluation."""

    run_id: str
    group: str
    seed: int
    config: dict[str, Any]
    epochs: int
    model_factory: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)


class Trainer(ABC):
    """What an experiment tells the runner; see the module docstring for an example.

    ``suite`` is the probe suite every run is recorded with. ``renamed`` maps setting
    names of older versions of the experiment to today's, so their runs still resume.
    """

    suite: ProbeSuite
    renamed: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def plan(self) -> Iterable[RunPlan]:
        """Every run, in the order they are recorded (seed-major, so a seed's shared
        work is done once)."""

    @abstractmethod
    def build(self, run: RunPlan) -> nn.Module:
        """A fresh model of ``run``'s architecture (its weights are then loaded)."""

    @abstractmethod
    def start(self, run: RunPlan, exp: Experiment) -> nn.Module:
        """The model of ``run`` at epoch 0, before any training."""

    @abstractmethod
    def train_epoch(
        self, model: nn.Module, run: RunPlan, epoch: int
    ) -> tuple[dict[str, float], int]:
        """Train ``model`` for ``epoch`` (1-based); its metrics and the step reached."""

    def evaluate(self, model: nn.Module, run: RunPlan) -> dict[str, float]:
        """Metrics recorded with every checkpoint of ``run`` (e.g. the test error)."""
        return {}


def check_settings(
    exp: Experiment, run_id: str, config: Mapping[str, Any], renamed: Mapping[str, str] = {}
) -> list[CheckpointInfo]:
    """The checkpoints ``run_id`` already has in ``exp`` (none if it is new).

    Raises :class:`RunError` naming the settings that differ when the run was recorded
    with others; keys of ``renamed`` in the recorded settings count as their new names.
    """
    if run_id not in exp.run_ids():
        return []
    recorded = {renamed.get(k, k): v for k, v in exp.run(run_id).config.items()}
    if recorded != dict(config):
        changed = sorted(k for k in set(recorded) | set(config) if recorded.get(k) != config.get(k))
        raise RunError(
            f"run {run_id!r} in {exp.path} was recorded with other settings "
            f"({', '.join(changed)}); record this configuration into another experiment"
        )
    return exp.checkpoints(run_id)


def record_run(path: str | Path, trainer: Trainer, run: RunPlan) -> str:
    """Record ``run`` into the experiment at ``path``, resuming after its last stored
    checkpoint. Returns ``"recorded"``, ``"resumed"`` or ``"skipped"`` (complete)."""
    from fspace.record import Recorder
    from fspace.store import Experiment

    exp = Experiment.create(path)
    done = check_settings(exp, run.run_id, run.config, trainer.renamed)
    last = max((c.epoch for c in done), default=-1)
    if last >= run.epochs:
        return "skipped"
    with Recorder(
        path,
        run=run.run_id,
        group=run.group,
        seed=run.seed,
        config=run.config,
        probes=trainer.suite,
        model_factory=run.model_factory,
        model_kwargs=run.model_kwargs,
    ) as rec:
        if last < 0:
            model = trainer.start(run, exp)
            rec.record(model, epoch=0, metrics=trainer.evaluate(model, run))
        else:
            model = trainer.build(run)
            model.load_state_dict(exp.load_weights(next(c for c in done if c.epoch == last)))
        for epoch in range(max(last, 0) + 1, run.epochs + 1):
            metrics, step = trainer.train_epoch(model, run, epoch)
            metrics = {**metrics, **trainer.evaluate(model, run)}
            rec.record(model, epoch=epoch, step=step, metrics=metrics)
    return "resumed" if last >= 0 else "recorded"


def record(
    path: str | Path,
    trainer: Trainer,
    *,
    runs: Iterable[RunPlan] | None = None,
    progress: bool = True,
    threads: int | None = 1,
) -> dict[str, int]:
    """Record every run of ``trainer``'s plan (or ``runs``) into ``path``.

    Complete runs are skipped and interrupted ones finished. Torch runs with ``threads``
    threads meanwhile (None: unchanged): the small minibatch products of these
    experiments run fastest single-threaded; several threads mostly wait on each other.
    Returns how many runs were recorded, resumed and skipped.
    """
    import torch
    from tqdm.auto import tqdm

    from fspace.store import Experiment

    Experiment.create(path).add_probes(trainer.suite)
    counts = dict.fromkeys(OUTCOMES, 0)
    plan = list(trainer.plan() if runs is None else runs)
    bar = tqdm(plan, desc="runs", unit="run", disable=not progress)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, threads))
    try:
        for run in bar:
            bar.set_postfix_str(run.run_id)
            counts[record_run(path, trainer, run)] += 1
    finally:
        torch.set_num_threads(before)
    return counts
