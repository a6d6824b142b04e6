"""Generative page (``/generative``; ``/regimes`` leads here): every training regime of
the generative experiment in one map, their test errors and learning curves, how
separable they are, and denoising with the joint model. The experiment's registry
entry declares the page (:mod:`fspace.experiments.generative`).

The figures are built by :mod:`fspace.app.generative` from the same report as
``fspace experiment generative --figures``, so page and files agree.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from fspace.app.components import header, message
from fspace.app.generative import regime_cards
from fspace.app.state import current
from fspace.app.wiring import Callbacks, guarded

callback = Callbacks()
PAGE = "generative"
BODY = "generative-body"
URL = "generative-url"


def layout(exp: str | None = None, **query: Any) -> html.Div:
    """The regimes of the experiment named in the URL."""
    state = current()
    names = state.registry.names()
    exp = exp or state.default_name()
    return html.Div(
        [
            header(PAGE, exp, names),
            dcc.Location(id=URL, refresh=False),
            dcc.Loading(html.Div(id=BODY), type="default"),
        ],
        className="fs-page",
    )


@callback(Output(BODY, "children"), Input(URL, "search"))
@guarded(lambda text: message(text))
def draw(search: str | None) -> list:
    """All figures of the regimes, computed once per state of the experiment."""
    from urllib.parse import parse_qs

    state = current()
    name = parse_qs((search or "").lstrip("?")).get("exp", [state.default_name()])[-1]
    handle = state.registry.get(name)
    return regime_cards(handle.experiment)
