"""Trajectories page: the map of every checkpoint, one line per run.

The layout reads the view from the URL (:mod:`fspace.app.views`); callbacks are thin and call
pure builders (:mod:`.figures`, :mod:`.controls`, :mod:`.details`). A timer
polls the map's status, which also notices new checkpoints and has them placed into
the map in the background; the figure is redrawn only when the map's token changes.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, dcc, html, no_update

from fspace.app import animation, ids, raster_view, trajectory_query
from fspace.app.components import graph, header, message, scan_messages, status_line
from fspace.app.controls import (
    chosen_filters,
    epoch_controls,
    export_controls,
    filter_boxes,
    filter_controls,
    filter_state,
    map_controls,
    marks,
    setting_columns,
    window,
)
from fspace.app.details import details_panel
from fspace.app.figures import clicked_key, message_dict, trajectory_dict
from fspace.app.maps import MapEntry, MapStatus
from fspace.app.raster import is_raster
from fspace.app.specs import chosen_output, recorded_outputs
from fspace.app.state import current
from fspace.app.trajectory_query import FILTER_KEYS, PARAM_KEYS, PARAM_VALUES, filters_of, spec_of
from fspace.app.views import View, parse_view
from fspace.app.wiring import Callbacks, guarded, triggered
from fspace.errors import FspaceError

callback = Callbacks()
PAGE = "trajectories"
WAITING = "the map is being computed; its progress is shown on the left"


def layout(**query: Any) -> html.Div:
    """The page for the view in the URL's query parameters."""
    state = current()
    view, notes = parse_view(query)
    names = state.registry.names()
    exp = view.exp or state.default_name()
    top = header(PAGE, exp, names)
    if exp is None:
        root = state.registry.root
        text = f"no experiments under {root} yet; record one with fspace.Recorder"
        return html.Div([top, message(text, "info")], className="fs-page")
    try:
        handle = state.registry.get(exp)
        status = state.maps.status(handle, view.spec)
    except FspaceError as err:
        return html.Div([top, message(str(err))], className="fs-page")
    if notes:  # words the view does not know may be the runs' own settings (config keys)
        scan = handle.last_scan  # what is listed already: a first scan waits for no one
        runs = scan.runs.values() if scan is not None else handle.experiment.runs()
        view, notes = parse_view(query, setting_columns(runs))
    entry = state.maps.find(status.token)
    plot = entry.plot if entry is not None else None
    selected = view.checkpoint or view.run
    sidebar = [
        map_controls(view.spec, status, recorded_outputs(handle.experiment)),
        filter_controls(view, plot),
        export_controls(),
        html.Div(scan_messages(handle.last_scan), id=ids.PROBLEMS),
    ]
    figure, reported = message_dict(WAITING), None
    if plot is not None and is_raster(plot) and not (view.filters or view.epochs or selected):
        # A large map's picture comes with the page (see fspace.app.raster_view).
        figure, reported = raster_view.first_figure(plot, f"map-{entry.uid}", status.token)
    main = [
        html.Div(
            [
                graph(ids.GRAPH, figure=figure, className="fs-map"),
                *raster_view.components(reported),
            ],
            className="fs-map-box",
        ),
        epoch_controls(view, plot),
        html.Div(id=ids.DETAILS, className="fs-details"),
    ]
    stores = [
        dcc.Store(id=ids.EXP, data=exp),
        dcc.Store(id=ids.MAP_TOKEN, data=status.token),
        dcc.Store(id=ids.SELECTED, data=selected),
        # Filters and window from the URL wait here until the map (and its choices) exists.
        dcc.Store(id=ids.PENDING, data=None if plot is not None else pending(view)),
        dcc.Store(id=ids.VIEW_QUERY),
        dcc.Store(id=ids.GRAPH_READY, data=reported is not None),
        html.Div(id=ids.URL_SINK, hidden=True),
        dcc.Interval(id=ids.POLL, interval=state.poll_ms),
    ]
    notes_box = html.Div([message(n, "warning") for n in notes], id=ids.PAGE_MESSAGES)
    body = html.Div(
        [html.Aside(sidebar, className="fs-sidebar"), html.Main(main, className="fs-main")],
        className="fs-body",
    )
    return html.Div([top, notes_box, body, *stores], className="fs-page")


def _status_error(text: str):
    return no_update, status_line(MapStatus(None, text, False, error=True)), no_update


