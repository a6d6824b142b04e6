"""The trajectories page's view of a large map: a picture rendered on the server.

Above :data:`fspace.app.raster.VECTOR_LIMIT` checkpoints the page draws
:func:`fspace.app.figures.raster_dict`. The browser reports the part of the map it shows
and the plot area's size in pixels (:data:`REPORT_VIEW_JS`, into the ``RASTER_VIEW``
store) whenever the graph is first drawn, zoomed, panned or resized; the figure is
rendered again for that view. Hover and click report a position on an invisible grid,
and the server finds the checkpoint under it (:func:`nearest_key`); hovering one draws
its run's path on top and shows a tooltip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from dash import ALL, Input, Output, Patch, State, dcc, html
from dash.exceptions import PreventUpdate

from fspace.app import ids
from fspace.app.figures import GRID_PX, raster_dict, raster_marks
from fspace.app.frames import PlotFrame
from fspace.app.raster import Viewport, is_raster, layers
from fspace.app.spatial import TOLERANCE_PX
from fspace.plot.trajectories import Paths, path_traces

# The view the browser shows, reported when the graph is ready and, for a raster
# figure, after every zoom, pan or resize: the plot area's size and margins in pixels,
# the axis ranges and the figure's uirevision (which map the ranges belong to).
REPORT_VIEW_JS = """
function(relayout, ready, reported) {
    const nu = window.dash_clientside.no_update;
    const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
    if (!ready || !gd || !gd._fullLayout || !gd._fullLayout._size) { return nu; }
    const L = gd._fullLayout, size = L._size;
    const raster = Boolean(gd.layout.images && gd.layout.images.length);
    if (reported && !raster) { return nu; }
    const view = {w: Math.round(size.w), h: Math.round(size.h), l: size.l, t: size.t};
    if (raster) {
        view.x = L.xaxis.range.slice();
        view.y = L.yaxis.range.slice();
        view.rev = gd.layout.uirevision;
    }
    return JSON.stringify(view) === JSON.stringify(reported) ? nu : view;
}
"""


# The plot area the last browser reported (size and margins in pixels): a page's first
# picture is rendered for it, so that it is shown with the page, before any report.
_last_area: dict[str, float] = {"w": 1000, "h": 580, "l": 20, "t": 50}


def components(reported: dict[str, Any] | None = None) -> list[Any]:
    """The page's parts of the raster view: the reported view (``reported``, that of a
    first picture sent with the page) and the hover tooltip."""
    return [
        dcc.Store(id=ids.RASTER_VIEW, data=reported),
        dcc.Tooltip(id=ids.HOVER_TIP, direction="right", className="fs-hover-tip"),
    ]


def first_figure(plot: PlotFrame, revision: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The picture of the whole map for a new page, on the plot area the last browser
    reported, and the view it shows as the browser will report it (so that, when the
    area is the same, the report changes nothing and nothing is drawn twice)."""
    area = dict(_last_area)
    view = Viewport.parse(area, Viewport.of_extent(plot))
    reported = {**area, "x": [view.x0, view.x1], "y": [view.y0, view.y1], "rev": revision}
    mask = np.ones(len(plot), dtype=bool)
    return figure(plot, mask, reported, revision), reported


def viewport(plot: PlotFrame, reported: Any, revision: str) -> Viewport:
    """The view to render: what the browser reported for the figure of ``revision``, or
    the whole map on the reported plot area."""
    whole = Viewport.parse(reported, Viewport.of_extent(plot))
    same_map = isinstance(reported, dict) and reported.get("rev") == revision
    if same_map:
        return whole
    return Viewport.of_extent(plot, whole.width, whole.height)


