"""fspace: function-space analysis of neural-network training.

Record checkpoints from any training loop, turn each into a function vector (its outputs
on a fixed probe suite), embed them in 2-D and browse every run as a trajectory.
Heavy modules are imported on first use, so ``import fspace`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Experiment": "fspace.store",
    "CheckpointInfo": "fspace.store",
    "RunInfo": "fspace.store",
    "Recorder": "fspace.record",
    "ProbeSuite": "fspace.probes",
    "FunctionVectors": "fspace.vectors",
    "function_vector": "fspace.evaluation",
    "evaluate": "fspace.evaluation",
    "embed": "fspace.embedding",
    "Embedding": "fspace.embedding",
    "trajectory_figure": "fspace.plot",
    "write_figure": "fspace.export",
    "FspaceError": "fspace.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fspace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
