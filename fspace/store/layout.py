"""Where things live inside an experiment directory, and what names are allowed.

::

    EXP/
      fspace-experiment.json                 marks the directory as an experiment
      probes/NAME.safetensors                probe suites (inputs, optional targets)
      runs/RUN/run.json                      group, seed, config, model factory
      runs/RUN/checkpoints/CKPT.safetensors  weights + epoch, step, metrics, checksum
      runs/RUN/vectors/FP-OUTPUT/CKPT.safetensors   cached function vectors
      cache/KIND/DIGEST.safetensors          checksummed caches (maps, distance matrices)
      trials/NAME.json                       hyper-parameter trials, kept for auditing

Each run is written by one process only, into its own directory (a lease file
``runs/RUN/.writer`` names that process, see :mod:`fspace.store.lease`), so any number
of processes (on any number of machines sharing the filesystem) can record into one
experiment without a lock server.

Containment: every path the store writes is built here from names that passed
:func:`check_name`, and :func:`writable` creates its directories one by one, refusing
any symbolic link below the experiment's directory, so no write can land outside it.
The experiment directory itself may be a link: the user named it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from fspace.errors import ConfigError, StoreWriteError

MARKER = "fspace-experiment.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,127}")


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a safe file name component, else raise ConfigError."""
    # fullmatch, not match with "$": "$" also matches before a trailing newline
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{what} {value!r} is not allowed: use 1-128 letters, digits and . _ = + - "
            f"starting with a letter or digit (no path separators)"
        )
    return value


MAX_EPOCH = 10**9 - 1
MAX_STEP = 10**15 - 1


def checkpoint_name(epoch: int, step: int) -> str:
    """File stem of a checkpoint: sorts by epoch, then step."""
    if not 0 <= epoch <= MAX_EPOCH or not 0 <= step <= MAX_STEP:
        raise ConfigError(
            f"epoch {epoch} / step {step} out of range: epochs go up to {MAX_EPOCH} and "
            f"steps up to {MAX_STEP}"
        )
    return f"e{epoch:06d}-s{step:010d}"


def run_dir(root: Path, run: str) -> Path:
    return root / "runs" / run


def checkpoint_path(root: Path, run: str, name: str) -> Path:
    return run_dir(root, run) / "checkpoints" / f"{name}.safetensors"


def vector_path(root: Path, run: str, fingerprint: str, output: str, name: str) -> Path:
    return run_dir(root, run) / "vectors" / f"{fingerprint}-{output}" / f"{name}.safetensors"


def cache_path(root: Path, kind: str, stem: str) -> Path:
    return root / "cache" / kind / f"{stem}.safetensors"


def trial_path(root: Path, name: str) -> Path:
    return root / "trials" / f"{name}.json"


def writable(root: Path, path: Path) -> Path:
    """``path``, which must lie lexically inside ``root``, after creating its missing
    parent directories; StoreWriteError if a symbolic link or a non-directory stands
    anywhere between ``root`` and it."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise StoreWriteError(f"refusing to write {path}: outside experiment {root}") from None
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise StoreWriteError(f"refusing to write {path}: not a file inside {root}")
    current = root
    for part in parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            try:
                os.mkdir(current)
                continue
            except FileExistsError:  # another process made it meanwhile
                mode = os.lstat(current).st_mode
            except OSError as e:
                raise StoreWriteError(f"cannot create {current} ({e.strerror})") from None
        if stat.S_ISLNK(mode):
            raise StoreWriteError(
                f"refusing to write through {current}: a symbolic link inside an experiment "
                f"could lead outside it; replace it with a real directory"
            )
        if not stat.S_ISDIR(mode):
            raise StoreWriteError(f"cannot write {path}: {current} is not a directory")
    if os.path.islink(path):
        raise StoreWriteError(f"refusing to replace {path}: it is a symbolic link")
    return path


def not_an_experiment(path: Path) -> str:
    """Why ``path`` is no experiment, naming the experiments just inside it, if any."""
    if not path.exists():
        hint = "it does not exist"
    else:
        try:
            inner = sorted(p.name for p in path.iterdir() if (p / MARKER).is_file())
        except OSError:
            inner = []
        if inner:
            shown = ", ".join(str(path / n) for n in inner[:5]) + (
                ", ..." if len(inner) > 5 else ""
            )
            return f"{path} is a folder of experiments, not one: name one of them ({shown})"
        hint = "it holds no experiment"
    return (
        f"{path} is not an fspace experiment ({hint}); record into it with "
        f"fspace.Recorder or create it with Experiment.create()"
    )
