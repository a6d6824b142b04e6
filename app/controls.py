"""The trajectories page's controls, and the values they take for a map."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dash import dcc, html

from fspace.app import ids
from fspace.app.exports import FIGURE_FORMATS
from fspace.app.frames import FILTERS, PlotFrame
from fspace.app.specs import (
    MAX_SEED,
    MapSpec,
    distance_entries,
    method_entries,
    method_entry,
    shown_params,
)
from fspace.app.views import FILTER_KEYS, View

if TYPE_CHECKING:
    from fspace.registry import Param
    from fspace.store import RunInfo

HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}
MAX_MARKS = 11
PLAY_MS = 700


def map_controls(
    spec: MapSpec, status: Any, outputs: Sequence[tuple[str, str]] = ()
) -> html.Section:
    """Method, its parameters, distance, output, seed, the re-fit button and the status.

    The menus and every parameter input come from the method and distance registries;
    the parameters of the methods not chosen wait in hidden boxes. ``outputs`` are the
    experiment's recorded outputs (:func:`~fspace.app.specs.recorded_outputs`).
    """
    from fspace.app.components import status_line

    entries = method_entries()
    menu = dcc.Dropdown(
        id=ids.MAP_METHOD,
        options=[{"label": e.label, "value": e.name, "title": e.help} for e in entries],
        value=spec.method,
        clearable=False,
        searchable=False,
        className="fs-method",
    )
    boxes = [
        html.Div(
            [param_row(e.name, p, spec.params.get(p.name)) for p in shown_params(e.name)],
            id=ids.params_box_id(e.name),
            style=SHOWN if e.name == spec.method else HIDDEN,
        )
        for e in entries
    ]
    distances = dcc.Dropdown(
        id=ids.MAP_DISTANCE,
        options=distance_options(spec.method),
        value=spec.distance,
        clearable=False,
        searchable=False,
        className="fs-method",
    )
    # Which distances each method maps, for switching the menu in the browser.
    mappable = dcc.Store(
        id=ids.MAP_MAPPABLE, data={e.name: e.tags.get("distances", "any") for e in entries}
    )
    seed = dcc.Input(
        id=ids.MAP_SEED,
        type="number",
        value=spec.random_state,
        step=1,
        min=0,
        max=MAX_SEED,
        debounce=True,
    )
    return html.Section(
        [
            html.H3("Map"),
            html.Div([html.Label("method"), menu], className="fs-row"),
            *boxes,
            html.Div([html.Label("distance"), distances, mappable], className="fs-row"),
            output_row(ids.MAP_OUTPUT, spec.output, outputs),
            html.Div(
                [html.Label("random state", title="the map's seed"), seed], className="fs-row"
            ),
            html.Button("Re-fit map", id=ids.REFIT, className="fs-button"),
            html.Div(status_line(status), id=ids.MAP_STATUS),
        ],
        className="fs-panel",
    )


def output_row(output_id: str, value: str | None, outputs: Sequence[tuple[str, str]]) -> html.Div:
    """The menu of the recorded outputs (vector forms) a map can show; ``value`` None is
    the first, the one recorded while training. Hidden when nothing is recorded yet."""
    menu = dcc.Dropdown(
        id=output_id,
        options=[{"label": label, "value": name} for name, label in outputs],
        value=value or (outputs[0][0] if outputs else None),
        clearable=False,
        searchable=False,
        className="fs-method",
    )
    hint = "the function vectors mapped: which recorded output, in which form"
    style = SHOWN if outputs else HIDDEN
    return html.Div([html.Label("output", title=hint), menu], className="fs-row", style=style)


def distance_options(method: str) -> list[dict[str, Any]]:
    """The distance menu's options; those ``method`` cannot map are disabled."""
    allowed = method_entry(method).tags.get("distances", "any")
    return [
        {
            "label": e.label,
            "value": e.name,
            "title": e.help,
            "disabled": allowed != "any" and e.name not in allowed,
        }
        for e in distance_entries()
    ]


