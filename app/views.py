"""The URL of a view: what a shared link must hold to show the same thing again.

::

    /trajectories?exp=NAME&method=tsne&perplexity=50&random_state=1
                 &group=pretrained&depth=1,2&epochs=0-10&checkpoint=RUN/e000003-s0000003000

``method`` is the embedding method, followed by those of its parameters the dashboard
offers, each under its own name (``perplexity``, ``n_neighbors``, ...: whatever the
method registry declares), ``random_state`` (the map's seed), ``distance`` (any
registered distance; default euclidean) and ``output`` (the recorded vector form
mapped, e.g. ``logits``; default: the one recorded while training); ``group``,
``seed`` and each run setting of the experiment (its config keys: ``depth``,
``pretraining``, ``optimizer``, ...) filter the runs by that value (comma-separated
values; a config key that is also one of these words is written ``config.KEY``);
``epochs`` is the epoch window; ``checkpoint`` (or ``run``, meaning its last
checkpoint) opens the details. Parameters left at their defaults are left out of the
URL. The words of older links are still read: ``map`` (the method, in which case
``method`` is the pre-training filter), ``map_seed`` and ``neighbors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fspace.app.frames import FILTERS
from fspace.app.specs import (
    DEFAULT_METHOD,
    MapSpec,
    method_entries,
    method_entry,
    number_text,
    shown_params,
)
from fspace.errors import ConfigError

VIEW_KEYS = ("exp", "method", "random_state", "distance", "output", "epochs", "checkpoint", "run")
OLD_KEYS = {"map": "method", "map_seed": "random_state", "neighbors": "n_neighbors"}
"""Words of older links -> today's."""
FILTER_KEYS = {column: ("pretraining" if column == "method" else column) for column in FILTERS}
"""URL word of each filter column: the pre-training scheme is ``pretraining`` (the run
column of older experiments is called ``method``, the embedding method's word)."""


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


def filter_word(column: str) -> str:
    """The URL word of filter ``column``: its name (``pretraining`` for the pre-training
    scheme), or ``config.NAME`` where the name is a word of the view itself."""
    if column in FILTER_KEYS:
        return FILTER_KEYS[column]
    return f"config.{column}" if column in known_keys() else column


def known_keys() -> set[str]:
    """Every word a trajectories URL may hold (today's and older links')."""
    params = {p.name for entry in method_entries() for p in shown_params(entry.name)}
    return {*VIEW_KEYS, *OLD_KEYS, *FILTER_KEYS.values(), *params}


def parse_view(
    query: Mapping[str, str | list[str]], columns: Iterable[str] = FILTERS
) -> tuple[View, list[str]]:
    """The view a URL's query parameters describe, and messages about the ones that
    could not be used (each is then left at its default). ``columns`` are the columns
    the experiment's runs can be filtered by (its run settings)."""
    notes: list[str] = []
    values = _today(query)
    words = {filter_word(c): c for c in (*FILTERS, *sorted(set(columns) - set(FILTERS)))}
    for key in sorted(set(values) - known_keys() - set(words)):
        notes.append(f"unknown URL parameter {key!r} ignored")
    spec = _spec(values, notes)
    filters = tuple(
        (column, tuple(v for v in values[word].split(",") if v))
        for word, column in words.items()
        if values.get(word)
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


def _today(query: Mapping[str, str | list[str]]) -> dict[str, str]:
    """The query's last value of each key, older words replaced by today's."""
    values = {k: (v[-1] if isinstance(v, list) else v) for k, v in query.items()}
    scheme = values.pop("method", None)
    if "map" not in values and scheme is not None and not _is_old_filter(scheme):
        values["method"] = scheme
    elif scheme is not None and "pretraining" not in values:
        values["pretraining"] = scheme  # an older link: method= was the pre-training filter
    for old, new in OLD_KEYS.items():
        if old in values:
            value = values.pop(old)
            values.setdefault(new, value)
    return values


def _is_old_filter(text: str) -> bool:
    """Whether ``method=text`` in a link without ``map=`` is the older pre-training
    filter (its runs have a ``method`` column) rather than an embedding method."""
    try:
        method_entry(text)
    except ConfigError:
        return "method" in FILTERS
    return False


def _spec(values: Mapping[str, str], notes: list[str]) -> MapSpec:
    method = values.get("method") or DEFAULT_METHOD
    try:
        label = method_entry(method).label
    except ConfigError as err:
        notes.append(f"{err}; showing {method_entry(DEFAULT_METHOD).label}")
        method, label = DEFAULT_METHOD, method_entry(DEFAULT_METHOD).label
    offered = {p.name for p in shown_params(method)}
    for entry in method_entries():
        for name in sorted({p.name for p in shown_params(entry.name)} - offered):
            if values.get(name) and entry.name != method:
                notes.append(f"{name} is a parameter of {entry.label}, not {label}; ignored")
    params = {name: values[name] for name in offered if values.get(name)}
    seed, distance = values.get("random_state"), values.get("distance")
    output = values.get("output")
    try:
        return MapSpec.make(method, None, seed, params=params, distance=distance, output=output)
    except ConfigError as err:
        notes.append(f"{err}; using the defaults of {label}")
        return MapSpec(method)


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
    if spec != MapSpec():
        params["method"] = spec.method
    for name, value in spec.values:
        params[name] = number_text(value)
    if spec.random_state:
        params["random_state"] = str(spec.random_state)
    if spec.distance != MapSpec().distance:
        params["distance"] = spec.distance
    if spec.output:
        params["output"] = spec.output
    for column, chosen in view.filters:
        if chosen:
            params[filter_word(column)] = ",".join(chosen)
    if view.epochs is not None:
        params["epochs"] = f"{view.epochs[0]}-{view.epochs[1]}"
    if view.checkpoint:
        params["checkpoint"] = view.checkpoint
    elif view.run:
        params["run"] = view.run
    return "?" + urlencode(params, safe=",/") if params else ""
