"""The trajectory figure of a large map for files: the checkpoints as one picture.

Above :data:`RASTER_LIMIT` checkpoints a figure drawn point by point is slow to render
and, as SVG or PDF, tens of megabytes. :func:`density_figure` draws the same map as the
dashboard's large-map view does: the checkpoints aggregated into pixels
(:func:`aggregate`) and shaded (:func:`shade`) in their dominant group's colour family at
the mean epoch of each pixel, opaque where checkpoints are dense, placed as a layout
image under an empty axis frame; the paths of chosen runs, the legend and the colour bars
stay vector shapes on top. :func:`map_figure` picks the one that fits the size.

Example::

    fig = map_figure(embedding.frame, title="sweep", highlight_runs=["random-s3"])
    write_figure(fig, "sweep.pdf")  # a 1,000,000-checkpoint map in a few seconds
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.style import group_order, group_styles
from fspace.plot.trajectories import (
    REQUIRED,
    Paths,
    path_traces,
    trajectory_figure,
    trajectory_layout,
)

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

RASTER_LIMIT = 5_000
"""Largest map :func:`map_figure` draws point by point (the dashboard's threshold too)."""
RESOLUTION = (1600, 1100)
"""Pixels of the picture, about the plot area of an exported figure at scale 2."""
ALPHA_MIN = 0.55  # opacity of a pixel holding one checkpoint; 1 at the densest pixel
LUT_SIZE = 256
PAD = 0.03  # share of the map's width and height left around it


def map_figure(
    frame: pd.DataFrame,
    *,
    title: str | None = None,
    highlight_runs: Sequence[str] = (),
    raster: bool | None = None,
    resolution: tuple[int, int] = RESOLUTION,
) -> go.Figure:
    """The trajectory figure of ``frame`` for a file: point by point up to
    :data:`RASTER_LIMIT` checkpoints (:func:`~fspace.plot.trajectory_figure`, the first
    of ``highlight_runs`` drawn on top), a picture above (:func:`density_figure`);
    ``raster`` forces one or the other."""
    if raster is None:
        raster = len(frame) > RASTER_LIMIT
    if not raster:
        run = highlight_runs[0] if highlight_runs else None
        return trajectory_figure(frame, title=title, highlight_run=run)
    return density_figure(frame, title=title, highlight_runs=highlight_runs, resolution=resolution)


def density_figure(
    frame: pd.DataFrame,
    *,
    title: str | None = None,
    highlight_runs: Sequence[str] = (),
    resolution: tuple[int, int] = RESOLUTION,
) -> go.Figure:
    """The checkpoints of ``frame`` (an embedding's frame) as a picture of their density,
    coloured by epoch in each group's colour family, with the paths of
    ``highlight_runs`` drawn on top as vector shapes."""
    import plotly.graph_objects as go

    if len(frame) == 0:
        return trajectory_figure(frame, title=title)
    paths, runs = _paths(frame)
    x0, x1, y0, y1 = extent(paths.x, paths.y)
    width, height = (int(v) for v in resolution)
    lo, hi = _range(paths.color)
    counts, sums = aggregate(paths, (x0, x1), (y0, y1), width, height)
    picture = shade(counts, sums, group_luts(paths.groups), (lo, hi))
    traces = path_traces(paths, np.zeros(0, np.int64), kind="scatter")
    traces = [t for t in traces if t["meta"]["role"] in ("legend", "scale")]
    traces += span_traces(paths.groups, (x0, x1, y0, y1), (lo, hi))
    for run in dict.fromkeys(highlight_runs):
        rows = _run_rows(frame, runs, run)
        if rows.size:
            drawn = path_traces(paths, rows[:0], kind="scatter", highlight=rows, highlight_run=run)
            path = next(t for t in drawn if t["meta"]["role"] == "highlight")
            traces.append({**path, "uid": f"highlight-{len(traces)}"})
    layout = trajectory_layout(title, groups=paths.groups, lo=lo, hi=hi)
    layout["xaxis"] = {**layout["xaxis"], "range": [x0, x1]}
    layout["yaxis"] = {**layout["yaxis"], "range": [y0, y1]}
    layout["images"] = [
        {
            "source": png_uri(picture),
            "xref": "x",
            "yref": "y",
            "x": x0,
            "y": y1,
            "sizex": x1 - x0,
            "sizey": y1 - y0,
            "sizing": "stretch",
            "xanchor": "left",
            "yanchor": "top",
            "layer": "below",
        }
    ]
    return go.Figure(data=traces, layout=layout)


def extent(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)``: the finite points' bounding box with :data:`PAD` around it
    (a unit box around a single place)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return -1.0, 1.0, -1.0, 1.0
    bounds = []
    for values in (x[ok], y[ok]):
        lo, hi = float(values.min()), float(values.max())
        pad = PAD * (hi - lo) if hi > lo else 1.0
        bounds += [lo - pad, hi + pad]
    return tuple(bounds)  # type: ignore[return-value]


def aggregate(
    paths: Paths,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group and pixel the count of checkpoints, and per pixel the sum of their
    ``color`` values: arrays of shape ``(groups, height, width)`` and ``(height, width)``
    (float64), row 0 at the top. Points outside the ranges are left out."""
    if width < 1 or height < 1:
        raise ConfigError(f"a picture needs at least one pixel, got {width} x {height}")
    (x0, x1), (y0, y1) = x_range, y_range
    column = np.floor((paths.x - x0) / (x1 - x0) * width)
    row = np.floor((y1 - paths.y) / (y1 - y0) * height)  # row 0 at the top
    color = np.nan_to_num(paths.color.astype(np.float64))
    inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    pixel = (row[inside] * width + column[inside]).astype(np.int64)
    code = paths.group_code[inside].astype(np.int64)
    size, groups = width * height, max(len(paths.groups), 1)
    counts = np.bincount(code * size + pixel, minlength=groups * size).astype(np.float64)
    sums = np.bincount(pixel, weights=color[inside], minlength=size)
    return counts.reshape(groups, height, width), sums.reshape(height, width)


def shade(
    counts: np.ndarray, sums: np.ndarray, luts: np.ndarray, span: tuple[float, float]
) -> np.ndarray:
    """RGBA pixels (uint8, ``height x width x 4``) from :func:`aggregate`'s arrays: the
    colour of each pixel's dominant group's scale at its mean value within ``span``,
    opacity from :data:`ALPHA_MIN` (one checkpoint) to 1 (the densest pixel) on a log
    scale; empty pixels are transparent black. Sparse pictures are spread by a pixel or
    two so lone checkpoints show."""
    radius = _spread_radius(counts.sum(axis=0))
    if radius:
        counts = np.stack([_spread(c, radius) for c in counts])
        sums = _spread(sums, radius)
    total = counts.sum(axis=0)
    rgba = np.zeros((*total.shape, 4), np.uint8)
    # Only the pixels holding checkpoints are coloured: a tenth of a zoomed-in picture.
    hit = np.flatnonzero(total > 0.5)
    if not hit.size:
        return rgba
    held = total.reshape(-1)[hit]
    lo, hi = span
    level = np.clip((sums.reshape(-1)[hit] / held - lo) / max(hi - lo, 1e-12), 0, 1)
    index = (level * (LUT_SIZE - 1) + 0.5).astype(np.intp)
    flat = rgba.reshape(-1, 4)
    flat[hit, :3] = luts[_dominant(counts.reshape(len(counts), -1)[:, hit]), index]
    alpha = ALPHA_MIN + (1 - ALPHA_MIN) * np.log1p(held) / np.log1p(held.max())
    flat[hit, 3] = (alpha * 255 + 0.5).astype(np.uint8)
    return rgba


def _dominant(counts: np.ndarray) -> np.ndarray:
    """``counts.argmax(axis=0)`` (the first of equal counts), one row at a time: numpy's
    argmax across rows of a wide array is several times slower."""
    best = np.zeros(counts.shape[1], np.intp)
    top = counts[0].copy()
    for code in range(1, len(counts)):
        more = counts[code] > top
        best[more] = code
        np.maximum(top, counts[code], out=top)
    return best


def group_luts(groups: Sequence[str]) -> np.ndarray:
    """Per group, its colour scale (:mod:`fspace.plot.style`) at :data:`LUT_SIZE` levels,
    as uint8 RGB of shape ``(groups, LUT_SIZE, 3)``."""
    styles = group_styles(groups)
    out = np.zeros((max(len(groups), 1), LUT_SIZE, 3), np.uint8)
    levels = np.linspace(0, 1, LUT_SIZE)
    for code, group in enumerate(groups):
        stops = styles[group].colorscale
        where = [float(s[0]) for s in stops]
        rgb = np.array([[int(s[1][i : i + 2], 16) for i in (1, 3, 5)] for s in stops], float)
        for channel in range(3):
            out[code, :, channel] = np.rint(np.interp(levels, where, rgb[:, channel]))
    return out


def png_uri(rgba: np.ndarray) -> str:
    """``rgba`` (height x width x 4, uint8) as a PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgba)).decode("ascii")


