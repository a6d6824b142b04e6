"""``fspace evaluate EXP``: compute and cache the function vector of every checkpoint."""

from __future__ import annotations

import argparse

from fspace.cli._args import add_experiment, add_vectors


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compute the function vectors of every checkpoint",
        description="Compute the function vector of every checkpoint that lacks one (its "
        "outputs on the probe suite, concatenated) and cache it in the experiment.",
    )
    add_experiment(p)
    add_vectors(p)
    p.add_argument("--runs", nargs="+", metavar="RUN", help="only these runs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fspace.evaluation import evaluate

    vectors = evaluate(
        args.experiment,
        probes=args.probes,
        output=args.output,
        model_factory=args.model_factory,
        runs=args.runs,
        progress=not args.quiet,
    )
    n, d = vectors.matrix.shape
    runs = vectors.points["run"].nunique()
    print(
        f"{n} function vectors of length {d} ({runs} runs) on probe suite "
        f"{vectors.fingerprint}, output {vectors.output}"
    )
    return 0
