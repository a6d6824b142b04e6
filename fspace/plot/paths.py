"""Plotly traces of runs drawn as paths: the arrays in drawing order (:class:`Paths`) and
:func:`path_traces`, which the trajectory figure, the exporter and the dashboard share.

Per group: thin translucent lines through each run's checkpoints, long jumps faint and
dotted, markers coloured by epoch on the group's colour axis, a hollow start and an
outlined end; optional arrowheads, and one highlighted run on top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fspace.plot.style import group_styles

# A segment is a jump when it is this many times the median segment and this share of
# the map's diagonal.
JUMP_FACTOR = 4.0
JUMP_SHARE = 0.15
# Colour bars of up to this many groups are shown, one per group; beyond, one grey bar.
MAX_COLORBARS = 4
MAX_ARROWS = 1500


@dataclass(frozen=True)
class Paths:
    """Checkpoints in drawing order (by group, run, epoch): what a trajectory figure needs.

    ``group_code[i]`` indexes ``groups`` (in legend order); rows of one run are
    consecutive. ``color`` holds the values the markers are coloured by (epochs).
    """

    x: np.ndarray
    y: np.ndarray
    color: np.ndarray
    group_code: np.ndarray
    run_code: np.ndarray
    groups: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)


def path_traces(
    paths: Paths,
    rows: np.ndarray | None = None,
    *,
    kind: str = "scattergl",
    encode: Callable[[np.ndarray], Any] = lambda a: a,
    hover: Callable[[np.ndarray, str], dict[str, Any]] | None = None,
    highlight: np.ndarray | None = None,
    highlight_run: str | None = None,
    arrows: bool = False,
) -> list[dict[str, Any]]:
    """Plotly trace dicts of the rows ``rows`` of ``paths`` (default: all).

    Per group, in legend order: ``legend`` (its legend sample), ``lines``, ``jumps``,
    ``checkpoints`` (the markers), ``start`` and ``end`` traces (``meta["role"]``),
    then the rows ``highlight`` (the run ``highlight_run``) on top.
    ``encode`` turns each numeric array into what the figure carries (the dashboard
    sends base64 typed arrays); ``hover(rows, group)`` returns the hover and customdata
    entries of a marker trace.
    """
    rows = np.arange(len(paths)) if rows is None else np.asarray(rows)
    styles = group_styles(paths.groups)
    jump = _jumps(paths, rows)
    traces: list[dict[str, Any]] = []
    for code, group in enumerate(paths.groups):
        inside = paths.group_code[rows] == code
        part, part_jump = rows[inside], jump[inside]
        style, axis = styles[group], color_axis(code)
        # uids become CSS class names in plotly.js: the group's position, not its name.
        common = {"type": kind, "name": group, "legendgroup": group, "uid": f"g{code}"}
        traces += [
            _legend(style, common),
            _lines(paths, part, part_jump, style.color, common, encode),
            _jump_lines(paths, part, part_jump, style.color, common, encode),
            _markers(paths, part, style.symbol, axis, common, encode, hover),
            *_ends(paths, part, style, axis, common, encode),
        ]
        if arrows:
            traces.append(_arrows(paths, part, part_jump, style.color, common))
    for trace in traces:
        trace["uid"] = f"{trace['meta']['role']}-{trace['uid']}"
    if highlight is not None:
        traces.append(_highlight(paths, highlight, str(highlight_run), kind, encode, hover))
    return traces + scale_trace(paths.groups)


def scale_trace(groups: Sequence[str]) -> list[dict[str, Any]]:
    """An invisible trace that shows the neutral colour bar when there are many groups."""
    if len(groups) <= MAX_COLORBARS:
        return []
    marker = {"color": [0], "coloraxis": color_axis(len(groups)), "size": 0.1}
    return [
        {
            "type": "scatter",
            "x": [None],
            "y": [None],
            "mode": "markers",
            "marker": marker,
            "showlegend": False,
            "hoverinfo": "skip",
            "meta": {"role": "scale"},
            "uid": "scale",
        }
    ]


def color_axis(code: int) -> str:
    """The layout key of group ``code``'s colour axis (``coloraxis``, ``coloraxis2``...)."""
    return "coloraxis" if code == 0 else f"coloraxis{code + 1}"


def _jumps(paths: Paths, rows: np.ndarray) -> np.ndarray:
    """``jump[i]``: the segment from the previous row of the same run to row ``i`` is long."""
    jump = np.zeros(rows.size, dtype=bool)
    if rows.size < 2:
        return jump
    x, y, runs = paths.x[rows], paths.y[rows], paths.run_code[rows]
    length = np.hypot(np.diff(x), np.diff(y))
    same = runs[1:] == runs[:-1]
    if not same.any():
        return jump
    diagonal = float(np.hypot(np.ptp(x), np.ptp(y))) or 1.0
    limit = max(JUMP_FACTOR * float(np.median(length[same])), JUMP_SHARE * diagonal)
    jump[1:] = same & (length > limit)
    return jump


def _with_breaks(values: np.ndarray, breaks: np.ndarray) -> np.ndarray:
    # A NaN before each break position splits the polyline, so one trace draws many runs.
    return np.insert(values.astype(np.float64), breaks, np.nan)


def _legend(style, common) -> dict[str, Any]:
    # Markers are coloured by epoch, so the legend gets a sample in the group's own colour.
    return {
        **common,
        "mode": "markers",
        "x": [None],
        "y": [None],
        "hoverinfo": "skip",
        "marker": {"symbol": style.symbol, "size": 9, "color": style.color},
        "meta": {"role": "legend", "group": common["name"]},
    }


