"""The experiment store: directories of runs, checkpoints and probe suites."""

from fspace.store.experiment import CheckpointInfo, Experiment, Problem, RunInfo

__all__ = ["CheckpointInfo", "Experiment", "Problem", "RunInfo"]
