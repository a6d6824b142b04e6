"""Component ids shared by layouts, callbacks and tests: one name per component."""

from __future__ import annotations

# shell
NAV = "nav-location"
EXP_SELECT = "experiment-select"

# trajectories page
EXP = "trajectories-experiment"
POLL = "trajectories-poll"
MAP_TOKEN = "map-token"
MAP_STATUS = "map-status"
MAP_METHOD = "map-method"
MAP_PARAM = "map-param"
MAP_PARAMS = "map-params"
MAP_DISTANCE = "map-distance"
MAP_OUTPUT = "map-output"
MAP_MAPPABLE = "map-mappable"
MAP_SEED = "map-seed"
REFIT = "map-refit"
PROBLEMS = "experiment-problems"
GRAPH = "trajectory-graph"
EPOCHS = "epoch-window"
EPOCHS_LABEL = "epoch-window-label"
PLAY = "play"
PLAY_TIMER = "play-timer"
SELECTED = "selected-checkpoint"
DETAILS = "checkpoint-details"
CLOSE_DETAILS = "close-details"
VIEW_QUERY = "view-query"
URL_SINK = "url-sink"
EXPORT_FORMAT = "export-format"
EXPORT = "export-figure"
EXPORT_CSV = "export-csv"
EXPORT_MESSAGE = "export-message"
DOWNLOAD = "download"
PAGE_MESSAGES = "page-messages"
PENDING = "pending-view"
GRAPH_READY = "graph-ready"
RASTER_VIEW = "raster-view"  # the part of a large map shown, as the browser reports it
# A large map's answer to a hover or click (see fspace.app.raster_hover): the tooltip,
# the layer the hovered run's path is drawn on, and what the page shows (map, filters).
RASTER_ANSWER = "map-answer"
RASTER_OVERLAY = "map-answer-layer"
RASTER_QUERY = "map-answer-query"


def param_id(method: str, name: str) -> dict[str, str]:
    """Pattern-matching id of the input of parameter ``name`` of embedding ``method``."""
    return {"type": MAP_PARAM, "method": method, "name": name}


def params_box_id(method: str) -> dict[str, str]:
    """Pattern-matching id of the box of ``method``'s parameters (shown when chosen)."""
    return {"type": MAP_PARAMS, "method": method}


FILTER_BOXES = "filter-boxes"  # the filters of the map's run settings, rebuilt with the map


def filter_id(column: str) -> dict[str, str]:
    """Pattern-matching id of the filter dropdown of ``column``."""
    return {"type": "filter", "column": column}


def filter_box_id(column: str) -> dict[str, str]:
    """Pattern-matching id of the box around the filter of ``column`` (hidden if absent)."""
    return {"type": "filter-box", "column": column}


# results page
RESULTS_EXP = "results-experiment"
RESULTS_POLL = "results-poll"
RESULTS_TOKEN = "results-token"
RESULTS_STATUS = "results-status"
RESULTS_SUMMARY = "results-summary"
RESULTS_METRIC = "results-metric"
RESULTS_FINAL = "results-final"
RESULTS_CURVES = "results-curves"
RESULTS_SEPARATION = "results-separation"
RESULTS_AXIS = "results-axis"
RESULTS_FIELDS = "results-fields"
RESULTS_FIELDS_RUN = "results-fields-run"
RESULTS_CHANGE = "results-change"
