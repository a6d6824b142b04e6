"""The compare page's maps above the raster threshold: what each side's browser reports.

Each side's picture is rendered again by the page's script after a zoom or pan
(:mod:`fspace.app.raster_picture`), and its clicks are answered by the nearest-checkpoint
endpoint, whose run the script writes into the side's click store
(``assets/raster_click.js``, :func:`fspace.app.linked.picked_runs`). The browser still
reports the part of the map it shows (:data:`REPORT_VIEW_JS`, into the side's view
store), so that a figure Dash draws (a new selection) shows the same view.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State

# The part of a raster map the browser shows, as the trajectories page reports it
# (fspace.app.raster_view): the plot area's size and margins in pixels, the axis ranges
# and the figure's uirevision. Checked on every zoom, pan or resize and on the page's
# poll (a new figure is drawn without a relayout event); a vector map reports nothing.
REPORT_VIEW_JS = """
function(relayout, polls, reported) {
    const nu = window.dash_clientside.no_update;
    const gd = document.querySelector('#GRAPH .js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd._fullLayout._size) { return nu; }
    if (!(gd.layout.images && gd.layout.images.length)) { return nu; }
    const L = gd._fullLayout, size = L._size;
    const view = {w: Math.round(size.w), h: Math.round(size.h), l: size.l, t: size.t,
                  x: L.xaxis.range.slice(), y: L.yaxis.range.slice(),
                  rev: gd.layout.uirevision};
    return JSON.stringify(view) === JSON.stringify(reported) ? nu : view;
}
"""


def report_view(callback: Any, graph: str, view: str, poll: str) -> None:
    """Declare, with the page's collector ``callback``, the reporter of the view that
    ``graph`` shows into the store ``view`` (on every relayout and every tick of the
    interval ``poll``)."""
    callback.clientside(
        REPORT_VIEW_JS.replace("GRAPH", graph),
        Output(view, "data"),
        Input(graph, "relayoutData"),
        Input(poll, "n_intervals"),
        State(view, "data"),
    )
