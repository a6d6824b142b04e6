"""What any recorded experiment supports: its groups, its metrics, their final values and
their curves over training, as pure functions of a points frame.

The groups of an experiment are the runs' ``group`` and the run settings that vary
between runs (a depth, a learning rate), seeds and per-run names left out. Each run gets
a ``label`` naming its group and settings (``"pretrained · depth=3"``); the tables and
curves are by label, spread over the seeds of a label.

Example::

    exp = Experiment("checkpoints/cnn")
    frame = points_frame(exp, exp.checkpoints())
    design = describe(frame, config_keys(exp), metric_keys(exp))
    print(design.factors, design.metrics)
    print(metric_summary(final_values(design), design.metric))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# Metrics to show first, when present: errors, then losses, then accuracies.
PREFERRED = ("test_error", "val_error", "test_loss", "val_loss", "test_accuracy", "accuracy")
# Settings whose variation is an axis of the results, checked in this order.
AXES = ("depth", "n_layers", "layers", "width", "hidden", "lr", "learning_rate")
NOT_FACTORS = frozenset({"run", "seed", "epoch", "step", "checkpoint"})
SEP = " · "
MAX_LABELS = 12


@dataclass(frozen=True)
class Design:
    """The runs of an experiment and what can be shown of them.

    ``points``: the points frame with a ``label`` column; ``runs``: one row per run
    (``run, group, seed, label`` and the factors); ``factors``: the columns whose values
    tell the groups apart; ``metrics``: numeric metric columns, main one first;
    ``axis``: a numeric setting that varies (e.g. ``depth``) or None; ``x``: ``epoch``
    or ``step``, the time axis of the curves; ``notes``: why a part does not apply.
    """

    points: pd.DataFrame
    runs: pd.DataFrame
    factors: list[str]
    metrics: list[str]
    axis: str | None
    x: str
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def metric(self) -> str | None:
        """The metric shown first."""
        return self.metrics[0] if self.metrics else None

    @property
    def labels(self) -> list[str]:
        """The labels, in the runs' order."""
        return list(dict.fromkeys(self.runs["label"]))


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, np.generic))


def _same_partition(a: pd.Series, b: pd.Series) -> bool:
    pairs = set(zip(a.astype(str), b.astype(str), strict=True))
    return len(pairs) == a.nunique() == b.nunique()


def factors_of(runs: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    """The columns of ``runs`` (one row per run) that tell groups of runs apart.

    ``group`` first, then each of ``keys`` that takes two or more values, unless it is a
    per-run name (a different value on each of three or more runs) or splits the runs
    exactly as a factor already kept does (``pretraining`` beside ``group``).
    """
    out: list[str] = []
    for key in ["group", *keys]:
        if key in NOT_FACTORS or key not in runs.columns or key in out:
            continue
        values = runs[key]
        if values.isna().any() or values.nunique() < 2:
            continue
        if len(runs) >= 3 and values.nunique() == len(runs):
            continue
        if any(_same_partition(values, runs[k]) for k in out):
            continue
        out.append(key)
    return out


def _label(row: pd.Series, factors: Sequence[str]) -> str:
    parts = [str(row[f]) if f == "group" else f"{f}={row[f]}" for f in factors]
    return SEP.join(parts) or str(row["group"])


def axis_of(runs: pd.DataFrame, factors: Sequence[str]) -> str | None:
    """A numeric factor other than ``group`` to plot final values against, or None."""
    numeric = [
        f
        for f in factors
        if f != "group"
        and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in runs[f])
    ]
    ranked = [a for a in AXES if a in numeric] + [f for f in numeric if f not in AXES]
    return ranked[0] if ranked else None


