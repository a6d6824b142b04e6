"""Exports of the current view into the server's export folder, and nowhere else.

File names are built on the server from the experiment and view, and sanitised all the
same: only letters, digits, ``.``, ``_`` and ``-`` survive, never a path separator or
``..``, and the final path is checked to sit directly in the export folder.

:class:`ExportFolder` owns that folder: it keeps the files it wrote under a total size
cap (the oldest go first), and removes them on :meth:`~ExportFolder.close` and when the
process exits (the whole folder, if it made it). Error messages name files, never the
server's folders.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from fspace._atomic import write_text
from fspace.errors import ExportError, FspaceError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

FIGURE_FORMATS = ("png", "svg", "pdf", "html")
DATA_FORMATS = ("csv",)
MAX_STEM = 120
MAX_EXPORT_BYTES = 256 * 2**20  # all exports of one server together
MAX_CELL_CHARS = 200  # longer text in a CSV cell is cut (a config may hold megabytes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, suffix: str) -> str:
    """A file name made of ``text`` and ``suffix`` that cannot leave its folder.

    >>> safe_name("../../etc/passwd", "csv")
    'etc-passwd.csv'
    """
    if suffix not in FIGURE_FORMATS + DATA_FORMATS:
        raise ExportError(
            f"cannot export as {suffix!r}; choose one of {', '.join(FIGURE_FORMATS + DATA_FORMATS)}"
        )
    stem = _UNSAFE.sub("-", str(text))
    stem = re.sub(r"\.{2,}", ".", stem)  # no "..", even inside a name
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_")[:MAX_STEM].strip(".-_")
    return f"{stem or 'export'}.{suffix}"


def export_path(folder: Path, name: str) -> Path:
    """``folder / name``, refusing any name that would resolve outside ``folder``."""
    folder = Path(folder).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or name != path.name:
        raise ExportError(f"refusing to export to {name!r}: not a plain file name")
    return path


def truncate_cells(frame: pd.DataFrame, limit: int = MAX_CELL_CHARS) -> tuple[pd.DataFrame, int]:
    """``frame`` with text cells longer than ``limit`` cut, and how many were cut."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out, cut = frame, 0
    for column in frame.columns:
        values = frame[column]
        if not (is_object_dtype(values) or is_string_dtype(values)):
            continue
        long = values.map(lambda v: isinstance(v, str) and len(v) > limit)
        if long.any():
            out = out.copy() if out is frame else out
            out[column] = values.where(~long, values[long].map(lambda v: _cut(v, limit)))
            cut += int(long.sum())
    return out, cut


def _cut(text: str, limit: int) -> str:
    return f"{text[:limit]}… [{len(text) - limit:,} more characters cut]"


def export_figure(fig: go.Figure, folder: Path, stem: str, fmt: str) -> Path:
    """Write ``fig`` as ``fmt`` (png, svg, pdf, html) into ``folder``; return the file."""
    from fspace.export import write_figure

    if fmt not in FIGURE_FORMATS:
        raise ExportError(
            f"cannot export the figure as {fmt!r}; choose {', '.join(FIGURE_FORMATS)}"
        )
    path = export_path(folder, safe_name(stem, fmt))
    try:
        return write_figure(fig, path, width=1200, height=850)
    except (FspaceError, OSError) as err:
        raise ExportError(_without(str(err), folder, path.name)) from None


def export_table(frame: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write ``frame`` as CSV into ``folder`` (long text cut, see :func:`truncate_cells`)."""
    path = export_path(folder, safe_name(stem, "csv"))
    frame, _ = truncate_cells(frame)
    try:
        return write_text(path, frame.to_csv(index=False))
    except OSError as err:
        raise ExportError(f"cannot write {path.name}: {err.strerror or err}") from None


def _without(text: str, folder: Path, name: str) -> str:
    """``text`` with the server's folder left out (a browser sees export messages)."""
    for where in {str(Path(folder).resolve()), str(folder)}:
        text = text.replace(os.path.join(where, name), name).replace(where, "<export folder>")
    return text


class ExportFolder:
    """Where one server writes exports: ``path`` (default: a new temporary folder).

    At most ``max_bytes`` of exports are kept (older files are removed to make room; a
    single larger export is refused). :meth:`close`, or the end of the process, removes
    every file written here, and the folder itself if this object created it.
    """

    def __init__(self, path: str | os.PathLike | None = None, max_bytes: int = MAX_EXPORT_BYTES):
        self._given = Path(path) if path is not None else None
        self._path: Path | None = None
        self.max_bytes = int(max_bytes)
        self._written: OrderedDict[str, int] = OrderedDict()  # name -> bytes, oldest first
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    @property
    def path(self) -> Path:
        """The folder, created on first use."""
        if self._path is None or not self._finalizer.alive:
            if self._given is None:
                self._path = Path(tempfile.mkdtemp(prefix="fspace-exports-")).resolve()
            else:
                self._given.mkdir(parents=True, exist_ok=True)
                self._path = self._given.resolve()
            owned = self._given is None
            self._finalizer = weakref.finalize(self, _remove, self._path, owned, self._written)
        return self._path

    def figure(self, fig: go.Figure, stem: str, fmt: str) -> Path:
        """Export ``fig`` as ``fmt``; the file (ExportError for a format not a figure's)."""
        if fmt not in FIGURE_FORMATS:
            raise ExportError(
                f"cannot export the figure as {fmt!r}; choose {', '.join(FIGURE_FORMATS)}"
            )
        with self._lock:
            return self._admit(export_figure(fig, self.path, stem, fmt))

    def table(self, frame: pd.DataFrame, stem: str) -> tuple[Path, int]:
        """Export ``frame`` as CSV; the file and how many long cells were cut."""
        frame, cut = truncate_cells(frame)
        with self._lock:
            return self._admit(export_table(frame, self.path, stem)), cut

    def total(self) -> int:
        """Bytes of exports kept now."""
        return sum(self._written.values())

    def _admit(self, path: Path) -> Path:
        size = path.stat().st_size
        self._written.pop(path.name, None)
        if size > self.max_bytes:
            path.unlink(missing_ok=True)
            raise ExportError(
                f"{path.name} would take {size / 2**20:.1f} MiB, more than the "
                f"{self.max_bytes / 2**20:.0f} MiB this server keeps for exports; "
                f"filter the view or use `fspace export`"
            )
        while self._written and self.total() + size > self.max_bytes:
            old, _ = self._written.popitem(last=False)
            (self.path / old).unlink(missing_ok=True)
        self._written[path.name] = size
        return path

    def close(self) -> None:
        """Remove the exports (and the folder, if it was made here)."""
        if self._finalizer is not None:
            self._finalizer()


def _remove(path: Path, owned: bool, written: dict[str, int]) -> None:
    if owned:
        shutil.rmtree(path, ignore_errors=True)
        return
    for name in list(written):
        (path / name).unlink(missing_ok=True)
    written.clear()
