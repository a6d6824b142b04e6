"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

The bytes go to a temporary file in the target's directory (so the rename cannot cross
filesystems), are flushed to disk with fsync, and only then renamed into place.
Temporary names start with a dot, so directory scans skip them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temp_path_for(path: Path) -> Path:
    """A unique hidden temporary path beside ``path``."""
    # Cut long names so the temporary one stays within the usual 255-byte limit.
    stem = path.name.encode()[:200].decode(errors="ignore")
    return path.with_name(f".{stem}.{uuid.uuid4().hex[:12]}.tmp")


def write_bytes(path: str | os.PathLike, data: bytes, *, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically.

    With ``exclusive=True`` an existing file is never replaced: the call raises
    ``FileExistsError`` and leaves the existing file untouched, even when another
    process races for the same name (the final step is a hard link, which fails if
    the name exists).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str, *, exclusive: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"), exclusive=exclusive)
