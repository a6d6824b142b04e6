"""What the page shows about one checkpoint: its run's metrics over epochs and its
first-layer receptive fields, built with the result figures' own builders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.app.figures import panel_title
from fspace.errors import CheckpointError, RunError
from fspace.plot.common import mosaic
from fspace.plot.style import COLORS

if TYPE_CHECKING:
    import pandas as pd

    from fspace.app.handles import ExperimentHandle, Scan
    from fspace.store import CheckpointInfo, RunInfo

N_FIELDS = 16
MAX_FACT_CHARS = 200  # of one value in the facts list


@dataclass(frozen=True)
class Details:
    """One checkpoint, its run and the run's other checkpoints in epoch order."""

    checkpoint: CheckpointInfo
    run: RunInfo
    history: tuple[CheckpointInfo, ...]


def find_checkpoint(handle: ExperimentHandle, key: str) -> Details:
    """The checkpoint ``key`` ("run/name", or a run id for its last checkpoint).

    Looks in the latest scan first (a rescan of a large experiment takes a while) and
    scans again only if the checkpoint is not there.
    """
    scan = handle.last_scan
    if scan is not None:
        try:
            return _find(scan, handle.name, key)
        except (RunError, CheckpointError):
            pass
    return _find(handle.scan(), handle.name, key)


def _find(scan: Scan, experiment: str, key: str) -> Details:
    run_id, _, name = str(key).partition("/")
    if run_id not in scan.runs:
        known = ", ".join(sorted(scan.runs)[:8]) or "none"
        more = " ..." if len(scan.runs) > 8 else ""
        raise RunError(f"no run {run_id!r} in experiment {experiment!r} (runs: {known}{more})")
    history = tuple(c for c in scan.checkpoints if c.run == run_id)
    if not history:
        raise CheckpointError(f"run {run_id!r} has no checkpoints yet")
    if not name:
        return Details(history[-1], scan.runs[run_id], history)
    for ckpt in history:
        if ckpt.name == name:
            return Details(ckpt, scan.runs[run_id], history)
    epochs = f"epochs {history[0].epoch}-{history[-1].epoch}"
    raise CheckpointError(f"run {run_id!r} has no checkpoint {name!r} (it has {epochs})")


def metrics_table(history: tuple[CheckpointInfo, ...]) -> pd.DataFrame:
    """One row per checkpoint: epoch, step and every recorded metric."""
    import pandas as pd

    rows = [{"epoch": c.epoch, "step": c.step, **c.metrics} for c in history]
    return pd.DataFrame(rows)


def _panels(n: int, gap: float = 0.08) -> list[tuple[float, float]]:
    width = (1 - gap * (n - 1)) / n
    return [(k * (width + gap), k * (width + gap) + width) for k in range(n)]


def metrics_figure(table: pd.DataFrame, *, epoch: int | None = None) -> dict[str, Any]:
    """Each metric of a run against epoch, one panel per metric, with the selected
    ``epoch`` marked by a dashed line (a plain figure dict: it is redrawn on every click)."""
    names = [c for c in table.columns if c not in ("epoch", "step")]
    if not names:
        from fspace.app.figures import note_figure

        return note_figure("this run recorded no metrics")
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": 240,
        "showlegend": False,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "annotations": [],
        "shapes": [],
    }
    traces = []
    for k, (name, domain) in enumerate(zip(names, _panels(len(names)), strict=True)):
        suffix = "" if k == 0 else str(k + 1)
        layout[f"xaxis{suffix}"] = {
            "domain": domain,
            "anchor": f"y{suffix}",
            "title": {"text": "epoch"},
            "zeroline": False,
            "dtick": max(1, -(-int(table["epoch"].max() - table["epoch"].min()) // 10)),
        }
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}"}
        layout["annotations"].append(panel_title(_title(name), domain))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": table["epoch"].tolist(),
                "y": table[name].astype(float).where(table[name].notna(), None).tolist(),
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
                "name": name,
                "line": {"color": COLORS[k % len(COLORS)]},
                "hovertemplate": f"epoch %{{x}}<br>{_title(name)} %{{y:.4g}}<extra></extra>",
            }
        )
        if epoch is not None:
            layout["shapes"].append(
                {
                    "type": "line",
                    "x0": epoch,
                    "x1": epoch,
                    "xref": f"x{suffix}",
                    "y0": 0,
                    "y1": 1,
                    "yref": f"y{suffix} domain",
                    "line": {"dash": "dash", "color": "grey"},
                }
            )
    return {"data": traces, "layout": layout}


def _title(metric: str) -> str:
    return metric.replace("_", " ")