@callback(
    Output(ids.MAP_TOKEN, "data"),
    Output(ids.MAP_STATUS, "children"),
    Output(ids.PROBLEMS, "children"),
    Input(ids.POLL, "n_intervals"),
    Input(ids.MAP_METHOD, "value"),
    PARAM_VALUES,
    Input(ids.MAP_DISTANCE, "value"),
    Input(ids.MAP_SEED, "value"),
    Input(ids.REFIT, "n_clicks"),
    PARAM_KEYS,
    State(ids.EXP, "data"),
    State(ids.MAP_TOKEN, "data"),
    Input(ids.MAP_OUTPUT, "value"),
    prevent_initial_call=True,
)
@guarded(_status_error)
def poll(_n, method, values, distance, seed, _refit, keys, exp, token, output=None):
    """Ask for the map the controls describe; new token only when the map changed."""
    state = current()
    handle = state.registry.get(exp)
    output = chosen_output(handle.experiment, output)
    spec = spec_of(method, values, keys, seed, distance, output)
    status = state.maps.status(handle, spec, refit=triggered() == ids.REFIT)
    new_token = status.token if status.token != token else no_update
    return new_token, status_line(status), scan_messages(handle.last_scan)


# Show the parameters of the chosen method only.
callback.clientside(
    """
    function(method, boxes) {
        return (boxes || []).map(b => b.method === method ? {} : {display: "none"});
    }
    """,
    Output({"type": ids.MAP_PARAMS, "method": ALL}, "style"),
    Input(ids.MAP_METHOD, "value"),
    State({"type": ids.MAP_PARAMS, "method": ALL}, "id"),
    prevent_initial_call=True,
)

# Offer the distances the chosen method maps (as controls.distance_options does); a
# chosen distance it cannot map falls back to the Euclidean.
callback.clientside(
    """
    function(method, mappable, options, value) {
        const allowed = (mappable || {})[method] || "any";
        const out = (options || []).map(o => Object.assign({}, o, {
            disabled: allowed !== "any" && !allowed.includes(o.value)
        }));
        const ok = out.some(o => o.value === value && !o.disabled);
        return [out, ok ? value : "euclidean"];
    }
    """,
    Output(ids.MAP_DISTANCE, "options"),
    Output(ids.MAP_DISTANCE, "value"),
    Input(ids.MAP_METHOD, "value"),
    State(ids.MAP_MAPPABLE, "data"),
    State(ids.MAP_DISTANCE, "options"),
    State(ids.MAP_DISTANCE, "value"),
    prevent_initial_call=True,
)


def entry_of(token: str | None) -> MapEntry | None:
    """The map a page's token names, if it is still kept and drawable."""
    entry = current().maps.find(token)
    return entry if entry is not None and entry.plot is not None else None


def pending(view: View) -> dict[str, Any]:
    """What the URL asked for that can only be applied once the map is ready."""
    return {"epochs": view.epochs, "filters": {c: list(v) for c, v in view.filters}}


@callback(
    Output(ids.FILTER_BOXES, "children"),
    Output(ids.EPOCHS, "min"),
    Output(ids.EPOCHS, "max"),
    Output(ids.EPOCHS, "marks"),
    Output(ids.EPOCHS, "value", allow_duplicate=True),
    Output(ids.PENDING, "data"),
    Input(ids.MAP_TOKEN, "data"),
    State(ids.EPOCHS, "value"),
    State(ids.EPOCHS, "max"),
    State(ids.PENDING, "data"),
    State({"type": "filter", "column": ALL}, "value"),
    FILTER_KEYS,
    State({"type": "filter", "column": ALL}, "options"),
    prevent_initial_call=True,
)
def refresh_controls(token, value, old_max, wanted, filters=(), keys=(), options=()):
    """Filters and epoch range of a new map version (and, the first time, the filters
    and window the URL asked for). The filters are rebuilt only when the map's filter
    columns or their values changed, keeping what is chosen."""
    entry = entry_of(token)
    if entry is None:
        raise dash.exceptions.PreventUpdate
    shown = dict(zip([k["column"] for k in keys or ()], options or (), strict=False))
    boxes = no_update
    if wanted:
        boxes = filter_boxes(entry.plot, wanted["filters"])
        value, old_max = wanted["epochs"], None
    elif shown != filter_state(entry.plot):
        boxes = filter_boxes(entry.plot, chosen_filters(filters, keys))
    lo, hi, value = window(entry.plot, value, old_max)
    return boxes, lo, hi, marks(lo, hi), value, None


