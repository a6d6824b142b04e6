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
    dictionary of :func:`.analysis.summary`.
    """
    from fspace.analysis import separation
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
    numbers = analysis.summary(final, changes, separation(vectors, emb.frame))
    figures = {
        "trajectories": trajectory_figure(
            emb.frame, title=f"Function-space trajectories ({emb.method}), coloured by epoch"
        ),
        "error_histograms": plots.error_histogram_figure(final),
        "error_vs_depth": plots.error_depth_figure(final),
        "receptive_fields": _receptive_fields(exp, final),
        "weight_change": plots.weight_change_figure(changes),
    }
    return figures, numbers


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
    return numbers, written
