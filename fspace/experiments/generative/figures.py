"""Figures of the generative experiment, as pure functions (no I/O).

Each builder takes the output of an analysis in
:mod:`fspace.experiments.generative.analysis` (or of :func:`fspace.training.denoise.denoise`)
and returns a plotly figure. Each regime has its own marker, dash and colour
(:func:`fspace.plot.style.group_styles` of the experiment's regimes) in every figure;
empty input gives a figure with a message instead of an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError
from fspace.plot.common import message_figure, require_columns, result_layout
from fspace.plot.style import GroupStyle, group_style

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from fspace.training.denoise import Denoising

FIGURES = (
    "trajectories",
    "test_error",
    "learning_curves",
    "separation",
    "denoising",
    "denoising_summary",
    "samples",
)
"""Names of the figures :func:`fspace.experiments.generative.report.generative_report` builds."""

_CELL = 105  # pixels per image row in the image-grid figures
_ERROR_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
_SIDE_LEGEND = {
    "title": {"text": "regime"},
    "orientation": "v",
    "x": 1.02,
    "xanchor": "left",
    "y": 1.0,
    "yanchor": "top",
}


def regime_style(group: str, groups: Iterable[str]) -> GroupStyle:
    """The style of ``group`` among the experiment's ``groups``: the one every figure of
    the experiment, its trajectories included, draws it in."""
    return group_style(group, groups)


def regime_trajectory_figure(frame: pd.DataFrame, **options: Any) -> go.Figure:
    """:func:`fspace.plot.trajectory_figure`, its legend below the map."""
    from fspace.plot.trajectories import trajectory_figure

    fig = trajectory_figure(frame, **options)
    # Seven regimes make a two-line legend that would run into the title: put it below.
    fig.update_layout(legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0})
    return fig


def regime_error_figure(final: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Final test error per regime: a bar at the mean across seeds with one standard
    deviation as error bar, and every seed as a point."""
    import plotly.graph_objects as go

    from fspace.experiments.generative.analysis import regime_summary

    if final is None or len(final) == 0:
        return message_figure("no finished runs", title)
    require_columns(final, ("run", "group", "seed", "test_error"), "regime_error_figure")
    stats = regime_summary(final)
    fig = go.Figure()
    for row in stats.itertuples(index=False):
        style = regime_style(row.group, stats["group"])
        seeds = final[final["group"] == row.group]
        fig.add_trace(
            go.Bar(
                x=[row.group],
                y=[row.mean],
                error_y={"type": "data", "array": [0.0 if row.std != row.std else row.std]},
                name=row.group,
                text=[f"{row.mean:.1%}"],
                textposition="inside",
                insidetextanchor="start",  # at the foot of the bar, clear of the seeds
                marker={"color": style.color, "opacity": 0.7},
                hovertemplate=f"{row.group}<br>mean %{{y:.2%}} (n={row.n})<extra></extra>",
                meta={"role": "mean", "group": row.group},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[row.group] * len(seeds),
                y=seeds["test_error"].to_numpy(dtype=np.float64),
                mode="markers",
                showlegend=False,
                marker={"color": "black", "symbol": style.symbol, "size": 7, "opacity": 0.6},
                customdata=seeds[["run", "seed"]].to_numpy(dtype=object),
                hovertemplate="%{customdata[0]}<br>test error %{y:.2%}<extra></extra>",
                meta={"role": "seeds", "group": row.group},
            )
        )
    fig.update_layout(**{**result_layout(title), "showlegend": False})
    # Log scale: a regime stuck near chance would otherwise flatten all the others.
    fig.update_yaxes(title_text="final test error", type="log", tickvals=_ERROR_TICKS)
    fig.update_yaxes(tickformat=".0%", range=[np.log10(0.008), np.log10(1.3)])
    fig.update_xaxes(tickangle=-20)
    return fig


