"""Background jobs on daemon threads, so that a running fit never keeps the server from
stopping on Ctrl+C (a ThreadPoolExecutor's threads are joined at exit)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Job:
    """A submitted job; :meth:`done` tells whether it has finished."""

    def __init__(self) -> None:
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job finished (or ``timeout`` passed); whether it finished."""
        return self._done.wait(timeout)


class Jobs:
    """Runs submitted functions on daemon threads, at most ``workers`` at a time."""

    def __init__(self, workers: int, name: str) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._name = name
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Job:
        """Start ``fn(*args)`` once a slot is free; exceptions are ``fn``'s to handle."""
        job = Job()
        if self._closed:
            job._done.set()
            return job
        thread = threading.Thread(
            target=self._run, args=(job, fn, args), name=self._name, daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, fn: Callable[..., Any], args: tuple) -> None:
        try:
            with self._slots:
                if not self._closed:
                    fn(*args)
        finally:
            job._done.set()

    def close(self) -> None:
        """Start no more jobs (running ones end with the process)."""
        self._closed = True
