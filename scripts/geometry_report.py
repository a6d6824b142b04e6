"""Regenerate docs/geometry/: which distance and which map separate pre-trained from
random-init networks, and what the trajectory statistics show.

Usage (after ``fspace demo --no-serve``, which records checkpoints/demo)::

    python scripts/geometry_report.py [EXP] [--out docs/geometry] [--n-boot 999]

For every distance of ``fspace.distances.DISTANCES`` that applies to the experiment it
computes, with :mod:`fspace.stats`, the group separation in function space
(leave-one-run-out 1-NN accuracy, silhouette, between/within distance ratio, each with a
BCa interval over runs and a permutation p-value), the same on the 2-D map of every
embedding method, and the trajectory statistics by group; then it writes
``results.md`` and the figures (PNG) into ``--out``. Every number in results.md comes
from one run of this script.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import fspace
from fspace.distances import DISTANCES, cached_pairwise
from fspace.stats import compare_groups, group_tests, run_table, summarize, trajectory_frame

METHODS = ("inpca", "tsne", "mds", "isomap", "umap")
SEPARATION = ("1-NN accuracy", "silhouette", "distance ratio")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", default="checkpoints/demo")
    p.add_argument("--out", default="docs/geometry")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--n-boot", type=int, default=999)
    p.add_argument("--n-perm", type=int, default=999)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--trajectory-distance", default="hellinger")
    return p.parse_args()


def ci(row) -> str:
    return f"{row['value']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def pval(p: float) -> str:
    return "-" if not np.isfinite(p) else f"{p:.3f}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def separation_rows(tests: pd.DataFrame) -> list[str]:
    t = tests.set_index("statistic")
    cells = [ci(t.loc[s]) for s in SEPARATION]
    return [*cells, " / ".join(pval(t.loc[s, "p_value"]) for s in SEPARATION)]


SEP_HEADER = [f"{s} [95% CI]" for s in SEPARATION] + ["p (each)"]


def comparison_table(comparisons: pd.DataFrame, first: list[str] | None = None) -> list[list]:
    rows = []
    for q, part in comparisons.groupby("quantity", sort=False):
        part = part.set_index("label")
        p = part["p_value"].dropna()
        rows.append(
            [*(first or []), q, *(ci(part.loc[lab]) for lab in part.index), pval(p.iloc[0])]
        )
    return rows


class Report:
    """Everything computed for one experiment, then rendered as markdown."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.exp = fspace.Experiment(args.experiment)
        self.vectors = fspace.evaluate(self.exp, progress=False)
        suite = self.exp.probes()
        self.targets = None if suite.targets is None else suite.targets.numpy()
        self.kw = dict(n_boot=args.n_boot, n_perm=args.n_perm, random_state=args.random_state)
        kind = self.vectors.kind
        self.distances = [e.name for e in DISTANCES if kind in e.tags.get("kinds", ())]
        self.methods = [m for m in args.methods.split(",") if m]
        self.matrices, self.results, self.last, self.maps, self.embeddings = {}, {}, {}, {}, {}

    def compute(self) -> None:
        for name in self.distances:
            start = time.perf_counter()
            d = cached_pairwise(self.exp, self.vectors, name)
            self.matrices[name] = d
            self.results[name] = summarize(
                self.vectors, d, distance=name, targets=self.targets, **self.kw
            )
            self.last[name] = group_tests(d, self.vectors.points, epoch="last", **self.kw)
            for method in self.methods:
                self.map_tests(name, method, d)
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)

    def map_tests(self, distance: str, method: str, d: np.ndarray) -> None:
        rs = self.args.random_state
        emb = fspace.embed(self.vectors, method, distance=distance, precomputed=d, random_state=rs)
        xy = emb.frame[["x", "y"]].to_numpy(dtype=np.float64)
        dxy = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
        self.maps[distance, method] = group_tests(dxy, emb.frame, **self.kw), emb.quality
        self.embeddings[distance, method] = emb

    def figures(self, out: Path) -> list[str]:
        from fspace.embedding import METHODS as REGISTRY
        from fspace.plot.stats import stats_figure, trajectory_stat_figure

        written = []
        for method in ("inpca", "tsne"):
            emb = self.embeddings.get(("bhattacharyya", method))
            if emb is None:
                continue
            label = REGISTRY.get(method).label
            fig = fspace.trajectory_figure(
                emb.frame, title=f"{label}, Bhattacharyya distance", webgl=False
            )
            written.append(f"map-{method}-bhattacharyya.png")
            fspace.write_figure(fig, out / written[-1])
        result = self.results[self.args.trajectory_distance]
        fig = stats_figure(result, title=f"{result.distance} distance, by group")
        written.append(f"trajectories-{result.distance}.png")
        fspace.write_figure(fig, out / written[-1])
        fig = trajectory_stat_figure(result.trajectories, "progress", title="progress to truth")
        written.append(f"progress-{result.distance}.png")
        fspace.write_figure(fig, out / written[-1])
        return written

    def by_depth(self) -> str:
        """Trajectory comparisons within each depth (depth confounds the pooled numbers)."""
        points = self.vectors.points
        name = self.args.trajectory_distance
        rows = []
        for depth in sorted(points["depth"].unique()):
            keep = (points["depth"] == depth).to_numpy()
            sub = points[keep].reset_index(drop=True)
            d = self.matrices[name][np.ix_(keep, keep)]
            runs = run_table(trajectory_frame(d, sub))
            comp = compare_groups(
                d, sub, runs, quantities=("path_length", "start_to_end"), **self.kw
            )
            rows += comparison_table(comp, [str(depth)])
        header = ["depth", "quantity", "pretrained", "random", "pretrained - random", "p"]
        return markdown(header, rows)

    def depth_separation(self) -> str:
        """1-NN accuracy and silhouette within each depth, every distance, all checkpoints."""
        points = self.vectors.points
        depths = sorted(points["depth"].unique())
        rows = []
        for name, d in self.matrices.items():
            cells = []
            for depth in depths:
                keep = (points["depth"] == depth).to_numpy()
                sub = points[keep].reset_index(drop=True)
                t = group_tests(d[np.ix_(keep, keep)], sub, **self.kw).set_index("statistic")
                cells.append(f"{ci(t.loc['1-NN accuracy'])} / {ci(t.loc['silhouette'])}")
            rows.append([name, *cells])
        return markdown(["distance", *(f"depth {d}: 1-NN / silhouette" for d in depths)], rows)

    def settings(self) -> str:
        """The recorded settings shared by every run (from the runs' configs)."""
        p = self.vectors.points
        cols = ("method", "dataset", "width", "pretrain_epochs", "finetune_epochs", "n_train")
        parts = []
        for c in cols:
            if c in p.columns:
                values = sorted(map(str, p[c].dropna().unique()))
                parts.append(f"{c} {'/'.join(values)}")
        depths = sorted(p["depth"].unique()) if "depth" in p.columns else []
        seeds = sorted(p["seed"].unique())
        parts += [f"depths {', '.join(map(str, depths))}", f"seeds {', '.join(map(str, seeds))}"]
        return "; ".join(parts)

    def final_errors(self) -> str:
        p = self.vectors.points
        last = p.sort_values(["run", "epoch", "step"]).groupby("run").tail(1)
        stats = last.groupby(["group", "depth"])["test_error"].agg(["mean", "std", "count"])
        rows = [
            [g, d, f"{r['mean']:.3f} ± {r['std']:.3f}", int(r["count"])]
            for (g, d), r in stats.iterrows()
        ]
        return markdown(["group", "depth", "final test error (mean ± sd)", "runs"], rows)


