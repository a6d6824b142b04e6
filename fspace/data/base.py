"""The labelled-image type every digit loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fspace.errors import DataError


@dataclass(frozen=True, eq=False)
class Digits:
    """Labelled images, one flattened image per row.

    ``images`` is float32 ``(n, h * w)`` in [0, 1]; ``labels`` is int64 ``(n,)``;
    ``image_shape`` is ``(h, w)``; ``name`` says where the images came from.
    """

    images: np.ndarray
    labels: np.ndarray
    image_shape: tuple[int, int]
    name: str

    def __post_init__(self) -> None:
        h, w = self.image_shape
        if self.images.ndim != 2 or self.images.shape[1] != h * w:
            raise DataError(
                f"{self.name}: images must have shape (n, {h * w}) for image shape "
                f"{self.image_shape}, got {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape "
                f"{self.labels.shape}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def n_classes(self) -> int:
        """Number of classes, taken as ``max(label) + 1``."""
        return int(self.labels.max()) + 1 if len(self) else 0

    def subset(self, indices: np.ndarray, name: str | None = None) -> Digits:
        """Return the images at ``indices`` (in that order) as new ``Digits``."""
        indices = np.asarray(indices, dtype=np.int64)
        return Digits(
            images=self.images[indices],
            labels=self.labels[indices],
            image_shape=self.image_shape,
            name=name or self.name,
        )
