"""Figures of embedded training runs and of experiment results, as pure functions."""

from fspace.plot.results import (
    error_depth_figure,
    error_histogram_figure,
    error_table_figure,
    receptive_fields_figure,
    weight_change_figure,
)
from fspace.plot.style import GroupStyle, group_style
from fspace.plot.trajectories import clicked_checkpoint, trajectory_figure

__all__ = [
    "GroupStyle",
    "clicked_checkpoint",
    "error_depth_figure",
    "error_histogram_figure",
    "error_table_figure",
    "group_style",
    "receptive_fields_figure",
    "trajectory_figure",
    "weight_change_figure",
]
