"""The URL of the compare page: both maps and the selected runs.

::

    /compare?exp=NAME&a=tsne&a.perplexity=50&b=inpca&b.distance=bhattacharyya&runs=R1,R2

``a`` and ``b`` name each map's embedding method; ``a.NAME`` its parameters (those the
method registry offers the dashboard), ``a.random_state``, ``a.distance`` and
``a.output`` (a recorded vector form, e.g. ``logits``); ``runs`` the selected runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fspace.app.specs import DEFAULT_METHOD, MapSpec, number_text, shown_params
from fspace.errors import ConfigError

SIDES = ("a", "b")
DEFAULTS = {"a": ("tsne", "euclidean"), "b": ("inpca", "bhattacharyya")}
"""Each side's method and distance when the URL names none."""


def side_spec(
    query: Mapping[str, Any], side: str, notes: list[str], kind: str | None = None
) -> MapSpec:
    """The map ``side`` of a compare URL asks for (``a=METHOD&a.NAME=VALUE&a.distance=D``);
    a value that cannot be used is noted in ``notes`` and left at its default. ``kind``
    is the experiment's output kind: a default distance that does not apply to it (the
    Bhattacharyya distance of regression outputs) becomes the Euclidean."""
    method, distance = default_map(side, kind)
    method = str(query.get(side) or method)
    prefix = f"{side}."
    params = {k[len(prefix) :]: v for k, v in query.items() if k.startswith(prefix)}
    distance = params.pop("distance", distance)
    seed, output = params.pop("random_state", 0), params.pop("output", None)
    try:
        return MapSpec.make(method, None, seed, params=params, distance=distance, output=output)
    except ConfigError as err:
        notes.append(f"map {side}: {err}; showing its default map")
    try:  # the default distance may not apply to a method plug-in
        method, distance = default_map(side, kind)
        return MapSpec.make(method, distance=distance)
    except ConfigError:
        return MapSpec(DEFAULT_METHOD)


def default_map(side: str, kind: str | None = None) -> tuple[str, str]:
    """The method and distance of ``side`` when the URL names none, for outputs of
    ``kind`` (None: any)."""
    from fspace.distances import DISTANCES

    method, distance = DEFAULTS[side]
    kinds = DISTANCES.get(distance).tags.get("kinds") if distance in DISTANCES else None
    if kind is not None and kinds is not None and kind not in kinds:
        return method, "euclidean"
    return method, distance


def spec_query(side: str, spec: MapSpec) -> dict[str, str]:
    """The URL words of ``spec`` on ``side`` (inverse of :func:`side_spec`)."""
    out = {side: spec.method}
    out.update({f"{side}.{name}": number_text(v) for name, v in spec.values})
    if spec.random_state:
        out[f"{side}.random_state"] = str(spec.random_state)
    out[f"{side}.distance"] = spec.distance
    if spec.output:
        out[f"{side}.output"] = spec.output
    return out


def spec_from(
    method: Any,
    values: Sequence[Any],
    keys: Sequence[dict],
    distance: Any,
    output: str | None = None,
) -> MapSpec:
    """The map the controls of one side ask for (ConfigError for a value it cannot use);
    inputs left over from another method are ignored. ``output`` None is the default
    recorded output (see :func:`~fspace.app.specs.chosen_output`)."""
    offered = {p.name for p in shown_params(str(method))}
    params = {
        key["name"]: value
        for key, value in zip(keys or (), values or (), strict=False)
        if key.get("name") in offered
    }
    return MapSpec.make(method, None, 0, params=params, distance=distance, output=output)


def selected_runs(query: Mapping[str, Any], limit: int) -> list[str]:
    """The runs named by ``runs=R1,R2`` (at most ``limit``)."""
    return [r for r in str(query.get("runs") or "").split(",") if r][:limit]


def unknown_words(query: Mapping[str, Any]) -> list[str]:
    """The words of a compare URL it does not know (each is then ignored)."""
    known = {"exp", "runs", *SIDES}
    return sorted(k for k in query if k not in known and k.partition(".")[0] not in SIDES)
