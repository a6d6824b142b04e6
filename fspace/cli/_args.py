"""Argument types and option groups shared by several subcommands.

Options that name a registered thing (``--method``) or set one of its parameters
(``--perplexity``) are generated from its registry (:func:`add_choice`,
:func:`add_entry_params`), so a method added by a plug-in gets its options too.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import sys
from typing import TYPE_CHECKING, Any

from fspace.outputs import FORMS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import pandas as pd

    from fspace.registry import Entry, Param, Registry

log = logging.getLogger(__name__)


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, with an s unless ``n`` is 1."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def interval_level(text: str) -> float:
    """``--level``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1 (0.95: 95%), got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive ints, e.g. ``1,2,3``."""
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of ints"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"give positive whole numbers, got {text!r}")
    return values


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The dataset and its split, shared by the ready-made experiments."""
    parser.add_argument(
        "--dataset",
        default="mnist5k",
        help="mnist5k (default, shipped), digits (8x8), or a directory of IDX files",
    )
    parser.add_argument("--n-probe", type=positive_int, default=1000, help="held-out probe digits")
    parser.add_argument("--n-train", type=positive_int, help="limit the training digits")


def add_device(group: Any) -> None:
    """``--device``: where the heavy products run (:data:`fspace.device.DEVICE`)."""
    from fspace.device import DEVICE

    group.add_argument(
        DEVICE.flag, default=DEVICE.default, metavar="NAME", help=f"{DEVICE.help} (default: auto)"
    )


def add_experiment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXP", help="experiment directory")


