"""The whole pipeline in one call: function vectors of an experiment, embedded and cached."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace.errors import ConfigError, StoreWriteError
from fspace.evaluation import evaluate
from fspace.store import Experiment
from fspace.store.frames import json_scalar

if TYPE_CHECKING:
    from fspace.embedding import Embedding
    from fspace.vectors import FunctionVectors


def map_key(method: str, params: dict[str, Any], fingerprint: str, output: str, keys) -> dict:
    """The cache key of one embedding of one exact, ordered list of checkpoints (named by
    the count and SHA-256 of their keys, so a key stays small at a million checkpoints)."""
    keys = _strings(keys)
    return {
        "method": method,
        "params": json.loads(json.dumps(params, sort_keys=True, default=str)),
        "fingerprint": fingerprint,
        "output": output,
        "checkpoints": {"count": len(keys), "sha256": checkpoints_digest(keys)},
    }


def checkpoints_digest(keys: Sequence[str]) -> str:
    """SHA-256 of the ordered checkpoint keys (as a JSON list, so no two lists collide)."""
    body = json.dumps(_strings(keys), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _strings(keys) -> list[str]:
    # A Series or array converts to a list at C speed; iterating it would not.
    keys = keys.tolist() if hasattr(keys, "tolist") else list(keys)
    return keys if all(type(k) is str for k in keys) else [str(k) for k in keys]


def cached_map(experiment: Experiment, key: dict[str, Any]) -> Embedding | None:
    """The embedding cached under ``key`` (see :func:`map_key`), or None if there is
    none or it cannot be used (then a warning says why and it is rebuilt)."""
    hit = experiment.cache.get_arrays("map", key)
    if hit is None:
        return None
    arrays, meta = hit
    try:
        return _embedding_from(arrays, meta)
    except (LookupError, TypeError, ValueError, AttributeError, RecursionError) as e:
        warnings.warn(
            f"ignoring cached map of {experiment.path} with bad metadata ({e!r}); "
            f"it will be rebuilt",
            stacklevel=2,
        )
        return None


def cache_map(experiment: Experiment, key: dict[str, Any], embedding: Embedding) -> None:
    """Store ``embedding`` in the experiment's cache under ``key``; a cache that cannot be
    written (a full disk) is warned about, not fatal: the map itself is computed."""
    from fspace.store.frames import frame_arrays

    columns, layout = frame_arrays(embedding.points, prefix="points")
    meta = {**_meta_of(embedding), "points": layout}
    coords = np.asarray(embedding.coords, float)
    try:
        experiment.cache.put("map", key, coords, meta, extra=columns)
    except StoreWriteError as e:
        warnings.warn(f"the map was not cached: {e}", stacklevel=2)


def _meta_of(emb: Embedding) -> dict[str, Any]:
    """Everything of ``emb`` but its coordinates and points, as JSON."""
    return {
        "method": emb.method,
        "params": _as_json(emb.params),
        "fingerprint": emb.fingerprint,
        "output": emb.output,
        "dimension": int(emb.dimension),
        "distance": emb.distance,
        "distance_params": _as_json(emb.distance_params),
        "quality": _as_json(getattr(emb, "quality", None) or {}),
    }


def _as_json(value: Any) -> Any:
    # numpy scalars as Python ones; Infinity and NaN (not JSON) as null
    return json.loads(json.dumps(value, default=json_scalar), parse_constant=_null)


def _embedding_from(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Embedding:
    """The embedding :func:`cache_map` stored as ``arrays`` and ``meta``."""
    from fspace.embedding import Embedding
    from fspace.store.frames import frame_from

    coords = arrays["array"]
    points = frame_from(arrays, meta["points"])
    if coords.shape != (len(points), 2) or not np.isfinite(coords).all():
        raise ValueError(f"coordinates of shape {coords.shape} for {len(points)} points")
    values = {
        "coords": coords,
        "points": points,
        "method": str(meta["method"]),
        "params": dict(meta["params"]),
        "fingerprint": str(meta["fingerprint"]),
        "output": str(meta["output"]),
        "dimension": int(meta["dimension"]),
    }
    names = {f.name for f in dataclasses.fields(Embedding)}
    if "quality" in names:
        values["quality"] = dict(meta.get("quality") or {})
    values["distance"] = str(meta.get("distance", "euclidean"))
    values["distance_params"] = dict(meta.get("distance_params") or {})
    return Embedding(**{k: v for k, v in values.items() if k in names})


def _distances(
    exp: Experiment,
    vectors: FunctionVectors,
    method: str,
    distance: str,
    params: dict,
    cache: bool,
    device: Any = "auto",
) -> np.ndarray | None:
    """The distance matrix a method fitted to distances needs, through the store's cache."""
    from fspace.distances import cached_pairwise, distance_entry
    from fspace.embedding import get_method
    from fspace.embedding.inputs import input_mode

    entry = distance_entry(distance)
    if input_mode(get_method(method), entry) != "distances":
        return None
    return cached_pairwise(exp, vectors, distance, cache=cache, device=device, **params)


