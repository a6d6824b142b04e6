"""Analyses of recorded experiments: pure functions of points frames, weights and
function vectors, shared by the command line and the dashboard."""

from fspace.analysis.pretraining import (
    error_summary,
    final_errors,
    format_summary,
    group_separation,
    receptive_fields,
    separation,
    summary,
    weight_changes,
)

__all__ = [
    "error_summary",
    "final_errors",
    "format_summary",
    "group_separation",
    "receptive_fields",
    "separation",
    "summary",
    "weight_changes",
]
