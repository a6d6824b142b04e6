"""Trial records, ``trials/NAME.json``: one hyper-parameter trial each, in plain JSON, so
that a choice made from trials can be audited and an interrupted search resumed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fspace import _atomic
from fspace.errors import ConfigError
from fspace.store import files, layout

MAX_BYTES = 1 << 20
"""Largest trial record fspace reads."""


def save(root: Path, name: str, record: dict[str, Any]) -> Path:
    """Write ``record`` as trial ``name`` of the experiment at ``root``, atomically."""
    layout.check_name(name, "trial name")
    try:
        text = json.dumps(record, indent=2, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"trial {name!r}: its record is not plain JSON ({e})") from None
    path = layout.writable(root, layout.trial_path(root, name))
    return _atomic.write_text(path, text)


def paths(root: Path) -> list[Path]:
    """The trial record files of the experiment at ``root``, in name order."""
    folder = root / "trials"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def read(path: Path) -> Any:
    """The record in ``path``; CheckpointError or ValueError if it cannot be read."""
    return json.loads(files.read_small(path, MAX_BYTES))
