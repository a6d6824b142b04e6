"""Hover and click on a large map, answered by a small JSON endpoint instead of Dash.

Above :data:`fspace.app.raster.VECTOR_LIMIT` checkpoints the page shows a picture, so
the browser cannot know which checkpoint lies under the pointer. The page's script
(``assets/raster_answer.js``) turns the pointer's position into map coordinates and
posts it to :data:`ENDPOINT`; :func:`answer` finds the nearest checkpoint shown (the
filters and epoch window the page sends) with the map's k-d tree
(:class:`~fspace.app.spatial.PointIndex`) and returns what the tooltip and the hovered
run's path need, as a few hundred bytes of JSON. Nothing goes through Dash's callback
pipeline, so the answer is drawn without re-rendering the figure; a click then sets
the selected checkpoint, which opens its details as any selection does.

The endpoint is one more route of the dashboard's Flask server, behind the same Host
and Origin checks and security headers (:mod:`fspace.app.security`).

Request (POST, JSON)::

    {"token": "3.1", "x": 0.4, "y": -1.2, "dx": 0.01, "dy": 0.02,
     "filters": {"group": ["pretrained"]}, "epochs": [0, 19]}

``dx`` and ``dy`` are the data units one screen pixel spans. Answer: ``{"found":
false}``, or the checkpoint (``key``, ``run``, ``group``, ``epoch``, ``error``, ``x``,
``y``) and its run's path (``path``: ``x``, ``y`` and ``color`` per checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.app.raster import is_raster, layers, shown_mask
from fspace.errors import ConfigError
from fspace.plot.density import LUT_SIZE

if TYPE_CHECKING:
    from fspace.app.frames import PlotFrame

ENDPOINT = "/_fspace/nearest"
MAX_FILTER_VALUES = 10_000  # more chosen values than any map has: refused as malformed
MAX_BODY_BYTES = 1 << 20


def answer(
    plot: PlotFrame,
    x: float,
    y: float,
    units_per_pixel: tuple[float, float],
    mask: np.ndarray | None = None,
) -> dict[str, Any]:
    """The checkpoint of ``plot`` nearest to ``(x, y)`` within the click tolerance
    (:data:`~fspace.app.spatial.TOLERANCE_PX` screen pixels), among the rows ``mask`` keeps,
    with its run's path; ``{"found": False}`` if there is none."""
    row = layers(plot).index.nearest(x, y, units_per_pixel=units_per_pixel, mask=mask)
    if row is None:
        return {"found": False}
    run = str(plot.runs[plot.run_code[row]])
    error = None
    if plot.error is not None and np.isfinite(plot.error[row]):
        error = float(plot.error[row])
    rows = plot.rows_of_run(run)
    return {
        "found": True,
        "key": str(plot.frame["checkpoint"].iloc[row]),
        "run": run,
        "group": str(plot.groups[plot.group_code[row]]),
        "epoch": int(plot.epoch[row]),
        "error": error,
        "x": float(plot.x[row]),
        "y": float(plot.y[row]),
        "path": {
            "x": plot.x[rows].tolist(),
            "y": plot.y[rows].tolist(),
            "color": path_colors(plot, rows),
        },
    }


def path_colors(plot: PlotFrame, rows: np.ndarray) -> list[str]:
    """The colour of each checkpoint ``rows`` names, as the picture shades it: its
    group's scale at its epoch (``#rrggbb``)."""
    found = layers(plot)
    lo, hi = found.epochs
    level = np.clip((plot.epoch[rows] - lo) / max(hi - lo, 1), 0, 1)
    index = (level * (LUT_SIZE - 1) + 0.5).astype(np.intp)
    rgb = found.luts[plot.group_code[rows].astype(np.intp), index]
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb.tolist()]


def parse_request(body: Any) -> tuple[str, float, float, tuple[float, float], dict, Any]:
    """``(token, x, y, (dx, dy), filters, epochs)`` of a request body (see the module's
    docstring); ConfigError naming the field at fault."""
    if not isinstance(body, Mapping):
        raise ConfigError("the request must be a JSON object with token, x, y, dx and dy")
    token = body.get("token")
    if not isinstance(token, str) or not token or len(token) > 100:
        raise ConfigError("token must be the map token of the page (a short string)")
    numbers = []
    for name in ("x", "y", "dx", "dy"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value}")
        numbers.append(float(value))
    x, y, dx, dy = numbers
    if not (dx > 0 and dy > 0):
        raise ConfigError(f"dx and dy must be positive, got {dx}, {dy}")
    return (
        token,
        x,
        y,
        (dx, dy),
        parse_filters(body.get("filters")),
        parse_epochs(body.get("epochs")),
    )


def parse_filters(value: Any) -> dict[str, list[str]]:
    """The ``filters`` of a request (``{column: [values]}``, values as text; a column
    given None is left out); ConfigError for anything else."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("filters must be an object of column: [values]")
    out: dict[str, list[str]] = {}
    for column, chosen in value.items():
        if chosen is None:
            continue
        if not isinstance(chosen, list) or len(chosen) > MAX_FILTER_VALUES:
            raise ConfigError(f"filter {str(column)[:50]!r} must be a list of values")
        out[str(column)] = [str(v) for v in chosen]
    return out


def parse_epochs(value: Any) -> tuple[float, float] | None:
    """The ``epochs`` window of a request (``[first, last]``, or None for every epoch);
    ConfigError for anything else."""
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not all(math.isfinite(v) for v in value):
        raise ConfigError("epochs must be [first, last], two numbers")
    return float(value[0]), float(value[1])


def add_route(app: Any) -> None:
    """Serve :data:`ENDPOINT` from the Dash ``app``'s Flask server (POST only)."""

    def respond(plot: PlotFrame, body: Mapping, parsed: tuple) -> dict[str, Any]:
        _, x, y, step, filters, epochs = parsed
        return answer(plot, x, y, step, shown_mask(plot, filters, epochs))

    add_json_route(app, ENDPOINT, "fspace-nearest", parse_request, respond)


def add_json_route(
    app: Any,
    endpoint: str,
    name: str,
    parse: Callable[[Any], tuple],
    respond: Callable[[PlotFrame, Mapping, tuple], dict[str, Any]],
) -> None:
    """Serve ``endpoint`` (POST, JSON) for a large map from the Dash ``app``'s Flask server.

    A body over :data:`MAX_BODY_BYTES` gets 413; a body ``parse`` refuses gets 400 with its
    one-line error; a token (the first thing ``parse`` returns) that names no large map
    gets 404; otherwise the answer is ``respond(plot, body, parsed)`` as JSON.
    """
    from flask import jsonify, request

    from fspace.app.state import current

    def view():
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return jsonify(error="request too large"), 413
        body = request.get_json(silent=True)
        try:
            parsed = parse(body)
        except ConfigError as err:
            return jsonify(error=str(err)), 400
        entry = current().maps.find(parsed[0])
        plot = entry.plot if entry is not None else None
        if plot is None or not is_raster(plot):
            return jsonify(error="no large map has this token; reload the page"), 404
        return jsonify(respond(plot, body, parsed))

    # Served under Dash's routes prefix; the page's scripts ask for it under the requests
    # prefix (from Dash's config in the page), as Dash's own routes.
    path = app.config.routes_pathname_prefix.rstrip("/") + endpoint
    app.server.add_url_rule(path, name, view, methods=["POST"])
