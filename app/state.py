"""What the server keeps between requests: the experiments under its root, one
:class:`~fspace.store.Experiment` object per path, and the caches built from them.

Callbacks reach it with :func:`current`, which reads it from the Flask app, so several
dashboards can live in one process (as in the tests).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fspace.errors import NotAnExperimentError, RunError
from fspace.store import CheckpointInfo, Experiment, Problem, RunInfo
from fspace.store.layout import MARKER

if TYPE_CHECKING:
    from fspace.app.maps import MapStore
    from fspace.app.results import ResultsStore

EXTENSION = "fspace"


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


class ServerState:
    """Everything one dashboard server keeps: experiments, maps, results, exports."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        default_experiment: str | None = None,
        export_dir: str | os.PathLike | None = None,
        poll_ms: int = 1000,
    ) -> None:
        from fspace.app.exports import ExportFolder
        from fspace.app.maps import MapStore
        from fspace.app.results import ResultsStore

        self.registry = Registry(root)
        self.default_experiment = default_experiment
        self.poll_ms = poll_ms
        self.maps: MapStore = MapStore()
        self.results: ResultsStore = ResultsStore(self.maps)
        self.exports = ExportFolder(export_dir)

    def default_name(self) -> str | None:
        """The experiment a page shows when the URL names none."""
        names = self.registry.names()
        if self.default_experiment in names:
            return self.default_experiment
        return names[0] if names else None

    @property
    def export_dir(self) -> Path:
        """This server's export folder, created on first use."""
        return self.exports.path

    def close(self) -> None:
        """Stop the background workers (running jobs finish) and remove the exports."""
        self.maps.close()
        self.results.close()
        self.exports.close()


def current() -> ServerState:
    """The state of the dashboard serving the current request."""
    from flask import current_app

    return current_app.extensions[EXTENSION]
