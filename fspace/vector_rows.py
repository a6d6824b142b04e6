"""The rows of a function-vector matrix: vectors gathered straight into one matrix in
checkpoint order (:class:`Rows`, read back from the cache or put one by one as they are
computed), and the table describing each row's checkpoint (:func:`points_frame`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from fspace.errors import ConfigError, ModelOutputError
from fspace.store import CheckpointInfo, Experiment
from fspace.store import matrix as matrix_io


class Rows:
    """Function vectors gathered straight into one matrix (allocated when the first
    vector gives the length), in checkpoint order."""

    def __init__(
        self,
        ckpts: Sequence[CheckpointInfo],
        *,
        dtype: str = "float32",
        memmap: bool | str | os.PathLike = False,
    ) -> None:
        if dtype not in ("float32", "stored"):
            raise ConfigError(f"dtype must be 'float32' or 'stored', got {dtype!r}")
        self.ckpts = list(ckpts)
        self.dtype, self.memmap = dtype, memmap
        self.matrix: np.ndarray | None = None
        self.filled = np.zeros(len(self.ckpts), dtype=bool)
        self.failed: list[str] = []
        self._first: CheckpointInfo | None = None

    def _allocate(self, i: int, length: int, stored: np.dtype) -> None:
        dtype = np.float32 if self.dtype == "float32" else stored
        self.matrix = matrix_io.allocate(len(self.ckpts), length, dtype, self.memmap)
        self._first = self.ckpts[i]

    def read_cached(
        self, exp: Experiment, fingerprint: str, output: str, on_done: Callable[[int], None] | None
    ) -> list[int]:
        """Read every cached vector into its row, on a few threads; return the indices
        of the checkpoints that have none."""
        first = matrix_io.first_cached(exp.path, self.ckpts, fingerprint, output)
        if first is None:
            return list(range(len(self.ckpts)))
        self._allocate(*first)

        def mismatch(i: int) -> None:  # another suite: ProbeMismatchError; length: ours
            self.put(i, exp.load_vector(self.ckpts[i], fingerprint, output))

        found = matrix_io.read_rows(
            exp.path,
            self.ckpts,
            fingerprint,
            output,
            self.matrix,
            on_mismatch=mismatch,
            on_done=on_done,
        )
        self.filled |= found
        return np.flatnonzero(~found).tolist()

    def put(self, i: int, v: torch.Tensor) -> None:
        """Store ``v`` as the vector of checkpoint ``i``."""
        v = v.detach().reshape(-1).cpu()
        if self.matrix is None:
            stored = np.float16 if v.dtype == torch.float16 else np.float32
            self._allocate(i, v.numel(), np.dtype(stored))
        if v.numel() != self.matrix.shape[1]:
            raise ModelOutputError(
                f"function vectors differ in length on the same probe suite "
                f"({self._first.key}: {self.matrix.shape[1]}; {self.ckpts[i].key}: "
                f"{v.numel()}): the models' output sizes differ, so they cannot be compared"
            )
        self.matrix[i] = v.numpy()
        self.filled[i] = True

    def finish(self) -> tuple[np.ndarray | None, list[CheckpointInfo]]:
        """The matrix of the filled rows (in place, no copy) and their checkpoints."""
        keep = np.flatnonzero(self.filled)
        kept = [self.ckpts[i] for i in keep]
        if self.matrix is None or len(keep) == len(self.ckpts):
            return self.matrix, kept
        for j, i in enumerate(keep):  # move rows up over the left-out ones
            if i != j:
                self.matrix[j] = self.matrix[i]
        return self.matrix[: len(keep)], kept


def points_frame(exp: Experiment, ckpts: Sequence[CheckpointInfo]):
    """One row per checkpoint: run, group, seed, epoch, step, checkpoint, metrics, config."""
    import pandas as pd

    runs = {r: exp.run(r) for r in {c.run for c in ckpts}}
    rows = []
    for c in ckpts:
        run = runs[c.run]
        row = {
            "run": c.run,
            "group": run.group,
            "seed": -1 if run.seed is None else int(run.seed),
            "epoch": c.epoch,
            "step": c.step,
            "checkpoint": c.key,
        }
        for k, v in run.config.items():
            if isinstance(v, (str, int, float, bool)) and k not in row:
                row[k] = v
        for k, v in c.metrics.items():
            row[k if k not in row else f"metric.{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)
