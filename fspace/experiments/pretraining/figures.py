"""Figures of the pre-training experiment's results, as pure functions (no I/O).

Each builder takes the output of an analysis in :mod:`fspace.experiments.pretraining.analysis`
and returns a plotly figure; groups keep the colours of :mod:`fspace.plot.style`, so
every figure of an experiment reads the same way. Empty input gives a figure with a
message instead of an error, so a dashboard can show a run that is still starting.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.common import message_figure, mosaic, require_columns, result_layout
from fspace.plot.style import group_order, group_style

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

_CHANGE_TITLE = "relative change ‖W − W₀‖ / ‖W₀‖"


def error_histogram_figure(
    final: pd.DataFrame, *, bins: int | None = None, title: str | None = None
) -> go.Figure:
    """Histograms of the final test error, one panel per depth, the groups overlaid.

    ``final`` is :func:`~fspace.experiments.pretraining.analysis.final_errors`'s frame. All panels
    share the same bins (``bins`` of them over the whole range; by default about twice
    the square root of the number of runs).
    """
    import plotly.graph_objects as go

    if final is None or len(final) == 0:
        return message_figure("no finished runs", title)
    require_columns(final, ("group", "depth", "test_error"), "error_histogram_figure")
    depths = _depths(final)
    fig = _panels(depths, title, shared_yaxes=True)
    xbins = _shared_bins(final["test_error"].to_numpy(dtype=np.float64), bins)
    shown: set[str] = set()
    for col, depth in enumerate(depths, start=1):
        for group in group_order(final["group"].tolist()):
            part = final[(final["depth"] == depth) & (final["group"] == group)]
            if part.empty:
                continue
            style = group_style(group)
            fig.add_trace(
                go.Histogram(
                    x=part["test_error"].to_numpy(dtype=np.float64),
                    xbins=xbins,
                    autobinx=False,
                    name=group,
                    legendgroup=group,
                    showlegend=group not in shown,
                    opacity=0.6,
                    marker={"color": style.color, "line": {"color": style.color, "width": 1}},
                    hovertemplate=f"{group}<br>test error %{{x}}<br>%{{y}} runs<extra></extra>",
                    meta={"group": group, "depth": _plain(depth)},
                ),
                row=1,
                col=col,
            )
            shown.add(group)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="final test error", tickformat=".1%", matches="x")
    # Counts are whole runs: no 0.5 ticks when there are only a few seeds.
    most = int(final.groupby(["depth", "group"]).size().max())
    fig.update_yaxes(dtick=max(1, math.ceil(most / 8)), rangemode="tozero")
    fig.update_yaxes(title_text="runs", row=1, col=1)
    return fig


def error_depth_figure(final: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Final test error against depth per group: the mean across seeds with error bars
    of one standard deviation, and every seed as a faint point."""
    import plotly.graph_objects as go

    from fspace.experiments.pretraining.analysis import error_summary

    if final is None or len(final) == 0:
        return message_figure("no finished runs", title)
    require_columns(final, ("run", "group", "depth", "seed", "test_error"), "error_depth_figure")
    stats = error_summary(final)
    groups = group_order(final["group"].tolist())
    fig = go.Figure()
    for i, group in enumerate(groups):
        # Groups sit side by side at each depth so their error bars do not overlap.
        shift = (i - (len(groups) - 1) / 2) * 0.08
        fig.add_trace(_mean_trace(stats[stats["group"] == group], group, shift))
        fig.add_trace(_seeds_trace(final[final["group"] == group], group, shift))
    fig.update_layout(**result_layout(title))
    fig.update_xaxes(title_text="hidden layers", tickvals=_depths(final), zeroline=False)
    fig.update_yaxes(title_text="final test error", tickformat=".1%")
    if final["test_error"].nunique() <= 1:
        # A single value would be centred in an arbitrary range around it.
        fig.update_yaxes(rangemode="tozero")
    return fig


