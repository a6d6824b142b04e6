"""The checkpoint files fspace imports, found in a folder and read into memory.

- PyTorch ``.pt`` / ``.pth`` / ``.bin`` state dicts, loaded with
  ``torch.load(weights_only=True)`` (never unpickling anything but plain tensors);
- Lightning ``.ckpt`` files, with the ``epoch`` and ``global_step`` they store;
- Hugging Face Trainer ``checkpoint-N/`` folders (sharded weights too), with the epoch
  and metrics of ``trainer_state.json``;
- plain ``.safetensors`` files (an fspace checkpoint says its epoch, step and metrics).

:func:`fspace.importing.import_checkpoints` writes what these read into an experiment.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fspace.errors import CheckpointError, ConfigError

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SUFFIXES = (*TORCH_SUFFIXES, ".ckpt", ".safetensors")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
TRAINER_DIR = re.compile(r"checkpoint-(\d+)")
"""A Trainer's checkpoint folder name; its number is the step."""


@dataclass(frozen=True)
class Found:
    """One checkpoint in the source: a file, or a Trainer's ``checkpoint-N`` folder."""

    path: Path
    name: str  # what --pattern and the default name rule look at
    format: str  # "torch", "lightning", "safetensors" or "trainer"


@dataclass(frozen=True)
class Loaded:
    """A checkpoint's weights, with the epoch, step and metrics the file itself stores."""

    weights: dict[str, torch.Tensor]
    epoch: int | None = None
    step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


# finding ------------------------------------------------------------------------------


def find_checkpoints(src: str | os.PathLike) -> list[Found]:
    """The checkpoints in ``src`` (a file, a folder of files, or a Trainer output
    directory), in name order. Files with other suffixes are not listed."""
    src = Path(src)
    if src.is_file():
        if src.suffix not in SUFFIXES:
            raise ConfigError(
                f"cannot import {src}: unknown suffix {src.suffix!r}; fspace imports "
                f"{', '.join(SUFFIXES)} files and Trainer checkpoint-N folders"
            )
        return [_found_file(src)]
    if not src.is_dir():
        raise ConfigError(f"cannot import from {src}: no such file or directory")
    if _is_trainer_checkpoint(src):
        return [Found(src, src.name, "trainer")]
    entries = sorted(os.scandir(src), key=lambda e: e.name)
    folders = [e for e in entries if e.is_dir() and TRAINER_DIR.fullmatch(e.name)]
    if folders:  # a Trainer output directory: only its checkpoint-N folders count
        folders.sort(key=lambda e: int(TRAINER_DIR.fullmatch(e.name).group(1)))
        return [Found(Path(e.path), e.name, "trainer") for e in folders]
    return [
        _found_file(Path(e.path))
        for e in entries
        if e.is_file() and not e.name.startswith(".") and e.name.endswith(SUFFIXES)
    ]


def _found_file(path: Path) -> Found:
    kind = {".ckpt": "lightning", ".safetensors": "safetensors"}.get(path.suffix, "torch")
    return Found(path, path.name, kind)


def _is_trainer_checkpoint(folder: Path) -> bool:
    """A ``checkpoint-N`` folder, or one the Trainer (or ``save_pretrained``) wrote."""
    if TRAINER_DIR.fullmatch(folder.name) or (folder / "trainer_state.json").is_file():
        return True
    weights = ("model.safetensors", "pytorch_model.bin")
    weights += tuple(f"{w}.index.json" for w in weights)
    return (folder / "config.json").is_file() and any((folder / w).is_file() for w in weights)


# reading ------------------------------------------------------------------------------


def load_checkpoint(found: Found) -> Loaded:
    """Read one checkpoint's weights (and what it stores about itself) into memory."""
    if found.format == "trainer":
        return _load_trainer(found.path)
    if found.format == "safetensors":
        return _load_safetensors(found.path)
    payload = load_torch(found.path)
    if found.format == "lightning" or _is_lightning(payload):
        return _from_lightning(found.path, payload)
    return Loaded(_state_dict(found.path, payload), *_stored_position(payload))