def best(tests: dict, statistic: str) -> str:
    """Which keys of ``tests`` reach the highest ``statistic`` (all of them on a tie),
    and whether the runner-up's value lies inside the best one's interval."""
    rows = {k: t.set_index("statistic").loc[statistic] for k, t in tests.items()}
    top = max(r["value"] for r in rows.values())
    keys = [k for k, r in rows.items() if np.isclose(r["value"], top)]
    text = (
        ", ".join(f"**{k if isinstance(k, str) else f'{k[1]} of {k[0]}'}**" for k in keys)
        + f" ({ci(rows[keys[0]])})"
    )
    others = [r["value"] for k, r in rows.items() if k not in keys]
    if others and max(others) >= rows[keys[0]]["low"]:
        text += f"; the next best value ({max(others):.3f}) lies inside this interval"
    return text


def render(rep: Report, figures: list[str], seconds: float) -> str:
    """results.md: the tables, with sentences that only restate what they show."""
    a, v = rep.args, rep.vectors
    space = {k: r.tests for k, r in rep.results.items()}
    lines = [
        "# Function-space geometry of the pre-training experiment",
        "",
        f"Generated by `python scripts/geometry_report.py {a.experiment}` in {seconds:.0f} s "
        f"({len(v.points['run'].unique())} runs, {len(v)} checkpoints, probe suite of "
        f"{v.layout[0]} inputs x {v.layout[-1]} classes). Intervals: 95% BCa bootstrap over "
        f"runs resampled within groups ({a.n_boot} resamples); p: permutation of the group "
        f"labels across runs ({a.n_perm} permutations, so p >= {1 / (a.n_perm + 1):.3f}); "
        f"random_state {a.random_state}.",
        "",
        f"Experiment settings: {rep.settings()}.",
        "",
        "Final test error, for context:",
        "",
        rep.final_errors(),
        "",
        "## Separation in function space, by distance",
        "",
        "All checkpoints (1-NN: each checkpoint's nearest checkpoint of another run; "
        "silhouette and ratio on the run-by-run distance averaged at equal epoch):",
        "",
        markdown(["distance", *SEP_HEADER], [[k, *separation_rows(t)] for k, t in space.items()]),
        "",
        "Last checkpoints only (after fine-tuning):",
        "",
        markdown(
            ["distance", *SEP_HEADER], [[k, *separation_rows(t)] for k, t in rep.last.items()]
        ),
        "",
    ]
    for title, tests in (("all checkpoints", space), ("last checkpoints", rep.last)):
        for stat in ("1-NN accuracy", "silhouette"):
            lines.append(f"- {title}, highest {stat}: {best(tests, stat)}.")
    chance = space[rep.distances[0]].set_index("statistic").loc["1-NN accuracy", "chance"]
    lines += [f"- 1-NN accuracy by chance (mean under permutation): {chance:.3f}.", ""]
    lines += [
        "Within each depth (4 pre-trained and 4 random-init runs; all checkpoints):",
        "",
        rep.depth_separation(),
        "",
    ]
    lines += render_maps(rep, figures)
    lines += render_trajectories(rep, figures)
    lines += [
        "## How these numbers are computed",
        "",
        "- `fspace.stats` (the same functions as `fspace stats EXP --distance D`). Bootstrap "
        "resamples runs, never single checkpoints; a run drawn twice never pairs with its "
        "copy. Coverage of the intervals (ratio, silhouette) and uniformity of the "
        "permutation p-values under the null are tested in `tests/test_stats_resampling.py`; "
        "the 1-NN accuracy takes few distinct values, so its interval is coarse and its "
        "p-value conservative.",
        "- Map separation uses the Euclidean distance between the 2-D coordinates, as the "
        "eye reads the map (for InPCA too, whose second axis may be time-like).",
        "- UMAP's spectral initialisation fails on the top-1 disagreement distance (its "
        "warning: too small an eigengap); umap-learn then falls back to an initialisation that "
        "differs from one run of this script to the next, so that row changes on a rerun. "
        "Every other number is the same on a rerun.",
        "- Bhattacharyya and symmetric KL are divergences, not metrics: path lengths under "
        "them add up divergences of consecutive checkpoints, and depend on how often the "
        "checkpoints are taken.",
        "- Progress = d(ignorance, P) / (d(ignorance, P) + d(P, truth)), with ignorance the "
        "uniform prediction and truth the one-hot targets of the probe suite, both as "
        "pseudo-checkpoints in the same distance.",
        "",
    ]
    return "\n".join(lines)


