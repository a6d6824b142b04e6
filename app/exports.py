"""Exports of the current view into the server's export folder, and nowhere else.

File names are built from the experiment and view, so they are sanitised: only
letters, digits, ``.``, ``_`` and ``-`` survive, never a path separator or ``..``,
and the final path is checked to sit directly in the export folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from fspace._atomic import write_text
from fspace.errors import ExportError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

FIGURE_FORMATS = ("png", "svg", "html")
DATA_FORMATS = ("csv",)
MAX_STEM = 120
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


def export_figure(fig: go.Figure, folder: Path, stem: str, fmt: str) -> Path:
    """Write ``fig`` as ``fmt`` (png, svg, html) into ``folder``; return the file."""
    from fspace.export import write_figure

    path = export_path(folder, safe_name(stem, fmt))
    return write_figure(fig, path, width=1200, height=850)


def export_table(frame: pd.DataFrame, folder: Path, stem: str) -> Path:
    """Write ``frame`` as CSV into ``folder``; return the file."""
    path = export_path(folder, safe_name(stem, "csv"))
    try:
        return write_text(path, frame.to_csv(index=False))
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err}") from err
