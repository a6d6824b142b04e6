"""The pre-training experiment: unsupervised pre-training + fine-tuning versus random
initialisation (Erhan, Bengio et al., JMLR 2010), recorded in function space.

One package holds all of it: :mod:`.config` (settings, their parameters and the
``demo`` and ``paper`` presets), :mod:`.selection` (learning rates chosen on validation
digits), :mod:`.runner` (recording the runs), :mod:`.analysis` (numbers),
:mod:`.evidence` (the chance rule, the table beside the paper, separation intervals),
:mod:`.figures`, :mod:`.report` (figures and numbers written to a folder) and
:mod:`.distributed` (runs on a Ray cluster). Importing the package registers the
experiment as ``pretraining``; the rest is imported on use.

Example::

    cfg = PretrainingConfig(**{**PRESETS["demo"], "seeds": (0, 1)})
    run_pretraining("checkpoints/pretraining", cfg)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fspace.experiments.base import EXPERIMENTS
from fspace.experiments.pretraining.config import (
    GROUPS,
    PARAMS,
    PRESETS,
    SCHEMES,
    PretrainingConfig,
)

_LAZY = {
    "PretrainingTrainer": "runner",
    "run_pretraining": "runner",
    "write_report": "report",
    "FIGURES": "report",
}

__all__ = ["GROUPS", "PARAMS", "PRESETS", "SCHEMES", "PretrainingConfig", "run", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def report(out: Path, folder: Path, *, progress: bool = True) -> tuple[str, list[Path]]:
    """Write the figures and numbers of the experiment at ``out`` into ``folder``."""
    from fspace.experiments.pretraining.analysis import format_summary
    from fspace.experiments.pretraining.report import write_report

    numbers, written = write_report(out, folder, progress=progress)
    return format_summary(numbers), written


def on_ray(out: Path, settings: dict, *, address: str | None, progress: bool = True) -> dict:
    """Record the experiment with its runs spread over the Ray cluster at ``address``."""
    from fspace.experiments.pretraining.distributed import record_pretraining_on_ray

    cfg = PretrainingConfig.from_settings(settings)
    return record_pretraining_on_ray(out, cfg, address=address, progress=progress)


@EXPERIMENTS.register(
    "pretraining",
    label="Pre-training",
    help="unsupervised pre-training + fine-tuning vs random initialisation",
    params=PARAMS,
    out="checkpoints/pretraining",
    description="For every depth and seed, fine-tune one MLP initialised from a greedily "
    "pre-trained stack (RBMs or denoising autoencoders) and one from small random "
    "weights, with the same minibatches of distorted digits, each group's learning rate "
    "chosen per depth on validation digits; every recording interval is recorded in "
    "function space. --preset demo is what `fspace demo` records; --preset paper has "
    "depths 1-5, ten seeds and 100 units (under an hour of one core; resumable, or use "
    "--ray; --width 800 is the paper's size).",
    report=report,
    ray=on_ray,
    presets=PRESETS,
    deprecated={"method": "pretraining"},
)
def run(out: Path, settings: dict, *, progress: bool = True) -> dict[str, int]:
    """Record the pre-training experiment of ``settings`` into ``out``."""
    from fspace.experiments.pretraining.runner import run_pretraining

    return run_pretraining(out, PretrainingConfig.from_settings(settings), progress=progress)