def fields_figure(handle: ExperimentHandle, details: Details) -> dict | str:
    """The run's first-layer receptive fields at its first checkpoint and at this one
    (the units strongest at the start), or the reason there are none.

    The layer is :func:`fspace.analysis.weights.image_layer`'s: a convolution's kernels,
    or a dense layer with one weight per pixel, never the output layer.
    """
    from fspace.analysis.weights import NoImageLayerError, field_images, image_layer

    exp, first, ckpt = handle.experiment, details.history[0], details.checkpoint
    w0, w1 = exp.load_weights(first), exp.load_weights(ckpt)
    try:
        layer = image_layer({k: tuple(v.shape) for k, v in w0.items()}, handle.input_shape())
    except NoImageLayerError as err:
        return f"no receptive fields: {err}"
    if layer.name not in w1 or w1[layer.name].shape != w0[layer.name].shape:
        return f"no receptive fields: {layer.name} changes shape between checkpoints"
    before = field_images(w0[layer.name].float().numpy(), layer)
    after = field_images(w1[layer.name].float().numpy(), layer)
    norms = np.linalg.norm(before.reshape(len(before), -1).astype(np.float64), axis=1)
    units = np.argsort(-norms, kind="stable")[:N_FIELDS]
    titles = (f"epoch {first.epoch} (first checkpoint)", f"epoch {ckpt.epoch} (this checkpoint)")
    return fields_dict(before[units], after[units], titles)


def fields_dict(before: np.ndarray, after: np.ndarray, titles: tuple[str, str]) -> dict:
    """Two mosaics of filters side by side, drawn as
    :func:`~fspace.experiments.pretraining.figures.receptive_fields_figure` draws them
    (grey, each filter scaled around 0, square pixels), as a plain figure dict."""
    from plotly.colors import make_colorscale, sequential

    from fspace.app.figures import typed

    # plotly.js knows the "gray" scale only through plotly.py: spell it out.
    grey = make_colorscale(sequential.gray)
    hidden = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": ""}
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "plot_bgcolor": "white",
        "height": 300,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "annotations": [],
    }
    traces = []
    for k, (filters, domain) in enumerate(zip((before, after), _panels(2, 0.04), strict=True)):
        suffix = "" if k == 0 else "2"
        traces.append(
            {
                "type": "heatmap",
                "z": typed(mosaic(filters)),
                "colorscale": grey,
                "zmin": -1,
                "zmax": 1,
                "showscale": False,
                "hoverongaps": False,
                "hovertemplate": "%{z:.2f}<extra></extra>",
                "xaxis": f"x{suffix}",
                "yaxis": f"y{suffix}",
            }
        )
        layout[f"xaxis{suffix}"] = {
            **hidden,
            "domain": domain,
            "anchor": f"y{suffix}",
            "constrain": "domain",
            "scaleanchor": f"y{suffix}",
        }
        layout[f"yaxis{suffix}"] = {
            **hidden,
            "anchor": f"x{suffix}",
            "autorange": "reversed",
            "constrain": "domain",
        }
        layout["annotations"].append(panel_title(titles[k], domain))
    return {"data": traces, "layout": layout}


def shorten(text: str, limit: int = MAX_FACT_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a note saying how much was left out (a
    run's config may hold megabytes; the page shows a line of it)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters cut]"


def details_panel(handle: ExperimentHandle, key: str) -> Any:
    """The details box of checkpoint ``key``: facts, metrics over epochs, receptive fields."""
    from dash import html

    from fspace.app import ids
    from fspace.app.components import GRAPH_CONFIG, card, message

    details = find_checkpoint(handle, key)
    ckpt, run = details.checkpoint, details.run
    facts = {"group": run.group, "seed": run.seed, "epoch": ckpt.epoch, "step": ckpt.step}
    facts.update({_title(k): f"{v:.4g}" for k, v in ckpt.metrics.items()})
    facts.update({k: v for k, v in run.config.items() if isinstance(v, (str, int, float))})
    facts = {k: shorten(str(v)) for k, v in facts.items()}
    fields = fields_figure(handle, details)
    return html.Div(
        [
            html.Div(
                [
                    html.H2(f"{run.id} · epoch {ckpt.epoch}"),
                    html.Button("×", id=ids.CLOSE_DETAILS, className="fs-close", title="close"),
                ],
                className="fs-details-head",
            ),
            html.Dl([part for k, v in facts.items() for part in (html.Dt(k), html.Dd(str(v)))]),
            card(
                "Metrics of the run",
                _graph(
                    metrics_figure(metrics_table(details.history), epoch=ckpt.epoch), GRAPH_CONFIG
                ),
            ),
            card(
                "First-layer receptive fields",
                _graph(fields, GRAPH_CONFIG)
                if not isinstance(fields, str)
                else message(fields, "info"),
            ),
        ],
        **{"data-checkpoint": ckpt.key},
    )


def _graph(fig: Any, config: dict[str, Any]) -> Any:
    from dash import dcc

    return dcc.Graph(figure=fig, config=config)