def _lines(paths, part, jump, color, common, encode) -> dict[str, Any]:
    runs = paths.run_code[part]
    breaks = np.flatnonzero((runs[1:] != runs[:-1]) | jump[1:]) + 1 if part.size else part
    return {
        **common,
        "mode": "lines",
        "x": encode(_with_breaks(paths.x[part], breaks)),
        "y": encode(_with_breaks(paths.y[part], breaks)),
        "showlegend": False,
        "hoverinfo": "skip",
        "opacity": 0.45,
        "line": {"color": color, "width": 1},
        "meta": {"role": "lines", "group": common["name"]},
    }


def _jump_lines(paths, part, jump, color, common, encode) -> dict[str, Any]:
    ends = np.flatnonzero(jump)
    xs = np.column_stack([paths.x[part][ends - 1], paths.x[part][ends], np.full(ends.size, np.nan)])
    ys = np.column_stack([paths.y[part][ends - 1], paths.y[part][ends], np.full(ends.size, np.nan)])
    return {
        **common,
        "mode": "lines",
        "x": encode(xs.ravel()),
        "y": encode(ys.ravel()),
        "showlegend": False,
        "hoverinfo": "skip",
        "opacity": 0.25,
        "line": {"color": color, "width": 1, "dash": "dot"},
        "meta": {"role": "jumps", "group": common["name"]},
    }


def _markers(paths, part, symbol, axis, common, encode, hover) -> dict[str, Any]:
    trace = {
        **common,
        "mode": "markers",
        "x": encode(paths.x[part]),
        "y": encode(paths.y[part]),
        "showlegend": False,
        "marker": {
            "symbol": symbol,
            "size": 7,
            "color": encode(paths.color[part]),
            "coloraxis": axis,
            "opacity": 0.9,
            "line": {"width": 0},
        },
    }
    extra = hover(part, common["name"]) if hover is not None else {"hoverinfo": "skip"}
    meta = {"role": "checkpoints", "group": common["name"], **extra.pop("meta", {})}
    return {**trace, **extra, "meta": meta}


def _ends(paths, part, style, axis, common, encode) -> list[dict[str, Any]]:
    runs = paths.run_code[part]
    first = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]]) if part.size else part
    last = np.flatnonzero(np.r_[runs[1:] != runs[:-1], True]) if part.size else part
    start = {
        **common,
        "mode": "markers",
        "x": encode(paths.x[part][first]),
        "y": encode(paths.y[part][first]),
        "showlegend": False,
        "hoverinfo": "skip",
        "marker": {
            "symbol": style.open_symbol,
            "size": 13,
            "color": style.color,
            "line": {"width": 2, "color": style.color},
        },
        "meta": {"role": "start", "group": common["name"]},
    }
    end = {
        **common,
        "mode": "markers",
        "x": encode(paths.x[part][last]),
        "y": encode(paths.y[part][last]),
        "showlegend": False,
        "hoverinfo": "skip",
        "marker": {
            "symbol": style.symbol,
            "size": 13,
            "color": encode(paths.color[part][last]),
            "coloraxis": axis,
            "line": {"width": 1.5, "color": "black"},
        },
        "meta": {"role": "end", "group": common["name"]},
    }
    return [start, end]


def _arrows(paths, part, jump, color, common) -> dict[str, Any]:
    """Arrowheads at the middle of each (non-jump) segment, as rotated triangle markers."""
    runs = paths.run_code[part]
    seg = np.flatnonzero((runs[1:] == runs[:-1]) & ~jump[1:]) + 1
    if seg.size > MAX_ARROWS:
        seg = seg[np.linspace(0, seg.size - 1, MAX_ARROWS).astype(int)]
    x, y = paths.x[part], paths.y[part]
    dx, dy = x[seg] - x[seg - 1], y[seg] - y[seg - 1]
    return {
        **common,
        "type": "scatter",  # marker angles are not drawn by scattergl
        "mode": "markers",
        "x": (x[seg] + x[seg - 1]) / 2,
        "y": (y[seg] + y[seg - 1]) / 2,
        "showlegend": False,
        "hoverinfo": "skip",
        "marker": {
            "symbol": "triangle-up",
            "size": 7,
            "color": color,
            "opacity": 0.6,
            "angle": 90 - np.degrees(np.arctan2(dy, dx)),
            "angleref": "up",
        },
        "meta": {"role": "arrows", "group": common["name"]},
    }


def _highlight(paths, rows, run, kind, encode, hover) -> dict[str, Any]:
    code = int(paths.group_code[rows[0]]) if rows.size else 0
    group = paths.groups[code] if paths.groups else ""
    symbol = group_styles(paths.groups)[group].symbol if group else "circle"
    trace = {
        "type": kind,
        "mode": "lines+markers",
        "x": encode(paths.x[rows]),
        "y": encode(paths.y[rows]),
        "name": f"run {run}",
        "legendgroup": "highlight",
        "line": {"color": "black", "width": 3},
        "marker": {
            "symbol": symbol,
            "size": 11,
            "color": encode(paths.color[rows]),
            "coloraxis": color_axis(code),
            "line": {"color": "black", "width": 2},
        },
        "uid": "highlight",
    }
    extra = hover(rows, group) if hover is not None else {"hoverinfo": "skip"}
    meta = {"role": "highlight", "run": run, **extra.pop("meta", {})}
    return {**trace, **extra, "meta": meta}
