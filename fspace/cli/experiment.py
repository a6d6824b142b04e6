"""``fspace experiment NAME``: record a ready-made experiment.

One sub-command per entry of :data:`fspace.experiments.EXPERIMENTS`, its options made
from the entry's parameters, so an experiment registered by a plug-in appears here
without any change to fspace. Options every experiment takes: ``-o/--out``,
``--seeds``, ``-q``; ``--figures DIR`` where the experiment writes a report,
``--ray`` where it can run on a Ray cluster, and ``--preset NAME`` where it has named
settings (tag ``presets``: ``{name: settings}``; options given explicitly override them).
"""

from __future__ import annotations

import argparse
from typing import Any

from fspace.registry import Entry, Param

_METAVARS = {int: "N", float: "X", str: "TEXT"}


class _Unset:
    """The default of an option not given, so a preset can fill it."""

    def __repr__(self) -> str:
        return "<not given>"


UNSET = _Unset()


def register(sub) -> None:
    from fspace.experiments import EXPERIMENTS

    p = sub.add_parser(
        "experiment",
        help=f"run a ready-made experiment ({', '.join(EXPERIMENTS.names())})",
        description="Run a ready-made experiment, recording every run into an experiment "
        "directory. A rerun skips completed runs and finishes interrupted ones.",
    )
    names = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for entry in EXPERIMENTS:
        sp = names.add_parser(
            entry.name, help=entry.help, description=entry.tags.get("description", entry.help)
        )
        add_options(sp, entry)


def add_options(parser: argparse.ArgumentParser, entry: Entry) -> None:
    """Fill ``parser`` with the options of the experiment ``entry``."""
    from fspace.experiments import SEEDS

    out = entry.tags.get("out") or f"checkpoints/{entry.name}"
    parser.add_argument(
        "-o", "--out", default=out, metavar="EXP", help=f"experiment directory (default: {out})"
    )
    presets = entry.tags.get("presets") or {}
    if presets:
        parser.add_argument(
            "--preset",
            choices=sorted(presets),
            help="start from these named settings; options given explicitly override them",
        )
    add_param(parser, SEEDS, track=bool(presets))
    for param in entry.params:
        add_param(parser, param, track=bool(presets))
    for old, new in entry.tags.get("deprecated", {}).items():
        parser.add_argument(
            "--" + old.replace("_", "-"),
            dest=new,
            type=param_type(entry.param(new)),
            action=_Deprecated,
            help=argparse.SUPPRESS,
        )
    if entry.tags.get("report") is not None:
        parser.add_argument(
            "--figures", metavar="DIR", help="afterwards, write the figures (PNG, HTML) into DIR"
        )
    if entry.tags.get("ray") is not None:
        from fspace.cli.evaluate import add_ray_option

        add_ray_option(parser, "train the runs as tasks on a Ray cluster")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run, experiment=entry.name)


def param_type(param: Param):
    """An argparse ``type`` that checks a value as ``param`` does."""
    from fspace.errors import ConfigError

    def parse(text: str) -> Any:
        try:
            return param.parse(text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {err}") from None

    parse.__name__ = param.name
    return parse


def add_param(parser: argparse.ArgumentParser, param: Param, *, track: bool = False) -> None:
    """Add ``param`` as an option; a boolean becomes ``--name/--no-name``. With
    ``track``, an option not given parses to :data:`UNSET` (see :func:`settings_from_args`)."""
    default = param.default
    given = UNSET if track else default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    text = f"{param.help} (default: {shown})" if shown is not None else param.help
    if param.type is bool:
        text = f"{param.help} (default: {'yes' if default else 'no'})"
        parser.add_argument(
            param.flag, action=argparse.BooleanOptionalAction, default=given, help=text
        )
        return
    metavar = _METAVARS[param.type]
    if param.choices is not None and not param.many:
        parser.add_argument(param.flag, choices=param.choices, default=given, help=text)
        return
    parser.add_argument(
        param.flag,
        type=param_type(param),
        default=given,
        metavar=f"{metavar},{metavar}" if param.many else metavar,
        help=text,
    )


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores the value, and :func:`run` warns."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        old = getattr(namespace, "deprecated_options", [])
        namespace.deprecated_options = [*old, (option_string, self.dest)]


def settings_from_args(entry: Entry, args: argparse.Namespace) -> dict[str, Any]:
    """The experiment's settings that the parsed options describe (with ``seeds``): an
    option given explicitly wins, then the chosen ``--preset``, then the default."""
    from fspace.experiments import SEEDS

    preset = (entry.tags.get("presets") or {}).get(getattr(args, "preset", None)) or {}

    def value(param: Param) -> Any:
        given = getattr(args, param.name)
        if given is not UNSET:
            return given
        return preset.get(param.name, param.default)

    settings = {p.name: value(p) for p in entry.params}
    seeds = value(SEEDS)
    settings["seeds"] = tuple(seeds) if isinstance(seeds, tuple) else tuple(range(seeds))
    return settings


def warn_deprecated(args: argparse.Namespace) -> None:
    """Warn once for each old option spelling used on the command line."""
    import warnings

    for option, dest in getattr(args, "deprecated_options", []):
        flag = "--" + dest.replace("_", "-")
        warnings.warn(f"{option} is deprecated; use {flag}", FutureWarning, stacklevel=2)


def run(args: argparse.Namespace) -> int:
    """Record the experiment the options describe; print what was done."""
    import time
    from pathlib import Path

    from fspace.experiments import EXPERIMENTS

    entry = EXPERIMENTS.get(args.experiment)
    warn_deprecated(args)
    settings = settings_from_args(entry, args)
    out = Path(args.out)
    progress = not args.quiet
    start = time.perf_counter()
    if getattr(args, "ray", None) is not None:
        counts = entry.tags["ray"](out, settings, address=args.ray, progress=progress)
    else:
        counts = entry.obj(out, settings, progress=progress)
    print(
        f"{args.out}: {counts['recorded']} runs recorded, {counts['resumed']} resumed, "
        f"{counts['skipped']} already complete ({time.perf_counter() - start:.0f} s)"
    )
    if getattr(args, "figures", None):
        text, written = entry.tags["report"](out, Path(args.figures), progress=progress)
        print(text)
        print(f"wrote {len(written)} files into {args.figures}")
    return 0
