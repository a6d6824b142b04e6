"""Compare page: two maps of one experiment side by side, with linked selection.

Each side picks its embedding method, the method's parameters and the distance from the
registries (as the trajectories page does) and shows how faithful its map is. Runs
chosen on either map (lasso, box, or a click, which adds or removes one run) are drawn
on top of both, their metric curves below, and for exactly two runs their distance over
epochs under each side's distance. The builders are in :mod:`fspace.app.linked`, the
URL's words in :mod:`fspace.app.compare_view`.

A map above the raster threshold is a picture rendered on the server, rendered again by
the page's script after every zoom or pan; its clicks and lassos are answered on the
server (:mod:`fspace.app.compare_raster`, :func:`fspace.app.linked.picked_runs`,
:func:`~fspace.app.linked.runs_in_region`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import dash
from dash import ALL, Input, Output, State, dcc, html, no_update

from fspace.app import compare_raster, linked
from fspace.app.compare_view import (
    SIDES,
    selected_runs,
    side_spec,
    spec_from,
    spec_query,
    unknown_words,
)
from fspace.app.components import graph, header, message, status_line
from fspace.app.controls import distance_options, output_row, param_row
from fspace.app.figures import message_dict
from fspace.app.maps import MapEntry, MapStatus, used_label
from fspace.app.raster import is_raster
from fspace.app.specs import (
    MapSpec,
    chosen_output,
    distance_label,
    method_entries,
    output_kind,
    output_label,
    recorded_outputs,
    shown_params,
)
from fspace.app.state import current
from fspace.app.wiring import Callbacks, guarded, triggered
from fspace.embedding.quality import neighbour_k
from fspace.errors import FspaceError

callback = Callbacks()
PAGE = "compare"
WAITING = "the map is being computed; its progress is shown above"
EXP, POLL, RUNS, CLEAR = "compare-exp", "compare-poll", "compare-runs", "compare-clear"
CURVES, DISTANCE, CHOSEN = "compare-curves", "compare-distance", "compare-chosen"
QUERY, URL_SINK, NOTES = "compare-query", "compare-url-sink", "compare-notes"
PARAM = "compare-param"


def cid(side: str, what: str) -> str:
    """Component id of ``what`` (method, distance, params, status, quality, token,
    graph, view) on ``side``."""
    return f"compare-{side}-{what}"


def param_id(side: str, name: str) -> dict[str, str]:
    """Pattern-matching id of the input of parameter ``name`` on ``side``."""
    return {"type": PARAM, "side": side, "name": name}


def layout(exp: str | None = None, **query: Any) -> html.Div:
    """Both maps of the experiment and the runs named in the URL."""
    state = current()
    names = state.registry.names()
    exp = exp or state.default_name()
    top = header(PAGE, exp, names)
    if exp is None:
        text = f"no experiments under {state.registry.root} yet; record one with fspace.Recorder"
        return html.Div([top, message(text, "info")], className="fs-page")
    notes = [f"unknown URL parameter {k!r} ignored" for k in unknown_words(query)]
    try:
        handle = state.registry.get(exp)
        kind = output_kind(handle.experiment)
        specs = {side: side_spec(query, side, notes, kind) for side in SIDES}
        statuses = {side: state.maps.status(handle, specs[side]) for side in SIDES}
    except FspaceError as err:
        return html.Div([top, message(str(err))], className="fs-page")
    runs = selected_runs(query, linked.MAX_RUNS)
    outputs = recorded_outputs(handle.experiment)
    panels = [side_panel(s, specs[s], statuses[s], outputs) for s in SIDES]
    maps = html.Div(panels, className="fs-compare")
    below = html.Section(
        [
            html.Div(
                [
                    html.H3("Selected runs"),
                    html.Span(id=CHOSEN, className="fs-small"),
                    html.Button("Clear", id=CLEAR, className="fs-button"),
                ],
                className="fs-compare-chosen",
            ),
            graph(CURVES, figure=linked.curves_figure({})),
            graph(DISTANCE, figure=linked.distance_figure({}, ())),
        ],
        className="fs-card",
    )
    stores = [
        dcc.Store(id=EXP, data=exp),
        dcc.Store(id=RUNS, data=runs),
        dcc.Store(id=QUERY),
        html.Div(id=URL_SINK, hidden=True),
        dcc.Interval(id=POLL, interval=state.poll_ms),
        *[dcc.Store(id=cid(s, "token"), data=statuses[s].token) for s in SIDES],
        *[dcc.Store(id=cid(s, what)) for s in SIDES for what in ("view", "click")],
    ]
    hint = html.P(
        "Lasso or box-select checkpoints on either map to select their runs; a click adds "
        "or removes one run. Selected runs are drawn on both maps.",
        className="fs-hint",
    )
    notes_box = html.Div([message(n, "warning") for n in notes], id=NOTES)
    return html.Div([top, notes_box, hint, maps, below, *stores], className="fs-page")


def side_panel(
    side: str, spec: MapSpec, status: MapStatus, outputs: Sequence[tuple[str, str]] = ()
) -> html.Section:
    """One map with its method, parameters, distance, output, status and faithfulness."""
    entries = method_entries()
    method = dcc.Dropdown(
        id=cid(side, "method"),
        options=[{"label": e.label, "value": e.name, "title": e.help} for e in entries],
        value=spec.method,
        clearable=False,
        searchable=False,
    )
    distance = dcc.Dropdown(
        id=cid(side, "distance"),
        options=distance_options(spec.method),
        value=spec.distance,
        clearable=False,
        searchable=False,
    )
    controls = html.Div(
        [
            html.Div([html.Label("method"), method], className="fs-row"),
            html.Div([html.Label("distance"), distance], className="fs-row"),
            html.Div(output_row(cid(side, "output"), spec.output, outputs), className="fs-wide"),
            html.Div(param_rows(side, spec.method, spec.params), id=cid(side, "params")),
        ],
        className="fs-compare-controls",
    )
    entry = current().maps.find(status.token)
    return html.Section(
        [
            html.H3(f"Map {side.upper()}"),
            controls,
            html.Div(status_line(status), id=cid(side, "status")),
            html.Div(quality_table(entry), id=cid(side, "quality")),
            graph(cid(side, "graph"), figure=message_dict(WAITING), className="fs-compare-map"),
        ],
        className="fs-card fs-compare-side",
    )


def param_rows(side: str, method: str, values: Mapping[str, Any] | None = None) -> list:
    """The inputs of ``method``'s dashboard parameters on ``side``."""
    values = values or {}
    return [
        param_row(method, p, values.get(p.name), input_id=param_id(side, p.name))
        for p in shown_params(method)
    ]


