"""The map as a picture rendered on the server, for maps too large to draw point by point.

Up to :data:`VECTOR_LIMIT` checkpoints the browser draws every point and run path
(:func:`fspace.app.figures.trajectory_dict`). Above it, :func:`render` aggregates the
checkpoints the filters and epoch window keep into the pixels of the current view with
datashader, and shades each pixel in its dominant group's colour family at the mean
epoch of its checkpoints (as the points are coloured), opaque where checkpoints are
dense; the page shows the PNG under an empty axis frame and asks for a new one on every
zoom and pan. :class:`Layers` holds what a map needs for that, built once per map
version: the datashader frame and the :class:`~fspace.app.spatial.PointIndex` that
answers hover and click.

datashader (and its numba kernels, compiled on first use) is imported only here, on use.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.app.spatial import PointIndex
from fspace.plot.density import group_luts, png_uri, shade

if TYPE_CHECKING:
    import pandas as pd

    from fspace.app.frames import PlotFrame

# Largest map drawn point by point. In headless Chromium with software WebGL
# (benchmarks/dashboard.py --vector, docs/dashboard.md) the picture is drawn faster at
# every size measured (2,000 to 20,000 points: WebGL's start-up alone takes seconds);
# small maps keep the point-by-point view for its legend toggles and plotly's own hover.
VECTOR_LIMIT = 5_000
MIN_PX, MAX_PX = 16, 4096  # the pixel sizes a browser may ask for
KEPT_PICTURES = 4
KEPT_MASKS = 4


def is_raster(plot: PlotFrame) -> bool:
    """Whether the map of ``plot`` is drawn as a raster (more than :data:`VECTOR_LIMIT`)."""
    return len(plot) > VECTOR_LIMIT


@dataclass(frozen=True)
class Viewport:
    """The part of the map shown, ``[x0, x1] x [y0, y1]``, on ``width x height`` pixels."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int

    @classmethod
    def of_extent(cls, plot: PlotFrame, width: int = 900, height: int = 600) -> Viewport:
        """The whole map (its padded extent) on ``width x height`` pixels."""
        x0, x1, y0, y1 = plot.extent
        return cls(x0, x1, y0, y1, width, height)

    @classmethod
    def parse(cls, data: Any, fallback: Viewport) -> Viewport:
        """The viewport the browser reported (``{"x": [x0, x1], "y": [y0, y1], "w": px,
        "h": px}``); ``fallback`` (with the reported size, when valid) for anything
        malformed, so crafted input never breaks a drawing."""
        if not isinstance(data, Mapping):
            return fallback
        try:
            width = int(np.clip(float(data["w"]), MIN_PX, MAX_PX))
            height = int(np.clip(float(data["h"]), MIN_PX, MAX_PX))
        except (KeyError, TypeError, ValueError, OverflowError):
            return fallback
        sized = cls(fallback.x0, fallback.x1, fallback.y0, fallback.y1, width, height)
        try:
            (x0, x1), (y0, y1) = (sorted(float(v) for v in data[k]) for k in ("x", "y"))
        except (KeyError, TypeError, ValueError, OverflowError):
            return sized
        if not (np.isfinite([x0, x1, y0, y1]).all() and x1 > x0 and y1 > y0):
            return sized
        return cls(x0, x1, y0, y1, width, height)

    @property
    def units_per_pixel(self) -> tuple[float, float]:
        """Data units one pixel spans along x and y."""
        return (self.x1 - self.x0) / self.width, (self.y1 - self.y0) / self.height


class Layers:
    """What drawing one map as a raster needs, built once per map version."""

    def __init__(self, plot: PlotFrame) -> None:
        import pandas as pd

        self.frame = pd.DataFrame(
            {
                "x": plot.x,
                "y": plot.y,
                "epoch": plot.epoch.astype(np.float32),
                "group": pd.Categorical.from_codes(
                    plot.group_code.astype(np.int32), categories=range(len(plot.groups))
                ),
            }
        )
        self.index = PointIndex(plot.x, plot.y)
        self.luts = group_luts(plot.groups)
        self.epochs = plot.epoch_range
        self.pictures: OrderedDict[tuple, str] = OrderedDict()  # the last few renders
        self.masks: OrderedDict[str, np.ndarray] = OrderedDict()  # the last few shown sets


_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def layers(plot: PlotFrame) -> Layers:
    """The :class:`Layers` of ``plot``, built on first use and kept while it lives."""
    with _LOCK:
        found = _LAYERS.get(plot)
    if found is None:
        found = Layers(plot)
        with _LOCK:
            found = _LAYERS.setdefault(plot, found)
    return found


def shown_mask(plot: PlotFrame, filters: Mapping[str, Any] | None, epochs: Any) -> np.ndarray:
    """``plot.mask(filters, epochs)``, the last :data:`KEPT_MASKS` kept: every hover of
    a page asks for the same checkpoints, and a million-row mask takes milliseconds."""
    import json

    found = layers(plot)
    key = json.dumps([filters, epochs], sort_keys=True, default=str)
    with _LOCK:
        mask = found.masks.get(key)
    if mask is None:
        mask = plot.mask(filters, epochs)
        with _LOCK:
            found.masks[key] = mask
            while len(found.masks) > KEPT_MASKS:
                found.masks.popitem(last=False)
    return mask


def prepare(plot: PlotFrame) -> None:
    """Build ``plot``'s layers and render it once (which compiles datashader's kernels),
    so the first page that shows it answers at once; nothing for a small map."""
    if is_raster(plot):
        render(plot, None, Viewport.of_extent(plot, 64, 64))


def aggregate(frame: pd.DataFrame, view: Viewport, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group and pixel, the count of checkpoints, and per pixel the sum of their
    epochs: arrays of shape ``(groups, height, width)`` and ``(height, width)``, float32,
    with row 0 at the top of the picture."""
    import datashader as ds

    canvas = ds.Canvas(
        plot_width=view.width,
        plot_height=view.height,
        x_range=(view.x0, view.x1),
        y_range=(view.y0, view.y1),
    )
    if not len(frame):
        shape = (view.height, view.width)
        return np.zeros((groups, *shape), np.float32), np.zeros(shape, np.float32)
    agg = canvas.points(
        frame, "x", "y", agg=ds.summary(n=ds.by("group", ds.count()), e=ds.sum("epoch"))
    )
    # datashader's row 0 is the lowest y; the picture's is the highest.
    counts = np.ascontiguousarray(agg["n"].to_numpy()[::-1].transpose(2, 0, 1), np.float32)
    sums = np.nan_to_num(agg["e"].to_numpy()[::-1]).astype(np.float32)
    return counts, sums


def render(plot: PlotFrame, mask: np.ndarray | None, view: Viewport) -> str:
    """The checkpoints of ``plot`` that ``mask`` keeps (all if None), in ``view``, as a
    PNG data URI. The last :data:`KEPT_PICTURES` are kept: a page drawn again with
    nothing changed (a new selection, say) costs no rendering."""
    found = layers(plot)
    everything = mask is None or bool(mask.all())
    key = (view, "all" if everything else hashlib.blake2b(np.packbits(mask)).digest())
    with _LOCK:
        picture = found.pictures.get(key)
    if picture is None:
        frame = found.frame if everything else found.frame[mask]
        counts, sums = aggregate(frame, view, len(plot.groups))
        picture = png_uri(shade(counts, sums, found.luts, found.epochs))
        with _LOCK:
            found.pictures[key] = picture
            while len(found.pictures) > KEPT_PICTURES:
                found.pictures.popitem(last=False)
    return picture
