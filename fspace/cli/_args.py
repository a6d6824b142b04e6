"""Argument types and option groups shared by several subcommands."""

from __future__ import annotations

import argparse
import math

from fspace.vectors import OUTPUTS

METHODS = ("tsne", "pca", "umap")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
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


def add_experiment(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", metavar="EXP", help="experiment directory")


def add_vectors(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("function vectors")
    group.add_argument("--probes", metavar="NAME", help="probe suite (default: the only one)")
    group.add_argument(
        "--output", choices=OUTPUTS, default="prob", help="what each vector holds (default: prob)"
    )
    group.add_argument(
        "--model-factory",
        metavar="MODULE:FUNCTION",
        help="rebuilds the architecture for checkpoints without cached vectors "
        "(default: the one each run recorded)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_embedding(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedding")
    group.add_argument("--method", choices=METHODS, default="tsne", help="default: tsne")
    group.add_argument("--random-state", type=int, default=0, metavar="SEED", help="default: 0")
    group.add_argument(
        "--perplexity", type=positive_float, metavar="P", help="t-SNE perplexity (default: 30)"
    )
    group.add_argument(
        "--n-neighbors", type=positive_int, metavar="K", help="UMAP neighbours (default: 15)"
    )
    group.add_argument("--no-cache", action="store_true", help="re-fit even if a cached map exists")


def open_experiment(path: str):
    """The experiment at ``path``, refusing one without checkpoints up front (before a
    missing probe suite or model factory could be blamed instead)."""
    from fspace.store import Experiment

    exp = Experiment(path)
    exp.require_checkpoints()
    return exp


def embedding_params(args: argparse.Namespace) -> dict:
    params = {}
    if args.perplexity is not None:
        if args.method != "tsne":
            raise argparse.ArgumentTypeError("--perplexity applies to --method tsne only")
        params["perplexity"] = args.perplexity
    if args.n_neighbors is not None:
        if args.method != "umap":
            raise argparse.ArgumentTypeError("--n-neighbors applies to --method umap only")
        params["n_neighbors"] = args.n_neighbors
    return params


def embed_from_args(args: argparse.Namespace):
    """Run the evaluate + embed pipeline with the options of :func:`add_vectors` and
    :func:`add_embedding`."""
    from fspace.errors import ConfigError
    from fspace.pipeline import embed_experiment

    try:
        params = embedding_params(args)
    except argparse.ArgumentTypeError as e:
        raise ConfigError(str(e)) from None
    return embed_experiment(
        open_experiment(args.experiment),
        method=args.method,
        probes=args.probes,
        output=args.output,
        random_state=args.random_state,
        params=params,
        model_factory=args.model_factory,
        cache=not args.no_cache,
        progress=not args.quiet,
    )
