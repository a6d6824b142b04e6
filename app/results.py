"""The pre-training results of an experiment, computed in the background.

The figures come from :mod:`fspace.experiments.pretraining.analysis` and :mod:`.figures`, the same
builders ``fspace export``'s report uses, so the page and the exported files agree.
Each part is published as soon as it is ready (error figures first, then weight
changes, then the group separation, which reads every function vector), and a part
that cannot be computed says why while the others are shown.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fspace.app.jobs import Job, Jobs
from fspace.app.maps import MapStatus
from fspace.app.vectors import checkpoint_vectors
from fspace.errors import EmptyExperimentError, FspaceError

if TYPE_CHECKING:
    import pandas as pd

    from fspace.app.handles import ExperimentHandle
    from fspace.app.maps import MapStore

log = logging.getLogger("fspace.app")
RECOMPUTE_AFTER_S = 10.0


@dataclass
class Results:
    """What the results page draws; ``messages[part]`` says why a part is missing."""

    final: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    numbers: dict[str, Any] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    default_run: str | None = None
    messages: dict[str, str] = field(default_factory=dict)


class ResultsEntry:
    """The results of one experiment and the job computing them."""

    def __init__(self, handle: ExperimentHandle, uid: int) -> None:
        self.handle = handle
        self.uid = uid
        self.results: Results | None = None
        self.version = 0
        self.signature: tuple | None = None
        self.future: Job | None = None
        self.stage = ""
        self.started = 0.0
        self.finished = 0.0
        self.error: str | None = None

    @property
    def token(self) -> str | None:
        return None if self.results is None else f"{self.uid}.{self.version}"

    @property
    def busy(self) -> bool:
        return self.future is not None and not self.future.done()


class ResultsStore:
    """Results of every experiment opened on the results page."""

    def __init__(self, maps: MapStore) -> None:
        self._maps = maps
        self._jobs = Jobs(1, "fspace-results")
        self._entries: dict[Any, ResultsEntry] = {}
        self._lock = threading.Lock()

    def entry(self, handle: ExperimentHandle) -> ResultsEntry:
        with self._lock:
            if handle.path not in self._entries:
                self._entries[handle.path] = ResultsEntry(handle, len(self._entries) + 1)
            return self._entries[handle.path]

    def find(self, token: str | None) -> ResultsEntry | None:
        """The entry a page's token refers to."""
        uid = str(token).split(".")[0]
        with self._lock:
            return next((e for e in self._entries.values() if str(e.uid) == uid), None)

    def status(self, handle: ExperimentHandle) -> MapStatus:
        """Start (re)computing if the experiment changed, and describe the results."""
        entry = self.entry(handle)
        with self._lock:
            settled = time.monotonic() - entry.finished > RECOMPUTE_AFTER_S
            if not entry.busy and (entry.signature is None or settled):
                signature = handle.signature()
                if signature != entry.signature:
                    entry.signature = signature
                    entry.stage, entry.started = "starting", time.monotonic()
                    entry.future = self._jobs.submit(self._run, entry)
        if entry.busy:
            elapsed = time.monotonic() - entry.started
            return MapStatus(entry.token, f"{entry.stage}… ({elapsed:.0f} s)", True)
        if entry.error is not None:
            return MapStatus(entry.token, entry.error, False, error=True)
        return MapStatus(entry.token, "up to date with the experiment", False)

    def _run(self, entry: ResultsEntry) -> None:
        try:
            self._compute(entry)
            entry.error = None
        except FspaceError as err:
            entry.error = str(err)
        except Exception as err:  # a worker must report, never die silently
            from fspace.app.wiring import internal_error_message

            log.exception("results job for %s failed", entry.handle.name)
            entry.error = internal_error_message(err)
        finally:
            entry.stage, entry.finished = "", time.monotonic()

    def _compute(self, entry: ResultsEntry) -> None:
        from fspace.evaluation import points_frame
        from fspace.experiments.pretraining import analysis
        from fspace.store import Experiment

        handle = entry.handle
        entry.stage = "reading the experiment"
        scan = handle.scan()
        if not scan.checkpoints:
            raise EmptyExperimentError(
                f"experiment {handle.name!r} has no checkpoints yet; results appear as soon "
                f"as a training process records some"
            )
        # Its own Experiment object: the analyses list runs and reset its problems.
        exp = Experiment(handle.path)
        final = analysis.final_errors(points_frame(exp, scan.checkpoints))
        results = Results(final=final, messages={"separation": "computing…"})
        results.runs, results.default_run = fields_runs(final)
        self._publish(entry, results)
        entry.stage = "weight changes"
        try:
            results.changes = analysis.weight_changes(exp)
        except FspaceError as err:
            results.messages["weight_change"] = str(err)
        self._publish(entry, results)
        entry.stage = "group separation"
        numbers, message = self._separation(entry, exp, scan, final, results.changes)
        results.numbers = numbers
        results.messages.pop("separation")
        if message:
            results.messages["separation"] = message
        self._publish(entry, results)

    def _separation(self, entry, exp, scan, final, changes) -> tuple[dict[str, Any], str]:
        from fspace.analysis import separation as measure_separation
        from fspace.experiments.pretraining import analysis

        def progress(done: int, total: int) -> None:
            entry.stage = f"group separation: function vectors {done:,}/{total:,}"

        try:
            vectors, _ = checkpoint_vectors(exp, list(scan.checkpoints), progress=progress)
            entry.stage = f"group separation of {len(vectors):,} checkpoints"
            separation = measure_separation(vectors, self._map_frame(entry.handle, vectors))
        except FspaceError as err:
            return analysis.summary(final, changes), str(err)
        return analysis.summary(final, changes, separation), ""

    def _map_frame(self, handle: ExperimentHandle, vectors) -> pd.DataFrame | None:
        keys = set(vectors.points["checkpoint"])
        for entry in self._maps.ready(handle):
            frame = entry.embedding.frame
            if set(frame["checkpoint"]) == keys:
                return frame
        return None

    def _publish(self, entry: ResultsEntry, results: Results) -> None:
        entry.results = Results(**vars(results))
        entry.version += 1

    def close(self) -> None:
        self._jobs.close()


def fields_runs(final: pd.DataFrame) -> tuple[list[str], str | None]:
    """Runs to offer for the receptive fields, and the one shown first: the deepest,
    highest-seed pretrained run (as in the exported report), else any run."""
    order = final.sort_values(["depth", "seed", "run"])
    pretrained = order[order["group"] == "pretrained"]
    pool = pretrained if len(pretrained) else order
    default = str(pool.iloc[-1]["run"]) if len(pool) else None
    ranked = final.assign(_other=final["group"] != "pretrained")
    ranked = ranked.sort_values(["_other", "group", "depth", "seed", "run"])
    return [str(r) for r in ranked["run"]], default
