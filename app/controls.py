"""The trajectories page's controls, and the values they take for a map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from fspace.app import ids
from fspace.app.frames import FILTERS, PlotFrame
from fspace.app.maps import LABELS, MapSpec
from fspace.app.views import View

HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}
MAX_MARKS = 11
PLAY_MS = 700


def map_controls(spec: MapSpec, status: Any) -> html.Section:
    """Method, its main parameter, seed, the re-fit button and the status line."""
    from fspace.app.components import status_line
    from fspace.embedding.base import get_method

    perplexity = spec.param if spec.method == "tsne" and spec.param else None
    neighbors = spec.param if spec.method == "umap" and spec.param else None
    return html.Section(
        [
            html.H3("Map"),
            dcc.RadioItems(
                id=ids.MAP_METHOD,
                options=[{"label": label, "value": m} for m, label in LABELS.items()],
                value=spec.method,
                inline=True,
                className="fs-radio",
            ),
            _number_row(
                ids.PERPLEXITY_ROW,
                "perplexity",
                ids.PERPLEXITY,
                perplexity or get_method("tsne").defaults["perplexity"],
                spec.method == "tsne",
                step="any",
                minimum=1,
            ),
            _number_row(
                ids.NEIGHBORS_ROW,
                "neighbours",
                ids.NEIGHBORS,
                neighbors or get_method("umap").defaults["n_neighbors"],
                spec.method == "umap",
                step=1,
                minimum=2,
            ),
            _number_row(None, "map seed", ids.MAP_SEED, spec.random_state, True, step=1, minimum=0),
            html.Button("Re-fit map", id=ids.REFIT, className="fs-button"),
            html.Div(status_line(status), id=ids.MAP_STATUS),
        ],
        className="fs-panel",
    )


def _number_row(row_id, label, input_id, value, shown, *, step, minimum) -> html.Div:
    field = dcc.Input(
        id=input_id, type="number", value=value, step=step, min=minimum, debounce=True
    )
    kwargs = {"id": row_id} if row_id else {}
    return html.Div(
        [html.Label(label), field], className="fs-row", style=SHOWN if shown else HIDDEN, **kwargs
    )


def param_styles(method: str) -> tuple[dict, dict]:
    """Styles of the perplexity and neighbours rows for ``method``."""
    return (SHOWN if method == "tsne" else HIDDEN, SHOWN if method == "umap" else HIDDEN)


def filter_controls(view: View, plot: PlotFrame | None) -> html.Section:
    """One multi-select per filter column; a column the map lacks stays hidden."""
    options = plot.options() if plot is not None else {}
    boxes = []
    for column in FILTERS:
        boxes.append(
            html.Div(
                [
                    html.Label(column),
                    dcc.Dropdown(
                        id=ids.filter_id(column),
                        options=_options(options.get(column, ())),
                        value=list(view.filter(column)),
                        multi=True,
                        placeholder="all",
                    ),
                ],
                id=ids.filter_box_id(column),
                className="fs-filter",
                style=SHOWN if column in options else HIDDEN,
            )
        )
    return html.Section([html.H3("Filter"), *boxes], className="fs-panel")


def _options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


def filter_state(plot: PlotFrame) -> tuple[list[list[dict]], list[dict]]:
    """Options and box styles of the filters, in :data:`FILTERS` order."""
    options = plot.options()
    return (
        [_options(options.get(c, ())) for c in FILTERS],
        [SHOWN if c in options else HIDDEN for c in FILTERS],
    )


def window(
    plot: PlotFrame, value: Sequence[int] | None, old_max: int | None
) -> tuple[int, int, list[int]]:
    """Slider bounds and value for ``plot``: the old value clamped to the epochs, and
    an upper end that sat on the last epoch (``old_max``) follows it as training adds
    epochs; with ``old_max=None`` (a window asked for in the URL) it never follows."""
    lo, hi = plot.epoch_range
    if not value or len(value) != 2:
        return lo, hi, [lo, hi]
    start = min(max(int(value[0]), lo), hi)
    at_edge = old_max is not None and int(value[1]) >= old_max
    end = hi if at_edge else min(max(int(value[1]), lo), hi)
    return lo, hi, [start, max(start, end)]


def marks(lo: int, hi: int) -> dict[str, str]:
    """At most :data:`MAX_MARKS` evenly spaced epoch labels."""
    step = max(1, -(-(hi - lo) // (MAX_MARKS - 1)))
    ticks = list(range(lo, hi + 1, step))
    if ticks[-1] != hi:
        ticks.append(hi)
    return {str(t): str(t) for t in ticks}


def epoch_controls(view: View, plot: PlotFrame | None) -> html.Div:
    """The play button and the epoch-window slider."""
    if plot is not None:
        lo, hi, value = window(plot, view.epochs, None)
    else:
        value = list(view.epochs or (0, 1))
        lo, hi = 0, max(1, value[1])
    return html.Div(
        [
            html.Button("▶ play", id=ids.PLAY, className="fs-button fs-play", title="animate"),
            html.Div(
                dcc.RangeSlider(
                    id=ids.EPOCHS,
                    min=lo,
                    max=hi,
                    step=1,
                    value=value,
                    marks=marks(lo, hi),
                    allowCross=False,
                ),
                className="fs-slider",
            ),
            html.Span("epochs", className="fs-label"),
            dcc.Interval(id=ids.PLAY_TIMER, interval=PLAY_MS, disabled=True),
        ],
        className="fs-epochs",
    )


def export_controls() -> html.Section:
    """Format choice, export and CSV buttons, and the download target."""
    return html.Section(
        [
            html.H3("Export"),
            dcc.RadioItems(
                id=ids.EXPORT_FORMAT,
                options=[{"label": f.upper(), "value": f} for f in ("png", "svg", "html")],
                value="png",
                inline=True,
                className="fs-radio",
            ),
            html.Div(
                [
                    html.Button("Export figure", id=ids.EXPORT, className="fs-button"),
                    html.Button("Download CSV", id=ids.EXPORT_CSV, className="fs-button"),
                ],
                className="fs-buttons",
            ),
            html.Div(id=ids.EXPORT_MESSAGE, className="fs-small"),
            dcc.Download(id=ids.DOWNLOAD),
        ],
        className="fs-panel",
    )
