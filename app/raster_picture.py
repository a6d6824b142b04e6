"""Zoom and pan on a large map, answered by a small JSON endpoint instead of Dash.

A large map is a picture rendered on the server for the part of the map shown
(:mod:`fspace.app.raster`). After a zoom, a pan or a resize the picture must be rendered
again for the new view. Through Dash, that took a callback round trip: the renderer's
bookkeeping before the request, the whole figure serialised, sent and handed to
``Plotly.react``, about half of a re-render's time in the browser. Instead, the figure
says what its picture shows (:func:`meta`, in ``layout.meta``: the map's token, the
filters and epoch window, the view it was rendered for), and the page's script
(``assets/raster_picture.js``) posts the new view to :data:`ENDPOINT` after every zoom,
pan or resize and swaps only the layout image (``Plotly.relayout``), so nothing else of
the figure is sent or drawn again.

The endpoint is one more route of the dashboard's Flask server, behind the same Host
and Origin checks and security headers (:mod:`fspace.app.security`).

Request (POST, JSON)::

    {"token": "3.1", "view": {"x": [x0, x1], "y": [y0, y1], "w": 1000, "h": 580},
     "filters": {"group": ["pretrained"]}, "epochs": [0, 19], "area": true}

``w`` and ``h`` are the plot area's pixels; ``area`` (optional) says it is the
trajectories page's, on which a new page's first picture is rendered. Answer:
``{"source": "data:image/png;...", "x": [x0, x1], "y": [y0, y1], "w": ..., "h": ...}``,
the picture and the view it shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fspace.app.raster import MAX_PX, MIN_PX, Viewport, render, shown_mask
from fspace.app.raster_hover import add_json_route, parse_epochs, parse_filters
from fspace.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from fspace.app.frames import PlotFrame

ENDPOINT = "/_fspace/picture"
AREA: dict[str, float] = {"w": 1000, "h": 580, "l": 20, "t": 50}
"""The trajectories page's plot area (pixels and margins) as a browser last reported it: a
new page's first picture is rendered for it (:func:`fspace.app.raster_view.first_figure`),
so that it is shown with the page, before any report."""
KEY = "fspace_picture"
"""The key of ``layout.meta`` that says what a figure's picture shows (:func:`meta`)."""


def meta(
    token: str | None,
    view: Viewport,
    filters: Mapping[str, Any] | None = None,
    epochs: Any = None,
    *,
    clicks: str | None = None,
    area: bool = False,
) -> dict[str, Any]:
    """What a figure's picture shows, for ``layout.meta``: the map (``token``), the
    ``filters`` and ``epochs`` window its checkpoints were chosen by, and the ``view``
    it was rendered for (in the words of a request, see the module). ``clicks`` names
    the store a page's script writes the run of a clicked checkpoint into
    (``assets/raster_click.js``, for pages that choose runs by clicks). With ``area``,
    the plot area a request names is the one a new trajectories page's first picture is
    rendered for (:data:`AREA`)."""
    window = [float(v) for v in epochs] if epochs is not None else None
    words = {
        "token": token,
        # only the filters with a choice: none chosen shows every value
        "filters": {str(k): [str(v) for v in vs] for k, vs in (filters or {}).items() if vs},
        "epochs": window,
        "view": view_words(view),
    }
    if clicks is not None:
        words["clicks"] = clicks
    if area:
        words["area"] = True
    return {KEY: words}


def view_words(view: Viewport) -> dict[str, Any]:
    """``view`` as a request names it: ``{"x": [x0, x1], "y": [y0, y1], "w", "h"}``."""
    return {"x": [view.x0, view.x1], "y": [view.y0, view.y1], "w": view.width, "h": view.height}


def picture(plot: PlotFrame, mask: np.ndarray | None, view: Viewport) -> dict[str, Any]:
    """The picture of the checkpoints of ``plot`` that ``mask`` keeps in ``view``, as the
    endpoint answers it."""
    return {"source": render(plot, mask, view), **view_words(view)}


def parse_request(body: Any) -> tuple[str, Viewport, dict, Any]:
    """``(token, view, filters, epochs)`` of a request body (see the module's docstring);
    ConfigError naming the field at fault."""
    if not isinstance(body, Mapping):
        raise ConfigError("the request must be a JSON object with token and view")
    token = body.get("token")
    if not isinstance(token, str) or not token or len(token) > 100:
        raise ConfigError("token must be the map token of the page (a short string)")
    return (
        token,
        parse_view(body.get("view")),
        parse_filters(body.get("filters")),
        parse_epochs(body.get("epochs")),
    )


def parse_view(data: Any) -> Viewport:
    """The :class:`~fspace.app.raster.Viewport` a request names (pixel sizes clipped to
    what a browser may ask for); ConfigError for anything malformed."""
    if not isinstance(data, Mapping):
        raise ConfigError('view must be an object {"x": [x0, x1], "y": [y0, y1], "w": px, "h": px}')
    bounds = []
    for name in ("x", "y"):
        pair = data.get(name)
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair)):
            raise ConfigError(f"view.{name} must be [first, last], two finite numbers")
        if not pair[1] > pair[0]:
            raise ConfigError(f"view.{name} must grow: got {pair}")
        bounds += [float(v) for v in pair]
    sizes = []
    for name in ("w", "h"):
        if not _number(data.get(name)):
            raise ConfigError(f"view.{name} must be the plot area's {name} in pixels")
        sizes.append(int(min(max(float(data[name]), MIN_PX), MAX_PX)))
    return Viewport(*bounds, *sizes)


def _number(value: Any) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return ok and math.isfinite(value)


def add_route(app: Any) -> None:
    """Serve :data:`ENDPOINT` from the Dash ``app``'s Flask server (POST only)."""

    def respond(plot: PlotFrame, body: Mapping, parsed: tuple) -> dict[str, Any]:
        _, view, filters, epochs = parsed
        if body.get("area") is True:  # the trajectories page's plot area
            AREA.update(w=view.width, h=view.height)
        mask = shown_mask(plot, filters, epochs)
        return picture(plot, None if mask.all() else mask, view)

    add_json_route(app, ENDPOINT, "fspace-picture", respond=respond, parse=parse_request)
