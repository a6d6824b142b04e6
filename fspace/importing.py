"""Bring existing checkpoints into an experiment without re-training.

Reads, and never unpickles beyond plain tensors:

- PyTorch ``.pt`` / ``.pth`` / ``.bin`` files holding a state dict (or a dict with one
  under ``state_dict``, ``model_state_dict`` or ``model``), loaded with
  ``torch.load(weights_only=True)``;
- Lightning ``.ckpt`` files: their ``state_dict``, ``epoch`` and ``global_step``;
- a Hugging Face Trainer output directory: its ``checkpoint-N/`` folders, with
  ``model.safetensors`` or ``pytorch_model.bin`` (sharded ones too), the step from the
  folder name, the epoch and metrics from ``trainer_state.json``;
- plain ``.safetensors`` files.

Epoch and step come from what the file stores (Lightning, Trainer, an fspace
checkpoint), else from its name (``epoch=3-step=120.ckpt``, ``model_e5.pt``, ``10.pt``),
and a ``pattern`` with named groups ``epoch`` and/or ``step`` overrides both.

Example::

    from fspace.importing import import_checkpoints

    result = import_checkpoints("old_run/", "checkpoints/mnist", run="adam-s0",
                                group="adam", model_factory="mypkg.models:make_model")
    print(result.imported, result.skipped)

Checkpoints are written through :class:`~fspace.Recorder`, atomically like recorded
ones; importing again skips every ``(epoch, step)`` the run already holds.
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
from torch import nn

from fspace.errors import CheckpointError, ConfigError

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SUFFIXES = (*TORCH_SUFFIXES, ".ckpt", ".safetensors")
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_TRAINER_DIR = re.compile(r"checkpoint-(\d+)")
# A number and the word right before it: "epoch=3", "step_120", "e000003", "s12".
_NUMBER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]+)?[=_\-]?(\d+)(?![0-9])")
_EPOCH_WORDS = {"epoch", "epochs", "ep", "e"}
_STEP_WORDS = {"step", "steps", "s", "iter", "iters", "iteration", "it", "checkpoint"}


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


@dataclass
class ImportResult:
    """What an import did: ``(epoch, step)`` pairs written and skipped, files left out."""

    experiment: Path
    run: str
    imported: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[tuple[int, int]] = field(default_factory=list)
    left_out: list[Path] = field(default_factory=list)


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
    folders = [e for e in entries if e.is_dir() and _TRAINER_DIR.fullmatch(e.name)]
    if folders:  # a Trainer output directory: only its checkpoint-N folders count
        folders.sort(key=lambda e: int(_TRAINER_DIR.fullmatch(e.name).group(1)))
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
    if _TRAINER_DIR.fullmatch(folder.name) or (folder / "trainer_state.json").is_file():
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


# epoch and step -----------------------------------------------------------------------


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    """``pattern`` compiled, refused unless it has a named group ``epoch`` or ``step``."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"--pattern {pattern!r} is not a regular expression ({e})") from None
    if not {"epoch", "step"} & set(compiled.groupindex):
        raise ConfigError(
            f"--pattern {pattern!r} has no named group; use (?P<epoch>\\d+) and/or "
            f"(?P<step>\\d+), e.g. 'ep(?P<epoch>\\d+)'"
        )
    return compiled


def name_position(name: str) -> tuple[int | None, int | None]:
    """Epoch and step read from a file name by the default rule.

    Numbers right after ``epoch``/``ep``/``e`` are epochs, after ``step``/``s``/``iter``/
    ``checkpoint`` steps; a name with no such word but exactly one number gives the epoch.
    """
    stem = name
    for suffix in SUFFIXES:
        stem = stem.removesuffix(suffix)
    epoch = step = None
    unlabelled = []
    for word, digits in _NUMBER.findall(stem):
        word = word.lower()
        if word in _EPOCH_WORDS and epoch is None:
            epoch = int(digits)
        elif word in _STEP_WORDS and step is None:
            step = int(digits)
        else:
            unlabelled.append(int(digits))
    if epoch is None and step is None and len(unlabelled) == 1:
        epoch = unlabelled[0]
    return epoch, step


