"""The trajectory figure: every run as a path through its checkpoints in the 2-D map.

:func:`trajectory_figure` is pure (no I/O): the exporter and the dashboard both call it.
Each group is drawn as two traces, one with the lines of all its runs (separated by
gaps) and one with their markers, so that thousands of runs stay fast to draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.style import add_message, group_order, group_style

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

REQUIRED = ("run", "group", "seed", "epoch", "step", "checkpoint", "x", "y")
# customdata columns of every marker trace; the checkpoint key is always first.
CUSTOMDATA = ("checkpoint", "run", "group", "seed", "epoch", "step")
HOVER_METRICS = ("test_error",)
ORDER = ["group", "run", "epoch", "step"]


def trajectory_figure(
    frame: pd.DataFrame,
    *,
    color: str = "epoch",
    title: str | None = None,
    webgl: bool = True,
    highlight_run: str | None = None,
    colorscale: str = "Viridis",
) -> go.Figure:
    """Draw each run of ``frame`` as a line through its checkpoints, coloured by ``color``.

    ``frame`` is an embedding's frame (columns run, group, seed, epoch, step, checkpoint,
    x, y and optional metrics). Groups differ in marker symbol and line dash and have
    one legend entry each; ``highlight_run`` draws that run's path on top. Every marker
    trace has ``customdata[i][0]`` = checkpoint key and ``meta["customdata"]`` naming
    the customdata columns; see :func:`clicked_checkpoint`.
    """
    import plotly.graph_objects as go

    if len(frame) == 0:
        return _empty_figure(title)
    _check_frame(frame, color, highlight_run)
    frame = frame.sort_values(ORDER, kind="stable")
    fields = _customdata_fields(frame, color)
    scatter = go.Scattergl if webgl else go.Scatter
    traces = []
    for group in group_order(frame["group"].tolist()):
        part = frame[frame["group"] == group]
        traces += _group_traces(scatter, part, group, color, fields)
    if highlight_run is not None:
        part = frame[frame["run"] == highlight_run]
        traces.append(_highlight_trace(scatter, part, highlight_run, color, fields))
    fig = go.Figure(data=traces)
    values = frame[color].to_numpy(dtype=np.float64)
    finite = np.isfinite(values).any()
    cmin = float(np.nanmin(values)) if finite else 0.0
    cmax = float(np.nanmax(values)) if finite else 1.0
    fig.update_layout(
        **trajectory_layout(title, color=color, cmin=cmin, cmax=cmax, colorscale=colorscale)
    )
    return fig


def trajectory_layout(
    title: str | None = None,
    *,
    color: str = "epoch",
    cmin: float = 0.0,
    cmax: float = 1.0,
    colorscale: str = "Viridis",
) -> dict[str, Any]:
    """The layout of :func:`trajectory_figure`, colour axis included, as a plain dict.

    For code that draws the same figure straight from arrays (the dashboard redraws
    20,000 points faster than a validated ``go.Figure`` allows).
    """
    coloraxis = {
        "colorscale": colorscale,
        "cmin": cmin,
        "cmax": cmax,
        "colorbar": {"title": {"text": color}, "thickness": 15},
    }
    return {**_layout(title), "coloraxis": coloraxis}


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


def _with_gaps(values: np.ndarray, runs: np.ndarray) -> np.ndarray:
    # A NaN between two runs breaks the line, so one trace draws all of a group's runs.
    breaks = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    return np.insert(values.astype(np.float64), breaks, np.nan)


def _group_traces(scatter: Any, part: pd.DataFrame, group: str, color: str, fields: list[str]):
    style = group_style(group)
    runs = part["run"].to_numpy()
    lines = scatter(
        x=_with_gaps(part["x"].to_numpy(), runs),
        y=_with_gaps(part["y"].to_numpy(), runs),
        mode="lines",
        name=group,
        legendgroup=group,
        showlegend=False,
        hoverinfo="skip",
        opacity=0.6,
        line={"color": style.color, "dash": style.dash, "width": 1.2},
        meta={"role": "lines", "group": group},
    )
    markers = scatter(
        x=part["x"].to_numpy(dtype=np.float64),
        y=part["y"].to_numpy(dtype=np.float64),
        mode="markers",
        name=group,
        legendgroup=group,
        marker={
            "symbol": style.symbol,
            "size": 7,
            "color": part[color].to_numpy(dtype=np.float64),
            "coloraxis": "coloraxis",
            "line": {"color": style.color, "width": 1},
        },
        customdata=part[fields].to_numpy(dtype=object),
        hovertemplate=_hovertemplate(fields),
        meta={"role": "checkpoints", "group": group, "customdata": fields},
    )
    return [lines, markers]


def _highlight_trace(scatter: Any, part: pd.DataFrame, run: str, color: str, fields: list[str]):
    return scatter(
        x=part["x"].to_numpy(dtype=np.float64),
        y=part["y"].to_numpy(dtype=np.float64),
        mode="lines+markers",
        name=f"run {run}",
        legendgroup="highlight",
        line={"color": "black", "width": 3},
        marker={
            "symbol": group_style(str(part["group"].iloc[0])).symbol,
            "size": 11,
            "color": part[color].to_numpy(dtype=np.float64),
            "coloraxis": "coloraxis",
            "line": {"color": "black", "width": 2},
        },
        customdata=part[fields].to_numpy(dtype=object),
        hovertemplate=_hovertemplate(fields),
        meta={"role": "highlight", "run": run, "customdata": fields},
    )


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
            "title": {"text": "group"},
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
