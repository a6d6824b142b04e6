"""A PyTorch Lightning callback that records a run into an fspace experiment.

Example::

    from fspace.integrations.lightning import FspaceCallback

    cb = FspaceCallback("checkpoints/mnist", run="rand-s0", group="random", seed=0,
                        probes=suite, model_factory="mypkg.models:make_model")
    lightning.Trainer(max_epochs=10, callbacks=[cb]).fit(module, data)

The LightningModule itself is recorded, so its state dict must match what
``model_factory`` builds. It is called on the probe suite by the suite's structure
(``module(x)``, ``module(**inputs)`` for a dict of ``input_ids`` and ``attention_mask``,
``module(*inputs)``), and may return a tensor, a tuple, a dict or a Hugging Face
``ModelOutput``; ``kind``, ``output``, ``output_key``, ``extract`` and ``forward`` go to
the :class:`~fspace.Recorder` as they are (see :mod:`fspace.outputs`).
"""

from __future__ import annotations

import math
from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as e:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "fspace.integrations.lightning needs PyTorch Lightning: pip install 'fspace[lightning]'"
    ) from e

from fspace.errors import ConfigError
from fspace.record import Recorder


class FspaceCallback(Callback):
    """Record the model before training and after every ``every_n_epochs`` epochs.

    Epoch 0 is the model as training starts; epoch ``k`` is the model after ``k``
    training epochs. Scalar entries of ``trainer.callback_metrics`` become the
    checkpoint's metrics. All other keyword arguments go to :class:`~fspace.Recorder`.
    """

    def __init__(
        self, path, *, every_n_epochs: int = 1, record_start: bool = True, **recorder_kwargs: Any
    ) -> None:
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs must be at least 1, got {every_n_epochs}")
        self.path = path
        self.every_n_epochs = every_n_epochs
        self.record_start = record_start
        self.recorder_kwargs = recorder_kwargs
        self.recorder: Recorder | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.global_rank != 0:
            return
        self.recorder = Recorder(self.path, **self.recorder_kwargs)
        if self.record_start and trainer.current_epoch == 0:
            self.recorder.record(pl_module, epoch=0, step=0, metrics=self._metrics(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if self.recorder is None or epoch % self.every_n_epochs:
            return
        self.recorder.record(
            pl_module, epoch=epoch, step=trainer.global_step, metrics=self._metrics(trainer)
        )

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self.recorder is not None:
            self.recorder.close()  # keep what was recorded before the failure

    @staticmethod
    def _metrics(trainer) -> dict[str, float]:
        out = {}
        for k, v in trainer.callback_metrics.items():
            try:
                value = float(v)
            except (TypeError, ValueError, RuntimeError):
                continue
            if math.isfinite(value):
                out[k] = value
        return out
