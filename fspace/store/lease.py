"""One writer per run: a lease file that names the process writing the run.

``runs/RUN/.writer`` holds a JSON document: a random token, the host name, the process
id and the time of the last heartbeat. A writer creates it with an exclusive hard link
(which fails if the name exists, also on network filesystems), rewrites it every
``ttl / 6`` seconds from a background thread, and removes it when it closes.

A second writer finds the file and

- gets :class:`~fspace.errors.RunBusyError` naming the holder while it is alive;
- takes the lease over when the holder is dead: on the same host when its process is
  gone (at once, e.g. after SIGKILL), on another host when its heartbeat is older than
  ``ttl`` (60 s by default). The stale file is renamed away first (only one successor
  can rename it) and checked to be the one it judged stale.

Before each checkpoint is written the writer checks that the file still holds its token,
so a writer that lost its lease (its machine was suspended for longer than ``ttl``)
stops with an error instead of interleaving its checkpoints with its successor's.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fspace import _atomic
from fspace.errors import RunBusyError, StoreWriteError
from fspace.store import layout

FILE = ".writer"
TTL = 60.0
"""Seconds without a heartbeat after which a writer on another host is taken for dead."""
_MAX_BYTES = 4096


class Lease:
    """The right to write one run, held by this process until :meth:`release`."""

    def __init__(self, root: Path, run: str, *, ttl: float = TTL) -> None:
        self.path = layout.run_dir(root, layout.check_name(run, "run id")) / FILE
        self.root = root
        self.run = run
        self.ttl = float(ttl)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def __repr__(self) -> str:
        return f"Lease({str(self.path)!r}, held={self._thread is not None})"

    def _body(self) -> str:
        host, pid = socket.gethostname(), os.getpid()
        body = {"token": self.token, "host": host, "pid": pid, "heartbeat": time.time()}
        return json.dumps(body)

    def acquire(self) -> Lease:
        """Take the lease, or raise RunBusyError if a live process holds it."""
        layout.writable(self.root, self.path)
        for _ in range(5):
            try:
                _atomic.write_text(self.path, self._body(), exclusive=True)
            except FileExistsError:
                holder = read(self.path)
                if holder is not None and holder.get("token") == self.token:
                    break
                if holder is not None and not stale(holder, self.ttl):
                    raise RunBusyError(_busy(self.run, holder)) from None
                _take_over(self.path, holder)
                continue
            except OSError as e:
                raise StoreWriteError(f"cannot write {self.path} ({e.strerror})") from None
            break
        else:
            raise RunBusyError(f"run {self.run!r}: its writer lease keeps changing hands")
        self._thread = threading.Thread(
            target=self._beat, name=f"fspace-lease-{self.run}", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 6):
            try:
                self.check()
                _atomic.write_text(self.path, self._body())
            except (RunBusyError, OSError) as e:
                self.lost = str(e)
                return

    def check(self) -> None:
        """Raise RunBusyError unless this process still holds the lease."""
        if self.lost is not None:
            raise RunBusyError(self.lost)
        holder = read(self.path)
        if holder is None or holder.get("token") != self.token:
            what = _busy(self.run, holder) if holder else "its lease file is gone"
            self.lost = f"this process lost the lease to write run {self.run!r}: {what}"
            raise RunBusyError(self.lost)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease file if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        holder = read(self.path)
        if holder is not None and holder.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def read(path: Path) -> dict[str, Any] | None:
    """The lease at ``path``; None if there is none, {} if it is unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        raw = os.read(fd, _MAX_BYTES + 1)
    except OSError:
        return {}
    finally:
        os.close(fd)
    try:
        body = json.loads(raw) if len(raw) <= _MAX_BYTES else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def stale(holder: dict[str, Any], ttl: float) -> bool:
    """Whether the writer described by ``holder`` is dead."""
    beat = holder.get("heartbeat")
    if not isinstance(beat, (int, float)) or not isinstance(holder.get("token"), str):
        return True  # not a lease fspace wrote: nobody holds it
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        return True
    return time.time() - beat > ttl


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another Recorder of this very process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    # A killed child that its parent has not reaped yet is a zombie: dead all the same.
    with contextlib.suppress(OSError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text()
        return state.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _take_over(path: Path, holder: dict[str, Any] | None) -> None:
    """Move the stale lease ``holder`` away, unless it changed hands meanwhile."""
    if holder is None:
        return  # released meanwhile: just try again
    tomb = path.with_name(f"{FILE}.{uuid.uuid4().hex[:12]}.stale")
    try:
        os.rename(path, tomb)
    except FileNotFoundError:
        return  # another successor moved it first
    moved = read(tomb)
    if moved != holder:  # we moved a fresh lease: put it back unless another took its place
        with contextlib.suppress(FileExistsError):
            os.link(tomb, path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tomb)


def _busy(run: str, holder: dict[str, Any]) -> str:
    age = time.time() - holder["heartbeat"] if isinstance(holder.get("heartbeat"), float) else 0
    return (
        f"run {run!r} is being written by process {holder.get('pid')} on host "
        f"{holder.get('host')!r} (heartbeat {age:.0f} s ago); wait for it to finish, or "
        f"record under another run id"
    )
