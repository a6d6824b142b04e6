"""Figures of the dashboard as plain dicts built from numpy arrays.

:func:`trajectory_dict` draws the same figure as
:func:`fspace.plot.trajectories.trajectory_figure` (same traces, styles, layout and
legend groups) straight from a :class:`~fspace.app.frames.PlotFrame`: arrays go out as
base64 typed arrays, so 20,000 points take milliseconds instead of a second of
validation and JSON encoding. The exporter still uses ``trajectory_figure``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from fspace.app.frames import PlotFrame
from fspace.plot.style import group_style
from fspace.plot.trajectories import trajectory_layout

# customdata columns of marker traces (for the hover text).
CUSTOMDATA = ("row", "seed", "epoch", "test_error")
MESSAGE_FONT = {"size": 16, "color": "grey"}


def typed(values: np.ndarray, dtype: str = "f4") -> dict[str, str]:
    """``values`` as a plotly.js typed array: little-endian bytes in base64."""
    array = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    out = {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim == 2:
        out["shape"] = f"{array.shape[0]},{array.shape[1]}"
    return out


def trajectory_dict(
    plot: PlotFrame,
    mask: np.ndarray,
    *,
    highlight: str | None = None,
    selected: int | None = None,
    title: str | None = None,
    uirevision: str = "trajectories",
) -> dict[str, Any]:
    """The trajectory figure of the rows of ``plot`` selected by ``mask``.

    Every group has a line trace and a marker trace, even when the mask empties it, so
    legend toggles keep their place; ``highlight`` draws that run's path (within the
    epoch window) on top and ``selected`` (a drawing-order row) rings one checkpoint.
    Colours and axes span the whole map, so they stay put as the window moves.
    """
    rows = np.flatnonzero(mask)
    traces: list[dict[str, Any]] = []
    for code, group in enumerate(plot.groups):
        part = rows[plot.group_code[rows] == code]
        traces += [_lines(plot, part, group), _markers(plot, part, group)]
    if highlight is not None:
        run_rows = plot.rows_of_run(highlight)
        run_rows = run_rows[mask[run_rows]] if run_rows.size else run_rows
        traces.append(_highlight(plot, run_rows, highlight))
    if selected is not None:
        traces.append(_selected(plot, selected))
    lo, hi = plot.epoch_range
    layout = trajectory_layout(title, cmin=float(lo), cmax=float(max(hi, lo + 1)))
    x0, x1, y0, y1 = plot.extent
    layout["xaxis"] = {**layout["xaxis"], "range": [x0, x1]}
    layout["yaxis"] = {**layout["yaxis"], "range": [y0, y1]}
    layout["uirevision"] = uirevision
    # Epochs are whole numbers: no 0.5 ticks on the colour bar.
    layout["coloraxis"]["colorbar"]["dtick"] = max(1, -(-(hi - lo) // 8))
    return {"data": traces, "layout": layout}


def _customdata(plot: PlotFrame, rows: np.ndarray) -> dict[str, str]:
    error = plot.error[rows] if plot.error is not None else np.full(rows.size, np.nan)
    columns = [plot.frame["row"].to_numpy()[rows], plot.seed[rows], plot.epoch[rows], error]
    return typed(np.column_stack(columns) if rows.size else np.zeros((0, 4)))


def _hovertemplate(group: str, has_error: bool) -> str:
    lines = ["run: %{text}", f"group: {group}", "seed: %{customdata[1]}", "epoch: %{customdata[2]}"]
    if has_error:
        lines.append("test error: %{customdata[3]:.4g}")
    return "<br>".join(lines) + "<extra></extra>"


def _with_gaps(values: np.ndarray, runs: np.ndarray) -> np.ndarray:
    # A NaN between two runs breaks the line, so one trace draws all of a group's runs.
    breaks = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    return np.insert(values.astype(np.float32), breaks, np.nan)


def _lines(plot: PlotFrame, rows: np.ndarray, group: str) -> dict[str, Any]:
    style = group_style(group)
    runs = plot.run_code[rows]
    return {
        "type": "scattergl",
        "mode": "lines",
        "x": typed(_with_gaps(plot.x[rows], runs)),
        "y": typed(_with_gaps(plot.y[rows], runs)),
        "name": group,
        "legendgroup": group,
        "showlegend": False,
        "hoverinfo": "skip",
        "opacity": 0.6,
        "line": {"color": style.color, "dash": style.dash, "width": 1.2},
        "meta": {"role": "lines", "group": group},
        "uid": f"lines-{group}",
    }


def _markers(plot: PlotFrame, rows: np.ndarray, group: str) -> dict[str, Any]:
    style = group_style(group)
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": typed(plot.x[rows]),
        "y": typed(plot.y[rows]),
        "name": group,
        "legendgroup": group,
        "marker": {
            "symbol": style.symbol,
            "size": 7,
            "color": typed(plot.epoch[rows]),
            "coloraxis": "coloraxis",
            "line": {"color": style.color, "width": 1},
        },
        "text": plot.runs[plot.run_code[rows]].tolist(),
        "customdata": _customdata(plot, rows),
        "hovertemplate": _hovertemplate(group, plot.error is not None),
        "meta": {"role": "checkpoints", "group": group, "customdata": list(CUSTOMDATA)},
        "uid": f"markers-{group}",
    }


def _highlight(plot: PlotFrame, rows: np.ndarray, run: str) -> dict[str, Any]:
    group = str(plot.frame["group"].iloc[rows[0]]) if rows.size else ""
    return {
        "type": "scattergl",
        "mode": "lines+markers",
        "x": typed(plot.x[rows]),
        "y": typed(plot.y[rows]),
        "name": f"run {run}",
        "legendgroup": "highlight",
        "line": {"color": "black", "width": 3},
        "marker": {
            "symbol": group_style(group).symbol if group else "circle",
            "size": 11,
            "color": typed(plot.epoch[rows]),
            "coloraxis": "coloraxis",
            "line": {"color": "black", "width": 2},
        },
        "text": [run] * int(rows.size),
        "customdata": _customdata(plot, rows),
        "hovertemplate": _hovertemplate(group, plot.error is not None),
        "meta": {"role": "highlight", "run": run, "customdata": list(CUSTOMDATA)},
        "uid": "highlight",
    }


def _selected(plot: PlotFrame, position: int) -> dict[str, Any]:
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": [float(plot.x[position])],
        "y": [float(plot.y[position])],
        "name": "selected checkpoint",
        "showlegend": False,
        "hoverinfo": "skip",
        "marker": {"symbol": "circle-open", "size": 22, "color": "#d62728", "line": {"width": 3}},
        "meta": {"role": "selected"},
        "uid": "selected",
    }


def clicked_key(plot: PlotFrame, click_data: dict[str, Any] | None) -> str | None:
    """The checkpoint key of the point in a ``clickData`` payload, if it is a checkpoint.

    Dash drops typed-array customdata from ``clickData``, so the point is found from
    what it keeps: the run (``text``), the epoch (``marker.color``) and ``x, y``.
    """
    points = (click_data or {}).get("points") or []
    if not points or not isinstance(points[0].get("text"), str):
        return None
    point = points[0]
    rows = plot.rows_of_run(point["text"])
    epoch = point.get("marker.color")
    if rows.size and isinstance(epoch, (int, float)):
        rows = rows[plot.epoch[rows] == int(epoch)]
    if not rows.size:
        return None
    x, y = float(point.get("x", np.nan)), float(point.get("y", np.nan))
    distance = (plot.x[rows] - x) ** 2 + (plot.y[rows] - y) ** 2
    best = rows[int(np.nanargmin(distance))] if np.isfinite(distance).any() else rows[0]
    return str(plot.frame["checkpoint"].iloc[best])


def message_dict(text: str, *, title: str | None = None) -> dict[str, Any]:
    """An empty trajectory figure that says ``text`` in its middle."""
    layout = trajectory_layout(title)
    layout["annotations"] = [
        {
            "text": text,
            "x": 0.5,
            "y": 0.5,
            "xref": "paper",
            "yref": "paper",
            "showarrow": False,
            "font": MESSAGE_FONT,
        }
    ]
    layout["coloraxis"] = {**layout["coloraxis"], "showscale": False}
    return {"data": [], "layout": layout}


def note_figure(text: str, *, height: int = 200) -> dict[str, Any]:
    """A blank figure (no axes) that says ``text``."""
    hidden = {"visible": False}
    return {
        "data": [],
        "layout": {
            "template": "plotly_white",
            "height": height,
            "xaxis": hidden,
            "yaxis": hidden,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "annotations": [
                {
                    "text": text,
                    "x": 0.5,
                    "y": 0.5,
                    "xref": "paper",
                    "yref": "paper",
                    "showarrow": False,
                    "font": MESSAGE_FONT,
                }
            ],
        },
    }
