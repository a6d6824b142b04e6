"""Linked views: what two maps of one experiment share, as pure builders.

Runs chosen on either map (a lasso, a box or a click) are drawn on top of both maps in
one colour per run, their metric curves are drawn below, and for exactly two runs their
function-space distance at every epoch both recorded (:func:`distance_curve`, with
:func:`fspace.distances.rowwise`). The page is :mod:`fspace.app.pages.compare`.

A map above the raster threshold (:func:`fspace.app.raster.is_raster`) is drawn as the
trajectories page draws it: a picture rendered on the server for the part of the map the
browser shows, rendered again by the page's script after every zoom or pan
(:mod:`fspace.app.raster_picture`). The browser then holds no checkpoints, so the server
answers for them: a click is sent by the page's script (``assets/raster_click.js``) to the
nearest-checkpoint endpoint (:mod:`fspace.app.raster_hover`), which finds the checkpoint
under it, and the script hands its run to the page (:func:`picked_runs`); a lasso or box
selects the runs with checkpoints inside it (:func:`runs_in_region`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.app.figures import (
    clicked_key,
    note_figure,
    panel_title,
    raster_dict,
    trajectory_dict,
    typed,
)
from fspace.app.raster import is_raster
from fspace.errors import ConfigError
from fspace.plot.style import COLORS

if TYPE_CHECKING:
    import pandas as pd

    from fspace.app.frames import PlotFrame
    from fspace.store import CheckpointInfo, Experiment

MAX_RUNS = 12
"""Most runs drawn on top of the maps and in the curves (a lasso may catch hundreds)."""
DIMMED = 0.25  # opacity of the unselected checkpoints while runs are selected
HEIGHT = 520  # of each map, in pixels
MAX_VERTICES = 2_000  # of a lasso the server tests checkpoints against
# Colours of the selected runs, apart from the groups' (fspace.plot.style.COLORS): black
# first, as the trajectories page draws its one highlighted run.
RUN_COLORS = ("#000000", "#E41A1C", "#984EA3", "#4DAF4A", "#A65628", "#F781BF", "#377EB8")
QUALITY = (
    (
        "trustworthiness",
        "trustworthiness",
        "are the map's neighbours neighbours in function space?",
    ),
    ("continuity", "continuity", "do function-space neighbours stay neighbours on the map?"),
    ("explained_stress", "explained stress", "share of the squared distances the map keeps"),
)


def run_color(index: int) -> str:
    """The colour of the ``index``-th selected run, the same on both maps and the curves."""
    return RUN_COLORS[index % len(RUN_COLORS)]


def runs_of_selection(selected: dict[str, Any] | None) -> list[str]:
    """The runs of the checkpoints in a lasso or box ``selectedData``, in first-seen order.

    Checkpoint markers carry their run as ``text``; other traces (paths, the runs drawn
    on top) carry none and are ignored.
    """
    runs: dict[str, None] = {}
    for point in (selected or {}).get("points") or []:
        text = point.get("text") if isinstance(point, dict) else None
        if isinstance(text, str) and text:
            runs.setdefault(text)
    return list(runs)


def runs_of_click(plot: PlotFrame, click: dict[str, Any] | None) -> list[str]:
    """The run of the checkpoint a click on a map drawn point by point chose (empty if it
    chose none; a raster map's clicks come through :func:`picked_runs`)."""
    key = clicked_key(plot, click)
    return [] if key is None else [key.partition("/")[0]]


def picked_runs(picked: Any) -> list[str]:
    """The run a click on a raster map chose, as the page's script reports it
    (``{"run": ..., "key": ..., "at": ms}``); empty for anything else."""
    run = picked.get("run") if isinstance(picked, dict) else None
    return [run] if isinstance(run, str) and 0 < len(run) <= 1000 else []


def runs_in_region(plot: PlotFrame, selected: dict[str, Any] | None) -> list[str]:
    """The runs with checkpoints inside the lasso or box of a ``selectedData`` (on a
    raster map, whose checkpoints the browser does not hold), those with the most inside
    first, at most :data:`MAX_RUNS`; empty for anything that is not a region."""
    polygon = region_polygon(selected)
    if polygon is None:
        return []
    inside = points_in_polygon(plot.x, plot.y, *polygon)
    counts = np.bincount(plot.run_code[inside], minlength=len(plot.runs))
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0][:MAX_RUNS]
    return [str(plot.runs[i]) for i in order]


