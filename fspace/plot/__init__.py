"""Figures of embedded training runs, as pure functions of an embedding's frame."""

from fspace.plot.style import GroupStyle, group_style
from fspace.plot.trajectories import clicked_checkpoint, trajectory_figure

__all__ = ["GroupStyle", "clicked_checkpoint", "group_style", "trajectory_figure"]
