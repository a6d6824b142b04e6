"""The page for an address the dashboard does not have."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from fspace.app.components import header, message
from fspace.app.state import current


def layout(**query: Any) -> html.Div:
    """Say so, keeping the header so the way back is one click."""
    state = current()
    text = "no such page; choose Trajectories or Results above"
    return html.Div(
        [header("", state.default_name(), state.registry.names()), message(text, "warning")],
        className="fs-page",
    )


dash.register_page(__name__, path="/404", name="Not found", layout=layout)