def _mean_trace(stats: pd.DataFrame, group: str, shift: float) -> go.Scatter:
    import plotly.graph_objects as go

    style = group_style(group)
    return go.Scatter(
        x=stats["depth"].to_numpy(dtype=np.float64) + shift,
        y=stats["mean"].to_numpy(dtype=np.float64),
        error_y={"type": "data", "array": stats["std"].fillna(0).to_numpy(), "width": 6},
        mode="lines+markers",
        name=group,
        legendgroup=group,
        line={"color": style.color, "dash": style.dash, "width": 2},
        marker={"symbol": style.symbol, "size": 10, "color": style.color},
        customdata=stats[["depth", "std", "n"]].to_numpy(dtype=object),
        hovertemplate=f"{group}, depth %{{customdata[0]}}<br>mean %{{y:.2%}} ± "
        "%{customdata[1]:.2%} (n=%{customdata[2]})<extra></extra>",
        meta={"role": "mean", "group": group},
    )


def _seeds_trace(final: pd.DataFrame, group: str, shift: float) -> go.Scatter:
    import plotly.graph_objects as go

    style = group_style(group)
    return go.Scatter(
        x=final["depth"].to_numpy(dtype=np.float64) + shift,
        y=final["test_error"].to_numpy(dtype=np.float64),
        mode="markers",
        name=group,
        legendgroup=group,
        showlegend=False,
        opacity=0.35,
        marker={"symbol": style.symbol, "size": 6, "color": style.color},
        customdata=final[["run", "seed"]].to_numpy(dtype=object),
        hovertemplate="%{customdata[0]} (seed %{customdata[1]})<br>"
        "test error %{y:.2%}<extra></extra>",
        meta={"role": "seeds", "group": group},
    )


def receptive_fields_figure(
    before: np.ndarray, after: np.ndarray, *, title: str | None = None, gap: int = 1
) -> go.Figure:
    """First-layer filters before and after fine-tuning, side by side as grey mosaics.

    ``before`` and ``after`` are :func:`~fspace.experiments.pretraining.analysis.receptive_fields`'s
    ``(n, height, width)`` arrays; each filter is scaled symmetrically around 0 (see
    :func:`mosaic`), white positive, black negative.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ConfigError(
            f"before and after filters differ in shape: {before.shape} vs {after.shape}"
        )
    if before.ndim != 3 or before.shape[0] == 0:
        return message_figure("no filters", title)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("before fine-tuning (epoch 0)", "after fine-tuning"),
        horizontal_spacing=0.04,
    )
    for col, filters in enumerate((before, after), start=1):
        fig.add_trace(
            go.Heatmap(
                z=mosaic(filters, gap=gap),
                colorscale="gray",
                zmin=-1,
                zmax=1,
                showscale=False,
                hoverongaps=False,
                hovertemplate="%{z:.2f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": ""}
    fig.update_xaxes(**axis, constrain="domain")
    fig.update_yaxes(**axis, autorange="reversed", constrain="domain")
    for col in (1, 2):
        # Square pixels: each x axis is scaled to its own panel's y axis.
        suffix = "" if col == 1 else str(col)
        fig.layout[f"xaxis{suffix}"].scaleanchor = f"y{suffix}"
    fig.update_layout(**result_layout(title), plot_bgcolor="white")
    return fig


def weight_change_figure(changes: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Relative change of each weight matrix during fine-tuning, one panel per depth.

    ``changes`` is :func:`~fspace.experiments.pretraining.analysis.weight_changes`'s frame. Bars
    show the mean across seeds per layer and group, with one standard deviation as
    error bars; each seed is a point on its group's bar.
    """
    import plotly.graph_objects as go

    if changes is None or len(changes) == 0:
        return message_figure("no weight changes", title)
    require_columns(
        changes, ("run", "group", "depth", "layer", "relative_change"), "weight_change_figure"
    )
    depths = _depths(changes)
    fig = _panels(depths, title, shared_yaxes=True)
    shown: set[str] = set()
    for col, depth in enumerate(depths, start=1):
        part = changes[changes["depth"] == depth]
        layers = sorted(part["layer"].unique(), key=_layer_key)
        for group in group_order(part["group"].tolist()):
            rows = part[part["group"] == group]
            stats = rows.groupby("layer")["relative_change"].agg(["mean", "std"]).reindex(layers)
            style = group_style(group)
            fig.add_trace(
                go.Bar(
                    x=layers,
                    y=stats["mean"].to_numpy(dtype=np.float64),
                    error_y={"type": "data", "array": stats["std"].fillna(0).to_numpy()},
                    name=group,
                    legendgroup=group,
                    showlegend=group not in shown,
                    offsetgroup=group,
                    marker={"color": style.color, "opacity": 0.75},
                    hovertemplate=f"{group}<br>%{{x}}: mean %{{y:.3g}}<extra></extra>",
                    meta={"role": "mean", "group": group, "depth": _plain(depth)},
                ),
                row=1,
                col=col,
            )
            fig.add_trace(_seed_points(rows, group, depth), row=1, col=col)
            shown.add(group)
    fig.update_layout(barmode="group", scattermode="group")
    fig.update_yaxes(title_text=_CHANGE_TITLE, row=1, col=1)
    return fig