def render_maps(rep: Report, figures: list[str]) -> list[str]:
    rows = []
    for (distance, method), (tests, quality) in rep.maps.items():
        t = tests.set_index("statistic")
        q = ", ".join(
            f"{short} {quality[k]:.3f}"
            for k, short in (
                ("trustworthiness", "T"),
                ("continuity", "C"),
                ("explained_stress", "stress"),
            )
            if isinstance(quality.get(k), (int, float))
        )
        if quality.get("axis_signs"):
            q += ", axes " + "".join("+" if x > 0 else "-" for x in quality["axis_signs"])
        rows.append(
            [distance, method, ci(t.loc["1-NN accuracy"]), ci(t.loc["silhouette"]), q or "-"]
        )
    header = ["distance", "map", "1-NN accuracy [95% CI]", "silhouette [95% CI]", "faithfulness"]
    lines = ["## Separation on the 2-D maps", "", markdown(header, rows), ""]
    for stat in ("1-NN accuracy", "silhouette"):
        lines.append(
            f"- highest {stat} on a map: {best({k: v[0] for k, v in rep.maps.items()}, stat)}."
        )
    lines.append("")
    maps = [f for f in figures if f.startswith("map-")]
    if maps:
        lines += ["| " + " | ".join(maps) + " |", "|" + "---|" * len(maps)]
        lines += ["| " + " | ".join(f"![{f}]({f})" for f in maps) + " |", ""]
    return lines