def load_torch(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only.

    A file whose pickle names anything else (``os.system``, a class of the training
    script) is refused with CheckpointError before any of it runs.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f"it names {found.group(1)}" if found else "it is not a plain tensor pickle"
        if "Weights only load failed" not in str(e):
            what = f"it is not a PyTorch file ({e})"
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects, not only tensors ({what}), "
            f"and loading it could run code; save the weights with "
            f"torch.save(model.state_dict(), ...) or as safetensors"
        ) from None
    except Exception as e:  # zip, storage and EOF errors of a file that is not torch's
        raise CheckpointError(
            f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})"
        ) from None


def _is_lightning(payload: Any) -> bool:
    return isinstance(payload, Mapping) and "state_dict" in payload and "global_step" in payload


def _from_lightning(path: Path, payload: Any) -> Loaded:
    if not _is_lightning(payload):
        raise CheckpointError(
            f"{path}: not a Lightning checkpoint (no 'state_dict' and 'global_step'); "
            f"rename it to .pt if it holds a plain state dict"
        )
    weights = _state_dict(path, payload["state_dict"])
    return Loaded(weights, *_stored_position(payload))


def _stored_position(payload: Any) -> tuple[int | None, int | None]:
    if not isinstance(payload, Mapping):
        return None, None
    epoch = payload.get("epoch")
    step = payload.get("global_step", payload.get("step"))
    return _count(epoch), _count(step)


def _count(value: Any) -> int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return math.floor(value)


def _state_dict(path: Path, payload: Any) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, found at the top or under a usual key."""
    if isinstance(payload, Mapping) and payload and not _all_tensors(payload):
        for key in STATE_DICT_KEYS:
            if isinstance(payload.get(key), Mapping) and _all_tensors(payload[key]):
                payload = payload[key]
                break
    if not isinstance(payload, Mapping) or not payload or not _all_tensors(payload):
        keys = list(payload)[:8] if isinstance(payload, Mapping) else type(payload).__name__
        raise CheckpointError(
            f"{path}: holds no state dict (found {keys}); save one with "
            f"torch.save(model.state_dict(), ...) or under one of the keys "
            f"{', '.join(STATE_DICT_KEYS)}"
        )
    return {str(k): v for k, v in payload.items()}


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mapping.items())


def _load_safetensors(path: Path) -> Loaded:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if not weights:
        raise CheckpointError(f"{path}: holds no tensors")
    # An fspace checkpoint (from another experiment) says where it belongs.
    try:
        own = json.loads(meta.get("fspace", "{}"))
    except ValueError:
        own = {}
    own = own if isinstance(own, dict) else {}
    metrics = own.get("metrics") if isinstance(own.get("metrics"), dict) else {}
    return Loaded(weights, _count(own.get("epoch")), _count(own.get("step")), _numbers(metrics))


def _load_trainer(folder: Path) -> Loaded:
    weights = _trainer_weights(folder)
    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        return Loaded(weights)
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        step = _count(state.get("global_step"))
        history = [h for h in state.get("log_history", []) if h.get("step") == step]
    except (ValueError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{state_file}: malformed trainer state ({e})") from None
    metrics: dict[str, float] = {}
    for entry in history:
        metrics.update(_numbers({k: v for k, v in entry.items() if k not in ("epoch", "step")}))
    return Loaded(weights, _count(state.get("epoch")), step, metrics)


def _trainer_weights(folder: Path) -> dict[str, torch.Tensor]:
    for name, reader in (
        ("model.safetensors", lambda p: _load_safetensors(p).weights),
        ("pytorch_model.bin", lambda p: _state_dict(p, load_torch(p))),
    ):
        if (folder / name).is_file():
            return reader(folder / name)
        index = folder / f"{name}.index.json"
        if index.is_file():
            return _sharded(index, reader)
    raise CheckpointError(
        f"{folder}: a Trainer checkpoint folder without weights (no model.safetensors "
        f"or pytorch_model.bin)"
    )


def _sharded(index: Path, reader) -> dict[str, torch.Tensor]:
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index}: malformed shard index ({e!r})") from None
    weights: dict[str, torch.Tensor] = {}
    for shard in shards:
        path = index.parent / shard
        if Path(shard).name != shard or not path.is_file():
            raise CheckpointError(f"{index}: names a shard {shard!r} that is not beside it")
        weights.update(reader(path))
    return weights


def _numbers(values: Mapping) -> dict[str, float]:
    out = {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[str(k)] = float(v)
    return out
