"""Pieces shared by the result figures of the ready-made experiments: the panel layout,
a figure that only says why it is empty, column checks and image mosaics."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.style import add_message

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

HEIGHT = 420
"""Height in pixels of a result figure."""


def result_layout(title: str | None) -> dict[str, Any]:
    """Plotly layout of a result figure: white template, legend top right."""
    return {
        "template": "plotly_white",
        "title": {"text": title, "x": 0.01, "xanchor": "left"} if title else None,
        "height": HEIGHT,
        "margin": {"l": 60, "r": 20, "t": 90, "b": 50},
        # Top right in the margin, on the title's line, clear of the panel titles.
        "legend": {
            "title": {"text": "group"},
            "orientation": "h",
            "x": 1,
            "xanchor": "right",
            "yref": "container",
            "y": 0.98,
            "yanchor": "top",
        },
    }


def message_figure(text: str, title: str | None) -> go.Figure:
    """An empty result figure that says ``text`` (why there is nothing to draw)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(**result_layout(title))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return add_message(fig, text)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Refuse ``frame`` unless it has ``columns``, naming what needs them."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{what} needs column(s) {', '.join(missing)}; pass the frame of the matching analysis"
        )


def mosaic(filters: np.ndarray, *, gap: int = 1, columns: int | None = None) -> np.ndarray:
    """Tile ``(n, h, w)`` filters into one image, each scaled to [-1, 1] by its largest
    absolute value (so 0 stays mid-grey); the ``gap`` pixels between tiles are NaN.

    Tiles fill rows of ``columns`` (default ``ceil(sqrt(n))``) from the top left.
    """
    filters = np.asarray(filters, dtype=np.float64)
    if filters.ndim != 3:
        raise ConfigError(f"filters must have shape (n, height, width), got {filters.shape}")
    n, h, w = filters.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, f in enumerate(filters):
        scale = np.abs(f).max()
        r, c = divmod(i, cols)
        top, left = r * (h + gap), c * (w + gap)
        out[top : top + h, left : left + w] = f / scale if scale > 0 else 0.0
    return out
