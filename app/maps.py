"""Maps of experiments, computed in the background and kept in memory.

A map is an experiment embedded with one :class:`~fspace.app.specs.MapSpec` (method,
the parameters the page sets, seed). :class:`MapStore` keeps one :class:`MapEntry` per
experiment and spec: the first request starts a fit on a worker thread (reading the
on-disk embedding cache of :mod:`fspace.pipeline` when it holds this exact map), later
requests only look at the entry, so no callback ever waits for a fit. When the
experiment changes, the new checkpoints are placed into the existing map
(:meth:`Embedding.transform`) instead of re-fitting it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fspace.app.frames import PlotFrame
from fspace.app.jobs import Job, Jobs, QueueFullError
from fspace.app.placement import place_by_neighbours, reference_checkpoints
from fspace.app.raster import prepare as prepare_raster
from fspace.app.specs import MAX_SEED as MAX_SEED
from fspace.app.specs import (
    MapSpec,
    default_output,
    map_label,
    method_entry,
    output_label,
    shown_params,
)
from fspace.app.vectors import checkpoint_vectors
from fspace.errors import ConfigError, EmptyExperimentError, FspaceError

if TYPE_CHECKING:
    from fspace.app.handles import ExperimentHandle, Scan
    from fspace.embedding import Embedding
    from fspace.vectors import FunctionVectors

log = logging.getLogger("fspace.app")
MAX_ENTRIES = 12
# Bounds on the work one client can cause: fits run on WORKERS threads with at most
# MAX_PENDING waiting (more requests wait for the next poll), at most MAX_CACHED_MAPS
# maps are kept on disk per experiment, and a URL may ask for seeds up to MAX_SEED only
# (fspace.app.specs).
WORKERS = 2
MAX_PENDING = 4
MAX_CACHED_MAPS = 8


@dataclass(frozen=True)
class MapStatus:
    """What the page shows about a map: a token that changes with every new version
    (None while there is nothing to draw), a status line, and whether work is running."""

    token: str | None
    message: str
    busy: bool
    error: bool = False


class MapEntry:
    """One map of one experiment, and the job computing it."""

    def __init__(self, handle: ExperimentHandle, spec: MapSpec, uid: int) -> None:
        self.handle = handle
        self.spec = spec
        self.uid = uid
        self.embedding: Embedding | None = None
        self.plot: PlotFrame | None = None
        self.vectors: FunctionVectors | None = None  # of the embedding's rows, if loaded
        self.version = 0
        self.signature: tuple | None = None
        self.failed: set[str] = set()  # checkpoints whose vectors are not finite
        self.note = ""
        self.error: str | None = None
        self.error_signature: tuple | None = None
        self.future: Job | None = None
        self.queued = False  # a job was asked for while the queue was full
        self.stage = ""
        self.started = 0.0
        self.lock = threading.Lock()

    @property
    def token(self) -> str | None:
        return None if self.plot is None else f"{self.uid}.{self.version}"

    @property
    def busy(self) -> bool:
        return self.future is not None and not self.future.done()


class MapStore:
    """Every map the server has computed, with a small pool of worker threads."""

    def __init__(self, workers: int = WORKERS, max_pending: int = MAX_PENDING) -> None:
        self._jobs = Jobs(workers, "fspace-map", max_pending=max_pending)
        self._entries: OrderedDict[tuple, MapEntry] = OrderedDict()
        self._by_uid: dict[int, MapEntry] = {}
        self._lock = threading.Lock()
        self._next = 1

    def entry(self, handle: ExperimentHandle, spec: MapSpec) -> MapEntry:
        """The entry of ``spec`` for ``handle``, created empty if new."""
        key = (handle.path, spec)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = MapEntry(handle, spec, self._next)
                self._by_uid[self._next] = entry
                self._next += 1
                self._evict()
            self._entries.move_to_end(key)
            return entry

    def _evict(self) -> None:
        # A busy entry stays, so that a request for its map finds its running job.
        idle = [k for k, e in self._entries.items() if not e.busy]
        for key in idle[: max(0, len(self._entries) - MAX_ENTRIES)]:
            old = self._entries.pop(key)
            self._by_uid.pop(old.uid, None)

    def find(self, token: str | None) -> MapEntry | None:
        """The entry a page's token refers to (its current version), if still kept."""
        try:
            uid = int(str(token).split(".")[0])
        except ValueError:
            return None
        return self._by_uid.get(uid)

    def ready(self, handle: ExperimentHandle) -> list[MapEntry]:
        """Entries of ``handle`` that have a map."""
        with self._lock:
            return [e for e in self._entries.values() if e.handle is handle and e.plot]

    def status(self, handle: ExperimentHandle, spec: MapSpec, *, refit: bool = False) -> MapStatus:
        """Start whatever work the map needs (never waits for it) and describe it."""
        entry = self.entry(handle, spec)
        with entry.lock:
            if not entry.busy:
                signature = handle.signature()
                if refit:
                    self._submit(entry, self._fit, True)
                elif entry.plot is None:
                    if entry.error is None or entry.error_signature != signature:
                        self._submit(entry, self._fit, False)
                elif entry.signature != signature and entry.error_signature != signature:
                    self._submit(entry, self._update)
        return describe(entry)

    def _submit(self, entry: MapEntry, job, *args) -> None:
        key = (entry.handle.path, entry.spec)
        try:
            entry.future = self._jobs.submit(self._run, entry, job, *args, key=key)
        except QueueFullError:
            entry.queued = True  # asked again on the next poll
            return
        entry.queued = False
        entry.stage, entry.started = "waiting for a free worker", time.monotonic()

    def _run(self, entry: MapEntry, job, *args) -> None:
        entry.stage, entry.started = "starting", time.monotonic()
        try:
            job(entry, *args)
        except FspaceError as err:
            entry.error = str(err)
            entry.error_signature = entry.handle.signature()
        except Exception as err:  # a worker must report, never die silently
            log.exception("map job for %s failed", entry.handle.name)
            from fspace.app.wiring import internal_error_message

            entry.error = internal_error_message(err)
            entry.error_signature = entry.handle.signature()
        finally:
            entry.stage = ""

    def _fit(self, entry: MapEntry, refit: bool) -> None:
        handle, spec = entry.handle, entry.spec
        entry.stage = "reading the experiment"
        scan = handle.scan()
        if not scan.checkpoints:
            raise EmptyExperimentError(_empty_message(handle.name, scan))
        embedding = None if refit else cached_embedding(handle, scan, spec)
        if embedding is None:
            vectors = self._vectors(entry, list(scan.checkpoints))
            entry.stage = f"fitting {spec.label} on {len(vectors):,} checkpoints"
            embedding = embed(handle, vectors, spec)
            limit_cached_maps(handle, MAX_CACHED_MAPS)
            entry.vectors = vectors
        else:
            entry.vectors = None
        self._publish(entry, embedding, scan, "")

    def _update(self, entry: MapEntry) -> None:
        scan = entry.handle.scan()
        known = set(entry.embedding.points["checkpoint"].to_numpy(dtype=object))
        new = [c for c in scan.checkpoints if c.key not in known and c.key not in entry.failed]
        if not new:
            entry.signature = scan.signature
            return
        if len(new) > len(known):
            # Placing more points than the map was fitted on would distort it: re-fit.
            return self._fit(entry, False)
        entry.stage = f"placing {len(new):,} new checkpoints"
        vectors = self._vectors(entry, new)
        embedding, note = self._place(entry, vectors)
        self._publish(entry, embedding, scan, note)

    def _place(self, entry: MapEntry, new: FunctionVectors) -> tuple[Embedding, str]:
        embedding = entry.embedding
        # A map read from the cache has no fitted state (Embedding.load); place new
        # checkpoints where openTSNE's transform starts them: among their neighbours.
        if embedding._state is not None:
            return embedding.transform(new), ""
        if entry.vectors is None:
            # A bounded set of the map's checkpoints (fspace.app.placement), so that
            # placing into a map of any size reads at most REFERENCE_LIMIT vectors.
            entry.stage = "reading function vectors of the map's checkpoints"
            runs = set(new.points["run"])
            scan = entry.handle.scan()
            ckpts = reference_checkpoints(embedding.points["checkpoint"], scan.checkpoints, runs)
            entry.vectors = self._vectors(entry, ckpts)
        placed = place_by_neighbours(embedding, entry.vectors, new)
        entry.vectors = _concat(entry.vectors, new)
        return placed, (
            f"{len(new):,} new checkpoints were placed next to their nearest neighbours "
            f"(this map was read from the cache); re-fit for an exact map"
        )

    def _vectors(self, entry: MapEntry, ckpts: list) -> FunctionVectors:
        def progress(done: int, total: int) -> None:
            entry.stage = f"function vectors {done:,}/{total:,}"

        exp = entry.handle.experiment
        output = entry.spec.output or default_output(exp)  # several recorded: the first
        vectors, failed = checkpoint_vectors(exp, ckpts, output=output, progress=progress)
        entry.failed.update(failed)
        return vectors

    def _publish(self, entry: MapEntry, embedding: Embedding, scan: Scan, note: str) -> None:
        entry.stage = "preparing the plot"
        plot = PlotFrame.build(embedding.frame)
        prepare_raster(plot)  # a large map's picture and point index, before it is shown
        with entry.lock:
            entry.embedding, entry.plot = embedding, plot
            entry.signature, entry.note = scan.signature, note
            entry.error = entry.error_signature = None
            entry.version += 1

    def adopt(self, handle: ExperimentHandle, spec: MapSpec, embedding: Embedding) -> MapEntry:
        """Show ``embedding`` (computed elsewhere, e.g. by a script) as the map of
        ``spec`` for ``handle``; checkpoints recorded later are placed into it."""
        entry = self.entry(handle, spec)
        self._publish(entry, embedding, handle.scan(), "")
        return entry

    def close(self) -> None:
        self._jobs.close()


