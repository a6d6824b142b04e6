"""The whole pipeline in one call: function vectors of an experiment, embedded and cached."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from fspace.evaluation import evaluate
from fspace.store import Experiment

if TYPE_CHECKING:
    from fspace.embedding import Embedding
    from fspace.vectors import FunctionVectors


def cache_key(method: str, params: dict[str, Any], fingerprint: str, output: str, keys) -> str:
    """A short digest naming one embedding of one exact set of checkpoints."""
    body = json.dumps(
        {"method": method, "params": params, "fp": fingerprint, "out": output, "ckpts": list(keys)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def embed_experiment(
    experiment: Experiment | str,
    *,
    method: str = "tsne",
    probes: str | None = None,
    output: str = "prob",
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    model_factory=None,
    cache: bool = True,
    progress: bool = True,
) -> Embedding:
    """Evaluate every checkpoint of ``experiment`` and embed the function vectors.

    The embedding is cached in ``EXPERIMENT/embeddings/`` under a key made of the method,
    its parameters, the probe suite, the output and the exact set of checkpoints, so a
    second call with the same inputs only reads a file.

    Example::

        emb = embed_experiment("checkpoints/demo", method="tsne", random_state=0)
        emb.frame.head()   # run, group, seed, epoch, ..., x, y
    """
    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    vectors = evaluate(
        exp, probes=probes, output=output, model_factory=model_factory, progress=progress
    )
    return embed_vectors(
        exp,
        vectors,
        method=method,
        random_state=random_state,
        params=params,
        cache=cache,
        progress=progress,
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
) -> Embedding:
    """Embed ``vectors`` of ``experiment``, reading or writing its embedding cache."""
    from fspace.embedding import Embedding, embed

    exp = experiment
    params = dict(params or {})
    key = cache_key(
        method,
        {**params, "random_state": random_state},
        vectors.fingerprint,
        vectors.output,
        vectors.points["checkpoint"],
    )
    path = exp.path / "embeddings" / f"{method}-{key}.safetensors"
    if cache and path.exists():
        return Embedding.load(path)
    # openTSNE's progress output is a log of KL values, not a bar: keep it quiet
    result = embed(vectors, method, random_state=random_state, progress=False, **params)
    if cache:
        result.save(path)
    return result
