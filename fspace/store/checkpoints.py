"""Checkpoint files: what their headers say, checked, and how they are written.

``runs/RUN/checkpoints/eEPOCH-sSTEP.safetensors`` holds a state dict; its header holds
the epoch, step, metrics and a checksum. A file's name must be the one its header's
epoch and step give, so a copy or a renamed file is reported instead of silently
standing in for (or shadowing) the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fspace.errors import CheckpointError, RunError, StoreWriteError
from fspace.store import files, layout


@dataclass(frozen=True)
class CheckpointInfo:
    """Metadata of one stored checkpoint; its weights stay on disk until asked for."""

    run: str
    epoch: int
    step: int
    metrics: dict[str, float]
    path: Path
    created: float = 0.0

    @property
    def name(self) -> str:
        return layout.checkpoint_name(self.epoch, self.step)

    @property
    def key(self) -> str:
        """Unique key of the checkpoint within its experiment: ``run/name``."""
        return f"{self.run}/{self.name}"


def read_info(run: str, path: Path) -> CheckpointInfo:
    """The checkpoint stored at ``path`` in ``run``, from its header only; CheckpointError
    naming the file for anything that makes it unusable."""
    _, meta = files.read_header(path)
    try:
        info = CheckpointInfo(
            run=run,
            epoch=int(meta["epoch"]),
            step=int(meta["step"]),
            metrics={str(k): _finite(v) for k, v in (meta.get("metrics") or {}).items()},
            path=path,
            created=_finite(meta.get("created", 0.0), 0.0),
        )
        name = info.name  # ConfigError for an epoch or step out of range
    except (KeyError, TypeError, ValueError) as e:  # ConfigError is a ValueError
        raise CheckpointError(f"{path}: checkpoint metadata is malformed ({e})") from None
    if path.name != f"{name}.safetensors":
        raise CheckpointError(
            f"{path}: holds checkpoint {name} of run {run!r} under another file name "
            f"(a copy or a renamed file); skipped, rename or delete it"
        )
    return info


def write(root: Path, run: str, weights: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write checkpoint ``meta["epoch"]``, ``meta["step"]`` of ``run`` atomically, never
    replacing one (see :meth:`fspace.store.Experiment.write_checkpoint`)."""
    name = layout.checkpoint_name(meta["epoch"], meta["step"])
    path = layout.writable(
        root, layout.checkpoint_path(root, layout.check_name(run, "run id"), name)
    )
    try:
        files.write(path, weights, meta, exclusive=True)
    except FileExistsError:
        raise RunError(
            f"{path} exists already: another process wrote checkpoint {run}/{name}, so "
            f"this one was not saved"
        ) from None
    except OSError as e:
        raise StoreWriteError(f"cannot write {path} ({e.strerror})") from None
    return path


def _finite(value: Any, default: float = math.nan) -> float:
    """``value`` as a float; infinity or NaN (which older files may hold) as ``default``."""
    out = float(value)
    return out if math.isfinite(out) else default