def describe(entry: MapEntry) -> MapStatus:
    """The status line of ``entry``."""
    if entry.busy:
        elapsed = time.monotonic() - entry.started
        return MapStatus(entry.token, f"{entry.stage or 'working'}… ({elapsed:.0f} s)", True)
    if entry.error is not None:
        return MapStatus(entry.token, entry.error, False, error=True)
    if entry.plot is None:
        if entry.queued:
            return MapStatus(None, "waiting: the server is computing other maps", True)
        return MapStatus(None, "waiting to start", True)
    runs = len(entry.plot.runs)
    text = f"{used_label(entry)}: {len(entry.plot):,} checkpoints of {runs:,} runs"
    quality = getattr(entry.embedding, "quality", None)
    if quality:  # how faithful the map is, beside it
        from fspace.embedding.quality import summary

        text = f"{text}; {summary(quality)}"
    return MapStatus(entry.token, f"{text}. {entry.note}" if entry.note else text, False)


def used_label(entry: MapEntry) -> str:
    """The label of the map with the parameter values its fit actually used (a t-SNE
    perplexity lowered for few checkpoints, say), e.g. "t-SNE (perplexity 9.66)"."""
    spec, embedding = entry.spec, entry.embedding
    if embedding is None:
        return spec.label
    try:
        names = [p.name for p in shown_params(spec.method)]
    except ConfigError:
        return spec.label
    used = {name: embedding.params[name] for name in names if name in embedding.params}
    asked = {**method_entry(spec.method).defaults(), **spec.params}
    label = map_label(spec.method, used, spec.random_state, spec.distance, asked)
    # The vector form, unless it is the usual probabilities: "t-SNE · logits".
    form = getattr(embedding, "output", "prob")
    shown = spec.output or (form if form != "prob" else None)
    return f"{label} · {output_label(shown)}" if shown else label