def region_polygon(selected: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The vertices ``(x, y)`` of the lasso (``lassoPoints``) or box (``range``) of a
    ``selectedData``; None if it holds neither, or anything malformed."""
    if not isinstance(selected, dict):
        return None
    lasso, box = selected.get("lassoPoints"), selected.get("range")
    try:
        if isinstance(lasso, dict):
            x = np.asarray(lasso["x"], dtype=np.float64)
            y = np.asarray(lasso["y"], dtype=np.float64)
        elif isinstance(box, dict):
            (x0, x1), (y0, y1) = (sorted(float(v) for v in box[k]) for k in ("x", "y"))
            x, y = np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1])
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    ok = x.ndim == 1 and x.shape == y.shape and 3 <= x.size <= MAX_VERTICES
    return (x, y) if ok and np.isfinite(x).all() and np.isfinite(y).all() else None


def points_in_polygon(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Which points ``(x[i], y[i])`` lie inside the polygon of vertices ``(px, py)``
    (even-odd rule, as a lasso selects), as a boolean mask."""
    out = np.zeros(len(x), dtype=bool)
    near = np.flatnonzero((x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))
    xs, ys = x[near], y[near]
    inside = np.zeros(len(near), dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(px)):
            xi, yi, xj, yj = px[i], py[i], px[i - 1], py[i - 1]
            spans = (yi > ys) != (yj > ys)
            inside ^= spans & (xs < (xj - xi) * (ys - yi) / (yj - yi) + xi)
    out[near] = inside
    return out


def toggle(selected: Sequence[str], runs: Sequence[str], *, add: bool) -> list[str]:
    """The selection after choosing ``runs``: they replace it, or with ``add`` a click
    adds a run that is not selected and removes one that is."""
    if not add:
        return list(dict.fromkeys(runs))[:MAX_RUNS]
    out = list(selected)
    for run in runs:
        if run in out:
            out.remove(run)
        else:
            out.append(run)
    return out[:MAX_RUNS]


def linked_map(
    plot: PlotFrame,
    runs: Sequence[str],
    *,
    title: str | None = None,
    uirevision: str = "linked",
    view: Any = None,
    token: str | None = None,
    clicks: str | None = None,
) -> dict[str, Any]:
    """The map ``plot`` with the paths of ``runs`` drawn on top, one colour each (the
    order of ``runs``); while some are selected the other checkpoints are dimmed. A map
    above the raster threshold is the picture of the part ``view`` the browser reported
    (:func:`fspace.app.raster_view.viewport`; the whole map for None), which the page's
    script renders again for the map ``token`` on zoom and pan; its clicks are written
    into the store ``clicks`` (see the module)."""
    raster = is_raster(plot)
    if raster:
        from fspace.app.raster_picture import meta
        from fspace.app.raster_view import viewport

        shown = viewport(plot, view, uirevision)
        figure = raster_dict(plot, np.ones(len(plot), bool), shown, uirevision=uirevision)
        figure["layout"]["meta"] = meta(token, shown, clicks=clicks)
    else:
        figure = trajectory_dict(plot, np.ones(len(plot), bool), uirevision=uirevision)
    layout = figure["layout"]
    layout.update(dragmode="lasso", height=HEIGHT, margin={"l": 10, "r": 10, "t": 80, "b": 10})
    if title:
        layout["title"] = {"text": title, "font": {"size": 14}, "x": 0.02}
    layout["clickmode"] = "event"
    if any(plot.rows_of_run(r).size for r in runs):
        for trace in figure["data"]:
            if trace.get("meta", {}).get("role") not in (None, "legend"):
                trace["opacity"] = trace.get("opacity", 1.0) * DIMMED
        for image in layout.get("images", []):
            image["opacity"] = DIMMED
    kind = "scatter" if raster else "scattergl"  # a raster map draws nothing with WebGL
    for index, run in enumerate(runs):
        rows = plot.rows_of_run(run)
        if rows.size:
            figure["data"].append(_run_trace(plot, rows, run, run_color(index), kind))
    return figure


def _run_trace(
    plot: PlotFrame, rows: np.ndarray, run: str, color: str, kind: str = "scattergl"
) -> dict[str, Any]:
    return {
        "type": kind,
        "mode": "lines+markers",
        "x": typed(plot.x[rows]),
        "y": typed(plot.y[rows]),
        "name": run,
        "legendgroup": "selected",
        "showlegend": False,
        "line": {"color": color, "width": 3.5},
        "marker": {"color": color, "size": 9, "line": {"color": "white", "width": 1.5}},
        "hovertemplate": f"run {run}<br>epoch %{{customdata}}<extra></extra>",
        "customdata": plot.epoch[rows].tolist(),
        "meta": {"role": "linked", "run": run},
        "uid": f"linked-{run}",
    }


def quality_rows(quality: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """``(name, value, help)`` of each faithfulness score a map has (see
    :mod:`fspace.embedding.quality`); trustworthiness and continuity name their ``k``."""
    quality = quality or {}
    rows = []
    for key, name, hint in QUALITY:
        if isinstance(quality.get(key), (int, float)):
            label = f"{name} (k={quality['k']})" if key != "explained_stress" else name
            rows.append((label, f"{float(quality[key]):.3f}", hint))
    if quality.get("sampled") and quality.get("n"):
        rows.append(("scored on", f"a sample of {quality['n']:,}", "maps this large are sampled"))
    return rows


def by_run(checkpoints: Iterable[CheckpointInfo], runs: Sequence[str]) -> dict[str, list]:
    """The checkpoints of each of ``runs`` in epoch and step order (absent runs: empty)."""
    out: dict[str, list] = {run: [] for run in runs}
    for ckpt in checkpoints:
        if ckpt.run in out:
            out[ckpt.run].append(ckpt)
    for ckpts in out.values():
        ckpts.sort(key=lambda c: (c.epoch, c.step))
    return out


def curves_figure(
    histories: dict[str, Sequence[CheckpointInfo]], runs: Sequence[str] | None = None
) -> dict[str, Any]:
    """Each recorded metric against epoch, one panel per metric and one line per run,
    coloured by the run's place in the selection ``runs`` (default: ``histories``' order)
    as on the maps."""
    order = {run: i for i, run in enumerate(runs if runs is not None else histories)}
    names = sorted({m for ckpts in histories.values() for c in ckpts for m in c.metrics})
    if not histories or not names:
        text = "select runs on either map" if not histories else "these runs recorded no metrics"
        return note_figure(text)
    width, gap = (1 - 0.08 * (len(names) - 1)) / len(names), 0.08
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": 260,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "legend": {"orientation": "h", "y": -0.25},
        "annotations": [],
    }
    traces = []
    for k, name in enumerate(names):
        suffix = "" if k == 0 else str(k + 1)
        domain = (k * (width + gap), k * (width + gap) + width)
        layout[f"xaxis{suffix}"] = {"domain": domain, "anchor": f"y{suffix}", "title": "epoch"}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}"}
        layout["annotations"].append(panel_title(name.replace("_", " "), domain))
        for run, ckpts in histories.items():
            points = [(c.epoch, c.metrics[name]) for c in ckpts if name in c.metrics]
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [e for e, _ in points],
                    "y": [v for _, v in points],
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                    "name": run,
                    "legendgroup": run,
                    "showlegend": k == 0,
                    "line": {"color": run_color(order.get(run, len(order)))},
                    "meta": {"role": "curve", "run": run, "metric": name},
                }
            )
    return {"data": traces, "layout": layout}


