"""Figures of embedded training runs, as pure functions. The result figures of a
ready-made experiment live in its package (:mod:`fspace.experiments.pretraining.figures`,
...), on the shared pieces of :mod:`fspace.plot.common`."""

from fspace.plot.style import GroupStyle, group_style
from fspace.plot.trajectories import clicked_checkpoint, trajectory_figure

__all__ = ["GroupStyle", "clicked_checkpoint", "group_style", "trajectory_figure"]