def _empty_message(name: str, scan: Scan) -> str:
    starting = f"; {len(scan.waiting)} runs are starting" if scan.waiting else ""
    return (
        f"experiment {name!r} has no checkpoints yet{starting}. This page shows them "
        f"as soon as a training process records some."
    )


def cached_embedding(handle: ExperimentHandle, scan: Scan, spec: MapSpec) -> Embedding | None:
    """The map of exactly these checkpoints from the experiment's embedding cache, read
    without loading any function vector; None if it was never computed."""
    from fspace.pipeline import cached_map, map_key

    suites = handle.experiment.probe_suites()
    if len(suites) != 1:
        return None
    fingerprint = next(iter(suites.values()))
    params = {**spec.params, "random_state": spec.random_state}
    if spec.distance != "euclidean":  # keyed as fspace.pipeline.embed_vectors keys it
        params = {**params, "distance": spec.distance, "distance_params": {}}
    keys = [c.key for c in scan.checkpoints]
    output = spec.output or default_output(handle.experiment)
    if output is None:  # no vectors cached yet: nothing was mapped
        return None
    key = map_key(spec.method, params, fingerprint, output, keys)
    return cached_map(handle.experiment, key)  # a hit counts as a use for Cache.prune


def embed(handle: ExperimentHandle, vectors: FunctionVectors, spec: MapSpec) -> Embedding:
    """Fit (or read from the on-disk cache) the map of ``vectors``."""
    from fspace.pipeline import embed_vectors

    return embed_vectors(
        handle.experiment,
        vectors,
        method=spec.method,
        random_state=spec.random_state,
        params=spec.params,
        progress=False,
        distance=spec.distance,
    )


def limit_cached_maps(handle: ExperimentHandle, keep: int = MAX_CACHED_MAPS) -> int:
    """Drop the least recently used cached maps of ``handle`` beyond ``keep``; how many.

    The one place the dashboard bounds its maps on disk (a read of a map counts as a use).
    """
    return handle.experiment.cache.prune("map", keep)


def _concat(a: FunctionVectors, b: FunctionVectors) -> FunctionVectors:
    import numpy as np
    import pandas as pd

    from fspace.vectors import FunctionVectors

    points = pd.concat([a.points, b.points], ignore_index=True)
    matrix = np.concatenate([a.matrix, b.matrix])
    return FunctionVectors(matrix, points, a.fingerprint, a.output, a.kind, a.layout)