def quality_table(entry: MapEntry | None) -> Any:
    """How faithful the map is, as a small table (empty until the map exists)."""
    if entry is None or entry.embedding is None:
        return []
    rows = linked.quality_rows(entry.embedding.quality)
    if not rows:  # a tiny map, or one computed elsewhere (a script, an older version)
        few = neighbour_k(len(entry.embedding)) < 1
        why = "too few checkpoints" if few else "none were measured when it was computed"
        return html.P(f"no faithfulness scores ({why})", className="fs-small")
    return html.Table(
        [html.Tr([html.Td(name), html.Td(value)], title=hint) for name, value, hint in rows],
        className="fs-table fs-quality",
    )


def map_title(entry: MapEntry) -> str:
    """What the map shows, with the parameter values its fit used and the vector form."""
    label, form = used_label(entry), output_label(entry.embedding.output)
    return label if label.endswith(form) else f"{label} · {form}"


def _wire(side: str) -> None:
    """Declare the callbacks of one side."""
    values = Input({"type": PARAM, "side": side, "name": ALL}, "value")
    keys = State({"type": PARAM, "side": side, "name": ALL}, "id")

    @callback(
        Output(cid(side, "params"), "children"),
        Output(cid(side, "distance"), "options"),
        Output(cid(side, "distance"), "value"),
        Input(cid(side, "method"), "value"),
        State(cid(side, "distance"), "value"),
        prevent_initial_call=True,
    )
    def method_changed(method, distance):
        """The chosen method's parameters and the distances it maps."""
        options = distance_options(method)
        usable = {o["value"] for o in options if not o["disabled"]}
        return param_rows(side, method), options, distance if distance in usable else "euclidean"

    def failed(text: str):
        return no_update, status_line(MapStatus(None, text, False, error=True)), no_update

    @callback(
        Output(cid(side, "token"), "data"),
        Output(cid(side, "status"), "children"),
        Output(cid(side, "quality"), "children"),
        Input(POLL, "n_intervals"),
        Input(cid(side, "method"), "value"),
        values,
        Input(cid(side, "distance"), "value"),
        keys,
        State(EXP, "data"),
        State(cid(side, "token"), "data"),
        Input(cid(side, "output"), "value"),
        prevent_initial_call=True,
    )
    @guarded(failed)
    def poll(_n, method, param_values, distance, param_keys, exp, token, output=None):
        """Ask for the map the side's controls describe; a new token when it changed."""
        state = current()
        handle = state.registry.get(exp)
        output = chosen_output(handle.experiment, output)
        spec = spec_from(method, param_values, param_keys, distance, output)
        status = state.maps.status(handle, spec)
        entry = state.maps.find(status.token)
        new = status.token if status.token != token else no_update
        return new, status_line(status), quality_table(entry) if new is not no_update else no_update

    compare_raster.report_view(callback, cid(side, "graph"), cid(side, "view"), POLL)

    @callback(
        Output(cid(side, "graph"), "figure"),
        Input(cid(side, "token"), "data"),
        Input(RUNS, "data"),
        State(cid(side, "view"), "data"),  # zoom and pan: the page's script renders them
    )
    @guarded(message_dict)
    def draw(token, runs, view=None):
        """The side's map with the selected runs on top (for a raster map, the picture
        of the part ``view`` the browser shows)."""
        entry = current().maps.find(token)
        if entry is None or entry.plot is None:
            return message_dict(WAITING)
        return linked.linked_map(
            entry.plot,
            runs or [],
            title=map_title(entry),
            uirevision=f"compare-{side}-{entry.uid}",
            view=view,
            token=token,
            clicks=cid(side, "click"),
        )