def add_vectors(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("function vectors")
    group.add_argument("--probes", metavar="NAME", help="probe suite (default: the only one)")
    group.add_argument(
        "--output",
        choices=FORMS.names(),
        default=None,
        help="what each vector holds (default: what the experiment was recorded with)",
    )
    group.add_argument(
        "--model-factory",
        metavar="MODULE:FUNCTION",
        help="rebuilds the architecture for checkpoints without cached vectors "
        "(default: the one each run recorded)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but a line break in a help text or description is kept."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n".join([fill(line, width, indent) for line in text.splitlines()])

    def _split_lines(self, text: str, width: int) -> list[str]:
        split = super()._split_lines
        return [out for line in text.splitlines() for out in split(line, width)]


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    if parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = HelpFormatter


def param_type(param: Param):
    """An argparse ``type`` that checks a value as ``param`` does (range, choices)."""
    from fspace.errors import ConfigError

    def parse(text: str) -> Any:
        try:
            return param.parse(text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = param.name
    return parse


def describe(param: Param) -> str:
    """What values ``param`` takes, e.g. ``int >= 2, default 15``."""
    kind = param.type.__name__
    if param.choices is not None:
        text = "one of " + ", ".join(map(str, param.choices))
    elif param.low is not None and param.high is not None:
        text = f"{kind} in [{param.low:g}, {param.high:g}]"
    elif param.low is not None:
        text = f"{kind} >= {param.low:g}"
    elif param.high is not None:
        text = f"{kind} <= {param.high:g}"
    else:
        text = kind
    if getattr(param, "many", False):
        text = f"comma-separated list of {text}"
    return text if param.default is None else f"{text}, default {param.default}"


def add_choice(group: Any, flag: str, registry: Registry, *, default: str, help: str = "") -> None:
    """An option choosing one entry of ``registry``; its help lists every entry."""
    lines = [f"{help} (default: {default})" if help else f"default: {default}"]
    lines += [f"{e.name}: {e.label}" + (f" - {e.help}" if e.help else "") for e in registry]
    group.add_argument(
        flag, choices=registry.names(), default=default, metavar="NAME", help="\n".join(lines)
    )


def add_entry_params(
    parser: argparse.ArgumentParser, group: Any, registry: Registry, *, prefix: str
) -> None:
    """One option per parameter of the entries of ``registry`` (a name shared by several
    entries is one option); the value lands in ``args.<prefix><name>``, None if not given.

    Its help says which entries take it and their types, ranges and defaults. A
    parameter whose flag another option already has is spelt ``--<entry>-<name>``.
    """
    _use_formatter(parser)
    taken = set(parser._option_string_actions)
    by_name: dict[str, list[tuple[Entry, Param]]] = {}
    for entry in registry:
        for param in entry.params:
            by_name.setdefault(param.name, []).append((entry, param))
    for name, owners in by_name.items():
        flags = {owners[0][1].flag}
        if flags & taken:
            flags = {f"--{e.name}-{p.name}".replace("_", "-") for e, p in owners}
        for flag in sorted(flags):
            mine = [(e, p) for e, p in owners if len(flags) == 1 or flag.startswith(f"--{e.name}")]
            _add_param_option(group, flag, prefix + name, mine)
            taken.add(flag)


_METAVARS = {int: "N", float: "X", str: "TEXT", bool: ""}


def _add_param_option(group: Any, flag: str, dest: str, owners: list) -> None:
    params = [p for _, p in owners]
    helps = {p.help for p in params}
    if len(helps) == 1:
        lines = [params[0].help] if params[0].help else []
        lines += [f"{e.label}: {describe(p)}" for e, p in owners]
    else:
        lines = [f"{e.label}: {p.help}; {describe(p)}" for e, p in owners]
    if params[0].type is bool:
        group.add_argument(
            flag,
            dest=dest,
            action=argparse.BooleanOptionalAction,
            default=None,
            help="\n".join(lines),
        )
        return
    # Checked here when every entry agrees on the values, else for the chosen entry.
    kinds = {(p.type, p.low, p.high, p.choices, getattr(p, "many", False)) for p in params}
    kind = param_type(params[0]) if len(kinds) == 1 else str
    metavar = "NAME" if params[0].choices is not None else _METAVARS[params[0].type]
    if getattr(params[0], "many", False):
        metavar = f"{metavar},..."
    group.add_argument(
        flag, dest=dest, type=kind, default=None, metavar=metavar, help="\n".join(lines)
    )


def chosen_params(
    args: argparse.Namespace, registry: Registry, chosen: str, *, prefix: str, option: str
) -> dict[str, Any]:
    """The parameters of entry ``chosen`` given on the command line, checked.

    A value given for a parameter of other entries only raises :class:`ConfigError`
    naming the option, e.g. ``--perplexity applies to --method tsne only``.
    """
    from fspace.errors import ConfigError

    entry = registry.get(chosen)
    given = {
        key[len(prefix) :]: value
        for key, value in vars(args).items()
        if key.startswith(prefix) and value is not None
    }
    out = {}
    for name, value in sorted(given.items()):
        flag = "--" + name.replace("_", "-")
        if name not in {p.name for p in entry.params}:
            owners = [e.name for e in registry if name in {p.name for p in e.params}]
            raise ConfigError(
                f"{flag} applies to {option} {' or '.join(owners)} only; "
                f"{option} {chosen} takes {_flags(entry.params)}"
            )
        try:
            out[name] = entry.param(name).parse(value)
        except ConfigError as err:  # name the option, as argparse does
            raise ConfigError(f"argument {flag}: {err}") from None
    return out


def _flags(params: Iterable[Param]) -> str:
    flags = [p.flag for p in params]
    return ", ".join(flags) if flags else "no parameters"


def add_embedding(parser: argparse.ArgumentParser) -> None:
    """``--method`` with one option per parameter of any embedding method."""
    from fspace.embedding import METHODS

    _use_formatter(parser)
    group = parser.add_argument_group("embedding")
    add_choice(group, "--method", METHODS, default="tsne", help="embedding method")
    group.add_argument("--random-state", type=int, default=0, metavar="SEED", help="default: 0")
    group.add_argument("--no-cache", action="store_true", help="re-fit even if a cached map exists")
    params = parser.add_argument_group(
        "embedding parameters", "each applies to the methods it names"
    )
    add_entry_params(parser, params, METHODS, prefix=PARAM_PREFIX)
    add_distance(parser)
    chosen = parser.add_argument_group("runs", "map only some runs (default: every run)")
    chosen.add_argument("--runs", type=name_list, metavar="R1,R2", help="these runs only")
    chosen.add_argument("--groups", type=name_list, metavar="G1,G2", help="these groups only")


def name_list(text: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``; refuses an empty list."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def add_distance(parser: argparse.ArgumentParser) -> None:
    """``--distance`` (any entry of :data:`fspace.distances.DISTANCES`) and its parameters."""
    from fspace.distances import DISTANCES

    group = parser.add_argument_group("distance", "the function-space distance the map shows")
    add_choice(group, "--distance", DISTANCES, default="euclidean", help="distance")
    add_entry_params(parser, group, DISTANCES, prefix=DISTANCE_PREFIX)


def distance_params(args: argparse.Namespace) -> dict:
    """The chosen distance's parameters given on the command line."""
    from fspace.distances import DISTANCES

    return chosen_params(
        args, DISTANCES, args.distance, prefix=DISTANCE_PREFIX, option="--distance"
    )


DISTANCE_PREFIX = "distance_"
"""``args.distance_floor``: where the options of :func:`add_distance`'s parameters land."""

PARAM_PREFIX = "method_"
"""``args.method_perplexity``: where the options of :func:`add_embedding`'s parameters land."""


def open_experiment(path: str):
    """The experiment at ``path``, refusing one without checkpoints up front (before a
    missing probe suite or model factory could be blamed instead)."""
    from fspace.store import Experiment

    exp = Experiment(path)
    exp.require_checkpoints()
    return exp


def embedding_params(args: argparse.Namespace) -> dict:
    """The chosen method's parameters given on the command line."""
    from fspace.embedding import METHODS

    return chosen_params(args, METHODS, args.method, prefix=PARAM_PREFIX, option="--method")


def embed_from_args(args: argparse.Namespace):
    """Run the evaluate + embed pipeline with the options of :func:`add_vectors` and
    :func:`add_embedding`."""
    from fspace.pipeline import embed_experiment

    params = embedding_params(args)
    paths = args.experiment if isinstance(args.experiment, list) else [args.experiment]
    experiments = [open_experiment(path) for path in paths]
    return embed_experiment(
        experiments if len(experiments) > 1 else experiments[0],
        distance=getattr(args, "distance", "euclidean"),
        distance_params=distance_params(args) if hasattr(args, "distance") else None,
        method=args.method,
        probes=args.probes,
        output=args.output,
        random_state=args.random_state,
        params=params,
        model_factory=args.model_factory,
        cache=not args.no_cache,
        progress=not args.quiet,
        runs=getattr(args, "runs", None),
        groups=getattr(args, "groups", None),
    )


# --csv FILE: a table written to FILE, or to standard output for "-" (the command's
# other lines then go to standard error).


def check_csv(path: str | None) -> None:
    """Refuse a ``--csv`` file before the slow part, not after (``-`` is always fine)."""
    if path and path != "-":
        from fspace.export import check_folder

        check_folder(path)


def say_for(path: str | None) -> Callable[..., None]:
    """``print`` to where a command's own lines go beside ``--csv path``."""
    return functools.partial(print, file=sys.stderr if path == "-" else sys.stdout)


def write_csv(path: str | None, frame: pd.DataFrame) -> None:
    """Write ``frame`` as ``--csv path`` asks, saying where (nothing without a path)."""
    if path == "-":
        frame.to_csv(sys.stdout, index=False)
    elif path:
        from fspace.export import write_table

        write_table(path, frame.to_csv(index=False))
        say_for(path)(f"wrote {path}")
