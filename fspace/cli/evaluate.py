"""``fspace evaluate EXP``: compute and cache the function vector of every checkpoint."""

from __future__ import annotations

import argparse

from fspace.cli._args import add_device, add_experiment, add_vectors, open_experiment, plural


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
    add_device(p)
    add_ray_option(p, "compute the missing function vectors on a Ray cluster")
    p.set_defaults(func=run)


def add_ray_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help=f"{what}: 'auto', 'ray://HEAD:10001' or 'HEAD:6379'; alone, the cluster in "
        f"RAY_ADDRESS or a local one. The experiment must be on a filesystem every node "
        f"mounts at the same path. Needs `pip install 'fspace[ray]'`; write --ray=ADDRESS "
        f"before positional arguments",
    )


def run(args: argparse.Namespace) -> int:
    from fspace.device import check_device
    from fspace.errors import ConfigError
    from fspace.evaluation import evaluate

    check_device(args.device, option="--device")
    if args.ray is not None and args.device.strip().lower() != "auto":
        raise ConfigError(
            f"--device={args.device!r} does not apply with --ray: each Ray worker evaluates "
            f"on its own GPU if it has one, else its CPU; leave out --device"
        )
    exp = open_experiment(args.experiment)
    if args.ray is not None:
        from fspace.distributed import evaluate_on_ray

        vectors = evaluate_on_ray(
            exp.path,
            address=args.ray,
            probes=args.probes,
            output=args.output,
            model_factory=args.model_factory,
            runs=args.runs,
            progress=not args.quiet,
        )
    else:
        vectors = evaluate(
            exp,
            probes=args.probes,
            output=args.output,
            model_factory=args.model_factory,
            runs=args.runs,
            progress=not args.quiet,
            device=args.device,
        )
    n, d = vectors.matrix.shape
    runs = vectors.points["run"].nunique()
    print(
        f"{plural(n, 'function vector')} of length {d} ({plural(runs, 'run')}) on probe suite "
        f"{vectors.fingerprint}, {vectors.kind} output as {vectors.output}"
    )
    return 0
