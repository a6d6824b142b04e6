"""Results page of the pre-training experiment: final errors by depth and group,
receptive fields before and after fine-tuning, weight changes, group separation.

The figures are those of ``fspace``'s report
(:mod:`fspace.experiments.pretraining.figures`), computed in the background by
:mod:`fspace.app.results` and refreshed when the experiment changes.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html, no_update

from fspace.app import ids
from fspace.app.components import card, header, message, status_line
from fspace.app.figures import note_figure
from fspace.app.maps import MapStatus
from fspace.app.results import Results
from fspace.app.state import current
from fspace.app.wiring import Callbacks, guarded
from fspace.errors import FspaceError

callback = Callbacks()
PAGE = "results"
POLL_MS = 2000
FIGURES = (ids.RESULTS_HISTOGRAMS, ids.RESULTS_DEPTH, ids.RESULTS_CHANGE, ids.RESULTS_TABLE)
# The legends sit top right, where the mode bar would cover them; exports need no bar.
CONFIG = {"displaylogo": False, "displayModeBar": False}


def graph(graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, config=CONFIG)


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
    cards = [
        card("Group separation and final test error", html.Div(id=ids.RESULTS_SUMMARY)),
        card("Test error by depth and group", graph(ids.RESULTS_HISTOGRAMS)),
        card("Final test error against depth", graph(ids.RESULTS_DEPTH)),
        card(
            "First-layer receptive fields before and after fine-tuning",
            html.Div(
                [
                    dcc.Dropdown(id=ids.RESULTS_FIELDS_RUN, clearable=False, placeholder="run"),
                    graph(ids.RESULTS_FIELDS),
                ]
            ),
        ),
        card("Relative weight change per layer", graph(ids.RESULTS_CHANGE)),
        card("Final test error per group and depth", graph(ids.RESULTS_TABLE)),
    ]
    return html.Div(
        [
            top,
            *notes,
            html.Div(status_line(status), id=ids.RESULTS_STATUS, className="fs-status-bar"),
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


def _failed(text: str):
    blank = note_figure(text)
    return message(text), *[blank] * len(FIGURES), [], None


@callback(
    Output(ids.RESULTS_SUMMARY, "children"),
    *[Output(f, "figure") for f in FIGURES],
    Output(ids.RESULTS_FIELDS_RUN, "options"),
    Output(ids.RESULTS_FIELDS_RUN, "value"),
    Input(ids.RESULTS_TOKEN, "data"),
    State(ids.RESULTS_FIELDS_RUN, "value"),
)
@guarded(_failed)
def render(token, run):
    """Every figure of the latest results."""
    from fspace.experiments.pretraining import figures
    from fspace.experiments.pretraining.analysis import error_summary

    entry = current().results.find(token)
    if entry is None or entry.results is None:
        return _failed("computing the results…")
    res: Results = entry.results
    if res.changes is not None:
        # Room for the long y-axis title in a half-width card.
        change = figures.weight_change_figure(res.changes).update_layout(margin={"l": 80})
    else:
        change = note_figure(res.messages.get("weight_change", "computing weight changes…"))
    run = run if run in res.runs else res.default_run
    return (
        summary(res),
        figures.error_histogram_figure(res.final),
        figures.error_depth_figure(res.final),
        change,
        figures.error_table_figure(error_summary(res.final)).update_layout(
            height=80 + 40 * len(res.final.groupby(["group", "depth"])),
            margin={"t": 10, "b": 10},
        ),
        [{"label": r, "value": r} for r in res.runs],
        run,
    )


@callback(
    Output(ids.RESULTS_FIELDS, "figure"),
    Input(ids.RESULTS_FIELDS_RUN, "value"),
    State(ids.RESULTS_EXP, "data"),
)
@guarded(note_figure)
def fields(run, exp):
    """Receptive fields of ``run`` at its first and last checkpoint."""
    from fspace.experiments.pretraining.analysis import receptive_fields
    from fspace.experiments.pretraining.figures import receptive_fields_figure

    if not run:
        return note_figure("no run to show")
    handle = current().registry.get(exp)
    with handle.lock:
        before, after = receptive_fields(handle.experiment, run)
    return receptive_fields_figure(before, after)


def summary(res: Results) -> html.Div:
    """The headline numbers: group separation and first-layer weight change."""
    rows: list[Any] = []
    sep = res.numbers.get("separation")
    if sep:
        rows.append(
            html.P(
                "Group separation: how often a checkpoint's nearest neighbour among the other "
                "runs' checkpoints is in its own group (leave-one-run-out 1-NN accuracy)."
            )
        )
        cells = [html.Tr([html.Th(h) for h in ("space", "all checkpoints", "epoch ≥ 1")])]
        for space, label in (("function_space", "function space"), ("map", "2-D map")):
            if space in sep:
                cells.append(
                    html.Tr(
                        [
                            html.Td(label),
                            html.Td(f"{sep[space]:.3f}", className="fs-number"),
                            html.Td(f"{sep[space + '_finetuned']:.3f}", className="fs-number"),
                        ]
                    )
                )
        rows += [
            html.Table(cells, className="fs-table"),
            html.P(
                f"chance level {sep['chance']:.3f}; {sep['n_points']:,} checkpoints "
                f"of {sep['n_runs']:,} runs",
                className="fs-small",
            ),
        ]
    if "separation" in res.messages:
        rows.append(message(f"group separation: {res.messages['separation']}", "info"))
    change = res.numbers.get("first_layer_change")
    if change:
        text = ", ".join(f"{g} {v:.3f}" for g, v in change.items())
        rows.append(html.P(f"Mean relative change of the first layer: {text}"))
    return html.Div(rows or [html.P("computing…")])


dash.register_page(__name__, path="/results", name="Results", order=2, layout=layout)
