"""Downloads of the trajectories page: the figure as shown, and its coordinates as CSV.

A figure of more checkpoints than the page draws point by point
(:data:`fspace.app.raster.VECTOR_LIMIT`) is exported as the page shows it: the density
of the checkpoints as one picture, the highlighted run's path as vector shapes on top
(:func:`fspace.plot.density.map_figure`), so that a million checkpoints export in
seconds into a file of a few megabytes. Files are written into the server's export
folder (:mod:`fspace.app.exports`) and sent to the browser through ``dcc.Download``.
Names and titles come from the map the server holds, never from what the browser
sends; the format must be one of the choices.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, dcc, no_update

from fspace.app import ids
from fspace.app.components import message
from fspace.app.exports import FIGURE_FORMATS, MAX_CELL_CHARS
from fspace.app.pages.trajectories import entry_of
from fspace.app.state import current
from fspace.app.trajectory_query import filters_of
from fspace.app.wiring import Callbacks, guarded
from fspace.errors import EmbeddingError, ExportError

callback = Callbacks()


def current_frame(token, filters, epochs, filter_keys=None):
    """The rows the page shows, with the map's entry (FspaceError if there is no map);
    ``filter_keys`` are the filter dropdowns' ids, in the order of ``filters``."""
    entry = entry_of(token)
    if entry is None:
        raise EmbeddingError("there is no map to export yet; wait until it is computed")
    rows = entry.plot.mask(filters_of(filters, filter_keys), epochs)
    return entry, entry.plot.labels()[rows]


def _export_error(text: str):
    return no_update, message(text)


@callback(
    Output(ids.DOWNLOAD, "data"),
    Output(ids.EXPORT_MESSAGE, "children"),
    Input(ids.EXPORT, "n_clicks"),
    State(ids.EXPORT_FORMAT, "value"),
    State(ids.EXP, "data"),
    State(ids.MAP_TOKEN, "data"),
    State({"type": "filter", "column": ALL}, "value"),
    State(ids.EPOCHS, "value"),
    State(ids.SELECTED, "data"),
    State({"type": "filter", "column": ALL}, "id"),
    prevent_initial_call=True,
    running=[(Output(ids.EXPORT, "disabled"), True, False)],
)
@guarded(_export_error)
def export(_n, fmt, exp, token, filters, epochs, selected, filter_keys=None):
    """Write the figure as shown (filters, epoch window, highlighted run) and send it."""
    from fspace.app import raster
    from fspace.plot.density import map_figure

    if fmt not in FIGURE_FORMATS:
        raise ExportError(
            f"cannot export the figure as {fmt!r}; choose {', '.join(FIGURE_FORMATS)}"
        )
    entry, frame = current_frame(token, filters, epochs, filter_keys)
    if frame.empty:
        raise EmbeddingError("no checkpoint matches the filters and epoch window")
    run = str(selected).partition("/")[0] if selected else None
    run = run if run in set(frame["run"]) else None
    name = entry.handle.name
    title = f"{name}: function space ({entry.spec.label}), coloured by epoch"
    big = len(frame) > raster.VECTOR_LIMIT  # the page's own threshold
    fig = map_figure(frame, title=title, highlight_runs=[run] if run else [], raster=big)
    path = current().exports.figure(fig, f"{name}-{entry.spec.method}-trajectories", fmt)
    return dcc.send_file(str(path)), f"exported {path.name}"


@callback(
    Output(ids.DOWNLOAD, "data", allow_duplicate=True),
    Output(ids.EXPORT_MESSAGE, "children", allow_duplicate=True),
    Input(ids.EXPORT_CSV, "n_clicks"),
    State(ids.EXP, "data"),
    State(ids.MAP_TOKEN, "data"),
    State({"type": "filter", "column": ALL}, "value"),
    State(ids.EPOCHS, "value"),
    State({"type": "filter", "column": ALL}, "id"),
    prevent_initial_call=True,
)
@guarded(_export_error)
def export_csv(_n, exp, token, filters, epochs, filter_keys=None):
    """The coordinates and labels of the checkpoints shown, as CSV."""
    entry, frame = current_frame(token, filters, epochs, filter_keys)
    stem = f"{entry.handle.name}-{entry.spec.method}-coordinates"
    path, cut = current().exports.table(frame, stem)
    note = f"; {cut:,} long values were cut to {MAX_CELL_CHARS} characters" if cut else ""
    return dcc.send_file(str(path)), f"exported {path.name} ({len(frame):,} checkpoints{note})"
