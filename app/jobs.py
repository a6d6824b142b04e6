"""A bounded queue of background jobs served by a small, fixed pool of daemon threads.

However many requests arrive, at most ``workers`` threads ever run jobs, at most
``max_pending`` jobs wait, and a job submitted under the ``key`` of one that is still
waiting or running is that same job (so two browsers asking for the same map share one
fit). Daemon threads never keep the server from stopping on Ctrl+C (a
ThreadPoolExecutor's threads are joined at exit).

Example::

    jobs = Jobs(2, "fspace-map", max_pending=4)
    job = jobs.submit(fit, spec, key=("fit", spec))   # QueueFullError when full
    job.wait()
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from fspace.errors import FspaceError

log = logging.getLogger("fspace.app")


class QueueFullError(FspaceError):
    """Too many background jobs are waiting; the request should be repeated later."""


class Job:
    """A submitted job; :meth:`done` tells whether it has finished (or was cancelled)."""

    def __init__(self, key: Hashable | None, fn: Callable[..., Any], args: tuple) -> None:
        self.key = key
        self._fn = fn
        self._args = args
        self._done = threading.Event()
        self.started = False
        self.cancelled = False

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (or ``timeout`` passed); whether it finished."""
        return self._done.wait(timeout)


class Jobs:
    """Runs submitted functions on at most ``workers`` daemon threads, in order.

    ``max_pending`` bounds the jobs waiting for a thread (None: unbounded, for callers
    that submit at most one job per experiment).
    """

    def __init__(self, workers: int, name: str, *, max_pending: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a job queue needs at least one worker")
        self.workers = workers
        self.max_pending = max_pending
        self._name = name
        self._queue: deque[Job] = deque()
        self._live: dict[Hashable, Job] = {}  # by key: waiting or running
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._cond = threading.Condition()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, key: Hashable | None = None) -> Job:
        """Queue ``fn(*args)``; exceptions are ``fn``'s to handle (they are only logged).

        Returns the live job of ``key`` if there is one; raises :class:`QueueFullError`
        when ``max_pending`` jobs are already waiting.
        """
        with self._cond:
            if key is not None and key in self._live:
                return self._live[key]
            job = Job(key, fn, args)
            if self._closed:
                job.cancelled = True
                job._done.set()
                return job
            if self.max_pending is not None and len(self._queue) >= self.max_pending:
                raise QueueFullError(
                    f"{len(self._queue)} background jobs are waiting for a free worker; "
                    f"this one starts when one of them has finished"
                )
            self._queue.append(job)
            if key is not None:
                self._live[key] = job
            if self._idle == 0 and len(self._threads) < self.workers:
                self._start_thread()
            self._cond.notify()
            return job

    def cancel(self, job: Job) -> bool:
        """Drop ``job`` if it has not started yet; whether it was dropped."""
        with self._cond:
            if job.started or job.done():
                return False
            try:
                self._queue.remove(job)
            except ValueError:
                return False
            self._forget(job)
            job.cancelled = True
        job._done.set()
        return True

    @property
    def pending(self) -> int:
        """Jobs waiting for a worker."""
        with self._cond:
            return len(self._queue)

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _forget(self, job: Job) -> None:
        if job.key is not None and self._live.get(job.key) is job:
            del self._live[job.key]

    def _next(self) -> Job | None:
        with self._cond:
            self._idle += 1
            while not self._queue and not self._closed:
                self._cond.wait()
            self._idle -= 1
            if self._closed:
                return None
            job = self._queue.popleft()
            job.started = True
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                job._fn(*job._args)
            except Exception:  # a worker must outlive any job
                log.exception("background job %s failed", self._name)
            finally:
                with self._cond:
                    self._forget(job)
                job._done.set()

    def close(self) -> None:
        """Start no more jobs; waiting ones are cancelled (running ones end with the process)."""
        with self._cond:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
            for job in dropped:
                self._forget(job)
                job.cancelled = True
            self._cond.notify_all()
        for job in dropped:
            job._done.set()