# The graph's first plot is followed by a resize that draws it again; the map is sent
# only once the light placeholder has had that first plot, so it is drawn once. The
# resize reports itself as relayoutData; the poll timer is the fallback.
callback.clientside(
    """
    function(relayout, polls, ready) {
        if (ready) { return window.dash_clientside.no_update; }
        return Boolean(relayout) || (polls || 0) >= 2;
    }
    """,
    Output(ids.GRAPH_READY, "data"),
    Input(ids.GRAPH, "relayoutData"),
    Input(ids.POLL, "n_intervals"),
    State(ids.GRAPH_READY, "data"),
)


@callback(
    Output(ids.GRAPH, "figure"),
    Input(ids.MAP_TOKEN, "data"),
    Input({"type": "filter", "column": ALL}, "value"),
    Input(ids.EPOCHS, "value"),
    Input(ids.SELECTED, "data"),
    Input(ids.GRAPH_READY, "data"),
    FILTER_KEYS,
    # Zoom and pan re-render a large map's picture outside Dash (fspace.app.raster_view).
    State(ids.RASTER_VIEW, "data"),
    State(ids.PENDING, "data"),
    # Nothing to draw before the graph is ready (or a large map's picture came with the page).
    prevent_initial_call=True,
)
@guarded(message_dict)
def draw(token, filters, epochs, selected, ready=True, filter_keys=None, view=None, wanted=None):
    """The trajectory figure of the current map, filters and epoch window (a picture
    of the part ``view`` the browser shows, for a large map). While the URL's filters and
    window still wait for the map (``wanted``), the controls do not yet show them: the
    map is drawn once :func:`refresh_controls` has set them."""
    if not ready:
        raise dash.exceptions.PreventUpdate
    entry = entry_of(token)
    if entry is None:
        return message_dict(WAITING)
    if wanted is not None:
        raise dash.exceptions.PreventUpdate
    plot = entry.plot
    raster, trigger = is_raster(plot), triggered()
    if raster and trigger in (None, ids.GRAPH_READY) and view and "rev" in view:
        raise dash.exceptions.PreventUpdate  # the page brought its first picture
    chosen = filters_of(filters, filter_keys)
    mask = plot.mask(chosen, epochs)
    if not mask.any():
        return message_dict("no checkpoint matches the filters and epoch window")
    key = str(selected) if selected else None
    position = plot.position_of(key) if key else None
    run = key.partition("/")[0] if key else None
    run = run if run is not None and plot.rows_of_run(run).size else None
    revision = f"map-{entry.uid}"
    if raster and trigger == ids.SELECTED:  # the picture stays
        return raster_view.selection_patch(plot, mask, run, position)
    if raster:
        return raster_view.figure(
            plot,
            mask,
            view,
            revision,
            highlight=run,
            selected=position,
            token=token,
            filters=chosen,
            epochs=epochs,
        )
    return trajectory_dict(plot, mask, highlight=run, selected=position, uirevision=revision)


# A large map's view reporter, and what its hover answers need (fspace.app.raster_view).
raster_view.register(callback)


@callback(
    Output(ids.SELECTED, "data"),
    Input(ids.GRAPH, "clickData"),
    State(ids.MAP_TOKEN, "data"),
    prevent_initial_call=True,
)
def select(click, token):
    """The checkpoint a click on a point of the map chose (a large map's clicks are
    answered by the page's script, which sets the selection: fspace.app.raster_view)."""
    entry = entry_of(token)
    key = clicked_key(entry.plot, click) if entry is not None else None
    if key is None:
        raise dash.exceptions.PreventUpdate
    return key


@callback(
    Output(ids.SELECTED, "data", allow_duplicate=True),
    Input(ids.CLOSE_DETAILS, "n_clicks"),
    prevent_initial_call=True,
)
def close_details(n_clicks):
    """Close the details (the button exists only while they are shown)."""
    if not n_clicks:  # the button was just drawn, not clicked
        raise dash.exceptions.PreventUpdate
    return None


@callback(
    Output(ids.DETAILS, "children"),
    Input(ids.SELECTED, "data"),
    State(ids.EXP, "data"),
)
@guarded(lambda text: message(text))
def details(selected, exp):
    """The details of the selected checkpoint, or a hint to click one."""
    if not selected:
        return html.P(
            "Click a point to see its run's metrics and receptive fields.", className="fs-hint"
        )
    return details_panel(current().registry.get(exp), str(selected))


# The epoch window's animation, and the page's address kept in step with its view.
animation.register(callback)
trajectory_query.register(callback)