def _null(_: str) -> None:
    # Infinity and NaN are not JSON; a cached map stores them as null.
    return None


def embed_experiment(
    experiment: Experiment | str | list[Experiment | str],
    *,
    method: str = "tsne",
    probes: str | None = None,
    output: str | None = None,
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    model_factory=None,
    cache: bool = True,
    progress: bool = True,
    distance: str = "euclidean",
    distance_params: dict[str, Any] | None = None,
    runs: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> Embedding:
    """Evaluate every checkpoint of ``experiment`` and embed the function vectors.

    ``runs`` and ``groups`` leave out every other run (a name that matches nothing is
    an error naming the ones there are).

    The embedding is cached in the experiment's checksummed cache under a key made of
    the method, its parameters, the distance, the probe suite, the output and the exact
    set of checkpoints, so a second call with the same inputs only reads a file. A list
    of experiments on one probe suite makes one map (points get an ``experiment``
    column), cached in the first.

    Example::

        emb = embed_experiment("checkpoints/demo", method="inpca", distance="bhattacharyya")
        emb.frame.head()   # run, group, seed, epoch, ..., x, y
    """
    many = isinstance(experiment, (list, tuple))
    exps = [
        e if isinstance(e, Experiment) else Experiment(e)
        for e in (experiment if many else [experiment])
    ]
    chosen = None if many or runs is None else runs  # one experiment: evaluate only those
    vectors = evaluate(
        exps if many else exps[0],
        probes=probes,
        output=output,
        model_factory=model_factory,
        progress=progress,
        runs=chosen,
        device=(params or {}).get("device"),  # the map's device evaluates too
    )
    vectors = select_runs(vectors, runs=runs, groups=groups)
    return embed_vectors(
        exps[0],
        vectors,
        method=method,
        random_state=random_state,
        params=params,
        cache=cache,
        progress=progress,
        distance=distance,
        distance_params=distance_params,
    )


def embed_vectors(
    experiment: Experiment,
    vectors: FunctionVectors,
    *,
    method: str = "tsne",
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    cache: bool = True,
    progress: bool = True,
    distance: str = "euclidean",
    distance_params: dict[str, Any] | None = None,
) -> Embedding:
    """Embed ``vectors`` of ``experiment``, reading or writing its embedding cache (and
    its cache of distance matrices, for a method fitted to one)."""
    from fspace.embedding import embed

    exp = experiment
    params = dict(params or {})
    distance_params = dict(distance_params or {})
    # where it is computed does not change the map: the device is no part of its key
    keyed = {**{k: v for k, v in params.items() if k != "device"}, "random_state": random_state}
    if distance != "euclidean":
        keyed = {**keyed, "distance": distance, "distance_params": distance_params}
    keys = vectors.points["checkpoint"]
    if "experiment" in vectors.points.columns:
        keys = vectors.points["experiment"].astype(str) + ":" + keys.astype(str)
    key = map_key(method, keyed, vectors.fingerprint, vectors.output, keys)
    if cache:
        cached = cached_map(exp, key)
        if cached is not None:
            return cached
    # openTSNE's progress output is a log of KL values, not a bar: keep it quiet
    result = embed(
        vectors,
        method,
        random_state=random_state,
        progress=False,
        distance=distance,
        distance_params=distance_params,
        precomputed=_distances(
            exp, vectors, method, distance, distance_params, cache, params.get("device", "auto")
        ),
        **params,
    )
    if cache:
        cache_map(exp, key, result)
    return result


def select_runs(
    vectors: FunctionVectors,
    *,
    runs: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> FunctionVectors:
    """The rows of ``vectors`` whose run is in ``runs`` and whose group is in ``groups``
    (``None``: any); ConfigError naming the runs or groups there are if one matches none."""
    points = vectors.points
    keep = np.ones(len(points), dtype=bool)
    for column, names in (("run", runs), ("group", groups)):
        if names is None:
            continue
        there = set(points[column].astype(str))
        unknown = sorted(set(map(str, names)) - there)
        if unknown:
            raise ConfigError(
                f"no {column} {', '.join(map(repr, unknown))} among the checkpoints; "
                f"there are: {', '.join(sorted(there)[:20])}"
            )
        keep &= points[column].astype(str).isin(list(map(str, names))).to_numpy()
    if keep.all():
        return vectors
    if not keep.any():
        raise ConfigError("no checkpoint is in both the chosen runs and the chosen groups")
    return dataclasses.replace(
        vectors, matrix=vectors.matrix[keep], points=points[keep].reset_index(drop=True)
    )