def learning_curve_figure(curves: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Test error against epoch per regime: mean across seeds, ± one standard deviation."""
    import plotly.graph_objects as go

    from fspace.experiments.generative.analysis import regime_order

    if curves is None or len(curves) == 0:
        return message_figure("no checkpoints", title)
    require_columns(curves, ("group", "epoch", "mean", "std", "n"), "learning_curve_figure")
    fig = go.Figure()
    for group in regime_order(curves["group"].tolist()):
        part = curves[curves["group"] == group].sort_values("epoch")
        style = regime_style(group, curves["group"])
        fig.add_trace(
            go.Scatter(
                x=part["epoch"].to_numpy(),
                y=part["mean"].to_numpy(dtype=np.float64),
                error_y={"type": "data", "array": part["std"].fillna(0).to_numpy(), "width": 3},
                mode="lines+markers",
                name=group,
                line={"color": style.color, "dash": style.dash, "width": 2},
                marker={"symbol": style.symbol, "size": 7, "color": style.color},
                hovertemplate=f"{group}<br>epoch %{{x}}: %{{y:.2%}}<extra></extra>",
                meta={"group": group},
            )
        )
    fig.update_layout(**{**result_layout(title), "legend": _SIDE_LEGEND})
    fig.update_xaxes(title_text="epoch of fine-tuning (0 = start)", dtick=1)
    # Log scale: the regimes differ by a few percent near the end, ~90% at the start.
    fig.update_yaxes(title_text="test error", type="log", tickvals=_ERROR_TICKS, tickformat=".0%")
    return fig


def separation_figure(pairs: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Heatmap of :func:`~fspace.experiments.generative.analysis.pairwise_separation`: how often a
    checkpoint's nearest neighbour from another run shares its regime (0.5: mixed; below
    0.5: the nearest neighbours come systematically from the other regime)."""
    import plotly.graph_objects as go

    from fspace.experiments.generative.analysis import regime_order

    if pairs is None or len(pairs) == 0:
        return message_figure("fewer than two regimes", title)
    require_columns(pairs, ("group_a", "group_b", "accuracy"), "separation_figure")
    groups = regime_order([*pairs["group_a"], *pairs["group_b"]])
    index = {g: i for i, g in enumerate(groups)}
    z = np.full((len(groups), len(groups)), np.nan)
    for row in pairs.itertuples(index=False):
        z[index[row.group_a], index[row.group_b]] = z[index[row.group_b], index[row.group_a]] = (
            row.accuracy
        )
    text = [["" if v != v else f"{v:.2f}" for v in line] for line in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=groups,
            y=groups,
            text=text,
            texttemplate="%{text}",
            # Diverging around 0.5 (mixed): below it, a checkpoint's nearest neighbour is
            # systematically from the *other* regime (e.g. a run sharing its seed).
            colorscale="RdBu",
            zmin=0.0,
            zmid=0.5,
            zmax=1.0,
            hoverongaps=False,
            colorbar={"title": {"text": "1-NN acc."}},
            hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(**{**result_layout(title), "height": 560})
    if title:
        fig.update_layout(
            title_subtitle_text="0.5: their checkpoints mix; 1: apart; below 0.5: each "
            "checkpoint's nearest neighbour is a run of the other regime"
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30)
    return fig


def _image_grid(rows: int, cols: int, titles: list[str], title: str | None) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.01,
        vertical_spacing=min(0.3 / rows, 0.06),
    )
    fig.update_layout(**{**result_layout(title), "height": 90 + _CELL * rows, "showlegend": False})
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": ""}
    fig.update_xaxes(**axis, constrain="domain")
    fig.update_yaxes(**axis, autorange="reversed", constrain="domain")
    fig.update_annotations(font_size=11)
    return fig


def _add_image(fig: go.Figure, image: np.ndarray, row: int, col: int) -> None:
    import plotly.graph_objects as go

    fig.add_trace(
        go.Heatmap(
            z=image,
            colorscale="Greys",
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{z:.2f}<extra></extra>",
        ),
        row=row,
        col=col,
    )


def denoise_figure(
    noisy: np.ndarray,
    result: Denoising,
    originals: np.ndarray,
    *,
    image_shape: tuple[int, int],
    labels: np.ndarray | None = None,
    row_names: list[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Denoising examples: one row per image; columns: the noisy input, the cleaned image
    at each step (titled with the label inferred there and the bottom-up share), the
    original. With ``labels``, right labels are green and wrong ones red."""
    noisy = np.asarray(noisy).reshape(len(noisy), -1)
    n, steps = noisy.shape[0], len(result.bottom_up)
    if n == 0:
        return message_figure("no examples", title)
    if result.images.shape[:2] != (steps, n) or np.asarray(originals).shape[0] != n:
        raise ConfigError(
            f"denoise_figure: {n} noisy images, result images {result.images.shape}, "
            f"{np.asarray(originals).shape[0]} originals; pass matching rows"
        )
    names = row_names or ["noisy"] * n
    titles = []
    for i in range(n):
        steps_titles = [
            f"{result.labels[s, i]} (α={result.bottom_up[s]:.2f})"
            if i == 0
            else f"{result.labels[s, i]}"
            for s in range(steps)
        ]
        truth = "original" + (f": {labels[i]}" if labels is not None else "")
        titles += [names[i], *steps_titles, truth]
    fig = _image_grid(n, steps + 2, titles, title)
    images = [noisy, *result.images, np.asarray(originals).reshape(n, -1)]
    for i in range(n):
        for j, column in enumerate(images):
            _add_image(fig, column[i].reshape(image_shape), i + 1, j + 1)
    if labels is not None:
        for i in range(n):
            for s in range(steps):
                ok = result.labels[s, i] == labels[i]
                fig.layout.annotations[i * (steps + 2) + 1 + s].font.color = (
                    "#009E73" if ok else "#D55E00"
                )
    return fig


def denoise_summary_figure(report: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Label accuracy and image MSE against the top-down share, one line per noise kind;
    dotted lines mark the baselines (clean-image accuracy, noisy-input MSE)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if report is None or len(report) == 0:
        return message_figure("no denoising results", title)
    require_columns(report, ("kind", "bottom_up", "label_accuracy", "mse", "noisy_mse"), "denoise")
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("label accuracy", "MSE to the original image")
    )
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    for k, (kind, part) in enumerate(report.groupby("kind", sort=False)):
        color = palette[k % len(palette)]
        x = 1.0 - part["bottom_up"].to_numpy(dtype=np.float64)
        for col, (column, base) in enumerate(
            [("label_accuracy", "clean_accuracy"), ("mse", "noisy_mse")], start=1
        ):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=part[column].to_numpy(dtype=np.float64),
                    mode="lines+markers",
                    name=str(kind),
                    legendgroup=str(kind),
                    showlegend=col == 1,
                    line={"color": color},
                ),
                row=1,
                col=col,
            )
            if base in part and (col == 2 or k == 0):
                fig.add_trace(
                    go.Scatter(
                        x=[x.min(), x.max()],
                        y=[float(part[base].iloc[0])] * 2,
                        mode="lines",
                        name=f"{kind}: noisy input" if col == 2 else "clean images",
                        legendgroup=str(kind),
                        showlegend=False,
                        line={"color": color if col == 2 else "black", "dash": "dot"},
                    ),
                    row=1,
                    col=col,
                )
    fig.update_layout(**result_layout(title))
    fig.update_layout(legend={"title": {"text": "noise"}})
    fig.update_xaxes(title_text="top-down share 1 − α")
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    return fig


def samples_figure(
    images: np.ndarray,
    *,
    per_label: int,
    image_shape: tuple[int, int],
    title: str | None = None,
) -> go.Figure:
    """Images the joint model generates with its label units clamped: row ``i`` holds
    the ``per_label`` samples of label ``i`` (``images`` in that order)."""
    images = np.asarray(images).reshape(len(images), -1)
    if len(images) == 0:
        return message_figure("no samples", title)
    if len(images) % per_label:
        raise ConfigError(f"{len(images)} samples do not fill rows of {per_label}")
    rows = len(images) // per_label
    titles = [f"label {r}" if c == 0 else "" for r in range(rows) for c in range(per_label)]
    fig = _image_grid(rows, per_label, titles, title)
    for i, image in enumerate(images):
        _add_image(fig, image.reshape(image_shape), i // per_label + 1, i % per_label + 1)
    fig.update_layout(height=90 + 85 * rows, width=90 + 85 * per_label)
    return fig
