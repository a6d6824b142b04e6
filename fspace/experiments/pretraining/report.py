"""The figures and numbers of a recorded pre-training experiment, written to a folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fspace import _atomic
from fspace.experiments.base import report_folder
from fspace.store import Experiment

FIGURES = (
    "trajectories",
    "error_histograms",
    "error_vs_depth",
    "receptive_fields",
    "weight_change",
)


def pretraining_figures(
    exp: Experiment, *, method: str = "tsne", random_state: int = 0, progress: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build every figure of the pre-training analysis and the summary numbers.

    Returns ``(figures, numbers)``: plotly figures keyed by :data:`FIGURES`, and the
    dictionary of :func:`.analysis.summary` with the evidence added: runs at chance
    (:mod:`.evidence`, left out of the error figures, the table and the separation),
    the table beside the paper, the depth claims, the separation statistics with
    bootstrap intervals, and the learning rates and trials.
    """
    from fspace.evaluation import evaluate, points_frame
    from fspace.experiments.pretraining import analysis
    from fspace.experiments.pretraining import figures as plots
    from fspace.pipeline import embed_vectors
    from fspace.plot import trajectory_figure

    vectors = evaluate(exp, progress=progress)
    emb = embed_vectors(exp, vectors, method=method, random_state=random_state, progress=progress)
    frame = points_frame(exp, exp.checkpoints())
    final = analysis.final_errors(frame)
    changes = analysis.weight_changes(exp)
    numbers, used = _evidence_numbers(exp, frame, final, (vectors, emb.frame), changes)
    note = f" ({len(final) - len(used)} runs at chance left out)" if len(used) < len(final) else ""
    figures = {
        "trajectories": trajectory_figure(
            emb.frame, title=f"Function-space trajectories ({emb.method}), coloured by epoch"
        ),
        "error_histograms": plots.error_histogram_figure(
            used, title=f"Final test error{note}" if note else None
        ),
        "error_vs_depth": plots.error_depth_figure(
            used, title=f"Final test error against depth, spread over seeds{note}"
        ),
        "receptive_fields": _receptive_fields(exp, final),
        "weight_change": plots.weight_change_figure(changes),
    }
    return figures, numbers


def _evidence_numbers(exp, frame, final, spaces, changes, random_state=0):
    """The summary numbers over the runs that left chance, and those runs' final rows."""
    import dataclasses

    from fspace.analysis import separation
    from fspace.experiments.pretraining import analysis, evidence

    vectors, map_frame = spaces
    used, chance = evidence.split_at_chance(final)
    keep = vectors.points["run"].isin(used["run"]).to_numpy()
    sub = dataclasses.replace(
        vectors, matrix=vectors.matrix[keep], points=vectors.points[keep].reset_index(drop=True)
    )
    sub_map = map_frame[map_frame["run"].isin(used["run"])]
    sep = separation(sub, sub_map) if sub.points["group"].nunique() > 1 else None
    numbers = analysis.summary(used, changes, sep)
    table = evidence.paper_table(final)
    tests = evidence.separation_tests(vectors, used["run"], random_state=random_state)
    numbers.update(
        chance_rule=f"final test error >= {evidence.chance_error():.2f} - "
        f"{evidence.CHANCE_MARGIN:.2f}",
        at_chance=[{"run": r.run, "test_error": float(r.test_error)} for r in chance.itertuples()],
        paper_table=table.to_dict("records"),
        claims=evidence.claims(table),
        separation_tests=tests.to_dict("records"),
        rates=_rates(frame),
        trials=_trials(exp),
    )
    return numbers, used