def epoch_pairs(
    a: Sequence[CheckpointInfo], b: Sequence[CheckpointInfo]
) -> list[tuple[int, CheckpointInfo, CheckpointInfo]]:
    """``(epoch, checkpoint of a, checkpoint of b)`` for every epoch both runs recorded,
    in epoch order; of several checkpoints in one epoch the last step counts."""
    last_a = {c.epoch: c for c in sorted(a, key=lambda c: (c.epoch, c.step))}
    last_b = {c.epoch: c for c in sorted(b, key=lambda c: (c.epoch, c.step))}
    return [(e, last_a[e], last_b[e]) for e in sorted(set(last_a) & set(last_b))]


def distance_curve(
    exp: Experiment,
    a: Sequence[CheckpointInfo],
    b: Sequence[CheckpointInfo],
    distance: str = "euclidean",
    output: str | None = None,
) -> pd.DataFrame:
    """The function-space ``distance`` between two runs at every epoch both recorded.

    Columns ``epoch`` and ``distance``; the function vectors are those of ``output``
    (default: the one the experiment was recorded with), read from its cache or
    computed. An epoch where either vector is not finite is left out. Example::

        ckpts = by_run(exp.checkpoints(), ["random-s0", "pretrained-s0"])
        distance_curve(exp, *ckpts.values(), "hellinger")
    """
    import pandas as pd

    from fspace.app.vectors import checkpoint_vectors
    from fspace.distances import rowwise

    pairs = epoch_pairs(a, b)
    if not pairs:
        raise ConfigError("the two runs have no epoch in common: there is nothing to compare")
    va, failed_a = checkpoint_vectors(exp, [p[1] for p in pairs], output=output)
    vb, failed_b = checkpoint_vectors(exp, [p[2] for p in pairs], output=output)
    bad = set(failed_a) | set(failed_b)
    keep = [i for i, p in enumerate(pairs) if p[1].key not in bad and p[2].key not in bad]
    rows_a = _rows_of(va.points, [pairs[i][1].key for i in keep])
    rows_b = _rows_of(vb.points, [pairs[i][2].key for i in keep])
    values = rowwise(_take(va, rows_a), _take(vb, rows_b), distance)
    return pd.DataFrame({"epoch": [pairs[i][0] for i in keep], "distance": values})


