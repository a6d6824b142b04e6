"""Analyses shared by every experiment: pure functions of points frames and function
vectors. The analyses of one ready-made experiment live in its package
(:mod:`fspace.experiments.pretraining.analysis`, ...)."""

from fspace.analysis.separation import group_separation, separation

__all__ = ["group_separation", "separation"]