def _rates(frame) -> list[dict[str, Any]]:
    cols = [c for c in ("lr", "lr_selected", "pretrain_lr", "pretrain_lr_selected") if c in frame]
    if "depth" not in frame or not cols:
        return []
    runs = frame.drop_duplicates("run").sort_values(["depth", "group"])
    rows = runs.groupby(["depth", "group"], sort=True)[cols].first().reset_index()
    rows = rows.astype(object).where(rows.notna(), None)
    return [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")]


def _trials(exp: Experiment) -> list[dict[str, Any]]:
    keys = ("depth", "group", "lr", "pretrain_lr", "valid_error", "status", "seconds")
    return [{"trial": name, **{k: rec.get(k) for k in keys}} for name, rec in exp.trials().items()]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _receptive_fields(exp: Experiment, final):
    from fspace.experiments.pretraining import analysis
    from fspace.experiments.pretraining import figures as plots

    pretrained = final[final["group"] == "pretrained"].sort_values(["depth", "seed"])
    pool = pretrained if len(pretrained) else final.sort_values(["depth", "seed"])
    if not len(pool):
        return plots.receptive_fields_figure(*_no_filters())
    run = pool.iloc[-1]["run"]
    before, after = analysis.receptive_fields(exp, run)
    return plots.receptive_fields_figure(
        before, after, title=f"First-layer receptive fields of {run}, before and after fine-tuning"
    )


def _no_filters():
    import numpy as np

    empty = np.zeros((0, 1, 1), dtype=np.float32)
    return empty, empty


def write_report(
    experiment: Experiment | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    formats: tuple[str, ...] = ("png", "html"),
    method: str = "tsne",
    random_state: int = 0,
    progress: bool = True,
) -> tuple[dict[str, Any], list[Path]]:
    """Write every figure in each of ``formats`` and ``summary.json`` into ``out_dir``."""
    from tqdm.auto import tqdm

    from fspace.export import write_figure

    out = report_folder(out_dir, formats)
    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    figures, numbers = pretraining_figures(
        exp, method=method, random_state=random_state, progress=progress
    )
    jobs = [(name, fmt) for name in figures for fmt in formats]
    written = []
    for name, fmt in tqdm(jobs, desc="figures", unit="file", disable=not progress, leave=False):
        written.append(write_figure(figures[name], out / f"{name}.{fmt}"))
    summary_path = out / "summary.json"
    _atomic.write_text(summary_path, json.dumps(numbers, indent=2, default=float))
    written.append(summary_path)
    written.append(_atomic.write_text(out / "results.md", results_markdown(numbers)))
    return numbers, written


def results_markdown(numbers: dict[str, Any]) -> str:
    """The results of :func:`pretraining_figures`'s numbers as a Markdown page: the
    table beside the paper, the runs at chance, the depth claims, the separation with
    intervals, and the learning rates with their trials."""
    import pandas as pd

    from fspace.experiments.pretraining import evidence

    lines = ["# Pre-training experiment: results against Erhan et al. (2010)", ""]
    table = pd.DataFrame(numbers.get("paper_table", []))
    if len(table):
        lines += [evidence.format_paper_table(table), ""]
        lines += ["(mean ± sample std over the seeds that left chance; paper: MNIST, 800 units.)"]
    lines += ["", f"Chance rule: a run with {numbers.get('chance_rule')} is left out."]
    for r in numbers.get("at_chance", []):
        lines.append(f"- at chance: {r['run']} (final test error {r['test_error']:.4f})")
    if not numbers.get("at_chance"):
        lines.append("- no run ended at chance")
    c = numbers.get("claims", {})
    lines += ["", "Depth claims (Hinton's summary: " + "; ".join(evidence.PAPER_CLAIMS) + "):"]
    for group, depth in c.get("best_depth", {}).items():
        lines.append(f"- best depth, {group}: {depth}")
    for depth, less in c.get("pretrained_spreads_less", {}).items():
        lines.append(f"- depth {depth}: pre-trained runs spread {'less' if less else 'more'}")
    lines += ["", "Group separation (runs that left chance, Hellinger distance):", "```"]
    lines += [*evidence.format_separation(numbers.get("separation_tests", [])), "```", ""]
    lines += ["| depth | group | lr | chosen | pre-training lr |", "|---|---|---|---|---|"]
    for r in numbers.get("rates", []):
        lines.append(
            f"| {r['depth']} | {r['group']} | {r.get('lr')} | {r.get('lr_selected')} | "
            f"{r.get('pretrain_lr') if r['group'] == 'pretrained' else ''} |"
        )
    trials = numbers.get("trials", [])
    if trials:
        lines += ["", "| trial | validation error | status |", "|---|---|---|"]
        for t in trials:
            err = "" if t.get("valid_error") is None else f"{t['valid_error']:.4f}"
            lines.append(f"| {t['trial']} | {err} | {t['status']} |")
    return "\n".join(lines) + "\n"
