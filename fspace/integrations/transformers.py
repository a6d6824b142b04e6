"""A Hugging Face ``transformers`` callback that records a Trainer's run into an experiment.

Example::

    from fspace.integrations.transformers import FspaceCallback

    cb = FspaceCallback("checkpoints/bert", run="bert-s0", group="bert", seed=0,
                        probes=suite, model_factory="mymodels:make_bert")
    Trainer(model=model, args=args, train_dataset=train, eval_dataset=test,
            callbacks=[cb]).train()

The model is recorded before training (epoch 0) and at every epoch end; ``on=`` picks
epoch ends, evaluations and/or checkpoint saves instead. Each checkpoint carries the
metrics the trainer logged since the previous one (its ``log_history``: loss,
learning rate, ``eval_*``). When an evaluation follows an epoch end at the same step,
the checkpoint is written after it, so it carries the evaluation's metrics too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "fspace.integrations.transformers needs transformers: pip install 'fspace[transformers]'"
    ) from e

from fspace.errors import ConfigError
from fspace.record import Recorder

EVENTS = ("epoch", "evaluate", "save")


def _events(on: str | Iterable[str]) -> frozenset[str]:
    events = frozenset([on] if isinstance(on, str) else on)
    unknown = sorted(events - set(EVENTS))
    if not events or unknown:
        raise ConfigError(
            f"on={on!r}: record on one or more of {', '.join(EVENTS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    return events


class FspaceCallback(TrainerCallback):
    """Record a ``transformers.Trainer``'s model at epoch ends, evaluations or saves.

    Args:
        path: experiment directory.
        on: ``"epoch"`` (default), ``"evaluate"``, ``"save"``, or several of them; one
            step is recorded once even when several events fall on it.
        record_start: also record the model as training starts (epoch 0, step 0).
        **recorder_kwargs: ``run``, ``group``, ``seed``, ``probes``,
            ``model_factory``... passed to :class:`~fspace.Recorder`.

    Epoch ``k`` is the model after ``k`` full epochs (the trainer's fractional epoch,
    rounded down, for records in the middle of an epoch); the step is the trainer's
    ``global_step``. Only the main process records.
    """

    def __init__(
        self,
        path,
        *,
        on: str | Iterable[str] = "epoch",
        record_start: bool = True,
        **recorder_kwargs: Any,
    ) -> None:
        if "run" not in recorder_kwargs:
            raise ConfigError("FspaceCallback needs run=..., the id of the run to record")
        self.path = path
        self.on = _events(on)
        self.record_start = record_start
        self.recorder_kwargs = recorder_kwargs
        self.recorder: Recorder | None = None
        self._waiting = False  # an epoch ended; record after the evaluation that follows
        self._last_step = -1  # metrics logged after this step belong to the next record

    # events --------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        if not state.is_world_process_zero:
            return
        self.recorder = Recorder(self.path, **self.recorder_kwargs)
        if self.record_start and state.global_step == 0:
            self.recorder.record(model, epoch=0, step=0)
            self._last_step = 0

    def on_epoch_end(self, args, state, control, model=None, **kwargs) -> None:
        if self.recorder is None or "epoch" not in self.on:
            return
        if control.should_evaluate:  # the trainer evaluates next, on these same weights
            self._waiting = True
        else:
            self._record(state, model)

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs) -> None:
        if self.recorder is not None and ("evaluate" in self.on or self._waiting):
            self._record(state, model, metrics)

    def on_save(self, args, state, control, model=None, **kwargs) -> None:
        if self.recorder is not None and "save" in self.on:
            self._record(state, model)

    def on_step_begin(self, args, state, control, model=None, **kwargs) -> None:
        if self._waiting:  # the evaluation did not come: record before weights change
            self._record(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs) -> None:
        if self.recorder is None:
            return
        try:
            if self._waiting:
                self._record(state, model)
        finally:
            # trainer.evaluate() after training then records nothing
            recorder, self.recorder = self.recorder, None
            recorder.close()  # raises RecorderError if a checkpoint failed to write

    # recording -----------------------------------------------------------------------

    def _record(self, state, model, extra: dict | None = None) -> None:
        self._waiting = False
        if model is None:
            raise ConfigError("the Trainer passed no model to FspaceCallback")
        epoch = math.floor((state.epoch or 0) + 1e-6)
        step = state.global_step
        metrics = self._metrics(state.log_history, extra)
        self.recorder.record(model, epoch=epoch, step=step, metrics=metrics)
        self._last_step = step

    def _metrics(self, history: list[dict], extra: dict | None) -> dict[str, float]:
        """The latest value of every number the trainer logged since the last record."""
        out: dict[str, float] = {}
        for entry in [h for h in history if h.get("step", 0) > self._last_step] + [extra or {}]:
            for k, v in entry.items():
                if k in ("epoch", "step") or isinstance(v, bool):
                    continue
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out[k] = float(v)
        return out
