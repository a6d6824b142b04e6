"""Home page: the experiments under the server's root, with links to their pages."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from fspace.app.components import header, message, page_href
from fspace.app.navigation import nav_pages
from fspace.app.state import current
from fspace.app.wiring import error_text


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
        try:
            experiment = state.registry.get(name).experiment
            links: list = []
            for page in nav_pages(experiment):
                links += [" · "] if links else []
                links.append(dcc.Link(page.label.lower(), href=page_href(page.name, name)))
            runs = experiment.run_ids()
        except Exception as err:  # one bad experiment is shown in its row, not for the page
            rows.append(html.Tr([html.Td(name), html.Td(message(error_text(err)), colSpan=2)]))
            continue
        rows.append(html.Tr([html.Td(name), html.Td(f"{len(runs):,}"), html.Td(links)]))
    body = html.Section(
        [html.H2(f"Experiments in {state.registry.root}"), html.Table(rows, className="fs-table")],
        className="fs-card",
    )
    return html.Div([top, body], className="fs-page")
