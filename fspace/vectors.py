"""Function vectors of many checkpoints, with the labels of each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError, ProbeMismatchError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FunctionVectors:
    """Function vectors of ``n`` checkpoints on one probe suite.

    ``matrix[i]`` is the function vector of the checkpoint described by row ``i`` of
    ``points`` (columns ``run, group, seed, epoch, step, checkpoint`` and one column per
    recorded metric and scalar config value).
    """

    matrix: np.ndarray
    points: pd.DataFrame
    fingerprint: str
    output: str = "prob"
    """The vector form and its settings, as cached vectors are filed (``"prob"``,
    ``"sketch.k=1024"``; see :mod:`fspace.outputs`)."""
    kind: str = "classification"
    layout: tuple[int, ...] | None = None
    """The shape of one checkpoint's vector before flattening; its last axis holds the
    outcomes of one predicted distribution (classes, or a vocabulary per position)."""

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2:
            raise ProbeMismatchError(
                f"function vectors must form a 2-D matrix, got shape {self.matrix.shape}"
            )
        if len(self.points) != self.matrix.shape[0]:
            raise ProbeMismatchError(
                f"{self.matrix.shape[0]} function vectors but {len(self.points)} point labels"
            )

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def distributions(self) -> np.ndarray:
        """The predicted distributions as probabilities, shape ``(n, distributions, outcomes)``.

        One row per checkpoint, one distribution per probe (or per probe position for
        sequence outputs), whatever form the vectors are stored in.
        """
        if self.kind == "regression":
            raise ConfigError(
                "regression outputs are real values, not distributions: use a distance "
                "on raw values (euclidean)"
            )
        if self.layout is None:
            raise ConfigError("these function vectors do not record their layout")
        form = self.form
        if not form.distribution:
            raise ConfigError(
                f"function vectors of form {self.output!r} are not distributions; use a "
                f"distance on their values (euclidean)"
            )
        outcomes = self.layout[-1]
        cube = np.asarray(self.matrix, dtype=np.float64).reshape(len(self), -1, outcomes)
        return form.probabilities(cube)

    @property
    def form(self):
        """The vector form (a :class:`fspace.outputs.Form` subclass) the vectors hold."""
        from fspace.outputs import FORMS

        return FORMS.get(self.output.split(".")[0]).obj

    @property
    def is_distribution(self) -> bool:
        """Whether each vector holds distributions (over the last axis of ``layout``)."""
        return self.kind != "regression" and self.form.distribution

    def check_compatible(self, other: FunctionVectors) -> None:
        """Raise unless ``other`` was computed on the same probe suite and output."""
        if other.fingerprint != self.fingerprint:
            raise ProbeMismatchError(
                f"function vectors were computed on different probe suites "
                f"({self.fingerprint} vs {other.fingerprint}); they cannot be compared"
            )
        if other.output != self.output:
            raise ProbeMismatchError(
                f"function vectors hold different outputs ({self.output!r} vs "
                f"{other.output!r}); evaluate both with the same output form"
            )
        if other.matrix.shape[1] != self.matrix.shape[1]:
            raise ProbeMismatchError(
                f"function vectors differ in length ({self.matrix.shape[1]} vs "
                f"{other.matrix.shape[1]}) on the same probe suite: the models' output "
                f"sizes differ"
            )
