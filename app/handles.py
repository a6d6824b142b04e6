"""The experiments a dashboard shows: one :class:`ExperimentHandle` per experiment under
the root (each with its single shared :class:`~fspace.store.Experiment` object), listed
by :class:`Registry` and scanned into a :class:`Scan`."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fspace.errors import NotAnExperimentError, RunError
from fspace.store import CheckpointInfo, Experiment, Problem, RunInfo
from fspace.store.layout import MARKER


@dataclass(frozen=True)
class Scan:
    """One listing of an experiment: what is drawable, and what is wrong or unfinished."""

    signature: tuple
    checkpoints: tuple[CheckpointInfo, ...]
    runs: dict[str, RunInfo] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    waiting: tuple[str, ...] = ()  # runs without a checkpoint yet


class ExperimentHandle:
    """One experiment of the root, with its single shared :class:`Experiment` object.

    :meth:`signature` is the cheap "has anything changed?" check (a directory listing
    and two ``stat`` calls per run); :meth:`scan` lists the checkpoints again only when
    the signature moved, and then reads only the headers of new files.
    """

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.experiment = Experiment(path)
        self.lock = threading.RLock()
        self._runs: dict[str, RunInfo] = {}
        self._scan: Scan | None = None

    def __repr__(self) -> str:
        return f"ExperimentHandle({self.name!r}, {str(self.path)!r})"

    def signature(self) -> tuple:
        """Changes whenever a run or a checkpoint is added, renamed or removed."""
        return self.experiment.signature()

    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one probe input, read from the probe suite's header; None unless the
        experiment has exactly one probe suite."""
        if len(self.experiment.probe_suites()) != 1:
            return None
        shape = self.experiment.probe_shapes().get("inputs")
        return None if shape is None else shape[1:]

    @property
    def last_scan(self) -> Scan | None:
        """The latest scan, without scanning again (None before the first one)."""
        return self._scan

    def scan(self) -> Scan:
        """The checkpoints of runs with a readable description, rescanned if changed."""
        with self.lock:
            signature = self.signature()
            if self._scan is not None and self._scan.signature == signature:
                return self._scan
            exp = self.experiment
            ckpts = exp.checkpoints()
            problems = list(exp.problems)
            for run_id in exp.run_ids():
                if run_id not in self._runs:
                    try:
                        self._runs[run_id] = exp.run(run_id)
                    except RunError as err:
                        problems.append(Problem(exp.path / "runs" / run_id, str(err)))
            drawable = tuple(c for c in ckpts if c.run in self._runs)
            with_ckpts = {c.run for c in ckpts}
            waiting = tuple(r for r in sorted(self._runs) if r not in with_ckpts)
            self._scan = Scan(signature, drawable, dict(self._runs), tuple(problems), waiting)
            return self._scan


class Registry:
    """The experiments under a root folder, which may itself be one experiment."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._handles: dict[Path, ExperimentHandle] = {}
        self._lock = threading.Lock()

    @property
    def single(self) -> bool:
        """Whether the root is itself an experiment."""
        return (self.root / MARKER).is_file()

    def names(self) -> list[str]:
        """Names of the experiments, sorted; a new experiment appears on the next call."""
        if self.single:
            return [self.root.resolve().name]
        if not self.root.is_dir():
            return []
        # A link under the root is not followed: the maps the dashboard caches would be
        # written wherever it points.
        return sorted(
            e.name
            for e in os.scandir(self.root)
            if e.is_dir(follow_symlinks=False)
            and e.name[0] != "."
            and (Path(e.path) / MARKER).is_file()
        )

    def get(self, name: str | None) -> ExperimentHandle:
        """The experiment called ``name``; NotAnExperimentError naming the choices if none."""
        names = self.names()
        if name not in names:
            choices = ", ".join(names[:20]) or "none yet"
            what = "no experiment given" if not name else f"no experiment {name!r}"
            raise NotAnExperimentError(f"{what} under {self.root}; experiments there: {choices}")
        path = self.root if self.single else self.root / name
        with self._lock:
            handle = self._handles.get(path)
            if handle is None:
                handle = self._handles[path] = ExperimentHandle(name, path)
            return handle
