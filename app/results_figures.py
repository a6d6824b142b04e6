"""Figures of the results page, each a pure function of the tables of
:mod:`fspace.analysis.outcomes` and :mod:`fspace.analysis.weights`.

Every group (label) keeps one colour and marker across the figures, assigned in order
by :func:`fspace.plot.style.group_styles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.analysis.outcomes import SEP
from fspace.analysis.weights import natural_key
from fspace.plot.common import mosaic
from fspace.plot.style import GroupStyle, group_styles, mix

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from fspace.analysis.weights import ImageLayer

FONT = {"family": "system-ui, sans-serif", "size": 12}
LEGEND = {"orientation": "h", "y": -0.2, "x": 0, "yanchor": "top"}


def _layout(fig: go.Figure, *, x: str, y: str, height: int = 340) -> go.Figure:
    return fig.update_layout(
        template="plotly_white",
        height=height,
        font=FONT,
        margin={"l": 60, "r": 10, "t": 10, "b": 40},
        legend=LEGEND,
        xaxis_title=x,
        yaxis_title=y,
    )


def styles(labels: Sequence[str]) -> dict[str, GroupStyle]:
    """The style of each label: that of the trajectory map when labels are groups."""
    return group_styles(labels)


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def final_figure(final: pd.DataFrame, metric: str, labels: Sequence[str]) -> go.Figure:
    """``metric`` at each run's last checkpoint by label: one marker per run (seed) and
    the label's mean with a bar of one standard deviation."""
    import plotly.graph_objects as go

    fig = go.Figure()
    style = styles(labels)
    for label in labels:
        rows = final[final["label"] == label]
        v = _values(rows, metric)
        s = style[label]
        fig.add_trace(
            go.Scatter(
                x=[label] * len(v),
                y=v,
                mode="markers",
                name=label,
                legendgroup=label,
                showlegend=False,
                marker={"symbol": s.symbol, "color": mix(s.color, "#FFFFFF", 0.45), "size": 8},
                text=[
                    f"{r} (seed {seed})" for r, seed in zip(rows["run"], rows["seed"], strict=True)
                ],
                hovertemplate="%{text}<br>%{y:.4g}<extra></extra>",
                meta={"role": "runs", "label": label},
            )
        )
        finite = v[np.isfinite(v)]
        if finite.size:
            std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
            fig.add_trace(
                go.Scatter(
                    x=[label],
                    y=[float(finite.mean())],
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    marker={
                        "symbol": s.symbol,
                        "color": s.color,
                        "size": 14,
                        "line": {"color": "#000000", "width": 1},
                    },
                    error_y={"type": "data", "array": [std], "color": s.color, "thickness": 2},
                    hovertemplate=f"{label}<br>mean %{{y:.4g}} ± {std:.3g} "
                    f"(n={finite.size})<extra></extra>",
                    meta={"role": "mean", "label": label},
                )
            )
    return _layout(fig, x="", y=metric).update_layout(showlegend=False)


def curves_figure(curves: pd.DataFrame, metric: str, x: str, labels: Sequence[str]) -> go.Figure:
    """The mean of ``metric`` over each label's runs against ``x`` (epoch or step), in a
    band from the lowest to the highest run."""
    import plotly.graph_objects as go

    fig = go.Figure()
    style = styles(labels)
    for label in labels:
        rows = curves[curves["label"] == label]
        if rows.empty:
            continue
        s = style[label]
        xs = rows[x].to_numpy()
        band = mix(s.color, "#FFFFFF", 0.75)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([xs, xs[::-1]]),
                y=np.concatenate([rows["max"].to_numpy(), rows["min"].to_numpy()[::-1]]),
                fill="toself",
                fillcolor=band,
                line={"width": 0, "color": band},
                opacity=0.6,
                hoverinfo="skip",
                legendgroup=label,
                showlegend=False,
                meta={"role": "band", "label": label},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=rows["mean"].to_numpy(),
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line={"color": s.color, "dash": s.dash, "width": 2},
                marker={"symbol": s.symbol, "color": s.color, "size": 7},
                customdata=np.stack([rows["min"], rows["max"], rows["n"]], axis=1),
                hovertemplate=f"{label}<br>{x} %{{x}}: mean %{{y:.4g}}<br>"
                "runs %{customdata[2]}: %{customdata[0]:.4g} to %{customdata[1]:.4g}"
                "<extra></extra>",
                meta={"role": "mean", "label": label},
            )
        )
    return _layout(fig, x=x, y=metric)


