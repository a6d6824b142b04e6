"""Figures of the dashboard as plain dicts built from numpy arrays.

:func:`trajectory_dict` draws the trajectory figure with the one builder the exporter
uses too (:func:`fspace.plot.trajectories.path_traces`), straight from a
:class:`~fspace.app.frames.PlotFrame`: arrays go out as base64 typed arrays, so 20,000
points take milliseconds instead of a second of validation and JSON encoding.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from fspace.app.frames import PlotFrame
from fspace.app.raster import Viewport, render
from fspace.plot.density import span_traces
from fspace.plot.trajectories import Paths, path_traces, trajectory_layout

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

    Every group has its traces even when the mask empties them, so legend toggles keep
    their place; ``highlight`` draws that run's path (within the epoch window) on top
    and ``selected`` (a drawing-order row) rings one checkpoint. Colours and axes span
    the whole map, so they stay put as the window moves.
    """
    paths = Paths(plot.x, plot.y, plot.epoch, plot.group_code, plot.run_code, plot.groups)
    hover = _hover(plot)
    run_rows = None
    if highlight is not None:
        run_rows = plot.rows_of_run(highlight)
        run_rows = run_rows[mask[run_rows]] if run_rows.size else run_rows
    traces = path_traces(
        paths,
        np.flatnonzero(mask),
        encode=typed,
        hover=hover,
        highlight=run_rows,
        highlight_run=highlight,
    )
    if selected is not None:
        traces.append(_selected(plot, selected))
    lo, hi = plot.epoch_range
    layout = trajectory_layout(title, groups=plot.groups, lo=float(lo), hi=float(hi))
    x0, x1, y0, y1 = plot.extent
    layout["xaxis"] = {**layout["xaxis"], "range": [x0, x1]}
    layout["yaxis"] = {**layout["yaxis"], "range": [y0, y1]}
    layout["uirevision"] = uirevision
    return {"data": traces, "layout": layout}


def raster_dict(
    plot: PlotFrame,
    mask: np.ndarray,
    view: Viewport,
    *,
    highlight: str | None = None,
    selected: int | None = None,
    title: str | None = None,
    uirevision: str = "trajectories",
) -> dict[str, Any]:
    """The trajectory figure of a large map: the rows of ``plot`` that ``mask`` keeps,
    rendered on the server for ``view`` (:func:`fspace.app.raster.render`) and shown as
    the picture under an empty axis frame.

    On top lie the ``highlight`` run's path and the ``selected`` checkpoint (a
    drawing-order row) as vector shapes, and an invisible trace spanning the whole map,
    so that resetting the axes shows all of it. Nothing is drawn with WebGL; hovers and
    clicks are answered by the pages' scripts and the server
    (:mod:`fspace.app.raster_hover`)."""
    lo, hi = plot.epoch_range
    layout = trajectory_layout(title, groups=plot.groups, lo=float(lo), hi=float(hi))
    layout["xaxis"] = {**layout["xaxis"], "range": [view.x0, view.x1], "ticks": ""}
    layout["yaxis"] = {**layout["yaxis"], "range": [view.y0, view.y1], "ticks": ""}
    layout["uirevision"] = uirevision
    layout["dragmode"] = "pan"
    layout["images"] = [picture_image(plot, mask, view)]
    traces = [*_span(plot), *raster_marks(plot, mask, highlight, selected)]
    return {"data": traces, "layout": layout}


def picture_image(plot: PlotFrame, mask: np.ndarray | None, view: Viewport) -> dict[str, Any]:
    """The layout image of :func:`raster_dict`: the picture of the rows of ``plot`` that
    ``mask`` keeps, rendered for ``view`` and placed on it."""
    return {
        "source": render(plot, mask, view),
        "xref": "x",
        "yref": "y",
        "x": view.x0,
        "y": view.y1,
        "sizex": view.x1 - view.x0,
        "sizey": view.y1 - view.y0,
        "sizing": "stretch",
        "xanchor": "left",
        "yanchor": "top",
        "layer": "below",
    }


def raster_marks(
    plot: PlotFrame, mask: np.ndarray, highlight: str | None, selected: int | None
) -> list[dict[str, Any]]:
    """The ``highlight`` run's path (its checkpoints ``mask`` keeps) and the ring of the
    ``selected`` row, as SVG traces; each is there, empty, when there is none, so that
    a new selection only replaces these two traces (a patch, not a new picture)."""
    rows = plot.rows_of_run(highlight) if highlight is not None else np.zeros(0, np.int64)
    rows = rows[mask[rows]] if rows.size else rows
    paths = Paths(plot.x, plot.y, plot.epoch, plot.group_code, plot.run_code, plot.groups)
    path = path_traces(
        paths,
        rows[:0],
        kind="scatter",
        encode=typed,
        hover=_hover(plot),
        highlight=rows,
        highlight_run=highlight or "",
    )[-1]
    ring = {**_selected(plot, selected if selected is not None else 0), "type": "scatter"}
    if selected is None:
        ring["x"], ring["y"] = [], []
    return [path, ring]


def _span(plot: PlotFrame) -> list[dict[str, Any]]:
    """Invisible markers at the corners of the whole map, one trace per group (each on
    the group's colour axis, so its colour bar is shown)."""
    return span_traces(plot.groups, plot.extent, plot.epoch_range)


def _hover(plot: PlotFrame):
    has_error = plot.error is not None

    def hover(rows: np.ndarray, group: str) -> dict[str, Any]:
        return {
            "text": plot.runs[plot.run_code[rows]].tolist(),
            "customdata": _customdata(plot, rows),
            "hovertemplate": _hovertemplate(group, has_error),
            "meta": {"customdata": list(CUSTOMDATA)},
        }

    return hover


def _customdata(plot: PlotFrame, rows: np.ndarray) -> dict[str, str]:
    error = plot.error[rows] if plot.error is not None else np.full(rows.size, np.nan)
    columns = [plot.frame["row"].to_numpy()[rows], plot.seed[rows], plot.epoch[rows], error]
    return typed(np.column_stack(columns) if rows.size else np.zeros((0, 4)))


def _hovertemplate(group: str, has_error: bool) -> str:
    lines = ["run: %{text}", f"group: {group}", "seed: %{customdata[1]}", "epoch: %{customdata[2]}"]
    if has_error:
        lines.append("test error: %{customdata[3]:.4g}")
    return "<br>".join(lines) + "<extra></extra>"


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


def panel_title(text: str, domain: tuple[float, float]) -> dict[str, Any]:
    """An annotation titling the subplot that spans ``domain`` of the figure's width."""
    return {
        "text": text,
        "x": sum(domain) / 2,
        "y": 1.0,
        "xref": "paper",
        "yref": "paper",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 14},
    }
