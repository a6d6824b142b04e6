"""Building the Dash app and serving it.

:func:`create_app` builds one dashboard for a root folder (several may live in one
process: their state hangs off their own Flask app); :func:`serve` runs it with
waitress, with Dash's debug mode off so a browser never sees a traceback. Every app is
protected as :mod:`fspace.app.security` describes (Host check, security headers).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from dash import Input, Output, State

from fspace.app import ids, raster_hover, raster_picture
from fspace.app.components import page_href
from fspace.app.security import HostPolicy, host_policy, is_loopback, protect
from fspace.app.state import EXTENSION, ServerState
from fspace.app.wiring import Callbacks, guarded_layout
from fspace.errors import ConfigError

# The pages come from fspace.app.navigation.PAGES; callbacks that belong to a page but live
# in their own module are here.
EXTRAS = ("fspace.app.downloads",)
ASSETS = Path(__file__).parent / "assets"
THREADS = 8

shell = Callbacks()


@shell(
    Output(ids.NAV, "href"),
    Input(ids.EXP_SELECT, "value"),
    State("_pages_location", "pathname"),
    State("_pages_location", "search"),
    prevent_initial_call=True,
)
def choose_experiment(name: str | None, pathname: str | None, search: str | None) -> str:
    """Open the chosen experiment on the same page (trajectories from the home page).

    The dropdown also reports the value a page renders it with; that is no choice.
    """
    from urllib.parse import parse_qs

    from dash.exceptions import PreventUpdate

    from fspace.app.navigation import page_of_path
    from fspace.app.state import current

    shown = parse_qs((search or "").lstrip("?")).get("exp", [None])[-1]
    if not name or name == (shown or current().default_name()):
        raise PreventUpdate
    page = page_of_path(pathname)
    return page_href(page.name if page is not None and page.tags["nav"] else "trajectories", name)


def create_app(
    root: str | os.PathLike = "checkpoints",
    *,
    default_experiment: str | None = None,
    export_dir: str | os.PathLike | None = None,
    poll_ms: int = 1000,
    hosts: HostPolicy | None = None,
):
    """The dashboard of the experiments under ``root`` (or of ``root``, if it is one).

    ``default_experiment`` is shown when a URL names none; exports go to ``export_dir``
    (default: a new temporary folder; the exports are removed when the server stops);
    pages check for new checkpoints every ``poll_ms`` milliseconds. ``hosts`` are the
    Host headers answered (default: the loopback names, see
    :func:`~fspace.app.security.host_policy`).
    """
    import dash
    from dash import dcc, html

    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        title="fspace",
        update_title=None,
    )
    state = ServerState(
        root, default_experiment=default_experiment, export_dir=export_dir, poll_ms=poll_ms
    )
    app.server.extensions[EXTENSION] = state
    modules = register_pages(app) + [importlib.import_module(name) for name in EXTRAS]
    app.layout = html.Div([dcc.Location(id=ids.NAV, refresh="callback-nav"), dash.page_container])
    for module in modules:
        if hasattr(module, "callback"):
            module.callback.attach(app)
    shell.attach(app)
    raster_hover.add_route(app)  # a large map's hover and click answers, outside Dash
    raster_picture.add_route(app)  # a large map's picture of a new view, outside Dash
    protect(app, hosts or host_policy())
    return app


def register_pages(app) -> list:
    """Register every page of :data:`fspace.app.navigation.PAGES` with Dash (which needs
    ``app`` to exist first) and its older paths as redirects; the pages' modules.

    The experiment registry is read first: an experiment plug-in may declare its page
    when its module is imported.
    """
    import dash

    from fspace.app.navigation import add_page, pages

    try:
        from fspace.experiments import EXPERIMENTS
    except ImportError:  # an install without the experiments
        pass
    else:
        # Each ready-made experiment names its page (see fspace.experiments.base).
        for experiment in EXPERIMENTS:
            if experiment.tags.get("page") is not None:
                add_page(**experiment.tags["page"])
    declared = pages()
    # Dash keeps one page list per process; pages of an earlier app that are not
    # declared now (a plug-in's, in tests) would still be routed to.
    for module in set(dash.page_registry) - {e.obj for e in declared}:
        del dash.page_registry[module]
    modules = []
    for entry in declared:
        module = importlib.import_module(entry.obj)
        dash.register_page(
            entry.obj,
            path=entry.tags["path"],
            name=entry.label,
            title=f"fspace: {entry.label}",
            description=entry.help,
            order=entry.tags["order"],
            layout=guarded_layout(module.layout),
        )
        for old in entry.tags["redirect_from"]:
            _redirect(app, old, entry.tags["path"])
        modules.append(module)
    return modules


def _redirect(app, old: str, new: str) -> None:
    """Answer ``old`` (with any query) by a redirect to ``new``. (Dash's own
    ``redirect_from`` registers on whichever app ran a callback last in this context.)"""
    from flask import redirect, request

    target = app.get_relative_path(new)

    def moved():
        query = request.query_string.decode("latin-1")
        return redirect(target + (f"?{query}" if query else ""), code=301)

    app.server.add_url_rule(app.get_relative_path(old), f"fspace-redirect-{old}", moved)


def serve(
    root: str | os.PathLike = "checkpoints",
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    open_experiment: str | None = None,
    threads: int = THREADS,
    allow_hosts: Sequence[str] = (),
) -> None:
    """Serve the dashboard of ``root`` on ``host:port`` until interrupted.

    ``open_experiment`` is the experiment shown first (its URL is printed);
    ``allow_hosts`` are more names the server may be reached by (behind a proxy, say).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder; pass an experiment or a folder of experiments")
    if not 0 < int(port) < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {port}")
    app = create_app(
        root,
        default_experiment=open_experiment,
        hosts=host_policy(host, int(port), allow_hosts),
    )
    state: ServerState = app.server.extensions[EXTENSION]
    if open_experiment is not None:
        state.registry.get(open_experiment)  # NotAnExperimentError naming the choices
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not is_loopback(host):
        print(
            f"warning: the dashboard has no authentication; anyone who can reach "
            f"{host}:{port} can browse these experiments",
            file=sys.stderr,
        )
    shown = state.default_name()
    where = f"[{host}]" if ":" in host else host
    url = f"http://{where}:{port}" + (page_href("trajectories", shown) if shown else "/")
    print(f"fspace dashboard of {root}: {url}  (Ctrl+C stops it)", flush=True)
    _run(app, state, host, int(port), threads)


def _run(app, state: ServerState, host: str, port: int, threads: int) -> None:
    from waitress import serve as waitress_serve

    _stop_on_sigterm()
    try:
        waitress_serve(app.server, host=host, port=port, threads=threads, ident="fspace")
    except OSError as err:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port"
        ) from None
    except KeyboardInterrupt:
        pass
    finally:
        state.close()


def _stop_on_sigterm() -> None:
    """Let SIGTERM end the server as Ctrl+C does, so that its exports are removed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
