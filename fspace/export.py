"""Write figures to files: self-contained HTML, or PNG/SVG/PDF without a browser install.

Static images are rendered by kaleido 0.2.1, which ships its own headless Chromium; the
renderer starts once per process (about 2 s) and is reused.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fspace._atomic import write_bytes, write_text
from fspace.errors import ExportError

if TYPE_CHECKING:
    import plotly.graph_objects as go

STATIC_FORMATS = ("png", "svg", "pdf")
FORMATS = ("html", *STATIC_FORMATS)


def check_destination(path: str | Path, *, base: str | Path | None = None) -> Path:
    """``path`` if a figure may be written there: a known suffix, and a directory that
    exists or lies inside ``base`` (default: the current directory), where the missing
    directories are then created. ExportError otherwise, before anything is computed.

    Missing directories elsewhere are never created: a typo in ``-o`` must not scatter
    new directories across the filesystem.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExportError(
            f"cannot export {path}: unknown suffix {path.suffix!r}; use one of "
            f"{', '.join('.' + f for f in FORMATS)}"
        )
    return check_folder(path, base=base, verb="export")


def check_folder(path: str | Path, *, base: str | Path | None = None, verb: str = "write") -> Path:
    """``path`` if its directory exists or lies inside ``base`` (default: the current
    directory; the missing directories are then created); ExportError otherwise, saying
    what cannot be ``verb``-ed. Any file a command writes goes through this check."""
    path = Path(path)
    parent = path.parent
    if parent.is_dir():
        return path
    if parent.exists():
        raise ExportError(f"cannot {verb} {path}: {parent} is not a directory")
    inside = Path(base if base is not None else Path.cwd()).resolve()
    target = parent.resolve()  # resolves the links of the part that exists
    if target != inside and inside not in target.parents:
        raise ExportError(
            f"cannot {verb} {path}: directory {parent} does not exist; create it first "
            f"(fspace creates missing directories only inside {inside})"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot {verb} {path}: cannot create {parent} ({e.strerror})") from None
    return path


def write_table(path: str | Path, text: str) -> Path:
    """Write a table's ``text`` (CSV) to ``path`` atomically, in a directory
    :func:`check_folder` allows; ExportError naming the file otherwise."""
    path = check_folder(path)
    try:
        return write_text(path, text)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None


def write_figure(
    fig: go.Figure, path: str | Path, *, width: int = 1000, height: int = 750, scale: float = 2
) -> Path:
    """Write ``fig`` to ``path``, the format chosen by its suffix (.html, .png, .svg, .pdf).

    ``width`` and ``height`` are in layout pixels and ``scale`` multiplies the pixel
    density of PNG output; HTML keeps the figure responsive. The file appears
    atomically: a failed export leaves no partial file behind.

    >>> write_figure(trajectory_figure(embedding.frame), "runs.png")  # doctest: +SKIP
    """
    path = check_destination(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "html":
        data = fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
    else:
        data = _render(fig, path, fmt, width=width, height=height, scale=scale)
    try:
        return write_bytes(path, data)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err}") from err


def _render(fig: go.Figure, path: Path, fmt: str, **size: Any) -> bytes:
    try:
        return _scope().transform(_without_webgl(fig), format=fmt, **size)
    except ValueError as err:
        # kaleido reports a failed render (bad figure, crashed renderer) as ValueError.
        raise ExportError(f"cannot export {path}: the image renderer failed: {err}") from err


def _without_webgl(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` with Scattergl traces as Scatter, for the static renderer.

    Its software WebGL is several times slower, even for 20,000 points, and SVG/PDF
    would get WebGL traces as an embedded bitmap instead of vector shapes.
    """
    import plotly.graph_objects as go

    if not any(trace.type == "scattergl" for trace in fig.data):
        return fig
    traces = []
    for trace in fig.data:
        spec = trace.to_plotly_json()
        if spec.pop("type", None) == "scattergl":
            traces.append(go.Scatter(spec))
        else:
            traces.append(trace)
    return go.Figure(data=traces, layout=fig.layout)


@functools.lru_cache(maxsize=1)
def _scope() -> Any:
    # plotly 7's own write_image needs kaleido>=1 and a system Chrome; kaleido 0.2.1
    # bundles Chromium. Point it at plotly's bundled plotly.js so it needs no network.
    import plotly
    from kaleido.scopes.plotly import PlotlyScope

    plotlyjs = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return PlotlyScope(plotlyjs=str(plotlyjs), mathjax=False)