def axis_figure(final: pd.DataFrame, metric: str, axis: str, factors: Sequence[str]) -> go.Figure:
    """``metric`` at each run's last checkpoint against the setting ``axis`` (e.g.
    depth): one line per combination of the other factors through the means, and each
    run as a light marker."""
    import plotly.graph_objects as go

    others = [f for f in factors if f != axis]
    series = final.assign(
        _series=[
            SEP.join(str(r[f]) if f == "group" else f"{f}={r[f]}" for f in others) or metric
            for _, r in final.iterrows()
        ]
    )
    names = list(dict.fromkeys(series["_series"]))
    style = styles(names)
    fig = go.Figure()
    for name in names:
        rows = series[series["_series"] == name].assign(_v=lambda f: _values(f, metric))
        s = style[name]
        fig.add_trace(
            go.Scatter(
                x=rows[axis],
                y=rows["_v"],
                mode="markers",
                legendgroup=name,
                showlegend=False,
                marker={"symbol": s.symbol, "color": mix(s.color, "#FFFFFF", 0.5), "size": 7},
                hovertemplate=f"{name}<br>{axis} %{{x}}: %{{y:.4g}}<extra></extra>",
                meta={"role": "runs", "label": name},
            )
        )
        mean = rows.groupby(axis, sort=True)["_v"].agg(["mean", "std"]).reset_index()
        fig.add_trace(
            go.Scatter(
                x=mean[axis],
                y=mean["mean"],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line={"color": s.color, "dash": s.dash},
                marker={"symbol": s.symbol, "color": s.color, "size": 11},
                error_y={"type": "data", "array": mean["std"].fillna(0.0), "color": s.color},
                meta={"role": "mean", "label": name},
            )
        )
    fig = _layout(fig, x=axis, y=f"final {metric}")
    return fig.update_xaxes(tickmode="array", tickvals=sorted(set(final[axis])))


def change_figure(changes: pd.DataFrame, labels: Sequence[str]) -> go.Figure:
    """Relative change ``||W_last - W_first|| / ||W_first||`` of each weight tensor,
    one marker per run, coloured by label."""
    import plotly.graph_objects as go

    fig = go.Figure()
    style = styles(labels)
    for label in labels:
        rows = changes[changes["label"] == label]
        s = style[label]
        fig.add_trace(
            go.Scatter(
                x=rows["layer"],
                y=rows["relative_change"],
                mode="markers",
                name=label,
                marker={"symbol": s.symbol, "color": s.color, "size": 8, "opacity": 0.8},
                text=rows["run"],
                hovertemplate="%{text}<br>%{x}: %{y:.4g}<extra></extra>",
                meta={"role": "runs", "label": label},
            )
        )
    layers = sorted(set(changes["layer"]), key=natural_key)
    fig = _layout(fig, x="weight tensor", y="relative change")
    return fig.update_xaxes(categoryorder="array", categoryarray=layers)


def fields_figure(layer: ImageLayer, before: np.ndarray, after: np.ndarray) -> go.Figure:
    """Receptive fields at a run's first and last checkpoint, side by side: the same
    units in the same places, each field on its own symmetric colour scale."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    columns = min(4, len(before))
    what = "kernels" if layer.kind == "conv" else "fields"
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.06,
        subplot_titles=(f"first checkpoint: {layer.name}", "last checkpoint"),
    )
    for col, images in enumerate((before, after), start=1):
        fig.add_trace(
            go.Heatmap(
                z=mosaic(images, columns=columns)[::-1],
                colorscale="RdBu",
                zmin=-1,
                zmax=1,
                showscale=False,
                hoverinfo="skip",
                meta={"role": "fields", "kind": layer.kind, "n": len(images)},
            ),
            row=1,
            col=col,
        )
    hidden: dict[str, Any] = {"visible": False, "scaleanchor": None}
    fig.update_xaxes(visible=False)
    fig.update_yaxes(hidden | {"scaleanchor": "x"}, row=1, col=1)
    fig.update_yaxes(hidden | {"scaleanchor": "x2"}, row=1, col=2)
    h, w = layer.field_shape
    return fig.update_layout(
        template="plotly_white",
        height=340,
        font=FONT,
        margin={"l": 10, "r": 10, "t": 30, "b": 30},
        annotations=[
            *fig.layout.annotations,
            {
                "text": f"{len(before)} {what} of {h}x{w}, largest first; red positive, "
                f"blue negative, each on its own scale",
                "x": 0.5,
                "y": -0.08,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
                "font": {**FONT, "size": 11},
            },
        ],
    )
