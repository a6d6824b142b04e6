"""Where things live inside an experiment directory, and what names are allowed.

::

    EXP/
      fspace-experiment.json                 marks the directory as an experiment
      probes/NAME.safetensors                probe suites (inputs, optional targets)
      runs/RUN/run.json                      group, seed, config, model factory
      runs/RUN/checkpoints/CKPT.safetensors  weights + epoch, step, metrics, checksum
      runs/RUN/vectors/FP-OUTPUT/CKPT.safetensors   cached function vectors
      cache/KIND/DIGEST.safetensors          checksummed caches (maps, distance matrices)

Each run is written by one process only, into its own directory, so any number of
processes (on any number of machines sharing the filesystem) can record into one
experiment without locks.
"""

from __future__ import annotations

import re
from pathlib import Path

from fspace.errors import ConfigError

MARKER = "fspace-experiment.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,127}")


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a safe file name component, else raise ConfigError."""
    # fullmatch, not match with "$": "$" also matches before a trailing newline
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{what} {value!r} is not allowed: use 1-128 letters, digits and . _ = + - "
            f"starting with a letter or digit (no path separators)"
        )
    return value


def checkpoint_name(epoch: int, step: int) -> str:
    """File stem of a checkpoint: sorts by epoch, then step."""
    return f"e{epoch:06d}-s{step:010d}"


def run_dir(root: Path, run: str) -> Path:
    return root / "runs" / run


def checkpoint_path(root: Path, run: str, name: str) -> Path:
    return run_dir(root, run) / "checkpoints" / f"{name}.safetensors"


def vector_path(root: Path, run: str, fingerprint: str, output: str, name: str) -> Path:
    return run_dir(root, run) / "vectors" / f"{fingerprint}-{output}" / f"{name}.safetensors"


def cache_path(root: Path, kind: str, stem: str) -> Path:
    return root / "cache" / kind / f"{stem}.safetensors"