def png_bytes(rgba: np.ndarray, level: int = 1) -> bytes:
    """``rgba`` (height x width x 4, uint8) as a PNG file's bytes, each row unfiltered and
    the whole deflated at ``level``: three to five times faster than Pillow's adaptive
    filters for these pictures (mostly transparent), and as small or smaller."""
    import struct
    import zlib

    height, width, _ = rgba.shape
    rows = np.zeros((height, 1 + 4 * width), np.uint8)  # a leading 0: filter type None
    rows[:, 1:] = np.ascontiguousarray(rgba, np.uint8).reshape(height, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(data, zlib.crc32(tag))
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows.tobytes(), level)),
            chunk(b"IEND", b""),
        )
    )


def _paths(frame: pd.DataFrame) -> tuple[Paths, np.ndarray]:
    """The frame's checkpoints as :class:`Paths` (in the frame's order: a picture needs
    none), and the run of each."""
    import pandas as pd

    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ConfigError(f"frame lacks columns {missing}; pass an embedding's .frame")
    # Factorised first: a million labels are turned into text once per distinct value.
    codes, uniques = pd.factorize(frame["group"], use_na_sentinel=False)
    names = [str(u) for u in uniques]
    groups = tuple(group_order(names))
    rank = np.array([groups.index(n) for n in names], dtype=np.int64)
    run_code, run_names = pd.factorize(frame["run"], use_na_sentinel=False)
    paths = Paths(
        x=frame["x"].to_numpy(np.float64),
        y=frame["y"].to_numpy(np.float64),
        color=frame["epoch"].to_numpy(np.float64),
        group_code=rank[codes],
        run_code=run_code,
        groups=groups,
    )
    return paths, np.array([str(r) for r in run_names], dtype=object)[run_code]


