"""The trajectory figure: every run as a path through its checkpoints in the 2-D map.

One builder serves the exporter and the dashboard: :func:`~fspace.plot.paths.path_traces`
turns arrays in drawing order (:class:`~fspace.plot.paths.Paths`) into plotly trace dicts,
and :func:`trajectory_layout` gives the matching layout. :func:`trajectory_figure` wraps
both for an embedding's frame; the dashboard calls them with its own array encoding.

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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.paths import (  # noqa: F401 - scale_trace: public here too
    MAX_COLORBARS,
    Paths,
    color_axis,
    path_traces,
    scale_trace,
)
from fspace.plot.style import GroupStyle, add_message, group_order, group_styles

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

REQUIRED = ("run", "group", "seed", "epoch", "step", "checkpoint", "x", "y")
# customdata columns of every marker trace; the checkpoint key is always first.
CUSTOMDATA = ("checkpoint", "run", "group", "seed", "epoch", "step")
HOVER_METRICS = ("test_error",)
ORDER = ["group", "run", "epoch", "step"]
LEGEND_TITLE = "group  (hollow: start · outlined: end)"


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
    frame, paths = _drawing_order(frame, color)
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
    fig.update_layout(**trajectory_layout(title, groups=paths.groups, lo=lo, hi=hi, label=color))
    return fig


def _drawing_order(frame: pd.DataFrame, color: str) -> tuple[pd.DataFrame, Paths]:
    """``frame`` sorted by group (in legend order), run, epoch and step, and its
    :class:`Paths`, coloured by column ``color``."""
    groups = tuple(group_order(frame["group"].astype(str)))
    rank = {g: i for i, g in enumerate(groups)}
    frame = frame.assign(_g=frame["group"].astype(str).map(rank))
    frame = frame.sort_values(["_g", "run", "epoch", "step"], kind="stable")
    paths = Paths(
        x=frame["x"].to_numpy(np.float64),
        y=frame["y"].to_numpy(np.float64),
        color=frame[color].to_numpy(np.float64),
        group_code=frame["_g"].to_numpy(),
        run_code=frame["run"].astype(str).factorize()[0],
        groups=groups,
    )
    return frame, paths


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
        layout[color_axis(code)] = {
            "colorscale": styles[group].colorscale,
            "cmin": lo,
            "cmax": hi,
            "showscale": shown,
            "colorbar": bar,
        }
    if not shown:  # one neutral bar reads "light = early, dark = late" for every group
        layout[color_axis(len(groups))] = {
            "colorscale": GroupStyle("circle", "solid", "#555555").colorscale,
            "cmin": lo,
            "cmax": hi,
            "colorbar": {"title": {"text": label}, "thickness": 12, **ticks},
        }
    if not groups:
        layout["coloraxis"] = {"showscale": False, "cmin": lo, "cmax": hi}
    return layout


def clicked_checkpoint(click_data: dict[str, Any] | None) -> str | None:
    """The checkpoint key of the point in a Dash ``clickData`` payload, if any.

    Line traces are not clickable, so only markers (and the highlighted run) count.
    """
    points = (click_data or {}).get("points") or []
    if not points or "customdata" not in points[0]:
        return None
    custom = points[0]["customdata"]
    return custom[0] if isinstance(custom, (list, tuple)) else custom


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
