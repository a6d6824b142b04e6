"""The results of any experiment, computed in the background for the results page.

What is computed follows what the recorded data supports
(:func:`fspace.analysis.outcomes.describe`): final metrics and curves by group at once,
then the first layer's receptive fields where the model reads images, the weight change
per layer, and the separation statistics of :mod:`fspace.stats` between groups, which
read every function vector. Each part is published as soon as it is ready; a part that
does not apply or cannot be computed carries a plain note saying why, and the other
parts are shown.
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

    from fspace.analysis.outcomes import Design
    from fspace.app.handles import ExperimentHandle
    from fspace.app.maps import MapStore

log = logging.getLogger("fspace.app")
RECOMPUTE_AFTER_S = 10.0
PANELS = ("summary", "curves", "axis", "separation", "fields", "change")
LATER = ("fields", "change", "separation")
DISTANCE = "euclidean"  # the default of `fspace stats`, so the numbers agree
# Fewer resamples than `fspace stats` (999): the page answers in seconds.
RESAMPLING = {"n_boot": 299, "n_perm": 299, "level": 0.95, "random_state": 0}
# Above this, separation uses each run's last checkpoint only: the statistics over all
# epochs hold an n x n distance matrix (4,000: 64 MB).
MAX_CHECKPOINTS = 4000


@dataclass
class Results:
    """What the results page draws. ``notes[panel]`` says, in plain words, why a panel
    has nothing to show (or that it is still being computed); panels are ``summary``,
    ``curves``, ``axis``, ``separation``, ``fields`` and ``change``."""

    design: Design | None = None
    separation: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    field_runs: list[str] = field(default_factory=list)
    input_shape: tuple[int, ...] | None = None
    notes: dict[str, str] = field(default_factory=dict)


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
        if entry.error is not None and (entry.results is None or entry.results.design is None):
            # Panels waiting for their first results say why none came.
            self._publish(entry, Results(notes=dict.fromkeys(PANELS, entry.error)))

    def _compute(self, entry: ResultsEntry) -> None:
        from fspace.analysis.outcomes import describe
        from fspace.evaluation import points_frame
        from fspace.store import Experiment

        handle = entry.handle
        entry.stage = "reading the experiment"
        scan = handle.scan()
        if not scan.checkpoints:
            raise EmptyExperimentError(
                f"experiment {handle.name!r} has no checkpoints yet: results appear as soon "
                f"as a training run records some"
            )
        # Its own Experiment object: the analyses list runs and reset its problems.
        exp = Experiment(handle.path)
        config = sorted({k for r in scan.runs.values() for k in r.config})
        design = describe(points_frame(exp, scan.checkpoints), config)
        results = Results(design=design, input_shape=handle.input_shape())
        results.notes.update(dict.fromkeys(LATER, "computing…"))
        self._publish(entry, results)
        for panel, stage, part in (
            ("fields", "receptive fields", self._fields),
            ("change", "weight changes", self._changes),
            ("separation", "group separation", self._separation),
        ):
            entry.stage = stage
            results.notes.pop(panel)
            try:
                part(entry, exp, scan, results)
            except FspaceError as err:
                results.notes[panel] = f"{stage} could not be computed: {err}"
            except Exception as err:  # one part failing must not hide the others
                from fspace.app.wiring import internal_error_message

                log.exception("results of %s: %s failed", handle.name, stage)
                results.notes[panel] = internal_error_message(err)
            self._publish(entry, results)

    def _fields(self, entry, exp, scan, results: Results) -> None:
        from fspace.analysis.weights import NoImageLayerError, image_layer

        ckpt = scan.checkpoints[0]
        shapes = {k: tuple(v.shape) for k, v in exp.load_weights(ckpt).items()}
        try:
            image_layer(shapes, results.input_shape)
        except NoImageLayerError as err:
            results.notes["fields"] = f"no receptive fields to draw: {err}"
            return
        results.field_runs = list(results.design.runs["run"])

    def _changes(self, entry, exp, scan, results: Results) -> None:
        from fspace.analysis.weights import weight_changes

        changes = weight_changes(exp, sorted({c.run for c in scan.checkpoints}))
        labels = results.design.runs.set_index("run")["label"]
        moved = scan_epochs(scan) > 1
        if changes.empty or not moved:
            results.notes["change"] = "each run has a single checkpoint: nothing moved yet"
            return
        results.changes = changes.assign(label=changes["run"].map(labels))

    def _separation(self, entry, exp, scan, results: Results) -> None:
        import pandas as pd

        from fspace.analysis.outcomes import separation_by

        by, why = separation_by(results.design)
        if by is None:
            results.notes["separation"] = why
            return
        ckpts = list(scan.checkpoints)
        selections: list[tuple[Any, str]] = [(None, "all epochs"), ("last", "last checkpoints")]
        if len(ckpts) > MAX_CHECKPOINTS:
            # The statistics over all epochs need the full distance matrix.
            ckpts = last_checkpoints(ckpts)
            selections = [("last", "last checkpoints")]
            results.notes["separation_scope"] = (
                f"over all epochs only up to {MAX_CHECKPOINTS:,} checkpoints: "
                f"these runs have {len(scan.checkpoints):,}"
            )

        def progress(done: int, total: int) -> None:
            entry.stage = f"group separation: function vectors {done:,}/{total:,}"

        tables = self._tests(entry, exp, ckpts, results, by, selections, progress)
        if not tables:
            results.notes["separation"] = "the runs share no epochs to compare at"
            return
        results.separation = pd.concat(tables, ignore_index=True)

    def _tests(self, entry, exp, ckpts, results, by, selections, progress) -> list:
        from fspace.distances import pairwise
        from fspace.stats import group_tests

        vectors, _ = checkpoint_vectors(exp, ckpts, progress=progress)
        labels = results.design.runs.set_index("run")["label"]
        points = vectors.points.assign(label=vectors.points["run"].map(labels))
        entry.stage = f"group separation of {len(points):,} checkpoints"
        d = pairwise(vectors, DISTANCE)
        tables = []
        for epoch, name in selections:
            try:
                table = group_tests(d, points, by=by, epoch=epoch, **RESAMPLING)
            except FspaceError as err:
                log.info("results of %s: no separation at %s: %s", entry.handle.name, name, err)
                continue
            tables.append(table.assign(checkpoints_used=name, by=by))
        return tables

    def _publish(self, entry: ResultsEntry, results: Results) -> None:
        # A copy: the job goes on filling in ``results`` while the page reads this one.
        entry.results = Results(**{**vars(results), "notes": dict(results.notes)})
        entry.version += 1

    def close(self) -> None:
        self._jobs.close()


def last_checkpoints(ckpts: list) -> list:
    """Each run's last checkpoint (latest epoch, then step), in run order."""
    last: dict[str, Any] = {}
    for c in ckpts:
        if c.run not in last or (c.epoch, c.step) >= (last[c.run].epoch, last[c.run].step):
            last[c.run] = c
    return [last[r] for r in sorted(last)]


def scan_epochs(scan) -> int:
    """The most checkpoints any run of ``scan`` has."""
    counts: dict[str, int] = {}
    for c in scan.checkpoints:
        counts[c.run] = counts.get(c.run, 0) + 1
    return max(counts.values(), default=0)