def _run_rows(frame: pd.DataFrame, runs: np.ndarray, run: str) -> np.ndarray:
    """Rows of ``run`` in epoch and step order."""
    rows = np.flatnonzero(runs == run)
    order = np.lexsort((frame["step"].to_numpy()[rows], frame["epoch"].to_numpy()[rows]))
    return rows[order]


def _range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def span_traces(
    groups: Sequence[str], box: tuple[float, float, float, float], span: tuple[float, float]
) -> list[dict[str, Any]]:
    """Invisible markers at two corners of the map, one trace per group on its colour
    axis, so that each group's colour bar is shown."""
    x0, x1, y0, y1 = box
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "x": [x0, x1],
            "y": [y0, y1],
            "marker": {
                "opacity": 0,
                "color": list(span),
                "coloraxis": "coloraxis" if code == 0 else f"coloraxis{code + 1}",
            },
            "hoverinfo": "skip",
            "name": group,
            "showlegend": False,
            "meta": {"role": "span"},
            "uid": f"span-g{code}",
        }
        for code, group in enumerate(groups)
    ]


def _spread_radius(total: np.ndarray) -> int:
    """Pixels to grow each checkpoint by: more the emptier the picture."""
    filled = np.count_nonzero(total) / max(total.size, 1)
    return 2 if filled < 0.01 else 1 if filled < 0.08 else 0


def _spread(values: np.ndarray, radius: int) -> np.ndarray:
    """``values`` summed over the ``(2 radius + 1)`` square around each pixel (zero
    outside the picture), as shifted sums along each axis."""
    for axis in (0, 1):
        out = values.copy()
        a, b = [slice(None)] * 2, [slice(None)] * 2
        for shift in range(1, radius + 1):
            a[axis], b[axis] = slice(shift, None), slice(None, -shift)
            out[tuple(a)] += values[tuple(b)]
            out[tuple(b)] += values[tuple(a)]
        values = out
    return values
