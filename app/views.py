"""The URL of a view: what a shared link must hold to show the same thing again.

::

    /trajectories?exp=NAME&map=tsne&perplexity=50&map_seed=1
                 &group=pretrained&depth=1,2&epochs=0-10&checkpoint=RUN/e000003-s0000003000

``map`` is the embedding method (tsne, umap, pca) with ``perplexity`` (t-SNE) or
``neighbors`` (UMAP) and ``map_seed``; ``group``, ``depth``, ``method`` and ``seed``
filter the runs by those columns (comma-separated values); ``epochs`` is the epoch
window; ``checkpoint`` (or ``run``, meaning its last checkpoint) opens the details.
Parameters left at their defaults are left out of the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fspace.app.frames import FILTERS
from fspace.app.maps import MAIN_PARAMS, MapSpec
from fspace.errors import ConfigError

PARAM_NAMES = {"perplexity": "perplexity", "n_neighbors": "neighbors"}
KNOWN = {"exp", "map", "perplexity", "neighbors", "map_seed", "epochs", "checkpoint", "run"}


@dataclass(frozen=True)
class View:
    """Everything a trajectories URL can say."""

    exp: str | None = None
    spec: MapSpec = field(default_factory=MapSpec)
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    epochs: tuple[int, int] | None = None
    checkpoint: str | None = None
    run: str | None = None

    def filter(self, column: str) -> tuple[str, ...]:
        """Chosen values of ``column`` (empty: all)."""
        return dict(self.filters).get(column, ())


def parse_view(query: Mapping[str, str | list[str]]) -> tuple[View, list[str]]:
    """The view a URL's query parameters describe, and messages about the ones that
    could not be used (each is then left at its default)."""
    notes: list[str] = []
    values = {k: (v[-1] if isinstance(v, list) else v) for k, v in query.items()}
    for key in sorted(set(values) - KNOWN - set(FILTERS)):
        notes.append(f"unknown URL parameter {key!r} ignored")
    spec = _spec(values, notes)
    filters = tuple(
        (column, tuple(v for v in values[column].split(",") if v))
        for column in FILTERS
        if values.get(column)
    )
    view = View(
        exp=values.get("exp") or None,
        spec=spec,
        filters=filters,
        epochs=_epochs(values.get("epochs"), notes),
        checkpoint=values.get("checkpoint") or None,
        run=values.get("run") or None,
    )
    return view, notes


def _spec(values: Mapping[str, str], notes: list[str]) -> MapSpec:
    method = values.get("map") or "tsne"
    if method not in MAIN_PARAMS:
        notes.append(f"unknown map method {method!r}; showing t-SNE (choose tsne, umap or pca)")
        method = "tsne"
    name = MAIN_PARAMS[method]
    raw = values.get(PARAM_NAMES.get(name, ""), None) if name else None
    param = _number(raw, PARAM_NAMES.get(name, ""), notes)
    seed = _number(values.get("map_seed"), "map_seed", notes)
    try:
        return MapSpec.make(method, param, 0 if seed is None else seed)
    except ConfigError as err:
        notes.append(f"{err}; using the defaults of {method}")
        return MapSpec(method)


def _number(text: str | None, name: str, notes: list[str]) -> int | float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        notes.append(f"{name}={text!r} is not a number; using the default")
        return None
    return int(value) if value.is_integer() else value


def _epochs(text: str | None, notes: list[str]) -> tuple[int, int] | None:
    if not text:
        return None
    parts = text.split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or hi is None or lo < 0 or hi < lo:
        notes.append(f"epochs={text!r} is not a range like 0-10; showing every epoch")
        return None
    return lo, hi


def view_query(view: View) -> str:
    """The query string (with its "?") of ``view``; defaults are left out."""
    params: dict[str, str] = {}
    if view.exp:
        params["exp"] = view.exp
    spec = view.spec
    if spec != MapSpec() or spec.method != "tsne":
        params["map"] = spec.method
    for name, value in spec.params.items():
        params[PARAM_NAMES[name]] = f"{value:g}"
    if spec.random_state:
        params["map_seed"] = str(spec.random_state)
    for column, chosen in view.filters:
        if chosen:
            params[column] = ",".join(chosen)
    if view.epochs is not None:
        params["epochs"] = f"{view.epochs[0]}-{view.epochs[1]}"
    if view.checkpoint:
        params["checkpoint"] = view.checkpoint
    elif view.run:
        params["run"] = view.run
    return "?" + urlencode(params, safe=",/") if params else ""
