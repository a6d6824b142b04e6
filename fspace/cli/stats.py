"""``fspace stats EXP [EXP2 ...]``: trajectory and group statistics in function space."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from fspace.cli._args import (
    add_choice,
    add_device,
    add_entry_params,
    add_vectors,
    check_csv,
    chosen_params,
    interval_level,
    plural,
    positive_int,
    say_for,
    write_csv,
)

if TYPE_CHECKING:
    import pandas as pd

    from fspace.stats import StatsResult

PARAM_PREFIX = "distance_"


def register(sub) -> None:
    from fspace.distances import DISTANCES

    p = sub.add_parser(
        "stats",
        help="trajectory and group statistics in function space, with intervals and p-values",
        description="Per run: path length, distance from the start, distance to the uniform "
        "prediction and to the targets, progress between them. Between runs: distance at "
        "equal epoch and discrete Frechet distance. Between groups: 1-NN accuracy, "
        "between/within distance ratio and silhouette, each with a bootstrap interval over "
        "runs and a permutation p-value. Several experiments are analysed together when "
        "they share a probe suite.",
    )
    p.add_argument("experiments", metavar="EXP", nargs="+", help="experiment directories")
    add_vectors(p)
    group = p.add_argument_group("statistics")
    add_choice(group, "--distance", DISTANCES, default="euclidean", help="distance")
    group.add_argument(
        "--by",
        default="group",
        metavar="COLUMN",
        help="what groups runs: group (default), experiment, or any column constant per "
        "run (depth, seed, ...)",
    )
    group.add_argument(
        "--epoch",
        default=None,
        metavar="all|last|N",
        help="checkpoints the group statistics use: all (default; runs compared at equal "
        "epoch), last (each run's last), or epoch N",
    )
    group.add_argument(
        "--n-boot", type=positive_int, default=999, metavar="N", help="bootstrap resamples (999)"
    )
    group.add_argument(
        "--n-perm", type=positive_int, default=999, metavar="N", help="label permutations (999)"
    )
    group.add_argument(
        "--level",
        type=interval_level,
        default=0.95,
        metavar="X",
        help="interval level, between 0 and 1 (0.95)",
    )
    group.add_argument("--random-state", type=int, default=0, metavar="SEED", help="default: 0")
    add_device(group)
    group.add_argument(
        "--csv",
        metavar="FILE",
        help="write the per-run table ('-': to standard output, with the report on standard error)",
    )
    group.add_argument(
        "--figure", metavar="FILE", help="distance from start and between runs against epoch"
    )
    params = p.add_argument_group("distance parameters", "each applies to the distances it names")
    add_entry_params(p, params, DISTANCES, prefix=PARAM_PREFIX)
    p.set_defaults(func=run)


def parse_epoch(text: str | None) -> int | str | None:
    """``--epoch``: None for all, ``"last"``, or an int."""
    from fspace.errors import ConfigError

    if text is None or text == "all":
        return None
    if text == "last":
        return text
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--epoch takes all, last or an epoch number, got {text!r}") from None


def load(args: argparse.Namespace):
    """The function vectors of the experiments, the targets of their probe suite and
    the experiment that caches distances (None for several)."""
    from fspace.cli._args import open_experiment
    from fspace.evaluation import evaluate

    exps = [open_experiment(path) for path in args.experiments]
    options: dict[str, Any] = {"probes": args.probes, "progress": not args.quiet}
    options["device"] = args.device
    if args.output is not None:
        options["output"] = args.output
    if args.model_factory is not None:
        options["model_factory"] = args.model_factory
    vectors = evaluate(exps[0] if len(exps) == 1 else exps, **options)
    suite = exps[0].probes(args.probes)
    targets = None if suite.targets is None else suite.targets.numpy()
    return vectors, targets, exps[0] if len(exps) == 1 else None


def run(args: argparse.Namespace) -> int:
    from fspace.device import check_device
    from fspace.distances import DISTANCES, cached_pairwise
    from fspace.export import check_destination
    from fspace.stats import summarize

    epoch = parse_epoch(args.epoch)
    check_device(args.device, option="--device")
    params = chosen_params(args, DISTANCES, args.distance, prefix=PARAM_PREFIX, option="--distance")
    check_csv(args.csv)  # the files are refused before the slow part, not after
    if args.figure:
        check_destination(args.figure)
    vectors, targets, cache = load(args)
    distances = cached_pairwise(cache, vectors, args.distance, device=args.device, **params)
    result = summarize(
        vectors,
        distances,
        distance=args.distance,
        by=args.by,
        epoch=epoch,
        targets=targets,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        level=args.level,
        random_state=args.random_state,
        params=params,
    )
    # the files first: a report that cannot be printed must not lose them
    say = say_for(args.csv)
    write_csv(args.csv, result.runs)
    if args.figure:
        from fspace.export import write_figure
        from fspace.plot.stats import stats_figure

        write_figure(stats_figure(result), args.figure)
        say(f"wrote {args.figure}")
    say(report(result, args.level, args.n_boot, args.n_perm))
    return 0


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3f}" if abs(x) < 1e4 else f"{x:.4g}"


def _ci(value: float, low: float, high: float) -> str:
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def report(result: StatsResult, level: float, n_boot: int, n_perm: int) -> str:
    """The readable tables ``fspace stats`` prints."""
    from fspace.stats.pairs import pair_summary

    runs = result.runs
    lines = [
        f"{plural(len(runs), 'run')}, {plural(len(result.trajectories), 'checkpoint')}; "
        f"distance {result.distance}; "
        f"runs grouped by {result.by}"
    ]
    pct = f"{level:.0%}"
    if result.tests is not None:
        lines += [
            "",
            f"group separation ({result.selection}; {pct} BCa intervals over {n_boot} "
            f"resamples of runs; p-values from {n_perm} label permutations; chance = mean "
            f"under permutation):",
        ]
        rows = [
            [r.statistic, _ci(r.value, r.low, r.high), _num(r.p_value), _num(r.chance)]
            for r in result.tests.itertuples()
        ]
        lines += _table(["statistic", f"value [{pct} interval]", "p", "chance"], rows)
    if result.comparisons is not None:
        two = result.comparisons["p_value"].notna().any()
        how = "; difference with a two-sided permutation p" if two else ""
        lines += ["", f"trajectories by {result.by} (mean over runs [{pct} interval]{how}):"]
        lines += _comparison_table(result.comparisons)
    lines += [
        "",
        "pairs of runs (mean distance: at equal epoch, Frechet, between last checkpoints):",
    ]
    summary = pair_summary(result.pairs)
    rows = [
        [r.pair, str(r.pairs), _num(r.equal_epoch), _num(r.frechet), _num(r.final)]
        for r in summary.itertuples()
    ]
    lines += _table(["pair", "pairs", "equal epoch", "Frechet", "final"], rows)
    if result.endpoints:
        lines += ["", f"note: {result.endpoints}"]
    return "\n".join(lines)


def _comparison_table(comparisons: pd.DataFrame) -> list[str]:
    labels = list(dict.fromkeys(comparisons["label"]))
    header = ["quantity"]
    for label in labels:
        runs = comparisons.loc[comparisons["label"] == label, "runs"].iloc[0]
        header.append(label if " - " in label else f"{label} ({runs})")
    has_p = comparisons["p_value"].notna().any()
    if has_p:
        header.append("p")
    rows = []
    for quantity, part in comparisons.groupby("quantity", sort=False):
        part = part.set_index("label")
        row = [quantity] + [_ci(*part.loc[lab, ["value", "low", "high"]]) for lab in labels]
        if has_p:
            given = part["p_value"].dropna()  # a comparison may have none (one run a side)
            row.append(_num(given.iloc[0]) if len(given) else "-")
        rows.append(row)
    return _table(header, rows)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ["  " + fmt.format(*header).rstrip()] + ["  " + fmt.format(*r).rstrip() for r in rows]
