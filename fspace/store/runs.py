"""A run's description, ``runs/RUN/run.json``: what it holds and how it is checked.

A run.json is read as data from a possibly hostile directory: its size is bounded, its
``id`` must be the name of its directory, every field must have its type, and values
JSON cannot hold (infinity, NaN: old files may have them) are read as null. It never
decides what code runs; see :mod:`fspace.factories`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fspace.errors import ConfigError, RunError
from fspace.store import layout

MAX_BYTES = 16 * 1024 * 1024
"""Largest run.json fspace reads."""


@dataclass(frozen=True)
class RunInfo:
    """One training run: its id, group, seed, free-form config and model factory."""

    id: str
    group: str
    seed: int | None
    config: dict[str, Any] = field(default_factory=dict)
    model_factory: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "seed": self.seed,
            "config": self.config,
            "model_factory": self.model_factory,
            "model_kwargs": self.model_kwargs,
            "created": self.created,
        }


def dumps(info: RunInfo) -> str:
    """``info`` as the text of its run.json; ConfigError for values JSON cannot hold."""
    try:
        return json.dumps(info.to_json(), indent=2, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"run {info.id!r}: its description cannot be stored as JSON ({e}); config and "
            f"model_kwargs take finite numbers, strings, lists and dicts"
        ) from None


def parse(path: Path, run_id: str, raw: bytes) -> RunInfo:
    """The run described by the bytes ``raw`` of ``path``, which lies in ``runs/run_id``;
    RunError naming the file for anything malformed."""
    try:
        body = json.loads(raw, parse_constant=lambda _: None)
    except (ValueError, RecursionError) as e:
        raise RunError(f"{path}: run description is not JSON ({e})") from None
    if not isinstance(body, dict):
        raise RunError(f"{path}: run description is not a JSON object")
    if body.get("id") != run_id:
        raise RunError(
            f"{path}: names run {body.get('id')!r}, but lies in directory {run_id!r}; "
            f"a run's id must be its directory's name"
        )
    try:
        group = layout.check_name(body.get("group"), "group")
    except ConfigError as e:
        raise RunError(f"{path}: {e}") from None
    seed, factory, created = body.get("seed"), body.get("model_factory"), body.get("created") or 0
    _require(path, "seed", seed is None or (isinstance(seed, int) and not isinstance(seed, bool)))
    _require(path, "model_factory", factory is None or isinstance(factory, str))
    _require(path, "created", isinstance(created, (int, float)) and not isinstance(created, bool))
    config, kwargs = body.get("config") or {}, body.get("model_kwargs") or {}
    _require(path, "config", isinstance(config, dict))
    _require(path, "model_kwargs", isinstance(kwargs, dict))
    return RunInfo(
        id=run_id,
        group=group,
        seed=seed,
        config=config,
        model_factory=factory,
        model_kwargs=kwargs,
        created=float(created) if math.isfinite(created) else 0.0,
    )


def _require(path: Path, name: str, ok: bool) -> None:
    if not ok:
        raise RunError(f"{path}: run description field {name!r} has the wrong type")