for _side in SIDES:
    _wire(_side)


@callback(
    Output(RUNS, "data"),
    *[Input(cid(s, "graph"), what) for s in SIDES for what in ("selectedData", "clickData")],
    Input(CLEAR, "n_clicks"),
    *[State(cid(s, "token"), "data") for s in SIDES],
    State(RUNS, "data"),
    *[Input(cid(s, "click"), "data") for s in SIDES],
    prevent_initial_call=True,
)
def select(
    sel_a, click_a, sel_b, click_b, _clear, token_a, token_b, runs, picked_a=None, picked_b=None
):
    """The runs chosen on either map: a lasso or box replaces the selection, a click adds
    or removes one run (on a raster map, the one the page's script picked), Clear
    empties it."""
    source = triggered()
    if source == CLEAR:
        return []
    picked = {cid("a", "click"): picked_a, cid("b", "click"): picked_b}
    if source in picked:
        chosen = linked.picked_runs(picked[source])
        if not chosen:
            raise dash.exceptions.PreventUpdate
        return linked.toggle(runs or [], chosen, add=True)
    events = {
        cid("a", "graph"): (sel_a, click_a, token_a),
        cid("b", "graph"): (sel_b, click_b, token_b),
    }
    from dash import ctx

    prop = (ctx.triggered[0]["prop_id"] if ctx.triggered else "").rpartition(".")[2]
    if source not in events:
        raise dash.exceptions.PreventUpdate
    selected, click, token = events[source]
    entry = current().maps.find(token)
    plot = entry.plot if entry is not None else None
    if prop == "selectedData":
        chosen = linked.runs_of_selection(selected)
        if not chosen and plot is not None and is_raster(plot):  # the server holds the points
            chosen = linked.runs_in_region(plot, selected)
        if not chosen:  # a cleared selection box or a double click: keep the runs
            raise dash.exceptions.PreventUpdate
        return linked.toggle(runs or [], chosen, add=False)
    chosen = linked.runs_of_click(plot, click) if plot is not None else []
    if not chosen:
        raise dash.exceptions.PreventUpdate
    return linked.toggle(runs or [], chosen, add=True)


