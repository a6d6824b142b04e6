"""Figures of trajectory and group statistics against epoch, with bands over runs.

Pure functions of the frames of :mod:`fspace.stats` (no I/O); export them with
:func:`fspace.export.write_figure`. Groups keep the colours of :mod:`fspace.plot.style`.

Example::

    result = fspace.stats.summarize(vectors, distance="hellinger")
    fig = trajectory_stat_figure(result.trajectories)         # distance from start
    fspace.write_figure(group_distance_figure(result.epochs), "between.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.style import COLORS, add_message, group_order, group_styles

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

HEIGHT = 420
ACROSS = "#333333"  # pairs of runs from two different groups
TITLES = {
    "distance_from_start": "distance from the run's first checkpoint",
    "path_length": "path length so far",
    "speed": "path length per epoch",
    "to_ignorance": "distance to the uniform prediction",
    "to_truth": "distance to the one-hot targets",
    "progress": "progress from ignorance to truth",
}


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _band(fig: go.Figure, x, mean, spread, color: str, name: str, dash: str, what: str) -> None:
    """A mean line and a shaded band of ``mean ± spread``, toggled together."""
    import plotly.graph_objects as go

    x = np.asarray(x)
    upper, lower = np.asarray(mean) + spread, np.asarray(mean) - spread
    fig.add_trace(
        go.Scatter(
            x=np.r_[x, x[::-1]],
            y=np.r_[upper, lower[::-1]],
            mode="lines",  # the band's outline only: no markers on its corners
            fill="toself",
            fillcolor=_rgba(color, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            legendgroup=name,
            showlegend=False,
            name=f"{name} band",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mean,
            mode="lines+markers",
            line={"color": color, "dash": dash, "width": 2},
            marker={"size": 5},
            name=name,
            legendgroup=name,
            customdata=np.column_stack([spread]),
            hovertemplate=f"{name}<br>epoch %{{x}}<br>{what} %{{y:.4g}} ± %{{customdata[0]:.3g}}"
            "<extra></extra>",
        )
    )


def _layout(fig: go.Figure, title: str | None, ytitle: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=HEIGHT,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 60},
    )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=ytitle, rangemode="tozero")
    return fig


def trajectory_stat_figure(
    trajectories: pd.DataFrame,
    column: str = "distance_from_start",
    *,
    title: str | None = None,
) -> go.Figure:
    """``column`` of :func:`~fspace.stats.trajectory_frame` against epoch, one line per
    label: the mean over its runs (each run's last checkpoint of the epoch) with a band
    of one standard deviation over runs."""
    import plotly.graph_objects as go

    fig = go.Figure()
    what = TITLES.get(column, column)
    if trajectories is None or len(trajectories) == 0:
        return _layout(add_message(fig, "no checkpoints"), title, what)
    missing = [c for c in ("run", "label", "epoch", column) if c not in trajectories.columns]
    if missing:
        raise ConfigError(f"trajectory_stat_figure needs column(s) {', '.join(missing)}")
    last = trajectories.groupby(["run", "epoch"], sort=False).tail(1)
    last = last[np.isfinite(last[column].to_numpy(dtype=np.float64))]
    if last.empty:
        return _layout(add_message(fig, f"no values of {column}"), title, what)
    styles = group_styles(last["label"].astype(str))
    for label in group_order(styles):
        part = last[last["label"].astype(str) == label]
        stats = part.groupby("epoch")[column].agg(["mean", "std", "count"]).reset_index()
        spread = stats["std"].fillna(0.0).to_numpy()
        style = styles[label]
        runs = part["run"].nunique()
        name = f"{label} ({runs} run{'' if runs == 1 else 's'})"
        _band(fig, stats["epoch"], stats["mean"], spread, style.color, name, style.dash, what)
    return _layout(fig, title, f"{what} (mean ± sd over runs)")


def group_distance_figure(epochs: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Mean distance between runs at each epoch (:func:`~fspace.stats.epoch_distances`),
    one line per kind of pair: across two groups (dark, solid) and within each group
    (its colour, dotted), with a band of one standard deviation over pairs of runs."""
    import plotly.graph_objects as go

    fig = go.Figure()
    what = "distance between runs"
    if epochs is None or len(epochs) == 0:
        return _layout(add_message(fig, "fewer than two runs"), title, what)
    missing = [c for c in ("epoch", "pair", "mean", "std", "pairs") if c not in epochs.columns]
    if missing:
        raise ConfigError(f"group_distance_figure needs column(s) {', '.join(missing)}")
    pairs = epochs["pair"].astype(str)
    across = sorted({p for p in pairs if " | " in p})
    within = group_order([p for p in pairs if " | " not in p])
    styles = group_styles([g for p in set(pairs) for g in p.split(" | ")])
    for i, pair in enumerate(across + within):
        part = epochs[pairs == pair].sort_values("epoch")
        if pair in across:
            color = ACROSS if len(across) == 1 else COLORS[(i + 2) % len(COLORS)]
            name, dash = f"between {pair}", "solid"
        else:
            color, name, dash = styles[pair].color, f"within {pair}", "dot"
        n = int(part["pairs"].max())
        _band(
            fig,
            part["epoch"],
            part["mean"],
            part["std"].to_numpy(),
            color,
            f"{name} ({n} pair{'' if n == 1 else 's'})",
            dash,
            what,
        )
    return _layout(fig, title, f"{what} at equal epoch (mean ± sd over pairs)")


def stats_figure(result, *, title: str | None = None) -> go.Figure:
    """Two panels of a :class:`~fspace.stats.StatsResult`: distance from start
    (:func:`trajectory_stat_figure`) and between runs (:func:`group_distance_figure`)."""
    from plotly.subplots import make_subplots

    panels = [trajectory_stat_figure(result.trajectories), group_distance_figure(result.epochs)]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "distance from start (mean ± sd over runs)",
            "between runs, equal epoch (mean ± sd over pairs)",
        ),
    )
    for col, panel in enumerate(panels, start=1):
        for trace in panel.data:
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
        fig.update_yaxes(
            title_text=f"{result.distance} distance", rangemode="tozero", row=1, col=col
        )
    fig.update_layout(
        title=title,
        height=HEIGHT,
        width=1100,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 60, "r": 20, "t": 90 if title else 60, "b": 60},
    )
    return fig
