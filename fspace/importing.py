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

The files are found and read by :mod:`fspace.checkpoint_formats`; checkpoints are written
through :class:`~fspace.Recorder`, atomically like recorded ones; importing again skips
every ``(epoch, step)`` the run already holds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fspace.checkpoint_formats import (  # noqa: F401 - the readers' public names, here too
    STATE_DICT_KEYS,
    SUFFIXES,
    TORCH_SUFFIXES,
    TRAINER_DIR,
    Found,
    Loaded,
    find_checkpoints,
    load_checkpoint,
    load_torch,
)
from fspace.errors import ConfigError

# A number and the word right before it: "epoch=3", "step_120", "e000003", "s12".
_NUMBER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]+)?[=_\-]?(\d+)(?![0-9])")
_EPOCH_WORDS = {"epoch", "epochs", "ep", "e"}
_STEP_WORDS = {"step", "steps", "s", "iter", "iters", "iteration", "it", "checkpoint"}


@dataclass
class ImportResult:
    """What an import did: ``(epoch, step)`` pairs written and skipped, files left out."""

    experiment: Path
    run: str
    imported: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[tuple[int, int]] = field(default_factory=list)
    left_out: list[Path] = field(default_factory=list)


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
    folder = TRAINER_DIR.fullmatch(found.name) if found.format == "trainer" else None
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