def param_row(
    method: str, param: Param, value: Any = None, *, input_id: str | dict | None = None
) -> html.Div:
    """The input of one method parameter, built from its declared type and range
    (``input_id``: its component id, default :func:`ids.param_id`)."""
    value = param.default if value is None else value
    input_id = ids.param_id(method, param.name) if input_id is None else input_id
    if param.choices is not None:
        field: Any = dcc.Dropdown(
            id=input_id,
            options=[{"label": str(c), "value": c} for c in param.choices],
            value=value,
            clearable=False,
            searchable=False,
        )
    elif param.type is bool:
        field = dcc.RadioItems(
            id=input_id,
            options=[{"label": "on", "value": True}, {"label": "off", "value": False}],
            value=value,
            inline=True,
            className="fs-radio",
        )
    elif param.type in (int, float):
        field = dcc.Input(
            id=input_id,
            type="number",
            value=value,
            step=1 if param.type is int else "any",
            min=param.low,
            max=param.high,
            placeholder="auto" if param.default is None else None,
            debounce=True,
        )
    else:
        field = dcc.Input(id=input_id, type="text", value=value, debounce=True)
    hint = param.help + (f" ({_range(param)})" if _range(param) else "")
    return html.Div([html.Label(param.name, title=hint), field], className="fs-row", title=hint)


def _range(param: Param) -> str:
    if param.low is not None and param.high is not None:
        return f"{param.low:g} to {param.high:g}"
    if param.low is not None:
        return f"at least {param.low:g}"
    if param.high is not None:
        return f"at most {param.high:g}"
    return ""


def filter_controls(view: View, plot: PlotFrame | None) -> html.Section:
    """The filters of the map's run settings (:func:`filter_boxes`), in a box that is
    filled again when a new map version has other settings or values."""
    boxes = filter_boxes(plot, dict(view.filters))
    return html.Section(
        [html.H3("Filter"), html.Div(boxes, id=ids.FILTER_BOXES)], className="fs-panel"
    )


def filter_boxes(
    plot: PlotFrame | None, chosen: Mapping[str, Sequence[str]] | None = None
) -> list[html.Div]:
    """One multi-select per filter column of ``plot`` (:attr:`PlotFrame.columns`: the
    group and the run settings with a few values), labelled by its config key, with the
    ``chosen`` values it has selected; none before the map exists."""
    if plot is None:
        return []
    chosen = chosen or {}
    options = plot.options()
    return [
        html.Div(
            [
                html.Label(FILTER_KEYS.get(column, column)),
                dcc.Dropdown(
                    id=ids.filter_id(column),
                    options=_options(options[column]),
                    value=[str(v) for v in chosen.get(column, ()) if str(v) in options[column]],
                    multi=True,
                    placeholder="all",
                ),
            ],
            id=ids.filter_box_id(column),
            className="fs-filter",
        )
        for column in plot.columns
    ]


def _options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


def filter_state(plot: PlotFrame) -> dict[str, list[dict]]:
    """The dropdown options of each filter column of ``plot``, in the page's order."""
    options = plot.options()
    return {c: _options(options[c]) for c in plot.columns}


def chosen_filters(
    values: Sequence[Any] | None, keys: Sequence[dict] | None = None
) -> dict[str, list[str]]:
    """The filter dropdowns' values by column, as text; ``keys`` are their ids
    (:func:`ids.filter_id`), in the same order (None: the columns of :data:`FILTERS`)."""
    columns = [k.get("column") for k in keys] if keys is not None else list(FILTERS)
    return {
        str(c): [str(v) for v in (vals or [])]
        for c, vals in zip(columns, values or (), strict=False)
        if c is not None
    }


def setting_columns(runs: Iterable[RunInfo]) -> set[str]:
    """Every column the runs could be filtered by: group, seed and each config key
    with a plain value (a URL may name any of them before the map exists)."""
    out = {"group", "seed"}
    for run in runs:
        out.update(k for k, v in run.config.items() if isinstance(v, (str, int, float, bool)))
    if "pretraining" in out:  # the pre-training scheme's column (see PlotFrame.build)
        out.add("method")
    return out


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
                options=[{"label": f.upper(), "value": f} for f in FIGURE_FORMATS],
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
