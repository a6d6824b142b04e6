"""``fspace serve [ROOT]``: browse experiments in the web dashboard."""

from __future__ import annotations

import argparse

from fspace.cli._args import positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="browse experiments in the web dashboard",
        description="Serve the dashboard of ROOT, an experiment or a folder of experiments: "
        "training trajectories in function space, checkpoint details and the pre-training "
        "results, updated live while runs are recorded. It has no authentication: keep the "
        "default host unless every machine that can reach it may read the experiments.",
    )
    p.add_argument(
        "root",
        nargs="?",
        default="checkpoints",
        metavar="ROOT_OR_EXPERIMENT",
        help="experiment directory or folder of experiments (default: checkpoints)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1); requests must name it (or, on a "
        "loopback address, localhost) in their Host header",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name the dashboard may be reached by, e.g. behind a proxy "
        "(repeatable); requests naming any other host get 400",
    )
    p.add_argument("--port", type=positive_int, default=8050, help="default: 8050")
    p.add_argument("--open", metavar="NAME", dest="experiment", help="experiment to show first")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fspace.app.server import serve

    serve(
        args.root,
        host=args.host,
        port=args.port,
        open_experiment=args.experiment,
        allow_hosts=args.allow_host,
    )
    return 0