def _rows_of(points: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    index = {k: i for i, k in enumerate(points["checkpoint"])}
    return np.array([index[k] for k in keys], dtype=np.int64)


def _take(vectors: Any, rows: np.ndarray) -> Any:
    from dataclasses import replace

    return replace(
        vectors,
        matrix=vectors.matrix[rows],
        points=vectors.points.iloc[rows].reset_index(drop=True),
    )


def distance_figure(curves: dict[str, pd.DataFrame], runs: Sequence[str]) -> dict[str, Any]:
    """The distance between the two ``runs`` against epoch, one line per distance
    (``curves`` maps each distance's label to its :func:`distance_curve`); a second
    distance has its own axis on the right, since distances have different units."""
    if not curves:
        return note_figure("select exactly two runs to see their distance over epochs", height=160)
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": 280,
        "margin": {"l": 60, "r": 60, "t": 40, "b": 40},
        "title": {"text": f"function-space distance between {runs[0]} and {runs[1]}", "x": 0},
        "xaxis": {"title": "epoch"},
        "legend": {"orientation": "h", "y": -0.25},
    }
    traces = []
    for k, (label, frame) in enumerate(curves.items()):
        color = COLORS[(k + 2) % len(COLORS)]
        axis = {"title": {"text": f"{label} distance", "font": {"color": color}}}
        axis["rangemode"] = "tozero"
        if k:  # further distances share the right-hand axis
            axis.update(overlaying="y", side="right", showgrid=False)
        layout.setdefault("yaxis" if k == 0 else "yaxis2", axis)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": frame["epoch"].tolist(),
                "y": frame["distance"].tolist(),
                "yaxis": "y" if k == 0 else "y2",
                "name": f"{label} distance",
                "line": {"color": color},
                "meta": {"role": "pair-distance", "distance": label},
            }
        )
    return {"data": traces, "layout": layout}
