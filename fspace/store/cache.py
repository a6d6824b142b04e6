"""Checksummed caches of derived arrays: embedding maps, distance matrices, ...

``EXP/cache/KIND/DIGEST.safetensors`` holds one array (plus, optionally, further named
arrays: the columns of a table that goes with it) and a JSON document describing them.
DIGEST is a hash of ``(kind, key)``, where ``key`` is a JSON-able dict naming exactly
what the array was computed from; the key itself is stored in the file and compared on
every read, so a hash collision or a file copied under another name is never mistaken
for the entry asked for.

An entry is written atomically and read through a memory map with its checksum
verified (the checksum covers the array, the key and the metadata). A cache is
something fspace can always compute again, so an entry that is damaged, malformed or
does not match its key is reported with a warning and treated as missing: the caller
rebuilds it and the rebuilt entry replaces the damaged file.

Example::

    hit = exp.cache.get("map", {"method": "tsne", "checkpoints": keys})
    if hit is None:
        coords = fit(...)
        exp.cache.put("map", key, coords, {"method": "tsne"})
    else:
        coords, meta = hit
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fspace.errors import CheckpointError, ConfigError, StoreWriteError
from fspace.store import files, layout
from fspace.store.reading import read_mapped

_ENTRY_KIND = "cache"


@dataclass(frozen=True)
class CacheEntry:
    """One cached array as listed by :meth:`Cache.entries` (read from its header only)."""

    kind: str
    path: Path
    key: dict[str, Any]
    meta: dict[str, Any]


def _canonical(value: Any, what: str) -> str:
    """``value`` as sorted, strict JSON (no NaN or infinity), or ConfigError."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigError(f"cache {what} must be plain JSON (finite numbers only): {e}") from None


def digest(kind: str, key: dict[str, Any]) -> str:
    """The file stem of the entry ``(kind, key)``."""
    body = _canonical({"kind": kind, "key": key}, "key")
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class Cache:
    """The caches of one experiment; get one from :attr:`Experiment.cache`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Cache({str(self.root)!r})"

    def _path(self, kind: str, key: dict[str, Any]) -> Path:
        layout.check_name(kind, "cache kind")
        if not isinstance(key, dict):
            raise ConfigError(f"a cache key must be a dict, got {type(key).__name__}")
        return layout.cache_path(self.root, kind, digest(kind, key))

    def get(self, kind: str, key: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The array and metadata cached under ``(kind, key)``, or None if there is none.

        The array is a read-only view of a memory map of the file (its checksum has
        been verified). A damaged or mismatching entry is warned about and None is
        returned, so the caller computes the array again and :meth:`put` replaces it.
        """
        hit = self.get_arrays(kind, key)
        return None if hit is None else (hit[0]["array"], hit[1])

    def get_arrays(
        self, kind: str, key: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """All arrays cached under ``(kind, key)`` by name (the main one is ``"array"``,
        the others are :meth:`put`'s ``extra``) and the metadata, or None as :meth:`get`."""
        path = self._path(kind, key)
        if not path.exists():
            return None
        try:
            tensors, meta = read_mapped(path, limit=files.MAX_CACHE_BYTES)
            hit = _unpack(path, tensors, meta, kind, key)
        except CheckpointError as e:
            warnings.warn(f"ignoring damaged cache entry, it will be rebuilt: {e}", stacklevel=2)
            return None
        with contextlib.suppress(OSError):  # the modification time records the last use
            os.utime(path)
        return hit

    def put(
        self,
        kind: str,
        key: dict[str, Any],
        array: np.ndarray,
        meta: dict[str, Any] | None = None,
        *,
        extra: dict[str, np.ndarray] | None = None,
    ) -> Path:
        """Store ``array`` with ``meta`` under ``(kind, key)`` atomically; return the path.

        ``extra`` names further arrays stored in the same entry (columns of a table, say),
        so that metadata stays small however many rows there are; :meth:`get_arrays`
        returns them."""
        path = self._path(kind, key)
        meta = dict(meta or {})
        _canonical(meta, "metadata")
        extra = dict(extra or {})
        if "array" in extra or not all(isinstance(n, str) and n for n in extra):
            raise ConfigError(f"extra cache arrays need names other than 'array': {list(extra)}")
        tensors = {name: _tensor(value) for name, value in {"array": array, **extra}.items()}
        body = {"kind": _ENTRY_KIND, "cache_kind": kind, "key": key, "meta": meta}
        try:
            return files.write(layout.writable(self.root, path), tensors, body)
        except OSError as e:
            raise StoreWriteError(f"cannot write cache entry {path} ({e.strerror})") from None

    def entries(self, kind: str) -> list[CacheEntry]:
        """Every readable entry of ``kind`` (from headers only); damaged ones are skipped."""
        layout.check_name(kind, "cache kind")
        directory = layout.cache_path(self.root, kind, "x").parent
        if not directory.is_dir():
            return []
        out = []
        for path in sorted(directory.glob("*.safetensors")):
            if path.name.startswith("."):
                continue
            try:
                _, body = files.read_header(path)
            except CheckpointError:
                continue
            if body.get("cache_kind") == kind and isinstance(body.get("key"), dict):
                meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
                out.append(CacheEntry(kind, path, body["key"], meta))
        return out

    def prune(self, kind: str, keep: int) -> int:
        """Remove all but the ``keep`` most recently used entries of ``kind``; return how
        many were removed. Safe while other processes read or prune the same cache."""
        layout.check_name(kind, "cache kind")
        if not isinstance(keep, int) or keep < 0:
            raise ConfigError(f"keep must be an int >= 0, got {keep!r}")
        directory = layout.cache_path(self.root, kind, "x").parent
        try:
            found = [
                (e.stat().st_mtime_ns, e.path)
                for e in os.scandir(directory)
                if e.name.endswith(".safetensors") and not e.name.startswith(".")
            ]
        except FileNotFoundError:
            return 0
        removed = 0
        for _, path in sorted(found, reverse=True)[keep:]:
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                os.unlink(path)
                removed += 1
        return removed


def _unpack(path: Path, tensors: dict, body: dict, kind: str, key: dict) -> tuple:
    if body.get("kind") != _ENTRY_KIND or body.get("cache_kind") != kind:
        raise CheckpointError(f"{path}: not a {kind!r} cache entry")
    if _canonical(body.get("key"), "key") != _canonical(key, "key"):
        raise CheckpointError(f"{path}: cached for another key than the one asked for")
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: cache metadata is not an object")
    if "array" not in tensors:
        raise CheckpointError(f"{path}: holds no tensor 'array'")
    arrays = {}
    for name, tensor in tensors.items():
        arrays[name] = tensor.numpy()
        arrays[name].flags.writeable = False
    return arrays, meta


def _tensor(array: np.ndarray):
    """``array`` as a CPU tensor a safetensors file can hold, or ConfigError."""
    import torch

    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch wants writable memory, even to read it
        array = array.copy()
    if array.dtype.kind not in "biuf":
        raise ConfigError(f"cannot cache an array of dtype {array.dtype}")
    try:
        return torch.from_numpy(array)
    except TypeError as e:
        raise ConfigError(f"cannot cache an array of dtype {array.dtype}: {e}") from None
