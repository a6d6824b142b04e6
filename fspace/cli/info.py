"""``fspace info EXP``: what an experiment holds."""

from __future__ import annotations

import argparse
import warnings
from collections import Counter

from fspace.cli._args import add_experiment


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show what an experiment holds",
        description="Show the runs, groups, checkpoints, probe suites and cached maps of an "
        "experiment, and any file that cannot be read.",
    )
    add_experiment(p)
    p.add_argument("--runs", action="store_true", help="list every run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fspace.store import Experiment

    exp = Experiment(args.experiment)
    runs = exp.runs()
    problems = list(exp.problems)  # checkpoints() starts a new list
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckpts = exp.checkpoints()
    problems += exp.problems
    per_run = Counter(c.run for c in ckpts)
    print(f"experiment  {exp.path}")
    groups = Counter(r.group for r in runs)
    print(f"runs        {len(runs)}" + (f"  ({_counts(groups)})" if groups else ""))
    print(f"checkpoints {len(ckpts)}", end="")
    if ckpts:
        epochs = [c.epoch for c in ckpts]
        print(f"  (epochs {min(epochs)}-{max(epochs)})", end="")
    print()
    metrics = sorted({m for c in ckpts for m in c.metrics})
    if metrics:
        print(f"metrics     {', '.join(metrics)}")
    _print_probes(exp, problems)
    maps = Counter(str(e.key.get("method")) for e in exp.cache.entries("map"))
    if maps:
        print(f"maps        {sum(maps.values())} cached ({_counts(maps)})")
    if args.runs:
        for r in runs:
            print(
                f"  {r.id:<28} group={r.group:<12} seed={r.seed!s:<5} "
                f"checkpoints={per_run.get(r.id, 0)}"
            )
    for p in problems:
        print(f"unreadable  {p.message}")
    return 1 if problems else 0


def _print_probes(exp, problems: list) -> None:
    from fspace.errors import CheckpointError, ProbeMismatchError
    from fspace.store import Problem

    # A broken probe file is reported with the rest, not allowed to hide everything else.
    before = len(exp.problems)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        suites = exp.probe_suites()
    problems += exp.problems[before:]
    for name, fp in suites.items():
        try:
            suite = exp.probes(name)
        except (CheckpointError, ProbeMismatchError) as e:
            problems.append(Problem(exp.path / "probes" / name, str(e)))
            continue
        print(f"probes      {name}: {len(suite)} probes ({suite.describe()}), fingerprint {fp}")
        for (_, output), meta in sorted(exp.vector_outputs(fp).items()):
            kind = (meta.get("spec") or {}).get("kind") or "classification"
            shape = "x".join(str(n) for n in meta.get("layout") or ()) or "?"
            print(f"              vectors {output}: {kind} output, {shape} per checkpoint")


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))
