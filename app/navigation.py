"""The dashboard's pages, declared once in :data:`PAGES` (the modules live in
:mod:`fspace.app.pages`).

The server registers every page of :data:`PAGES` with Dash (path, title, order), the
header builds its links from it and the home page its per-experiment links. A page is
a module with ``layout(**query)`` (the URL's query parameters as keywords) and,
optionally, ``callback``: a :class:`fspace.app.wiring.Callbacks` holding its callbacks,
attached when the app is built. Nothing of the module is imported before that.

A page of a new experiment is one call::

    from fspace.app.navigation import add_page

    add_page(
        "pretraining",                      # name: the header link and page_href(name, exp)
        "my_package.dashboard_page",        # module with layout() (and callback)
        label="Pre-training",
        order=2,                            # place among the header's links
        applies=lambda exp: any("depth" in r.config for r in exp.runs()),  # optional
    )

Put the call in a module that is imported before the app is built: a module of
fspace, or a module named by an entry point of the group ``fspace.pages`` (loaded when
the pages are first read). An experiment declares its page in its registry entry
instead, as the tag ``page`` holding these keyword arguments (see
:mod:`fspace.experiments.base`); the server declares them when it builds the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from fspace.errors import ConfigError
from fspace.registry import Entry, Registry

log = logging.getLogger("fspace.app")

PAGES: Registry[str] = Registry("dashboard page", "fspace.pages")
"""Every page by name; ``entry.obj`` is the module's import name, ``entry.tags`` hold
``path``, ``order``, ``nav`` (a header link), ``applies`` and ``redirect_from``."""
# What is declared, kept here so that add_page never reads (and so loads) PAGES.
_PATHS: dict[str, str] = {}  # path -> page name
_MODULES: dict[str, str] = {}  # page name -> module


def add_page(
    name: str,
    module: str,
    *,
    label: str,
    path: str | None = None,
    order: int = 50,
    nav: bool = True,
    help: str = "",
    applies: Callable[[Any], bool] | None = None,
    redirect_from: Iterable[str] = (),
) -> None:
    """Declare the page ``name`` served by ``module`` at ``path`` (default ``/name``).

    ``label`` is its link text and title; ``order`` sorts the header's links;
    ``nav=False`` leaves it out of the header (the home and not-found pages);
    ``applies(experiment)`` says whether an experiment (a :class:`fspace.store.Experiment`)
    has this page (default: every one); ``redirect_from`` are older paths that lead here.
    """
    path = path or f"/{name}"
    old = tuple(redirect_from)
    if not path.startswith("/") or any(not p.startswith("/") for p in old):
        raise ConfigError(f"dashboard page {name!r}: paths must start with '/', got {path!r}")
    if not label:
        raise ConfigError(f"dashboard page {name!r} needs a label")
    if applies is not None and not callable(applies):
        raise ConfigError(f"dashboard page {name!r}: applies must be a function of an experiment")
    owner = _PATHS.get(path, name)
    if owner != name:
        raise ConfigError(f"dashboard page {name!r}: path {path} is already {owner!r}'s")
    if _MODULES.get(name, module) != module:
        raise ConfigError(f"dashboard page {name!r} is already served by {_MODULES[name]}")
    tags = {"path": path, "order": int(order), "nav": bool(nav), "applies": applies}
    # The registry's own test compares objects by identity; equal names are one page.
    module = _MODULES.setdefault(name, module)
    PAGES.add(Entry(name, module, label, help, (), {**tags, "redirect_from": old}))
    for stale in [p for p, n in _PATHS.items() if n == name]:
        del _PATHS[stale]
    _PATHS[path] = name


def pages() -> list[Entry]:
    """Every page, in link order."""
    return sorted(PAGES, key=lambda e: (e.tags["order"], e.name))


def nav_pages(experiment: Any = None) -> list[Entry]:
    """The pages linked from the header, in order; with ``experiment``, only those
    that apply to it."""
    return [e for e in pages() if e.tags["nav"] and applies(e, experiment)]


def applies(entry: Entry, experiment: Any) -> bool:
    """Whether page ``entry`` has something to show for ``experiment`` (None: any)."""
    test = entry.tags.get("applies")
    if experiment is None or test is None:
        return True
    try:
        return bool(test(experiment))
    except Exception:  # a plug-in's test must not take the page list down
        log.exception("dashboard page %r: applies() failed", entry.name)
        return True


def page_path(name: str) -> str:
    """The path of page ``name``, e.g. ``/trajectories``."""
    return PAGES.get(name).tags["path"]


def page_of_path(path: str | None) -> Entry | None:
    """The page served at ``path`` (or redirected from it), if any."""
    clean = "/" + str(path or "").strip("/")
    for entry in PAGES:
        if clean == entry.tags["path"] or clean in entry.tags["redirect_from"]:
            return entry
    return None


add_page("home", "fspace.app.pages.home", label="Experiments", path="/", order=0, nav=False)
add_page("trajectories", "fspace.app.pages.trajectories", label="Trajectories", order=1)
add_page("results", "fspace.app.pages.results", label="Results", order=2)
add_page(
    "compare",
    "fspace.app.pages.compare",
    label="Compare",
    order=4,
    help="two maps side by side; runs selected on one are shown on both",
)
# Dash serves a page whose module ends in "not_found_404" for unknown paths.
add_page(
    "not_found_404",
    "fspace.app.pages.not_found_404",
    label="Not found",
    path="/404",
    nav=False,
)
