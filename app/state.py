"""What the server keeps between requests: the experiments under its root
(:mod:`fspace.app.handles`), and the maps, results and exports built from them.

Callbacks reach it with :func:`current`, which reads it from the Flask app, so several
dashboards can live in one process (as in the tests).
"""

from __future__ import annotations

import os
from pathlib import Path

from fspace.app.exports import ExportFolder
from fspace.app.handles import ExperimentHandle, Registry, Scan
from fspace.app.maps import MapStore
from fspace.app.results import ResultsStore

__all__ = ["EXTENSION", "ExperimentHandle", "Registry", "Scan", "ServerState", "current"]

EXTENSION = "fspace"


class ServerState:
    """Everything one dashboard server keeps: experiments, maps, results, exports."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        default_experiment: str | None = None,
        export_dir: str | os.PathLike | None = None,
        poll_ms: int = 1000,
    ) -> None:
        self.registry = Registry(root)
        self.default_experiment = default_experiment
        self.poll_ms = poll_ms
        self.maps: MapStore = MapStore()
        self.results: ResultsStore = ResultsStore(self.maps)
        self.exports = ExportFolder(export_dir)

    def default_name(self) -> str | None:
        """The experiment a page shows when the URL names none."""
        names = self.registry.names()
        if self.default_experiment in names:
            return self.default_experiment
        return names[0] if names else None

    @property
    def export_dir(self) -> Path:
        """This server's export folder, created on first use."""
        return self.exports.path

    def close(self) -> None:
        """Stop the background workers (running jobs finish) and remove the exports."""
        self.maps.close()
        self.results.close()
        self.exports.close()


def current() -> ServerState:
    """The state of the dashboard serving the current request."""
    from flask import current_app

    return current_app.extensions[EXTENSION]
