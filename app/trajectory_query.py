"""What the Trajectories page's controls ask for, and its address: the map spec the
controls describe (:func:`spec_of`), the chosen filters (:func:`filters_of`), and the URL
query of the whole view, written into the address bar as it changes so that the
address can be shared (:func:`query`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import ALL, Input, Output, State

from fspace.app import ids
from fspace.app.controls import chosen_filters
from fspace.app.maps import MapSpec
from fspace.app.specs import DEFAULT_METHOD, chosen_output, method_entry
from fspace.app.state import current
from fspace.app.views import View, view_query
from fspace.errors import FspaceError

# The inputs of every method's parameters (made from the method registry).
PARAM_VALUES = Input({"type": ids.MAP_PARAM, "method": ALL, "name": ALL}, "value")
PARAM_KEYS = State({"type": ids.MAP_PARAM, "method": ALL, "name": ALL}, "id")
# The ids of the filter dropdowns: which column each is.
FILTER_KEYS = State({"type": "filter", "column": ALL}, "id")


def spec_of(
    method: str,
    values: Sequence[Any] | None,
    keys: Sequence[dict] | None,
    seed: Any,
    distance: Any = None,
    output: str | None = None,
) -> MapSpec:
    """The map the controls ask for (ConfigError for a value the method cannot use).

    ``values`` are the parameter inputs' values and ``keys`` their ids
    (:func:`ids.param_id`); only the chosen method's count. ``output`` is the recorded
    output chosen, None for the default (:func:`~fspace.app.specs.chosen_output`).
    """
    params = {
        key["name"]: value
        for key, value in zip(keys or (), values or (), strict=False)
        if key.get("method") == method
    }
    return MapSpec.make(method, None, seed, params=params, distance=distance, output=output)


def filters_of(values: Sequence[Any], keys: Sequence[dict] | None = None) -> dict[str, list[str]]:
    """The filter dropdowns' values by column, as text (see :func:`chosen_filters`)."""
    return chosen_filters(values, keys)


def query(
    method,
    values,
    distance,
    seed,
    filters,
    epochs,
    selected,
    keys,
    exp,
    lo,
    hi,
    wanted,
    fkeys=None,
    output=None,
) -> str:
    """The URL query of what the page shows, for sharing (``wanted``: the filters and
    window the URL asked for while the map is not there yet)."""
    try:
        output = chosen_output(current().registry.get(exp).experiment, output) if output else None
        spec = spec_of(method, values, keys, seed, distance, output)
    except FspaceError:
        spec = MapSpec(method if _known(method) else DEFAULT_METHOD)
    chosen_ = filters_of(filters, fkeys)
    if wanted:  # the map is not there yet: keep what the URL asked for
        chosen_, epochs, lo = wanted["filters"], wanted["epochs"], None
    chosen = tuple((c, tuple(v)) for c, v in chosen_.items() if v)
    window_ = tuple(epochs) if epochs and list(epochs) != [lo, hi] else None
    view = View(exp=exp, spec=spec, filters=chosen, epochs=window_, checkpoint=selected)
    return view_query(view)


def _known(method: Any) -> bool:
    try:
        method_entry(str(method))
    except FspaceError:
        return False
    return True


# Writes the query into the address bar (without a reload or a history entry).
WRITE_QUERY_JS = """
function(query) {
    if (typeof query === "string" && window.location.pathname.endsWith("/trajectories")) {
        window.history.replaceState(window.history.state, "", window.location.pathname + query);
    }
    return "";
}
"""


def register(callback: Any) -> None:
    """Declare the callbacks that keep the page's address in step with its view."""
    callback(
        Output(ids.VIEW_QUERY, "data"),
        Input(ids.MAP_METHOD, "value"),
        PARAM_VALUES,
        Input(ids.MAP_DISTANCE, "value"),
        Input(ids.MAP_SEED, "value"),
        Input({"type": "filter", "column": ALL}, "value"),
        Input(ids.EPOCHS, "value"),
        Input(ids.SELECTED, "data"),
        PARAM_KEYS,
        State(ids.EXP, "data"),
        State(ids.EPOCHS, "min"),
        State(ids.EPOCHS, "max"),
        State(ids.PENDING, "data"),
        FILTER_KEYS,
        Input(ids.MAP_OUTPUT, "value"),
    )(query)
    callback.clientside(
        WRITE_QUERY_JS,
        Output(ids.URL_SINK, "children"),
        Input(ids.VIEW_QUERY, "data"),
    )
