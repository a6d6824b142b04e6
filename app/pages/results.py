"""Results page of any experiment: final metrics by group, metric curves over training
with the spread over seeds, separation statistics between groups, and the panels that
only some experiments support (final values against depth, receptive fields, weight
changes), each replaced by a plain note where the recorded data does not support it.

The data is computed in the background by :mod:`fspace.app.results`; the figures are
the pure builders of :mod:`fspace.app.results_figures`.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html, no_update

from fspace.app import ids
from fspace.app.components import card, header, message, status_line
from fspace.app.maps import MapStatus
from fspace.app.results import Results
from fspace.app.results_panels import graph, note
from fspace.app.state import current
from fspace.app.wiring import Callbacks, guarded
from fspace.errors import FspaceError

callback = Callbacks()
PAGE = "results"
POLL_MS = 2000
WAITING = "computing the results…"


def layout(exp: str | None = None, **query: Any) -> html.Div:
    """The results of the experiment named in the URL."""
    state = current()
    names = state.registry.names()
    exp = exp or state.default_name()
    top = header(PAGE, exp, names)
    notes = [message(f"unknown URL parameter {k!r} ignored", "warning") for k in sorted(query)]
    try:
        handle = state.registry.get(exp)
        status = state.results.status(handle)
    except FspaceError as err:
        return html.Div([top, message(str(err))], className="fs-page")
    waiting = note(WAITING)
    metric = html.Div(
        [
            html.Span("metric", className="fs-label"),
            dcc.Dropdown(
                id=ids.RESULTS_METRIC,
                clearable=False,
                placeholder="metric",
                style={"width": "320px"},
            ),
        ],
        className="fs-card",
        style={"display": "flex", "alignItems": "center", "gap": "12px", "margin": "0 12px"},
    )
    fields = html.Div(
        [
            dcc.Dropdown(id=ids.RESULTS_FIELDS_RUN, clearable=False, placeholder="run"),
            html.Div(waiting, id=ids.RESULTS_FIELDS),
        ]
    )
    cards = [
        card("Final values by group", html.Div(waiting, id=ids.RESULTS_SUMMARY)),
        card("Final value of each run", html.Div(waiting, id=ids.RESULTS_FINAL)),
        card("Over training, spread over seeds", html.Div(waiting, id=ids.RESULTS_CURVES)),
        card("Separation between groups", html.Div(waiting, id=ids.RESULTS_SEPARATION)),
        card("First-layer receptive fields", fields),
        card("Relative weight change per layer", html.Div(waiting, id=ids.RESULTS_CHANGE)),
        card("Final value against a setting", html.Div(waiting, id=ids.RESULTS_AXIS)),
    ]
    return html.Div(
        [
            top,
            *notes,
            html.Div(status_line(status), id=ids.RESULTS_STATUS, className="fs-status-bar"),
            metric,
            html.Div(cards, className="fs-grid"),
            dcc.Store(id=ids.RESULTS_EXP, data=exp),
            dcc.Store(id=ids.RESULTS_TOKEN, data=status.token),
            dcc.Interval(id=ids.RESULTS_POLL, interval=POLL_MS),
        ],
        className="fs-page",
    )


@callback(
    Output(ids.RESULTS_TOKEN, "data"),
    Output(ids.RESULTS_STATUS, "children"),
    Input(ids.RESULTS_POLL, "n_intervals"),
    State(ids.RESULTS_EXP, "data"),
    State(ids.RESULTS_TOKEN, "data"),
    prevent_initial_call=True,
)
@guarded(lambda text: (no_update, status_line(MapStatus(None, text, False, error=True))))
def poll(_n, exp, token):
    """Recompute when the experiment changed; a new token when new results are ready."""
    status = current().results.status(current().registry.get(exp))
    return (status.token if status.token != token else no_update), status_line(status)


def _results(token: str | None) -> Results | None:
    entry = current().results.find(token)
    return None if entry is None else entry.results


def _all_notes(text: str):
    return (*[note(text)] * 3, [], None, [], None)


@callback(
    Output(ids.RESULTS_SUMMARY, "children"),
    Output(ids.RESULTS_SEPARATION, "children"),
    Output(ids.RESULTS_CHANGE, "children"),
    Output(ids.RESULTS_METRIC, "options"),
    Output(ids.RESULTS_METRIC, "value"),
    Output(ids.RESULTS_FIELDS_RUN, "options"),
    Output(ids.RESULTS_FIELDS_RUN, "value"),
    Input(ids.RESULTS_TOKEN, "data"),
    State(ids.RESULTS_METRIC, "value"),
    State(ids.RESULTS_FIELDS_RUN, "value"),
)
@guarded(_all_notes)
def render(token, metric, run):
    """The tables of the latest results, and the choices of metric and run."""
    from fspace.app import results_panels as panels

    res = _results(token)
    if res is None:
        return _all_notes(WAITING)
    design = res.design
    metrics = [] if design is None else design.metrics
    metric = metric if metric in metrics else (metrics[0] if metrics else None)
    runs = res.field_runs
    return (
        panels.summary(res),
        panels.separation(res),
        panels.change(res),
        [{"label": m, "value": m} for m in metrics],
        metric,
        [{"label": r, "value": r} for r in runs],
        run if run in runs else (runs[0] if runs else None),
    )


@callback(
    Output(ids.RESULTS_FINAL, "children"),
    Output(ids.RESULTS_CURVES, "children"),
    Output(ids.RESULTS_AXIS, "children"),
    Input(ids.RESULTS_METRIC, "value"),
    Input(ids.RESULTS_TOKEN, "data"),
)
@guarded(lambda text: (note(text),) * 3)
def draw(metric, token):
    """The figures of ``metric``: final values, curves, and against a setting."""
    from fspace.app import results_panels as panels

    res = _results(token)
    if res is None:
        return (note(WAITING),) * 3
    return panels.metric_panels(res, metric)


@callback(
    Output(ids.RESULTS_FIELDS, "children"),
    Input(ids.RESULTS_FIELDS_RUN, "value"),
    Input(ids.RESULTS_TOKEN, "data"),
    State(ids.RESULTS_EXP, "data"),
)
@guarded(note)
def fields(run, token, exp):
    """Receptive fields of ``run`` at its first and last checkpoint, or why there are
    none."""
    from fspace.analysis.weights import first_layer_fields
    from fspace.app.results_figures import fields_figure

    res = _results(token)
    if res is None:
        return note(WAITING)
    if "fields" in res.notes:
        return note(res.notes["fields"])
    if not run:
        return note("choose a run")
    handle = current().registry.get(exp)
    with handle.lock:
        layer, before, after = first_layer_fields(handle.experiment, run, res.input_shape)
    return graph(fields_figure(layer, before, after))
