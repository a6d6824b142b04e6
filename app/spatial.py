"""Nearest checkpoint to a place on the map, answered on the server.

Above the raster threshold (:mod:`fspace.app.raster`) the browser holds a picture of the
map, not its points, so hover and click send a position and the server finds the
checkpoint under it: :class:`PointIndex` is a k-d tree over one map's points, built once
per map version, and :meth:`PointIndex.nearest` looks within a tolerance given in screen
pixels, among the checkpoints the filters and epoch window keep.

Example::

    index = PointIndex(plot.x, plot.y)
    row = index.nearest(0.3, -1.2, units_per_pixel=(0.01, 0.02), mask=mask)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fspace.errors import ConfigError

TOLERANCE_PX = 8.0  # how far (in screen pixels) from a checkpoint a click still picks it


class PointIndex:
    """A k-d tree over the points ``(x[i], y[i])`` (rows in drawing order)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ConfigError(f"x and y must be 1-D and of one length, got {x.shape}, {y.shape}")
        self.size = x.size
        self._points = np.column_stack([x, y])
        self._tree = cKDTree(self._points) if x.size else None

    def __len__(self) -> int:
        return self.size

    def nearest(
        self,
        x: float,
        y: float,
        *,
        units_per_pixel: Sequence[float],
        mask: np.ndarray | None = None,
        tolerance_px: float = TOLERANCE_PX,
    ) -> int | None:
        """Row of the point nearest to ``(x, y)`` in screen pixels, among the rows
        ``mask`` keeps (all if None), if one lies within ``tolerance_px`` pixels.

        ``units_per_pixel`` is ``(dx, dy)``, the data units one screen pixel spans on
        each axis in the current view: the axes of a zoomed view need not share a scale,
        so candidates are gathered within the larger radius and ranked in pixels.
        """
        dx, dy = (float(v) for v in units_per_pixel)
        if not (dx > 0 and dy > 0 and np.isfinite([x, y, dx, dy]).all()):
            return None
        if self._tree is None:
            return None
        radius = tolerance_px * max(dx, dy)
        found = self._tree.query_ball_point([x, y], radius, return_sorted=True)
        rows = np.asarray(found, dtype=np.int64)
        if mask is not None and rows.size:
            rows = rows[mask[rows]]
        if not rows.size:
            return None
        offsets = (self._points[rows] - (x, y)) / (dx, dy)
        pixels = np.hypot(offsets[:, 0], offsets[:, 1])
        best = int(np.argmin(pixels))
        return int(rows[best]) if pixels[best] <= tolerance_px else None