def figure(
    plot: PlotFrame,
    mask: np.ndarray,
    reported: Any,
    revision: str,
    *,
    highlight: str | None = None,
    selected: int | None = None,
) -> dict[str, Any]:
    """The raster figure of ``plot`` for the view the browser reported, with an empty
    slot (:func:`hover_slot`) for the hovered run's path."""
    view = viewport(plot, reported, revision)
    if isinstance(reported, dict) and view.width == reported.get("w"):
        _last_area.update({k: reported[k] for k in ("w", "h", "l", "t") if k in reported})
    out = raster_dict(plot, mask, view, highlight=highlight, selected=selected, uirevision=revision)
    out["data"].insert(hover_slot(plot), _hovered(plot, np.zeros(0, np.int64), ""))
    return out


def hover_slot(plot: PlotFrame) -> int:
    """Index of the hovered run's trace in :func:`figure`'s data (after the grid and one
    span trace per group); the highlighted run's path and the selected checkpoint's ring
    follow it."""
    return 1 + len(plot.groups)


def selection_patch(
    plot: PlotFrame, mask: np.ndarray, highlight: str | None, selected: int | None
) -> Patch:
    """A patch of :func:`figure` showing a new selection: only the highlighted run's
    path and the selected ring change, the picture stays."""
    patch = Patch()
    path, ring = raster_marks(plot, mask, highlight, selected)
    slot = hover_slot(plot)
    patch["data"][slot + 1] = path
    patch["data"][slot + 2] = ring
    return patch


def nearest_key(plot: PlotFrame, point: Any, reported: Any, mask: np.ndarray) -> str | None:
    """The checkpoint under a hover or click on the grid (``point`` is one entry of
    ``hoverData["points"]`` or ``clickData["points"]``), among the rows ``mask`` keeps."""
    row = nearest_row(plot, point, reported, mask)
    return None if row is None else str(plot.frame["checkpoint"].iloc[row])


def nearest_row(plot: PlotFrame, point: Any, reported: Any, mask: np.ndarray) -> int | None:
    """Drawing-order row of the checkpoint under ``point`` (see :func:`nearest_key`)."""
    if not _on_grid(point):
        return None  # not the grid: a vector trace answers for itself
    try:
        x, y = float(point["x"]), float(point["y"])
    except (KeyError, TypeError, ValueError):
        return None
    view = Viewport.parse(reported, Viewport.of_extent(plot))
    return layers(plot).index.nearest(
        x, y, units_per_pixel=view.units_per_pixel, mask=mask, tolerance_px=TOLERANCE_PX + GRID_PX
    )


def tip_answer(plot: PlotFrame, row: int | None, reported: Any) -> tuple[Any, ...]:
    """The tooltip's ``show``, ``bbox`` and ``children`` for the hovered ``row``."""
    if row is None:
        return False, None, None
    run = str(plot.runs[plot.run_code[row]])
    return True, _bbox(plot, row, reported), _tip(plot, row, run)


def path_patch(plot: PlotFrame, row: int | None) -> Patch:
    """A patch of the figure that draws the run of the hovered ``row`` on top (or
    nothing, for None)."""
    patch = Patch()
    if row is None:
        patch["data"][hover_slot(plot)] = _hovered(plot, np.zeros(0, np.int64), "")
        return patch
    run = str(plot.runs[plot.run_code[row]])
    patch["data"][hover_slot(plot)] = _hovered(plot, plot.rows_of_run(run), run)
    return patch


