"""The experiment store: runs, checkpoints, probe suites and cached function vectors.

The files are the source of truth and there is no shared index: listing an experiment
scans its directories and reads only the small headers of files it has not seen
before, so several writers never contend for anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fspace import _atomic
from fspace.errors import (
    CheckpointError,
    ConfigError,
    EmptyExperimentError,
    NotAnExperimentError,
    ProbeMismatchError,
    RunError,
    StoreWriteError,
)
from fspace.probes import ProbeSuite
from fspace.store import checkpoints as checkpoint_files
from fspace.store import files, layout, lease, reading
from fspace.store import runs as run_files
from fspace.store import suites as suite_files
from fspace.store import trials as trial_files
from fspace.store import vectors as vector_files
from fspace.store.cache import Cache
from fspace.store.checkpoints import CheckpointInfo
from fspace.store.lease import Lease
from fspace.store.runs import RunInfo


@dataclass(frozen=True)
class Problem:
    """A file that could not be read while scanning; the rest of the scan goes on."""

    path: Path
    message: str


class Experiment:
    """An experiment directory. Open an existing one with ``Experiment(path)``.

    Example::

        exp = Experiment("checkpoints/mnist")
        for ckpt in exp.checkpoints():
            print(ckpt.key, ckpt.metrics)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"an experiment path must be a str or Path, got {path!r}")
        self.path = Path(path)
        if not (self.path / layout.MARKER).is_file():
            raise NotAnExperimentError(layout.not_an_experiment(self.path))
        self._header_cache: dict[Path, tuple[tuple[int, int], Any]] = {}
        self.problems: list[Problem] = []

    @classmethod
    def create(cls, path: str | os.PathLike, *, exist_ok: bool = True) -> Experiment:
        """Create an experiment directory (or open it if it exists and ``exist_ok``)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise NotAnExperimentError(f"{path} is a file, not an experiment directory")
        marker = path / layout.MARKER
        if not marker.exists():
            body = {"format": "fspace-experiment", "version": files.FORMAT_VERSION}
            body["created"] = time.time()
            # Another process may create it first: same content, nothing to do.
            with contextlib.suppress(FileExistsError):
                _atomic.write_text(marker, json.dumps(body, indent=2), exclusive=True)
        elif not exist_ok:
            raise ConfigError(f"experiment {path} already exists")
        return cls(path)

    def __repr__(self) -> str:
        return f"Experiment({str(self.path)!r})"

    @property
    def cache(self) -> Cache:
        """The experiment's checksummed caches of maps, distance matrices and the like
        (see :mod:`fspace.store.cache`)."""
        return Cache(self.path)

    # trials --------------------------------------------------------------------------

    def save_trial(self, name: str, record: dict[str, Any]) -> Path:
        """Keep the record of one hyper-parameter trial (plain JSON values), so a choice
        made from trials can be audited and an interrupted search resumed."""
        return trial_files.save(self.path, name, record)

    def trials(self) -> dict[str, dict[str, Any]]:
        """Every kept trial record by name (see :meth:`save_trial`); unreadable ones are
        left out and listed in :attr:`problems`."""
        out = {}
        for path in trial_files.paths(self.path):
            try:
                out[path.stem] = trial_files.read(path)
            except (CheckpointError, ValueError) as e:
                self._problem(path, f"not a trial record ({e})")
        return out

    # runs ----------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        """Ids of the runs' directories; a directory whose name is not a valid run id
        (``sgd-s0 (copy)``) is skipped and listed in ``problems``."""
        runs = self.path / "runs"
        try:
            entries = [e for e in os.scandir(runs) if e.name[0] != "." and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for entry in entries:
            try:
                out.append(layout.check_name(entry.name, "run directory"))
            except ConfigError as e:
                self._problem(Path(entry.path), f"{entry.path}: skipped, {e}")
        return sorted(out)

    def runs(self) -> list[RunInfo]:
        """All runs whose run.json is readable; unreadable ones are listed in ``problems``."""
        out = []
        for run_id in self.run_ids():
            if not (layout.run_dir(self.path, run_id) / "run.json").exists():
                continue  # a run being created this instant: its run.json comes next
            try:
                out.append(self.run(run_id))
            except RunError as e:
                self._problem(layout.run_dir(self.path, run_id) / "run.json", str(e))
        return out

    def run(self, run_id: str) -> RunInfo:
        """The run named ``run_id``; RunError if there is none or it is malformed."""
        try:
            layout.check_name(run_id, "run id")
        except ConfigError as e:
            raise RunError(str(e)) from None
        path = layout.run_dir(self.path, run_id) / "run.json"
        if not path.exists() and not path.is_symlink():
            known = ", ".join(self.run_ids()[:10]) or "none"
            raise RunError(f"no run {run_id!r} in {self.path} (runs: {known})")
        try:
            raw = files.read_small(path, run_files.MAX_BYTES)
        except CheckpointError as e:
            raise RunError(str(e)) from None
        return run_files.parse(path, run_id, raw)

    def create_run(self, info: RunInfo) -> RunInfo:
        """Claim ``info.id`` for a new run, or reopen it if it was recorded with the same
        group and seed. Two processes can never both create the same run."""
        layout.check_name(info.id, "run id")
        layout.check_name(info.group, "group")
        text = run_files.dumps(info)
        path = layout.writable(self.path, layout.run_dir(self.path, info.id) / "run.json")
        try:
            _atomic.write_text(path, text, exclusive=True)
            return info
        except FileExistsError:
            existing = self.run(info.id)
        except OSError as e:
            raise StoreWriteError(f"cannot write {path} ({e.strerror})") from None
        if (existing.group, existing.seed) != (info.group, info.seed):
            raise RunError(
                f"run {info.id!r} already exists in {self.path} with group "
                f"{existing.group!r} and seed {existing.seed}; pick another run id to record "
                f"group {info.group!r}, seed {info.seed}"
            )
        return existing

    def writer(self, run_id: str, *, ttl: float = lease.TTL) -> Lease:
        """Take the lease to write run ``run_id`` (see :mod:`fspace.store.lease`);
        RunBusyError if another live process holds it. Release it when done."""
        return Lease(self.path, run_id, ttl=ttl).acquire()

    def discard_empty_run(self, run_id: str, holder: Lease) -> bool:
        """Remove run ``run_id`` if nothing but its description was written (a recording
        that stopped before its first checkpoint), so that no other command meets an
        empty run. The caller holds ``holder``, the run's lease, which is released.
        Returns whether the run was removed."""
        directory = layout.run_dir(self.path, layout.check_name(run_id, "run id"))
        holder.check()
        kept = ("run.json", lease.FILE)
        if any(p.name not in kept for p in directory.rglob("*") if not p.is_dir()):
            return False
        (directory / "run.json").unlink(missing_ok=True)
        holder.release()
        for sub in sorted((p for p in directory.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            directory.rmdir()
        return True

    def signature(self) -> tuple:
        """Changes whenever a run or a checkpoint is added, renamed or removed (a
        directory listing and two ``stat`` calls per run)."""
        runs = self.path / "runs"
        try:
            names = sorted(e.name for e in os.scandir(runs) if e.name[0] != ".")
        except (FileNotFoundError, NotADirectoryError):
            return ()
        # A new file is renamed into place, which touches its directory.
        return tuple((n, _mtime(runs / n), _mtime(runs / n / "checkpoints")) for n in names)

    # checkpoints ---------------------------------------------------------------------

    def checkpoints(self, run: str | None = None) -> list[CheckpointInfo]:
        """Checkpoints in (run, epoch, step) order, read from their headers only.

        A file that cannot be read is skipped with a warning and listed in
        ``self.problems``; the others are returned.
        """
        self.problems = []
        runs = [run] if run is not None else self.run_ids()
        out: list[CheckpointInfo] = []
        for run_id in runs:
            directory = layout.run_dir(self.path, run_id) / "checkpoints"
            if run is not None:
                self.run(run)  # unknown run -> RunError
            if not directory.is_dir():
                continue
            for entry in sorted(os.scandir(directory), key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.name.endswith(".safetensors"):
                    continue
                info = self._checkpoint_info(run_id, Path(entry.path), entry)
                if info is not None:
                    out.append(info)
        for p in self.problems:
            warnings.warn(f"skipping unreadable file: {p.message}", stacklevel=2)
        return out

    def _checkpoint_info(
        self, run_id: str, path: Path, entry: os.DirEntry
    ) -> CheckpointInfo | None:
        try:
            st = entry.stat()
        except OSError as e:  # e.g. a dangling symbolic link
            self._problem(path, f"{path}: cannot be read ({e.strerror})")
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._header_cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            info = checkpoint_files.read_info(run_id, path)
        except CheckpointError as e:
            self._problem(path, str(e))
            return None
        self._header_cache[path] = (stamp, info)
        return info

    def _problem(self, path: Path, message: str) -> None:
        if all(p.message != message for p in self.problems):
            self.problems.append(Problem(path, message))

    def load_weights(self, ckpt: CheckpointInfo, *, verify: bool = True) -> dict[str, torch.Tensor]:
        """The checkpoint's state dict (CPU tensors), checked against its checksum."""
        tensors, _ = reading.read(ckpt.path, verify=verify)
        return tensors

    def write_checkpoint(
        self,
        run: str,
        weights: dict[str, torch.Tensor],
        meta: dict[str, Any],
        *,
        lease: Lease | None = None,
    ) -> CheckpointInfo:
        """Write the checkpoint ``meta["epoch"]``, ``meta["step"]`` of ``run`` atomically,
        never replacing one; with ``lease``, only while it is still held.

        Raises RunError if the checkpoint exists already (another writer made it: this
        one was not saved), RunBusyError if the lease was lost, StoreWriteError if the
        disk refuses it and ConfigError for metadata JSON cannot hold.
        """
        if lease is not None:
            lease.check()
        path = checkpoint_files.write(self.path, run, weights, meta)
        return CheckpointInfo(
            run=run,
            epoch=meta["epoch"],
            step=meta["step"],
            metrics=dict(meta.get("metrics") or {}),
            path=path,
            created=float(meta.get("created", 0.0)),
        )

    def require_checkpoints(self) -> list[CheckpointInfo]:
        """Like :meth:`checkpoints` but raise EmptyExperimentError when there are none."""
        ckpts = self.checkpoints()
        if not ckpts:
            raise EmptyExperimentError(
                f"experiment {self.path} holds no checkpoints yet "
                f"({len(self.run_ids())} runs); record some with fspace.Recorder"
            )
        return ckpts

    # probe suites --------------------------------------------------------------------

    def add_probes(self, suite: ProbeSuite) -> ProbeSuite:
        """Store a probe suite under its name. Re-adding identical inputs is a no-op;
        different inputs under an existing name are refused."""
        if suite_files.write(self.path, suite):
            return suite
        existing = self.probes(suite.name)
        if existing.fingerprint != suite.fingerprint:
            raise ProbeMismatchError(
                f"probe suite {suite.name!r} in {self.path} has fingerprint "
                f"{existing.fingerprint}, the given inputs have {suite.fingerprint}; "
                f"store them under another name"
            )
        return suite

    def probe_suites(self) -> dict[str, str]:
        """Names of stored probe suites mapped to their fingerprints; a file that is not
        a readable probe suite is skipped with a warning and listed in ``problems``."""
        directory = self.path / "probes"
        if not directory.is_dir():
            return {}
        out = {}
        for p in sorted(directory.glob("*.safetensors")):
            if p.name.startswith("."):
                continue
            try:
                out[p.stem] = suite_files.fingerprint(p)
            except CheckpointError as e:
                self._problem(p, str(e))
                warnings.warn(f"skipping unreadable file: {e}", stacklevel=2)
        return out

    def probe_shapes(self, name: str | None = None) -> dict[str, tuple[int, ...]]:
        """Shapes of the tensors of probe suite ``name`` (the only one if None), read
        from its file's header without loading them."""
        stem = suite_files.choose(self.path, self.probe_suites(), name)
        return suite_files.shapes(suite_files.path(self.path, stem))

    def probes(self, name: str | None = None) -> ProbeSuite:
        """The probe suite named (or fingerprinted) ``name``; the only one if None."""
        stem = suite_files.choose(self.path, self.probe_suites(), name)
        return suite_files.load(suite_files.path(self.path, stem), stem)

    # function vectors ----------------------------------------------------------------

    def save_vector(
        self,
        ckpt: CheckpointInfo,
        suite: str,
        output: str,
        v: torch.Tensor,
        *,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Cache the function vector of ``ckpt`` on the suite with fingerprint ``suite``
        (in ``v``'s float dtype), with ``meta`` (how it was computed) in its header."""
        try:
            vector_files.save(self.path, ckpt, suite, output, v, meta=meta)
        except OSError as e:
            raise StoreWriteError(f"cannot cache the function vector of {ckpt.key} ({e})") from None

    def vector_outputs(self, suite: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        """``(fingerprint, output)`` of the function vectors cached in any run (of
        ``suite`` only, if given), each with the header metadata of one of them."""
        return vector_files.outputs(self.path, suite)

    def vector_size(self, suite: str, output: str) -> int | None:
        """Length of the function vectors already cached for ``suite`` and ``output``
        in any run (read from one file header), or None if there are none yet."""
        return vector_files.size(self.path, suite, output)

    def load_vector(
        self,
        ckpt: CheckpointInfo,
        suite: str,
        output: str,
        *,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The cached function vector of ``ckpt`` (float32), or None if it was never
        computed; with ``out`` it is written into that float32 tensor instead."""
        return vector_files.load(self.path, ckpt, suite, output, out=out)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0