def position(found: Found, loaded: Loaded, pattern: re.Pattern | None) -> tuple[int, int]:
    """The ``(epoch, step)`` of a checkpoint: the pattern's, else stored, else named."""
    match = pattern.search(found.name) if pattern is not None else None
    by_pattern = match.groupdict() if match else {}
    folder = _TRAINER_DIR.fullmatch(found.name) if found.format == "trainer" else None
    by_name = (None, int(folder.group(1))) if folder else name_position(found.name)
    stored = {"epoch": loaded.epoch, "step": loaded.step}
    values = {}
    for i, key in enumerate(("epoch", "step")):
        text = by_pattern.get(key)
        if text and not (text.isascii() and text.isdigit()):
            raise ConfigError(
                f"--pattern matched {key} {text!r} in {found.name!r}, not a whole number; "
                f"write the group as (?P<{key}>\\d+)"
            )
        values[key] = int(text) if text else stored[key] if stored[key] is not None else by_name[i]
    if values["epoch"] is None:
        raise ConfigError(
            f"cannot tell the epoch of {found.path}: name it like 'epoch=3' or 'e3', or pass "
            f"--pattern with a group (?P<epoch>\\d+)"
        )
    return values["epoch"], values["epoch"] if values["step"] is None else values["step"]


# writing ------------------------------------------------------------------------------


class _Weights(nn.Module):
    """Stands for the model whose state dict was read from the file."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._tensors = tensors

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return dict(self._tensors)


def _strip(weights: dict[str, torch.Tensor], prefix: str | None) -> dict[str, torch.Tensor]:
    if not prefix:
        return weights
    return {k.removeprefix(prefix): v for k, v in weights.items()}


def import_checkpoints(
    src: str | os.PathLike,
    experiment: str | os.PathLike,
    *,
    run: str,
    group: str = "default",
    seed: int | None = None,
    model_factory: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    pattern: str | None = None,
    strip_prefix: str | None = None,
    progress: bool = False,
) -> ImportResult:
    """Import every checkpoint in ``src`` into run ``run`` of ``experiment``.

    Checkpoints the run already holds are skipped; with ``pattern``, files whose name it
    does not match are left out. A file that cannot be read safely raises
    CheckpointError naming it; checkpoints imported before it stay.
    """
    from tqdm.auto import tqdm

    from fspace.record import Recorder

    compiled = compile_pattern(pattern)
    found = find_checkpoints(src)
    if not found:
        raise ConfigError(
            f"no checkpoints in {src}: expected {', '.join(SUFFIXES)} files or Trainer "
            f"checkpoint-N folders"
        )
    result = ImportResult(Path(experiment), run)
    if compiled is not None:
        result.left_out = [f.path for f in found if not compiled.search(f.name)]
        found = [f for f in found if compiled.search(f.name)]
    recorder = None  # opened at the first readable checkpoint: no empty run is left behind
    try:
        for item in tqdm(found, desc="import", unit="ckpt", disable=not progress):
            loaded = load_checkpoint(item)
            epoch, step = position(item, loaded, compiled)
            if recorder is None:
                recorder = Recorder(
                    experiment,
                    run=run,
                    group=group,
                    seed=seed,
                    config={"imported_from": str(Path(src).resolve())},
                    model_factory=model_factory,
                    model_kwargs=model_kwargs,
                )
            model = _Weights(_strip(loaded.weights, strip_prefix))
            written = recorder.record(model, epoch=epoch, step=step, metrics=loaded.metrics)
            (result.imported if written else result.skipped).append((epoch, step))
    finally:
        if recorder is not None:
            recorder.close()
    return result
