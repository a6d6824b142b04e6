"""The trajectory figure: every run as a path through its checkpoints in the 2-D map.

One builder serves the exporter and the dashboard: :func:`path_traces` turns arrays in
drawing order (:class:`Paths`) into plotly trace dicts, and :func:`trajectory_layout`
gives the matching layout. :func:`trajectory_figure` wraps both for an embedding's
frame; the dashboard calls them with its own array encoding.

How it reads (as in Erhan et al.'s figure):

- every run is one continuous path in epoch order, in thin translucent lines, so the
  points dominate; its start is marked by a hollow symbol and its end by a large symbol
  with a black outline;
- points are coloured by epoch on an integer colour bar, in the colour family of their
  group (light early, dark late), and groups differ in colour family and marker;
- long jumps (such as epoch 0 to 1 after pre-training) are drawn faintly and dotted so
  they do not dominate; ``arrows=True`` adds arrowheads showing the direction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.style import GroupStyle, add_message, group_order, group_styles

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

REQUIRED = ("run", "group", "seed", "epoch", "step", "checkpoint", "x", "y")
# customdata columns of every marker trace; the checkpoint key is always first.
CUSTOMDATA = ("checkpoint", "run", "group", "seed", "epoch", "step")
HOVER_METRICS = ("test_error",)
ORDER = ["group", "run", "epoch", "step"]
# A segment is a jump when it is this many times the median segment and this share of
# the map's diagonal.
JUMP_FACTOR = 4.0
JUMP_SHARE = 0.15
# Colour bars of up to this many groups are shown, one per group; beyond, one grey bar.
MAX_COLORBARS = 4
MAX_ARROWS = 1500
LEGEND_TITLE = "group  (hollow: start · outlined: end)"


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


def trajectory_figure(
    frame: pd.DataFrame,
    *,
    color: str = "epoch",
    title: str | None = None,
    webgl: bool = True,
    highlight_run: str | None = None,
    arrows: bool = False,
) -> go.Figure:
    """Draw each run of ``frame`` as a path through its checkpoints, coloured by ``color``.

    ``frame`` is an embedding's frame (columns run, group, seed, epoch, step, checkpoint,
    x, y and optional metrics). ``highlight_run`` draws that run's path on top. Every
    marker trace has ``customdata[i][0]`` = checkpoint key and ``meta["customdata"]``
    naming the customdata columns; see :func:`clicked_checkpoint`.
    """
    import plotly.graph_objects as go

    if len(frame) == 0:
        return _empty_figure(title)
    _check_frame(frame, color, highlight_run)
    groups = tuple(group_order(frame["group"].astype(str)))
    rank = {g: i for i, g in enumerate(groups)}
    frame = frame.assign(_g=frame["group"].astype(str).map(rank))
    frame = frame.sort_values(["_g", "run", "epoch", "step"], kind="stable")
    run_code = frame["run"].astype(str).factorize()[0]
    paths = Paths(
        x=frame["x"].to_numpy(np.float64),
        y=frame["y"].to_numpy(np.float64),
        color=frame[color].to_numpy(np.float64),
        group_code=frame["_g"].to_numpy(),
        run_code=run_code,
        groups=groups,
    )
    fields = _customdata_fields(frame, color)
    custom = frame[fields].to_numpy(dtype=object)
    kind = "scattergl" if webgl else "scatter"

    def hover(rows: np.ndarray, group: str) -> dict[str, Any]:
        return {
            "customdata": custom[rows],
            "hovertemplate": _hovertemplate(fields),
            "meta": {"customdata": fields},
        }

    highlight = None
    if highlight_run is not None:
        highlight = np.flatnonzero(frame["run"].to_numpy() == highlight_run)
    traces = path_traces(
        paths,
        kind=kind,
        hover=hover,
        highlight=highlight,
        highlight_run=highlight_run,
        arrows=arrows,
    )
    values = paths.color[np.isfinite(paths.color)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    fig = go.Figure(data=traces)
    fig.update_layout(**trajectory_layout(title, groups=groups, lo=lo, hi=hi, label=color))
    return fig


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
        style, axis = styles[group], _axis(code)
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


def trajectory_layout(
    title: str | None = None,
    *,
    groups: Sequence[str] = (),
    lo: float = 0.0,
    hi: float = 1.0,
    label: str = "epoch",
) -> dict[str, Any]:
    """The layout of a trajectory figure of ``groups``: one colour axis per group in its
    colour family over ``[lo, hi]``, with integer ticks for whole-number values."""
    styles = group_styles(groups)
    hi = max(hi, lo + 1.0)
    whole = float(lo).is_integer() and float(hi).is_integer()
    ticks = {"dtick": max(1, int(np.ceil((hi - lo) / 6))), "tickformat": "d"} if whole else {}
    shown = len(groups) <= MAX_COLORBARS
    layout = {**_layout(title)}
    for code, group in enumerate(group_order(groups)):
        n = max(len(groups), 1)
        bar = {
            "title": {"text": f"{group}<br>{label}", "font": {"size": 11}},
            "thickness": 12,
            "len": 1.0 / n - 0.03,
            "y": 1.0 - (code + 0.5) / n,
            "yanchor": "middle",
            **ticks,
        }
        layout[_axis(code)] = {
            "colorscale": styles[group].colorscale,
            "cmin": lo,
            "cmax": hi,
            "showscale": shown,
            "colorbar": bar,
        }
    if not shown:  # one neutral bar reads "light = early, dark = late" for every group
        layout[_axis(len(groups))] = {
            "colorscale": GroupStyle("circle", "solid", "#555555").colorscale,
            "cmin": lo,
            "cmax": hi,
            "colorbar": {"title": {"text": label}, "thickness": 12, **ticks},
        }
    if not groups:
        layout["coloraxis"] = {"showscale": False, "cmin": lo, "cmax": hi}
    return layout


def scale_trace(groups: Sequence[str]) -> list[dict[str, Any]]:
    """An invisible trace that shows the neutral colour bar when there are many groups."""
    if len(groups) <= MAX_COLORBARS:
        return []
    marker = {"color": [0], "coloraxis": _axis(len(groups)), "size": 0.1}
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


def clicked_checkpoint(click_data: dict[str, Any] | None) -> str | None:
    """The checkpoint key of the point in a Dash ``clickData`` payload, if any.

    Line traces are not clickable, so only markers (and the highlighted run) count.
    """
    points = (click_data or {}).get("points") or []
    if not points or "customdata" not in points[0]:
        return None
    custom = points[0]["customdata"]
    return custom[0] if isinstance(custom, (list, tuple)) else custom


def _axis(code: int) -> str:
    return "coloraxis" if code == 0 else f"coloraxis{code + 1}"


def _check_frame(frame: pd.DataFrame, color: str, highlight_run: str | None) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"the frame lacks column(s) {', '.join(missing)}; pass an embedding's .frame"
        )
    if color not in frame.columns:
        raise ConfigError(
            f"cannot colour by {color!r}: no such column; choose one of "
            f"{', '.join(map(str, frame.columns))}"
        )
    if frame[color].dtype.kind not in "iufb":
        raise ConfigError(f"cannot colour by {color!r}: it is not numeric")
    if highlight_run is not None and not (frame["run"] == highlight_run).any():
        raise ConfigError(f"cannot highlight run {highlight_run!r}: it is not in the frame")


def _customdata_fields(frame: pd.DataFrame, color: str) -> list[str]:
    fields = list(CUSTOMDATA) + [m for m in HOVER_METRICS if m in frame.columns]
    if color not in fields:
        fields.append(color)
    return fields


def _hovertemplate(fields: list[str]) -> str:
    lines = []
    for i, name in enumerate(fields):
        if name in ("checkpoint", "step"):
            continue
        value = f"%{{customdata[{i}]:.4g}}" if name in HOVER_METRICS else f"%{{customdata[{i}]}}"
        lines.append(f"{name.replace('_', ' ')}: {value}")
    return "<br>".join(lines) + "<extra></extra>"


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
            "coloraxis": _axis(code),
            "line": {"color": "black", "width": 2},
        },
        "uid": "highlight",
    }
    extra = hover(rows, group) if hover is not None else {"hoverinfo": "skip"}
    meta = {"role": "highlight", "run": run, **extra.pop("meta", {})}
    return {**trace, **extra, "meta": meta}


def _layout(title: str | None) -> dict[str, Any]:
    # t-SNE/UMAP axes have no units: hide ticks, keep the plot area clean.
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": None}
    return {
        "template": "plotly_white",
        "title": {"text": title} if title else None,
        "height": 650,
        "margin": {"l": 20, "r": 20, "t": 80 if title else 50, "b": 20},
        "xaxis": axis,
        "yaxis": axis,
        "hovermode": "closest",
        "legend": {
            "title": {"text": LEGEND_TITLE},
            "orientation": "h",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "itemsizing": "constant",
        },
        # Keeps zoom and legend toggles when a dashboard redraws with new data.
        "uirevision": "trajectories",
    }


def _empty_figure(title: str | None) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(**_layout(title))
    return add_message(fig, "no checkpoints")
