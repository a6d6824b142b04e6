"""Layout pieces shared by the pages: header, messages, status line, figure cards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dash import dcc, html

from fspace.app import ids

if TYPE_CHECKING:
    from fspace.app.handles import Scan
    from fspace.app.maps import MapStatus

GRAPH_CONFIG = {"displaylogo": False}
MAX_LISTED = 5


def page_href(page: str, exp: str | None) -> str:
    """URL of the page named ``page`` (in :data:`fspace.app.navigation.PAGES`) showing
    experiment ``exp``."""
    from fspace.app.navigation import page_path

    return page_path(page) + (f"?{urlencode({'exp': exp})}" if exp else "")


def header(active: str, exp: str | None, names: list[str]) -> html.Header:
    """The bar on top of every page: experiment selector and the links of the pages
    declared in :data:`fspace.app.navigation.PAGES`."""
    from fspace.app.navigation import nav_pages

    links = [
        dcc.Link(
            page.label,
            href=page_href(page.name, exp),
            className="fs-active" if page.name == active else "",
            title=page.help or None,
        )
        for page in nav_pages()
    ]
    selector = dcc.Dropdown(
        id=ids.EXP_SELECT,
        options=[{"label": n, "value": n} for n in names],
        value=exp if exp in names else None,
        clearable=False,
        placeholder="choose an experiment",
        className="fs-experiment-select",
    )
    return html.Header(
        [
            dcc.Link("fspace", href="/", className="fs-brand"),
            html.Span("experiment", className="fs-label"),
            selector,
            html.Nav(links, className="fs-nav"),
        ],
        className="fs-header",
    )


def message(text: str, kind: str = "error") -> html.Div:
    """A boxed message; ``kind`` is error, warning or info."""
    return html.Div(text, className=f"fs-message fs-{kind}", role="alert")


def status_line(status: MapStatus) -> html.Div:
    """The one-line status of a background computation."""
    kind = "error" if status.error else "busy" if status.busy else "ready"
    children: list[Any] = [html.Span(className="fs-spinner")] if status.busy else []
    return html.Div([*children, status.message], className=f"fs-status fs-{kind}")


def scan_messages(scan: Scan | None) -> list[html.Div]:
    """Warnings about unreadable files and runs that have no checkpoint yet."""
    if scan is None:
        return []
    out = []
    if scan.problems:
        listed = [html.Li(p.message) for p in scan.problems[:MAX_LISTED]]
        if len(scan.problems) > MAX_LISTED:
            listed.append(html.Li(f"... and {len(scan.problems) - MAX_LISTED} more"))
        out.append(
            html.Div(
                [
                    html.Strong(
                        f"{len(scan.problems)} file(s) could not be read and are left out:"
                    ),
                    html.Ul(listed),
                ],
                className="fs-message fs-warning",
                role="alert",
            )
        )
    if scan.waiting:
        names = ", ".join(scan.waiting[:MAX_LISTED]) + (
            " ..." if len(scan.waiting) > MAX_LISTED else ""
        )
        out.append(message(f"{len(scan.waiting)} run(s) have no checkpoint yet: {names}", "info"))
    return out


def card(title: str, body: Any, **kwargs: Any) -> html.Section:
    """A titled box around a figure or table."""
    return html.Section([html.H3(title), body], className="fs-card", **kwargs)


def graph(graph_id: str | dict, **kwargs: Any) -> dcc.Graph:
    """A graph with the dashboard's configuration."""
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, **kwargs)
