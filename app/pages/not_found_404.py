"""The page for an address the dashboard does not have."""

from __future__ import annotations

from typing import Any

from dash import html

from fspace.app.components import header, message
from fspace.app.navigation import nav_pages
from fspace.app.state import current


def layout(**query: Any) -> html.Div:
    """Say so, keeping the header so the way back is one click."""
    state = current()
    labels = ", ".join(page.label for page in nav_pages())
    text = f"no such page; choose one of {labels} above"
    return html.Div(
        [header("", state.default_name(), state.registry.names()), message(text, "warning")],
        className="fs-page",
    )