def render_trajectories(rep: Report, figures: list[str]) -> list[str]:
    name = rep.args.trajectory_distance
    comp = rep.results[name].comparisons
    labels = list(dict.fromkeys(comp["label"]))
    header = ["quantity", *labels, "p"]
    lines = [
        "## Trajectory statistics",
        "",
        f"Per run under the {name} distance (mean over runs [95% CI]; p two-sided, "
        "permutation). path_length: sum of distances between consecutive checkpoints; "
        "start_to_end: first to last checkpoint; to_truth and progress at the last "
        "checkpoint; final spread: mean distance between the last checkpoints of two runs "
        "of the group.",
        "",
        markdown(header, comparison_table(comp)),
        "",
        "The pre-trained minus random difference under every distance:",
        "",
    ]
    rows = []
    for distance, result in rep.results.items():
        c = result.comparisons
        diff = c[c["label"].str.contains(" - ")].set_index("quantity")
        rows.append(
            [
                distance,
                *(f"{ci(diff.loc[q])}, p {pval(diff.loc[q, 'p_value'])}" for q in diff.index),
            ]
        )
    diff_names = list(comp[comp["label"].str.contains(" - ")]["quantity"])
    lines += [markdown(["distance", *diff_names], rows), ""]
    lines += [
        "Within each depth (4 runs per group: the exact two-sided permutation p-value "
        "cannot fall below 2/70 = 0.029 there; the values below are Monte Carlo estimates "
        "from random permutations and scatter around it):",
        "",
        rep.by_depth(),
        "",
    ]
    lines += [f"![{f}]({f})" for f in figures if not f.startswith("map-")] + [""]
    return lines


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rep = Report(args)
    rep.compute()
    figures = rep.figures(out)
    (out / "results.md").write_text(render(rep, figures, time.perf_counter() - start))
    print(f"wrote {out / 'results.md'} and {len(figures)} figures")


if __name__ == "__main__":
    main()