def _seed_points(rows: pd.DataFrame, group: str, depth: Any) -> go.Scatter:
    import plotly.graph_objects as go

    return go.Scatter(
        x=rows["layer"].to_numpy(dtype=object),
        y=rows["relative_change"].to_numpy(dtype=np.float64),
        mode="markers",
        name=group,
        legendgroup=group,
        showlegend=False,
        offsetgroup=group,
        marker={"color": "black", "size": 5, "opacity": 0.5, "symbol": group_style(group).symbol},
        customdata=rows[["run"]].to_numpy(dtype=object),
        hovertemplate="%{customdata[0]}<br>%{x}: %{y:.3g}<extra></extra>",
        meta={"role": "seeds", "group": group, "depth": _plain(depth)},
    )


def error_table_figure(stats: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """A table of :func:`~fspace.experiments.pretraining.analysis.error_summary`: final test error
    per group and depth, mean ± std, min, max and number of runs."""
    import plotly.graph_objects as go

    if stats is None or len(stats) == 0:
        return message_figure("no finished runs", title)
    require_columns(
        stats, ("group", "depth", "mean", "std", "min", "max", "n"), "error_table_figure"
    )
    cells = [
        stats["group"].astype(str).tolist(),
        stats["depth"].tolist(),
        [
            f"{m:.2%} ± {s:.2%}" if s == s else f"{m:.2%}"
            for m, s in zip(stats["mean"], stats["std"], strict=True)
        ],
        [f"{v:.2%}" for v in stats["min"]],
        [f"{v:.2%}" for v in stats["max"]],
        stats["n"].astype(int).tolist(),
    ]
    header = ["group", "depth", "mean ± std", "min", "max", "runs"]
    fig = go.Figure(go.Table(header={"values": header}, cells={"values": cells}))
    fig.update_layout(**result_layout(title))
    return fig


def _depths(frame: pd.DataFrame) -> list[Any]:
    return sorted(_plain(d) for d in frame["depth"].dropna().unique())


def _plain(value: Any) -> Any:
    # numpy scalars are not JSON-serialisable in figure metadata.
    return value.item() if isinstance(value, np.generic) else value


def _layer_key(layer: str) -> tuple[int, str]:
    # "hidden 2" before "hidden 10", and "output" last.
    match = re.search(r"(\d+)$", str(layer))
    return (int(match.group(1)) if match else 10**9, str(layer))


def _shared_bins(values: np.ndarray, bins: int | None) -> dict[str, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"start": 0.0, "end": 1.0, "size": 0.05}
    count = bins or int(np.clip(math.ceil(2 * math.sqrt(values.size)), 5, 30))
    lo, hi = float(values.min()), float(values.max())
    size = (hi - lo) / count if hi > lo else max(abs(lo) * 0.05, 1e-3)
    # Half a bin of margin on each side so the extremes never sit on an edge.
    return {"start": lo - size / 2, "end": hi + size / 2, "size": size}


def _panels(depths: list[Any], title: str | None, *, shared_yaxes: bool) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=len(depths),
        shared_yaxes=shared_yaxes,
        subplot_titles=[f"depth {d}" for d in depths],
        horizontal_spacing=min(0.06, 0.5 / max(len(depths), 1)),
    )
    fig.update_layout(**result_layout(title))
    return fig