def register(callback: Any, entry_of: Callable, shown: Callable) -> None:
    """Declare the raster view's callbacks with the page's collector ``callback``:
    the view reporter, the hover tooltip and the hovered run's path (two callbacks, so
    the tooltip never waits for the figure). ``entry_of(token)`` is the page's map entry,
    ``shown(plot, filter_values, filter_ids, epochs)`` the mask of the checkpoints shown."""
    callback.clientside(
        REPORT_VIEW_JS,
        Output(ids.RASTER_VIEW, "data"),
        Input(ids.GRAPH, "relayoutData"),
        Input(ids.GRAPH_READY, "data"),
        State(ids.RASTER_VIEW, "data"),
    )

    def hovered_row(hovered, token, filters, keys, epochs, view) -> tuple[PlotFrame, int | None]:
        entry = entry_of(token)
        point = ((hovered or {}).get("points") or [None])[0]
        if entry is None or not is_raster(entry.plot) or not _on_grid(point):
            raise PreventUpdate  # a vector trace shows its own hover
        mask = shown(entry.plot, filters, keys, epochs)
        return entry.plot, nearest_row(entry.plot, point, view, mask)

    @callback(
        Output(ids.HOVER_TIP, "show"),
        Output(ids.HOVER_TIP, "bbox"),
        Output(ids.HOVER_TIP, "children"),
        Input(ids.GRAPH, "hoverData"),
        *SHOWN,
        prevent_initial_call=True,
    )
    def hover_tip(hovered, token, filters=(), keys=(), epochs=None, view=None):
        """On a raster, the tooltip of the checkpoint under the pointer."""
        plot, row = hovered_row(hovered, token, filters, keys, epochs, view)
        return tip_answer(plot, row, view)

    @callback(
        Output(ids.GRAPH, "figure", allow_duplicate=True),
        Input(ids.GRAPH, "hoverData"),
        *SHOWN,
        prevent_initial_call=True,
    )
    def hover_path(hovered, token, filters=(), keys=(), epochs=None, view=None):
        """On a raster, the run of the checkpoint under the pointer, drawn on top."""
        plot, row = hovered_row(hovered, token, filters, keys, epochs, view)
        return path_patch(plot, row)


# What hovers and clicks on a raster need: the map, the checkpoints shown, the view.
SHOWN = (
    State(ids.MAP_TOKEN, "data"),
    State({"type": "filter", "column": ALL}, "value"),
    State({"type": "filter", "column": ALL}, "id"),
    State(ids.EPOCHS, "value"),
    State(ids.RASTER_VIEW, "data"),
)


def _on_grid(point: Any) -> bool:
    return isinstance(point, dict) and point.get("curveNumber") == 0


def _hovered(plot: PlotFrame, rows: np.ndarray, run: str) -> dict[str, Any]:
    paths = Paths(plot.x, plot.y, plot.epoch, plot.group_code, plot.run_code, plot.groups)
    trace = path_traces(paths, rows[:0], kind="scatter", highlight=rows, highlight_run=run)[-1]
    trace["x"], trace["y"] = plot.x[rows].tolist(), plot.y[rows].tolist()
    trace["marker"] = {**trace["marker"], "color": plot.epoch[rows].tolist(), "size": 7}
    trace["line"] = {"color": "#333333", "width": 2}
    return {**trace, "uid": "hovered", "showlegend": False, "meta": {"role": "hovered"}}


def _bbox(plot: PlotFrame, row: int, reported: Any) -> dict[str, float]:
    """Where the checkpoint lies on the graph, in pixels from its top left corner."""
    view = Viewport.parse(reported, Viewport.of_extent(plot))
    left = float(reported.get("l", 0)) if isinstance(reported, dict) else 0.0
    top = float(reported.get("t", 0)) if isinstance(reported, dict) else 0.0
    x = left + (float(plot.x[row]) - view.x0) / (view.x1 - view.x0) * view.width
    y = top + (view.y1 - float(plot.y[row])) / (view.y1 - view.y0) * view.height
    return {"x0": x - 4, "x1": x + 4, "y0": y - 4, "y1": y + 4}


def _tip(plot: PlotFrame, row: int, run: str) -> html.Div:
    lines = [
        f"run: {run}",
        f"group: {plot.groups[plot.group_code[row]]}",
        f"epoch: {int(plot.epoch[row])}",
    ]
    if plot.error is not None and np.isfinite(plot.error[row]):
        lines.append(f"test error: {float(plot.error[row]):.4g}")
    return html.Div([html.Div(line) for line in lines])
