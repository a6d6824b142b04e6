"""The figures of the generative experiment for the regimes page, cached per state of
the experiment (they take seconds: denoising runs the joint model)."""

from __future__ import annotations

import threading
from typing import Any

from dash import dcc

from fspace.app.components import card, message

CONFIG = {"displaylogo": False}
DENOISE_IMAGES = 200  # enough for the page's numbers; the exported report uses 1,000
_cache: dict[Any, tuple[Any, list]] = {}
_lock = threading.Lock()


def regime_cards(exp) -> list:
    """Cards with every figure of :func:`generative_report` for ``exp`` (cached)."""
    from fspace.experiments.generative.config import REGIMES
    from fspace.experiments.generative.report import generative_report

    ckpts = exp.require_checkpoints()
    groups = {r.group for r in exp.runs()}
    if not groups & set(REGIMES):
        return [
            message(
                f"{exp.path.name} holds no run of the generative experiment (groups: "
                f"{', '.join(sorted(groups))}); record one with `fspace experiment generative`",
                "info",
            )
        ]
    key = (str(exp.path), len(ckpts), max(c.created for c in ckpts))
    with _lock:
        if key not in _cache:
            figures, _ = generative_report(exp, progress=False, denoise_images=DENOISE_IMAGES)
            _cache.clear()  # one experiment's figures at a time: they are large
            _cache[key] = (figures, list(figures))
        figures, order = _cache[key]
    return [
        card(
            figures[name].layout.title.text or name, dcc.Graph(figure=figures[name], config=CONFIG)
        )
        for name in order
    ]
