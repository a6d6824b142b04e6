"""The trajectories page's view of a large map: a picture rendered on the server.

Above :data:`fspace.app.raster.VECTOR_LIMIT` checkpoints the page draws
:func:`fspace.app.figures.raster_dict`. The figure says what its picture shows
(``layout.meta``, :func:`fspace.app.raster_picture.meta`); after every zoom, pan or
resize the page's script (``assets/raster_picture.js``) asks
:mod:`fspace.app.raster_picture` for the picture of the new view and swaps only the
layout image, outside Dash's callbacks. The browser also reports the part of the map it
shows and the plot area's size in pixels (:data:`REPORT_VIEW_JS`, into the
``RASTER_VIEW`` store), so that a figure Dash draws (new filters, a new map version, a
new selection) shows the same view. Hover and click do not go through Dash either: the
page's script (``assets/raster_answer.js``) asks :mod:`fspace.app.raster_hover` for the
checkpoint under the pointer and draws the answer itself (a tooltip and the hovered
run's path, on a layer above the figure), so nothing is re-rendered; a click sets the
selected checkpoint, which opens its details and draws its run as any selection does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import ALL, ClientsideFunction, Input, Output, Patch, State, dcc, html

from fspace.app import ids, raster_picture
from fspace.app.figures import raster_dict, raster_marks
from fspace.app.frames import PlotFrame
from fspace.app.raster import Viewport
from fspace.app.raster_hover import ENDPOINT

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


def components(reported: dict[str, Any] | None = None) -> list[Any]:
    """The page's parts of the raster view: the reported view (``reported``, that of a
    first picture sent with the page), and the hover answer's tooltip and layer, which
    the page's script fills (it reads the ids and the endpoint from the tooltip's
    ``data-`` attributes)."""
    import dash

    return [
        dcc.Store(id=ids.RASTER_VIEW, data=reported),
        dcc.Store(id=ids.RASTER_QUERY),
        html.Div(id=ids.RASTER_OVERLAY, className="fs-answer-layer"),
        html.Div(
            id=ids.RASTER_ANSWER,
            className="fs-hover-tip fs-answer",
            hidden=True,
            **{
                "data-graph": ids.GRAPH,
                "data-layer": ids.RASTER_OVERLAY,
                "data-selected": ids.SELECTED,
                "data-endpoint": dash.get_relative_path(ENDPOINT),
            },
        ),
    ]


def first_figure(
    plot: PlotFrame, revision: str, token: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The picture of the whole map for a new page, on the plot area the last browser
    reported, and the view it shows as the browser will report it (so that, when the
    area is the same, the report changes nothing and nothing is drawn twice); ``token``
    names the map for the page's script (see the module)."""
    area = dict(raster_picture.AREA)
    view = Viewport.parse(area, Viewport.of_extent(plot))
    reported = {**area, "x": [view.x0, view.x1], "y": [view.y0, view.y1], "rev": revision}
    mask = np.ones(len(plot), dtype=bool)
    return figure(plot, mask, reported, revision, token=token), reported


def viewport(plot: PlotFrame, reported: Any, revision: str) -> Viewport:
    """The view to render: what the browser reported for the figure of ``revision``, or
    the whole map on the reported plot area (the last one reported, if none is)."""
    area = Viewport.of_extent(plot, int(raster_picture.AREA["w"]), int(raster_picture.AREA["h"]))
    whole = Viewport.parse(reported, area)
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
    token: str | None = None,
    filters: dict[str, Any] | None = None,
    epochs: Any = None,
) -> dict[str, Any]:
    """The raster figure of ``plot`` for the view the browser reported. Plotly's own
    hover is off: the page's script answers hovers and clicks, and renders the picture
    again on zoom and pan for the map ``token``, the ``filters`` and the ``epochs``
    window that ``mask`` was made from (see the module)."""
    view = viewport(plot, reported, revision)
    if isinstance(reported, dict) and view.width == reported.get("w"):
        raster_picture.AREA.update({k: reported[k] for k in ("w", "h", "l", "t") if k in reported})
    out = raster_dict(plot, mask, view, highlight=highlight, selected=selected, uirevision=revision)
    out["layout"]["hovermode"] = False
    out["layout"]["meta"] = raster_picture.meta(token, view, filters, epochs, area=True)
    return out


def marks_slot(plot: PlotFrame) -> int:
    """Index of the highlighted run's path in :func:`figure`'s data (after one span
    trace per group); the selected checkpoint's ring follows it."""
    return len(plot.groups)


def selection_patch(
    plot: PlotFrame, mask: np.ndarray, highlight: str | None, selected: int | None
) -> Patch:
    """A patch of :func:`figure` showing a new selection: only the highlighted run's
    path and the selected ring change, the picture stays (Dash's copy of the figure
    follows the picture and axes the page's script set: ``dcc.Graph`` copies every
    relayout into its ``figure``)."""
    patch = Patch()
    path, ring = raster_marks(plot, mask, highlight, selected)
    slot = marks_slot(plot)
    patch["data"][slot] = path
    patch["data"][slot + 1] = ring
    return patch


def register(callback: Any) -> None:
    """Declare the raster view's callbacks with the page's collector ``callback``: the
    view reporter, and the one that hands the page's script what the page shows (map
    token, filters, epoch window) for its hover and click requests."""
    callback.clientside(
        REPORT_VIEW_JS,
        Output(ids.RASTER_VIEW, "data"),
        Input(ids.GRAPH, "relayoutData"),
        Input(ids.GRAPH_READY, "data"),
        State(ids.RASTER_VIEW, "data"),
    )
    callback.clientside(
        ClientsideFunction(namespace="fspace_raster", function_name="shown"),
        Output(ids.RASTER_QUERY, "data"),
        Input(ids.MAP_TOKEN, "data"),
        Input({"type": "filter", "column": ALL}, "value"),
        Input({"type": "filter", "column": ALL}, "id"),
        Input(ids.EPOCHS, "value"),
    )