@callback(
    Output(CURVES, "figure"),
    Output(DISTANCE, "figure"),
    Output(CHOSEN, "children"),
    Input(RUNS, "data"),
    *[Input(cid(s, "distance"), "value") for s in SIDES],
    State(EXP, "data"),
    *[Input(cid(s, "output"), "value") for s in SIDES],
)
@guarded(lambda text: (no_update, linked.distance_figure({}, ()), text))
def curves(runs, distance_a, distance_b, exp, output_a=None, output_b=None):
    """Metric curves of the selected runs; their distance over epochs when there are two,
    under each side's distance and output."""
    handle = current().registry.get(exp)
    scan = handle.last_scan or handle.scan()
    histories = linked.by_run(scan.checkpoints, runs or [])
    histories = {run: ckpts for run, ckpts in histories.items() if ckpts}
    text = ", ".join(histories) if histories else "none"
    pair: dict[str, Any] = {}
    if len(histories) == 2:
        a, b = histories.values()
        outputs = [chosen_output(handle.experiment, o) for o in (output_a, output_b)]
        wanted = [(d, o) for d, o in zip((distance_a, distance_b), outputs, strict=True) if d]
        for distance, output in dict.fromkeys(wanted):
            label = distance_label(distance) + (f" ({output_label(output)})" if output else "")
            pair[label] = linked.distance_curve(handle.experiment, a, b, distance, output)
    figure = linked.curves_figure(histories, runs or [])
    return figure, linked.distance_figure(pair, list(histories)), text


@callback(
    Output(QUERY, "data"),
    *[Input(cid(s, what), "value") for s in SIDES for what in ("method", "distance")],
    *[Input({"type": PARAM, "side": s, "name": ALL}, "value") for s in SIDES],
    Input(RUNS, "data"),
    *[State({"type": PARAM, "side": s, "name": ALL}, "id") for s in SIDES],
    State(EXP, "data"),
    *[Input(cid(s, "output"), "value") for s in SIDES],
)
def query(
    method_a,
    distance_a,
    method_b,
    distance_b,
    values_a,
    values_b,
    runs,
    keys_a,
    keys_b,
    exp,
    output_a=None,
    output_b=None,
):
    """The URL query of what the page shows (written into the address by the script below)."""
    params: dict[str, str] = {"exp": exp} if exp else {}
    sides = (
        (method_a, values_a, keys_a, distance_a, output_a),
        (method_b, values_b, keys_b, distance_b, output_b),
    )
    for side, (method, values, keys, distance, output) in zip(SIDES, sides, strict=True):
        try:
            output = chosen_output(current().registry.get(exp).experiment, output)
            params.update(spec_query(side, spec_from(method, values, keys, distance, output)))
        except FspaceError:
            continue  # the side says what is wrong; the URL keeps the rest
    if runs:
        params["runs"] = ",".join(runs)
    return "?" + urlencode(params, safe=",/")


callback.clientside(
    """
    function(query) {
        if (typeof query === "string" && window.location.pathname.endsWith("/compare")) {
            window.history.replaceState(window.history.state, "", window.location.pathname + query);
        }
        return "";
    }
    """,
    Output(URL_SINK, "children"),
    Input(QUERY, "data"),
)