def metrics_of(points: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    """The columns of ``keys`` holding a finite number somewhere: preferred ones first
    (errors, losses, accuracies), then the others in name order."""
    import pandas as pd

    found = []
    for key in keys:
        if key in points.columns:
            values = pd.to_numeric(points[key], errors="coerce").to_numpy(dtype=np.float64)
            if np.isfinite(values).any():
                found.append(key)
    return [m for m in PREFERRED if m in found] + sorted(m for m in found if m not in PREFERRED)


def describe(
    points: pd.DataFrame, config: Iterable[str] = (), metrics: Iterable[str] | None = None
) -> Design:
    """The :class:`Design` of a points frame (:func:`fspace.evaluation.points_frame`).

    ``config`` names the columns that are run settings and ``metrics`` those that are
    recorded metrics (the frame mixes them; default: every column that is neither a
    setting nor one of ``run, group, seed, epoch, step, checkpoint``). With more than
    ``MAX_LABELS`` labels only ``group`` tells the runs apart.
    """
    config = [c for c in dict.fromkeys(config) if c in points.columns]
    if metrics is None:
        metrics = [c for c in points.columns if c not in {*NOT_FACTORS, "group", *config}]
    first = points.drop_duplicates("run").set_index("run", drop=False)
    runs = first[[c for c in ["run", "group", "seed", *config] if c in first.columns]]
    keep = [c for c in config if all(_scalar(v) for v in runs[c].dropna())]
    factors = factors_of(runs, keep)
    if runs.groupby(factors or ["group"]).ngroups > MAX_LABELS:
        factors = factors[:1] if factors and factors[0] == "group" else []
    runs = runs.assign(label=[_label(r, factors) for _, r in runs.iterrows()])
    runs = runs.reset_index(drop=True)
    points = points.assign(label=points["run"].map(runs.set_index("run")["label"]))
    x = "epoch" if points.groupby("run")["epoch"].nunique().max() > 1 else "step"
    design = Design(points, runs, factors, metrics_of(points, metrics), None, x)
    return _with_notes(design, axis_of(runs, factors))


def _with_notes(design: Design, axis: str | None) -> Design:
    notes = {}
    if not design.metrics:
        notes["metrics"] = "the checkpoints of these runs hold no numeric metrics"
    if not design.factors:
        notes["groups"] = f"all {len(design.runs)} runs are in one group with the same settings"
    if axis is None:
        notes["axis"] = "no depth (or other numeric setting) varies between these runs"
    return Design(**{**vars(design), "axis": axis, "notes": notes})


def final_values(design: Design) -> pd.DataFrame:
    """Each run's last checkpoint (latest epoch, then step): one row per run with
    ``run, group, seed, label``, the factors, ``epoch`` and the metrics."""
    order = design.points.sort_values(["run", "epoch", "step"], kind="stable")
    last = order.groupby("run").tail(1)
    columns = ["run", "group", "seed", "label", *design.factors, "epoch", *design.metrics]
    return last.loc[:, list(dict.fromkeys(columns))].reset_index(drop=True)


def metric_summary(final: pd.DataFrame, metric: str, by: Sequence[str] = ("label",)) -> Any:
    """``metric`` over the runs of each ``by`` value: mean, sample std (NaN for one
    run), min, max and n (the runs with a finite value)."""
    import pandas as pd

    values = final.assign(_v=pd.to_numeric(final[metric], errors="coerce"))
    values = values[np.isfinite(values["_v"].to_numpy(dtype=np.float64))]
    stats = values.groupby(list(by), sort=False)["_v"].agg(["mean", "std", "min", "max", "count"])
    return stats.rename(columns={"count": "n"}).reset_index()


def curves(design: Design, metric: str) -> pd.DataFrame:
    """``metric`` against the time axis (``design.x``) per label: the mean over the
    label's runs with its std, min, max and n at each time; NaN values left out."""
    import pandas as pd

    x = design.x
    frame = design.points.assign(_v=pd.to_numeric(design.points[metric], errors="coerce"))
    frame = frame[np.isfinite(frame["_v"].to_numpy(dtype=np.float64))]
    # One value per run and time: its latest within an epoch.
    per_run = frame.sort_values(["run", x, "step"]).groupby(["label", "run", x]).tail(1)
    stats = per_run.groupby(["label", x], sort=True)["_v"].agg(
        ["mean", "std", "min", "max", "count"]
    )
    return stats.rename(columns={"count": "n"}).reset_index()


def separation_by(design: Design) -> tuple[str | None, str]:
    """The column whose values the separation statistics compare (``group`` when it
    varies, else ``label``) and, when none applies, why."""
    runs = design.runs
    by = "group" if runs["group"].nunique() >= 2 else "label"
    counts = runs[by].value_counts()
    if len(counts) < 2:
        return None, "all runs are in one group: there is nothing to separate"
    if counts.max() < 2:
        return None, (
            "every group has a single run: separation needs two runs in some group "
            "(record more seeds)"
        )
    return by, ""


def fmt(value: float, digits: int = 3) -> str:
    """A number for a table: fixed digits, or an em dash for NaN."""
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"
