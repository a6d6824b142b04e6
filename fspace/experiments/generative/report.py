"""The figures and numbers of a recorded generative experiment, written to a folder.

Example::

    exp = Experiment("checkpoints/generative")
    figures, numbers = generative_report(exp)
    print(format_generative_summary(numbers))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from fspace.analysis.separation import separation
from fspace.experiments.base import report_folder
from fspace.experiments.generative.analysis import (
    JOINT_REGIME,
    denoise_numbers,
    denoise_report,
    final_numbers,
    joint_model,
    learning_curves,
    pairwise_separation,
    regime_errors,
    seeds_label,
    square_shape,
)
from fspace.store import Experiment


def generative_report(
    experiment: Experiment | str | os.PathLike,
    *,
    method: str = "tsne",
    random_state: int = 0,
    progress: bool = True,
    denoise_images: int = 1000,
    denoise_steps: int = 6,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every figure of the generative experiment and its headline numbers.

    Returns ``(figures, numbers)``: plotly figures keyed by
    :data:`fspace.experiments.generative.figures.FIGURES` and a dict of plain numbers (final test
    error per regime, separation, pairwise separation, denoising per noise kind, the
    latter on ``denoise_images`` evenly spaced probe digits with the first joint model).
    """
    from fspace.evaluation import evaluate
    from fspace.experiments.generative import figures as plots
    from fspace.pipeline import embed_vectors

    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    vectors = evaluate(exp, progress=progress)
    emb = embed_vectors(exp, vectors, method=method, random_state=random_state, progress=progress)
    final = regime_errors(vectors.points)
    pairs = pairwise_separation(vectors)
    numbers: dict[str, Any] = {
        "final_error": final_numbers(final),
        "separation": separation(vectors, emb.frame),
        "pairwise_separation": {
            f"{r.group_a} | {r.group_b}": float(r.accuracy) for r in pairs.itertuples()
        },
    }
    figures = {
        "trajectories": plots.regime_trajectory_figure(
            emb.frame, title=f"Function-space trajectories of every regime ({emb.method})"
        ),
        "test_error": plots.regime_error_figure(
            final, title=f"Final test error per regime ({seeds_label(final)})"
        ),
        "learning_curves": plots.learning_curve_figure(
            learning_curves(vectors.points), title="Test error during fine-tuning (mean ± std)"
        ),
        "separation": plots.separation_figure(
            pairs,
            title="How distinguishable two regimes' functions are (leave-one-run-out "
            "1-NN accuracy, epoch ≥ 1)",
        ),
    }
    if any(r.group == JOINT_REGIME for r in exp.runs()):
        figures.update(_denoise_figures(exp, numbers, denoise_images, denoise_steps))
    return figures, numbers


def _denoise_figures(exp: Experiment, numbers: dict, n_images: int, steps: int) -> dict:
    import torch

    from fspace.experiments.generative import figures as plots
    from fspace.training.denoise import NOISE_KINDS, corrupt, denoise

    model, key = joint_model(exp)
    suite = exp.probes()
    # Evenly spaced probe digits: probe suites made by split_heldout keep the dataset's
    # order, which may be sorted by label.
    index = np.unique(np.linspace(0, len(suite.inputs) - 1, n_images).astype(int))
    images = suite.inputs[index].reshape(len(index), -1).numpy()
    labels = suite.targets[index].numpy()
    shape = square_shape(images.shape[1])
    report = denoise_report(model, images, labels, image_shape=shape, steps=steps)
    numbers["denoising"] = denoise_numbers(report)
    numbers["denoising_model"] = key
    # Two examples per noise kind, each row a different class where there are enough.
    noisy, picks, names = [], [], []
    for i, kind in enumerate(NOISE_KINDS):
        pick = np.array([_first_of(labels, 3 * (2 * i + j) + 1) for j in range(2)])
        noisy.append(corrupt(images, kind, image_shape=shape, seed=0, labels=labels)[pick])
        picks.append(pick)
        names += [kind] * len(pick)
    noisy, pick = np.concatenate(noisy), np.concatenate(picks)
    n_classes = model.top.n_classes
    samples = model.generate(
        torch.arange(n_classes).repeat_interleave(6), 300, torch.Generator().manual_seed(0)
    )
    return {
        "denoising": plots.denoise_figure(
            noisy,
            denoise(model, noisy, steps=steps),
            images[pick],
            image_shape=shape,
            labels=labels[pick],
            row_names=names,
            title="Denoising: bottom-up share α falls from 1 to 0 "
            "(label inferred at each step: green right, red wrong)",
        ),
        "denoising_summary": plots.denoise_summary_figure(
            report, title=f"Denoising {len(images)} held-out digits per noise type"
        ),
        "samples": plots.samples_figure(
            samples.numpy(),
            per_label=6,
            image_shape=shape,
            title="Digits the joint model generates: 300 Gibbs steps at the top with the "
            "label units clamped, then a top-down pass",
        ),
    }


def _first_of(labels: np.ndarray, wanted: int) -> int:
    """Index of the first image of class ``wanted % n_classes`` (else of any class)."""
    classes = np.unique(labels)
    hits = np.flatnonzero(labels == classes[wanted % len(classes)])
    return int(hits[0]) if len(hits) else 0


def generative_figures(
    experiment: Experiment | str | os.PathLike, **options: Any
) -> dict[str, Any]:
    """The figures of :func:`generative_report` (same options), without the numbers."""
    return generative_report(experiment, **options)[0]


def write_generative_report(
    experiment: Experiment | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("png", "html"),
    scale: float = 1.5,
    **options: Any,
) -> tuple[dict[str, Any], list[os.PathLike]]:
    """Write every figure of :func:`generative_report` in each of ``formats``, at its own
    layout size, and ``summary.json`` into ``out_dir``. Returns ``(numbers, paths)``."""
    import json

    from fspace import _atomic
    from fspace.export import write_figure

    out = report_folder(out_dir, formats)
    figures, numbers = generative_report(experiment, **options)
    written: list[os.PathLike] = []
    for name, fig in figures.items():
        size = {"width": fig.layout.width or 1000, "height": fig.layout.height or 750}
        for fmt in formats:
            written.append(write_figure(fig, out / f"{name}.{fmt}", scale=scale, **size))
    summary = out / "summary.json"
    _atomic.write_text(summary, json.dumps(numbers, indent=2, default=float))
    return numbers, [*written, summary]
