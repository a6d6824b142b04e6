"""Ready-made experiments that record into an fspace experiment directory, as plug-ins.

:data:`EXPERIMENTS` lists them (``pretraining``, ``generative`` and any registered by
another package through the entry-point group ``fspace.experiments``);
``fspace experiment NAME`` is built from it. Each experiment is one package (config,
runner, analysis, figures, report, dashboard page) on the shared runner
:mod:`fspace.experiments.runner`; see :mod:`fspace.experiments.base` for what an entry
provides.
"""

# Importing the built-in experiments registers them.
from fspace.experiments import generative, pretraining
from fspace.experiments.base import DATA_PARAMS, EXPERIMENTS, SEEDS, run_experiment

__all__ = ["DATA_PARAMS", "EXPERIMENTS", "SEEDS", "generative", "pretraining", "run_experiment"]
