"""The generative experiment: generative and discriminative training regimes side by
side (Hinton, Osindero & Teh 2006), recorded in function space.

One package holds all of it: :mod:`.config` (settings, the regimes and their
parameters), :mod:`.regimes` (how each regime starts and trains), :mod:`.runner`
(recording the runs), :mod:`.analysis` (numbers), :mod:`.figures`, :mod:`.report`
and :mod:`.page` (the dashboard's regimes page). Importing the package registers the
experiment as ``generative``; the rest is imported on use.

Example::

    cfg = GenerativeConfig(seeds=(0, 1), hidden=(300, 300), n_top=600, epochs=8)
    run_generative("checkpoints/generative", cfg)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fspace.experiments.base import EXPERIMENTS
from fspace.experiments.generative.config import PARAMS, REGIMES, GenerativeConfig, Regime

_LAZY = {
    "GenerativeTrainer": "runner",
    "run_generative": "runner",
    "generative_report": "report",
    "write_generative_report": "report",
}

__all__ = ["PARAMS", "REGIMES", "GenerativeConfig", "Regime", "run", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def report(out: Path, folder: Path, *, progress: bool = True) -> tuple[str, list[Path]]:
    """Write the figures and numbers of the experiment at ``out`` into ``folder``."""
    from fspace.experiments.generative.analysis import format_generative_summary
    from fspace.experiments.generative.report import write_generative_report

    numbers, written = write_generative_report(out, folder, progress=progress)
    return format_generative_summary(numbers), written


def has_runs(exp: Any) -> bool:
    """Whether the store experiment ``exp`` holds runs of this experiment (its page applies)."""
    return any(run.group in REGIMES for run in exp.runs())


@EXPERIMENTS.register(
    "generative",
    label="Generative",
    help="backprop vs wake-sleep fine-tuning, rectified and convolutional nets",
    params=PARAMS,
    out="checkpoints/generative",
    description="Record the training regimes of the generative experiment (random init, "
    "pre-training + backprop, pre-training + contrastive wake-sleep, rectified units, a "
    "convolutional net) into one experiment, so they share one function-space map.",
    report=report,
    page={
        "name": "generative",
        "module": "fspace.app.pages.generative",
        "label": "Generative",
        "order": 3,
        "applies": has_runs,
        "redirect_from": ("/regimes",),
    },
)
def run(out: Path, settings: dict, *, progress: bool = True) -> dict[str, int]:
    """Record the generative experiment of ``settings`` into ``out``."""
    from fspace.experiments.generative.runner import run_generative

    return run_generative(out, GenerativeConfig.from_settings(settings), progress=progress)
