"""The fspace dashboard: a Dash app that browses the experiments under one folder.

Example::

    from fspace.app import serve
    serve("checkpoints")   # http://127.0.0.1:8050

Pages live in :mod:`fspace.app.pages`, one module each; the data they show comes from
:mod:`fspace.app.state` (experiments), :mod:`fspace.app.maps` (embeddings, fitted in the background)
and :mod:`fspace.app.results` (the pre-training analyses). Dash is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

    import dash


def create_app(root: str | os.PathLike = "checkpoints", **options) -> dash.Dash:
    """Build the Dash app for the experiments under ``root``; see :func:`.server.create_app`."""
    from fspace.app.server import create_app as _create_app

    return _create_app(root, **options)


def serve(
    root: str | os.PathLike = "checkpoints",
    host: str = "127.0.0.1",
    port: int = 8050,
    open_experiment: str | None = None,
) -> None:
    """Serve the dashboard until interrupted; see :func:`fspace.app.server.serve`."""
    from fspace.app.server import serve as _serve

    _serve(root, host=host, port=port, open_experiment=open_experiment)


__all__ = ["create_app", "serve"]
