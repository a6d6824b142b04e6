"""The experiment registry and the settings every ready-made experiment shares.

An entry of :data:`EXPERIMENTS` is a function ``run(out, settings, *, progress)`` that
records the experiment into the directory ``out`` and returns how many runs it
``recorded``, ``resumed`` and ``skipped``. ``settings`` holds the entry's parameters,
parsed and checked, plus ``seeds`` (a tuple of run seeds). Tags the command line reads:

- ``out``: the default experiment directory (else ``checkpoints/<name>``);
- ``description``: the long help of ``fspace experiment NAME --help``;
- ``report``: ``report(out, folder, *, progress) -> (summary_text, written_paths)``,
  which writes the experiment's figures (adds ``--figures DIR``);
- ``ray``: ``ray(out, settings, *, address, progress) -> counts`` (adds ``--ray``);
- ``deprecated``: ``{old_option_name: parameter_name}`` still accepted, with a warning;
- ``page``: the keyword arguments of :func:`fspace.app.pages.add_page` for the
  experiment's dashboard page (``name``, ``module``, ``label``, ``order``, ``applies``,
  ``redirect_from``), read by the dashboard; the module is imported only there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fspace.registry import Param, Registry

RunExperiment = Callable[..., dict[str, int]]

EXPERIMENTS: Registry[RunExperiment] = Registry("experiment", "fspace.experiments")
"""Every ready-made experiment by name; plug-ins join through ``fspace.experiments``."""

SEEDS = Param("seeds", int, 3, "record seeds 0..N-1", low=1)
"""How many run seeds; every experiment takes it (``settings["seeds"]`` = 0..N-1)."""

DATA_PARAMS = (
    Param(
        "dataset",
        str,
        "mnist5k",
        "mnist5k (shipped), digits (8x8), or a directory of IDX files",
    ),
    Param("n_probe", int, 1000, "held-out probe digits (also the test set)", low=1),
    Param("n_train", int, None, "limit the training digits (default: all)", low=1),
    Param("split_seed", int, 0, "seed of the held-out split", low=0),
)
"""The data settings of the digit experiments (:mod:`fspace.experiments.digits`)."""


def run_experiment(
    name: str, out: str | Path, *, seeds: int = 3, progress: bool = True, **values: Any
) -> dict[str, int]:
    """Record the registered experiment ``name`` into ``out`` with seeds ``0..seeds-1``
    and parameters ``values`` (the rest at their defaults), as ``fspace experiment``
    does. Returns how many runs were recorded, resumed and skipped.

    >>> run_experiment("pretraining", "checkpoints/p", seeds=1, depths=(1,))  # doctest: +SKIP
    """
    entry = EXPERIMENTS.get(name)
    settings = entry.parse(values)
    settings["seeds"] = tuple(range(SEEDS.parse(seeds)))
    return entry.obj(Path(out), settings, progress=progress)


def default_out(name: str) -> Path:
    """Where ``fspace experiment NAME`` records by default."""
    tags = EXPERIMENTS.get(name).tags
    return Path(tags.get("out") or f"checkpoints/{name}")


def report_folder(out_dir: str | Path, formats: tuple[str, ...] | list[str]) -> Path:
    """The folder a report writes into, checked before anything is computed.

    The folder itself is created when its parent exists (the user named it); missing
    parents only inside the current directory, as for every export
    (:func:`fspace.export.check_destination`).
    """
    from fspace.export import check_destination

    out = Path(out_dir)
    if not out.exists() and out.parent.is_dir():
        out.mkdir()
    for fmt in formats:
        check_destination(out / f"report.{fmt}")
    return out
