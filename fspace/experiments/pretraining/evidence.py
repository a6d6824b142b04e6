"""What a pre-training experiment's runs show, set beside the paper: which runs count as
evidence, the test error per depth and group next to Erhan et al. (2010), and the group
separation with bootstrap intervals. Pure functions of recorded data.

The chance rule: a run whose final test error is within :data:`CHANCE_MARGIN` of chance
(``1 - 1/classes``, 0.9 for ten digits) or above it never learned; it is flagged and
left out of every comparison (error table, depth trends, separation statistics).

Example::

    final = final_errors(points_frame(exp, exp.checkpoints()))
    evidence, at_chance = split_at_chance(final)
    print(format_paper_table(paper_table(final)))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from fspace.vectors import FunctionVectors

CHANCE_MARGIN = 0.02
"""A run within this many points (as a fraction) of chance error, or above it, is at chance."""

PAPER: dict[tuple[str, int], str] = {
    ("random", 1): "1.80%",
    ("random", 2): "1.80%",
    ("random", 3): "1.85%",
    ("pretrained", 1): "1.30-1.35%",
    ("pretrained", 2): "1.30-1.35%",
    ("pretrained", 3): "1.30-1.35%",
}
"""MNIST test errors of Erhan et al. (JMLR 2010) for 800 units per layer, read from their
figures: without pre-training about 1.8% (1 and 2 layers) and 1.85% (3); with RBM
pre-training about 1.3-1.35%. Not given for other depths."""

PAPER_CLAIMS = (
    "without pre-training, 2 layers are best",
    "with pre-training, 4 layers are best",
    "pre-training shrinks the spread over seeds",
)
"""Hinton's summary of the paper's depth figures, which :func:`claims` checks."""

TABLE_COLUMNS = ("depth", "group", "mean", "std", "n", "at_chance", "paper")


def chance_error(n_classes: int = 10) -> float:
    """The test error of guessing: ``1 - 1/n_classes``."""
    return 1.0 - 1.0 / n_classes


def split_at_chance(
    final: pd.DataFrame, *, n_classes: int = 10, margin: float = CHANCE_MARGIN
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``final`` (one row per run, with ``test_error``) split into (evidence, at chance):
    a run is at chance when its final test error is at least ``chance - margin``."""
    at = final["test_error"].to_numpy(dtype=np.float64) >= chance_error(n_classes) - margin
    return final[~at].reset_index(drop=True), final[at].reset_index(drop=True)


def paper_table(final: pd.DataFrame, **rule: Any) -> pd.DataFrame:
    """Final test error per depth and group over the runs that learned (mean, sample
    std, n), how many runs were at chance and left out, and the paper's number."""
    import pandas as pd

    evidence, chance = split_at_chance(final, **rule)
    rows = []
    for depth, group in final.groupby(["depth", "group"], sort=True).groups:
        used = evidence[(evidence["depth"] == depth) & (evidence["group"] == group)]
        errors = used["test_error"].to_numpy(dtype=np.float64)
        n_chance = int(((chance["depth"] == depth) & (chance["group"] == group)).sum())
        rows.append(
            {
                "depth": int(depth),
                "group": str(group),
                "mean": float(errors.mean()) if len(errors) else float("nan"),
                "std": float(errors.std(ddof=1)) if len(errors) > 1 else float("nan"),
                "n": len(errors),
                "at_chance": n_chance,
                "paper": PAPER.get((str(group), int(depth)), ""),
            }
        )
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.2f}%"


def format_paper_table(table: pd.DataFrame) -> str:
    """``table`` (:func:`paper_table`) as a Markdown table, groups side by side."""
    groups = sorted(table["group"].unique(), key=lambda g: (g != "pretrained", g))
    head = "| depth | " + " | ".join(f"{g}: test error (n) | paper, {g}" for g in groups) + " |"
    lines = [head, "|---" * (1 + 2 * len(groups)) + "|"]
    for depth in sorted(table["depth"].unique()):
        cells = []
        for g in groups:
            row = table[(table["depth"] == depth) & (table["group"] == g)]
            if row.empty:
                cells += ["", ""]
                continue
            r = row.iloc[0]
            std = "" if r["std"] != r["std"] else f" ± {100 * r['std']:.2f}"
            chance = f", {r['at_chance']} at chance" if r["at_chance"] else ""
            cells += [f"{_pct(r['mean'])}{std} (n={r['n']}{chance})", r["paper"] or "-"]
        lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims(table: pd.DataFrame) -> dict[str, Any]:
    """What the table says about the paper's depth claims (:data:`PAPER_CLAIMS`): the
    best depth of each group (lowest mean over the runs that learned) and, per depth,
    whether the pre-trained runs spread less over seeds than the random ones."""
    best = {}
    for group, part in table.dropna(subset=["mean"]).groupby("group"):
        best[str(group)] = int(part.loc[part["mean"].idxmin(), "depth"])
    spread = {}
    wide = table.pivot(index="depth", columns="group", values="std")
    if {"pretrained", "random"} <= set(wide.columns):
        for depth, row in wide.iterrows():
            if row.notna().all():
                spread[int(depth)] = bool(row["pretrained"] < row["random"])
    return {"best_depth": best, "pretrained_spreads_less": spread}


def separation_tests(
    vectors: FunctionVectors,
    runs: Any,
    *,
    distance: str = "hellinger",
    n_boot: int = 999,
    n_perm: int = 199,
    random_state: int = 0,
) -> pd.DataFrame:
    """Group separation of the runs ``runs`` (ids) in function space, with 95% BCa
    bootstrap intervals over runs (:func:`fspace.stats.group_tests`): 1-NN accuracy,
    distance ratio and silhouette, over all checkpoints and over the last ones (column
    ``checkpoints_used``: "all" or "last")."""
    import pandas as pd

    from fspace.distances import pairwise
    from fspace.stats import group_tests

    keep = vectors.points["run"].isin(list(runs)).to_numpy()
    sub = dataclasses.replace(
        vectors, matrix=vectors.matrix[keep], points=vectors.points[keep].reset_index(drop=True)
    )
    per_group = sub.points.groupby("group")["run"].nunique()
    if len(per_group) < 2 or per_group.max() < 2:
        return pd.DataFrame()  # a separation statistic needs two groups, one of 2+ runs
    d = pairwise(sub, distance)
    parts = []
    for epoch, label in ((None, "all"), ("last", "last")):
        tests = group_tests(
            d, sub.points, epoch=epoch, n_boot=n_boot, n_perm=n_perm, random_state=random_state
        )
        parts.append(tests.assign(checkpoints_used=label, distance=distance))
    return pd.concat(parts, ignore_index=True)


def format_separation(rows: list[Mapping[str, Any]]) -> list[str]:
    """Lines for the rows of :func:`separation_tests` (as records)."""
    lines = []
    for r in rows:
        lines.append(
            f"  {r['statistic']:<14} {r['checkpoints_used']:<4} checkpoints: {r['value']:.3f} "
            f"[{r['low']:.3f}, {r['high']:.3f}] (95% bootstrap over runs; permutation "
            f"p {r['p_value']:.3f}, chance {r['chance']:.3f}; {r['runs']} runs)"
        )
    return lines
