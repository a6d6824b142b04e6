"""Home page: the experiments under the server's root, with links to their pages."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from fspace.app.components import header, message, page_href
from fspace.app.state import current


def layout(**query: Any) -> html.Div:
    """A table of the experiments; new ones appear on reload."""
    state = current()
    names = state.registry.names()
    top = header("home", state.default_name(), names)
    if not names:
        text = (
            f"no experiments under {state.registry.root} yet; record one with "
            f"fspace.Recorder or `fspace experiment pretraining`, then reload"
        )
        return html.Div([top, message(text, "info")], className="fs-page")
    rows = [html.Tr([html.Th("experiment"), html.Th("runs"), html.Th("pages")])]
    for name in names:
        runs = state.registry.get(name).experiment.run_ids()
        links = [
            dcc.Link("trajectories", href=page_href("trajectories", name)),
            " · ",
            dcc.Link("results", href=page_href("results", name)),
        ]
        rows.append(html.Tr([html.Td(name), html.Td(f"{len(runs):,}"), html.Td(links)]))
    body = html.Section(
        [html.H2(f"Experiments in {state.registry.root}"), html.Table(rows, className="fs-table")],
        className="fs-card",
    )
    return html.Div([top, body], className="fs-page")


dash.register_page(__name__, path="/", name="Experiments", order=0, layout=layout)
