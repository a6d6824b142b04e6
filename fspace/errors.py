"""Exceptions raised by fspace.

Every error a user can cause is an :class:`FspaceError`; its message names the file,
run or argument at fault and says what to do about it.
"""

from __future__ import annotations


class FspaceError(Exception):
    """Base class of every error fspace raises on purpose."""


class NotAnExperimentError(FspaceError):
    """A path that should hold an experiment does not."""


class EmptyExperimentError(FspaceError):
    """An experiment holds no runs or no checkpoints where some are needed."""


class CheckpointError(FspaceError):
    """A checkpoint file is missing, truncated, corrupt or not a safetensors file."""


class RunError(FspaceError):
    """A run is unknown, or is opened with settings that contradict what it recorded."""


class RunBusyError(RunError):
    """Another live process holds the lease to write a run."""


class StoreWriteError(FspaceError):
    """A file cannot be written into an experiment: the disk is full, permission is
    denied, or a symbolic link would lead the write outside the experiment."""


class ProbeMismatchError(FspaceError):
    """Function vectors or a model do not fit the probe suite they are used with."""


class ModelOutputError(FspaceError):
    """A model returned something that cannot be a function vector (shape, type, NaN)."""


class EmbeddingError(FspaceError):
    """An embedding cannot be computed from the given function vectors."""


class ExportError(FspaceError):
    """A figure cannot be written to the requested file."""


class DataError(FspaceError):
    """A dataset is missing or its files are malformed."""


class RecorderError(FspaceError):
    """The recorder failed to write one or more checkpoints."""


class ConfigError(FspaceError, ValueError):
    """An argument has a value fspace cannot use."""
