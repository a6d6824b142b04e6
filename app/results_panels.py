"""The panels of the results page, built from :class:`fspace.app.results.Results`: a
table, a figure, or a plain note saying why the panel does not apply to these runs.

Which panels apply is decided by the data (:class:`fspace.analysis.outcomes.Design`
and the notes of :mod:`fspace.app.results`), never by the experiment's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dash import dcc, html

from fspace.analysis.outcomes import curves, final_values, fmt, metric_summary
from fspace.plot.style import group_order

if TYPE_CHECKING:
    import pandas as pd

    from fspace.app.results import Results

CONFIG = {"displaylogo": False, "displayModeBar": False}
MAX_METRICS = 4  # columns of the summary table


def note(text: str) -> html.P:
    """What a panel says instead of a figure or table."""
    return html.P(text, className="fs-small fs-note")


def graph(fig: Any) -> dcc.Graph:
    return dcc.Graph(figure=fig, config=CONFIG)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1):
    """A plain table; cells from column ``numeric_from`` on are right-aligned numbers."""
    head = html.Tr([html.Th(h) for h in header])
    body = [
        html.Tr(
            [
                html.Td(str(v), className="fs-number" if i >= numeric_from else None)
                for i, v in enumerate(row)
            ]
        )
        for row in rows
    ]
    return html.Table([head, *body], className="fs-table")


def labels(res: Results) -> list[str]:
    """The labels of the runs in legend order (built-in groups first)."""
    return group_order(res.design.labels)


def summary(res: Results) -> html.Div:
    """How many runs in which groups, and each metric's final value by group."""
    design = res.design
    if design is None:
        return html.Div(note(res.notes.get("summary", "no runs to summarize")))
    runs = design.runs
    split = ", ".join(design.factors) if design.factors else "nothing"
    lines: list[Any] = [
        html.P(
            f"{len(runs)} runs in {runs['label'].nunique()} group(s), told apart by {split}; "
            f"values at each run's last checkpoint, mean ± standard deviation over its seeds."
        )
    ]
    lines += [note(text) for key, text in design.notes.items() if key in ("groups", "metrics")]
    if not design.metrics:
        return html.Div(lines)
    final = final_values(design)
    shown = design.metrics[:MAX_METRICS]
    stats = {m: metric_summary(final, m).set_index("label") for m in shown}
    rows = []
    for label in labels(res):
        cells: list[Any] = [label, int((runs["label"] == label).sum())]
        for m in shown:
            s = stats[m].loc[label] if label in stats[m].index else None
            cells.append("—" if s is None else f"{fmt(s['mean'])} ± {fmt(s['std'])}")
        rows.append(cells)
    lines.append(table(["group", "runs", *shown], rows))
    if len(design.metrics) > MAX_METRICS:
        lines.append(note(f"{len(design.metrics) - MAX_METRICS} more metric(s) in the menu"))
    return html.Div(lines)


def metric_panels(res: Results, metric: str | None) -> tuple[Any, Any, Any]:
    """The final values of ``metric`` by group, its curves over training, and its final
    values against the numeric setting that varies (depth), each or a note."""
    from fspace.app import results_figures as figures

    design = res.design
    if design is None:
        text = res.notes.get("summary", "no runs to show")
        return note(text), note(text), note(text)
    # Before the menu has a value, the main metric (the one the menu is given).
    metric = metric if metric in design.metrics else design.metric
    if metric is None:
        text = design.notes["metrics"]
        return note(text), note(text), note(text)
    order = labels(res)
    final = final_values(design)
    first = graph(figures.final_figure(final, metric, order))
    frame = curves(design, metric)
    if frame.groupby("label")[design.x].nunique().max() < 2:
        over = note(f"each run has {metric} at a single {design.x}: no curve to draw")
    else:
        curve = graph(figures.curves_figure(frame, metric, design.x, order))
        over = html.Div(
            [curve, note("lines: mean over each group's runs; bands: lowest to highest run")]
        )
    return first, over, axis_panel(res, final, metric)


def axis_panel(res: Results, final: pd.DataFrame, metric: str) -> html.Div:
    """Final ``metric`` against the numeric setting that varies, figure and table."""
    from fspace.app import results_figures as figures

    design = res.design
    axis = design.axis
    if axis is None:
        return html.Div(note(design.notes["axis"]))
    others = [f for f in design.factors if f != axis]
    stats = metric_summary(final, metric, by=[*others, axis])
    rows = [
        [*(r[f] for f in others), r[axis], fmt(r["mean"], 4), fmt(r["std"], 4), int(r["n"])]
        for _, r in stats.iterrows()
    ]
    header = [*others, axis, f"mean {metric}", "std", "n"]
    return html.Div(
        [
            graph(figures.axis_figure(final, metric, axis, design.factors)),
            table(header, rows, numeric_from=len(others)),
        ]
    )


def separation(res: Results) -> html.Div:
    """The separation statistics between groups with their intervals, or why none."""
    frame = res.separation
    if frame is None:
        return html.Div(note(res.notes.get("separation", "no separation statistics")))
    by = str(frame["by"].iloc[0])
    groups = ", ".join(group_order(res.design.runs[by].astype(str)))
    rows = [
        [
            r["statistic"],
            r["checkpoints_used"],
            fmt(r["value"]),
            f"{fmt(r['low'])} – {fmt(r['high'])}",
            fmt(r["p_value"]),
            fmt(r["chance"]),
            int(r["runs"]),
        ]
        for _, r in frame.iterrows()
    ]
    header = ["statistic", "checkpoints", "value", "95% interval", "p", "chance", "runs"]
    return html.Div(
        [
            html.P(f"Groups compared: {groups}. Euclidean distances between function vectors."),
            table(header, rows, numeric_from=2),
            *([note(res.notes["separation_scope"])] if "separation_scope" in res.notes else []),
            note(
                "1-NN accuracy: how often a checkpoint's nearest checkpoint of another run is "
                "in its own group; distance ratio: between / within groups; intervals "
                "resample runs within groups, p permutes the group labels of runs."
            ),
        ]
    )


def change(res: Results) -> html.Div:
    """Relative weight change per tensor and run, or why there is none."""
    from fspace.app import results_figures as figures

    if res.changes is None:
        return html.Div(note(res.notes.get("change", "no weight changes")))
    return html.Div(
        [
            graph(figures.change_figure(res.changes, labels(res))),
            note("||W_last − W_first|| / ||W_first|| between each run's first and last checkpoint"),
        ]
    )
