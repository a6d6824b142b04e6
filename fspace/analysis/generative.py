"""Analyses of the generative experiment (:mod:`fspace.experiments.generative`).

Pure functions of points frames, function vectors and a joint model; the figure
builders are in :mod:`fspace.plot.generative`, and :func:`generative_report` puts
everything together for a recorded experiment.

Example::

    exp = Experiment("checkpoints/generative")
    figures, numbers = generative_report(exp)
    print(format_generative_summary(numbers))
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fspace.analysis.pretraining import _accuracies, _require, separation
from fspace.errors import ConfigError, EmptyExperimentError
from fspace.store import Experiment

if TYPE_CHECKING:
    from fspace.models.dbn import DBN
    from fspace.vectors import FunctionVectors

JOINT_REGIME = "pretrained+wake-sleep"
DENOISE_COLUMNS = (
    "kind",
    "step",
    "bottom_up",
    "label_accuracy",
    "mse",
    "noisy_mse",
    "clean_accuracy",
    "n",
)


def regime_order(groups: Sequence[str]) -> list[str]:
    """``groups`` without repeats, the regimes in recording order first, others sorted."""
    from fspace.experiments.generative.config import REGIMES

    unique = set(groups)
    return [g for g in REGIMES if g in unique] + sorted(unique - set(REGIMES), key=str)


def regime_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """The test error of every run at its last checkpoint: columns ``run, group, seed,
    epoch, test_error``, one row per run, sorted by regime and seed."""
    _require(frame, ("run", "group", "seed", "epoch", "step", "test_error"), "regime_errors")
    last = frame.sort_values(["run", "epoch", "step"], kind="stable").groupby("run").tail(1)
    out = last.loc[:, ["run", "group", "seed", "epoch", "test_error"]]
    rank = {g: i for i, g in enumerate(regime_order(out["group"].tolist()))}
    out = out.assign(_rank=out["group"].map(rank)).sort_values(["_rank", "seed", "run"])
    return out.drop(columns="_rank").reset_index(drop=True)


def regime_summary(final: pd.DataFrame) -> pd.DataFrame:
    """Final test error per regime across seeds: ``group, mean, std, min, max, n``
    (sample std, NaN for one run), in regime order."""
    _require(final, ("group", "test_error"), "regime_summary")
    if final.empty:
        return pd.DataFrame(columns=["group", "mean", "std", "min", "max", "n"])
    stats = final.groupby("group")["test_error"].agg(["mean", "std", "min", "max", "count"])
    stats = stats.rename(columns={"count": "n"}).reindex(regime_order(final["group"].tolist()))
    return stats.rename_axis("group").reset_index()


def learning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Test error per regime and epoch across seeds: ``group, epoch, mean, std, n``."""
    _require(frame, ("group", "epoch", "test_error"), "learning_curves")
    stats = frame.groupby(["group", "epoch"])["test_error"].agg(["mean", "std", "count"])
    return stats.rename(columns={"count": "n"}).reset_index()


def pairwise_separation(vectors: FunctionVectors, *, min_epoch: int = 1) -> pd.DataFrame:
    """How distinguishable each pair of regimes is in function space.

    For every pair, the leave-one-run-out nearest-neighbour accuracy of the regime
    label among the checkpoints of those two regimes only, from ``min_epoch`` on (see
    :func:`fspace.analysis.group_separation`): about 0.5 when their functions mix,
    1.0 when every checkpoint's nearest neighbour from another run shares its regime.
    Columns ``group_a, group_b, accuracy, n_points``.
    """
    points = vectors.points
    _require(points, ("run", "group", "epoch"), "pairwise_separation")
    keep = (points["epoch"] >= min_epoch).to_numpy()
    groups = points["group"].to_numpy()
    pairs = list(itertools.combinations(regime_order(points["group"].tolist()), 2))
    subsets = [keep & np.isin(groups, pair) for pair in pairs]
    accuracy = _accuracies(vectors.matrix, groups, points["run"].to_numpy(), subsets)
    rows = [
        {"group_a": a, "group_b": b, "accuracy": acc, "n_points": int(s.sum())}
        for (a, b), acc, s in zip(pairs, accuracy, subsets, strict=True)
    ]
    return pd.DataFrame(rows, columns=["group_a", "group_b", "accuracy", "n_points"])


def denoise_report(
    model: DBN,
    images: Any,
    labels: Any,
    *,
    image_shape: tuple[int, int],
    kinds: Sequence[str] | None = None,
    steps: int = 6,
    final_share: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """How well the joint model recovers label and image from corrupted digits.

    For each noise kind (:data:`fspace.training.denoise.NOISE_KINDS` by default) the
    images are corrupted (:func:`~fspace.training.denoise.corrupt`, ``seed``) and
    denoised (:func:`~fspace.training.denoise.denoise`). One row per kind and step with
    the bottom-up share, the fraction of inferred labels that are right, the mean
    squared error per image of the cleaned image against the original (``mse``) and,
    as baselines, of the noisy input (``noisy_mse``) and the model's accuracy on the
    clean images (``clean_accuracy``). Step 0 is a pure bottom-up pass: its accuracy
    is the model's plain classification of the noisy input.
    """
    from fspace.training.denoise import NOISE_KINDS, corrupt, denoise

    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    y = np.asarray(labels)
    if y.shape != (len(x),):
        raise ConfigError(f"need one label per image, got {y.shape} labels for {len(x)} images")
    clean = denoise(model, x, steps=1).labels[0]
    clean_accuracy = float((clean == y).mean())
    rows = []
    for kind in kinds or NOISE_KINDS:
        noisy = corrupt(x, kind, image_shape=image_shape, seed=seed, labels=y)
        result = denoise(model, noisy, steps=steps, final_share=final_share)
        noisy_mse = float(((noisy - x) ** 2).sum(1).mean())
        for step, share in enumerate(result.bottom_up):
            rows.append(
                {
                    "kind": kind,
                    "step": step,
                    "bottom_up": float(share),
                    "label_accuracy": float((result.labels[step] == y).mean()),
                    "mse": float(((result.images[step] - x) ** 2).sum(1).mean()),
                    "noisy_mse": noisy_mse,
                    "clean_accuracy": clean_accuracy,
                    "n": len(x),
                }
            )
    return pd.DataFrame(rows, columns=list(DENOISE_COLUMNS))


def denoise_numbers(report: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per noise kind: accuracy and MSE at the first (bottom-up) and last step, the
    best accuracy over steps, and the noisy-input MSE."""
    out = {}
    for kind, part in report.groupby("kind", sort=False):
        part = part.sort_values("step")
        first, last = part.iloc[0], part.iloc[-1]
        out[str(kind)] = {
            "accuracy_bottom_up": float(first["label_accuracy"]),
            "accuracy_last": float(last["label_accuracy"]),
            "accuracy_best": float(part["label_accuracy"].max()),
            "mse_bottom_up": float(first["mse"]),
            "mse_last": float(last["mse"]),
            "noisy_mse": float(first["noisy_mse"]),
            "clean_accuracy": float(first["clean_accuracy"]),
        }
    return out


def joint_model(
    experiment: Experiment | str | os.PathLike, run: str | None = None
) -> tuple[DBN, str]:
    """The joint model at the last checkpoint of ``run`` (default: the first
    ``pretrained+wake-sleep`` run), with its checkpoint key."""
    from fspace.batched import load_into
    from fspace.factories import build_model

    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    if run is None:
        runs = sorted(
            (r for r in exp.runs() if r.group == JOINT_REGIME and exp.checkpoints(r.id)),
            key=lambda r: (r.seed if r.seed is not None else math.inf, r.id),
        )
        if not runs:
            raise EmptyExperimentError(
                f"{exp.path} has no recorded {JOINT_REGIME!r} run; record one with "
                "fspace.experiments.generative.run_generative"
            )
        run = runs[0].id
    ckpt = max(exp.checkpoints(run), key=lambda c: (c.epoch, c.step))
    model = build_model(exp.run(run))
    load_into(model, exp.load_weights(ckpt), ckpt)
    return model.eval(), ckpt.key


def square_shape(n_pixels: int) -> tuple[int, int]:
    """``(side, side)`` for a square image of ``n_pixels``, else ConfigError."""
    side = math.isqrt(n_pixels)
    if side * side != n_pixels:
        raise ConfigError(f"{n_pixels} pixels are not a square image; pass image_shape")
    return side, side


def format_generative_summary(numbers: dict[str, Any]) -> str:
    """Lines of text for the numbers of :func:`generative_report`."""
    lines = ["final test error per regime (mean ± std over seeds):"]
    for group, s in numbers.get("final_error", {}).items():
        std = f" ± {s['std']:.4f}" if s["std"] == s["std"] else ""
        lines.append(f"  {group:<26} {s['mean']:.4f}{std}  (n={s['n']})")
    sep = numbers.get("separation")
    if sep:
        lines.append(
            f"regime separation, leave-one-run-out 1-NN (chance {sep['chance']:.3f}): "
            f"function space {sep['function_space']:.3f} (epoch>=1: "
            f"{sep['function_space_finetuned']:.3f})"
            + (f", map {sep['map']:.3f}" if "map" in sep else "")
        )
    for pair, acc in numbers.get("pairwise_separation", {}).items():
        lines.append(f"  {pair:<52} {acc:.3f}")
    if numbers.get("denoising"):
        lines.append(f"denoising with {numbers.get('denoising_model', 'the joint model')}:")
        for kind, d in numbers["denoising"].items():
            lines.append(
                f"  {kind:<8} label acc {d['accuracy_bottom_up']:.3f} -> {d['accuracy_last']:.3f}"
                f" (clean {d['clean_accuracy']:.3f});  MSE noisy {d['noisy_mse']:.1f}, "
                f"bottom-up {d['mse_bottom_up']:.1f}, last {d['mse_last']:.1f}"
            )
    return "\n".join(lines)


def _seeds(final: pd.DataFrame) -> str:
    n = final.groupby("group")["seed"].nunique()
    return f"{n.min()} seeds" if n.min() == n.max() else f"{n.min()}-{n.max()} seeds"


def _final_numbers(final: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(row.group): {"mean": float(row.mean), "std": float(row.std), "n": int(row.n)}
        for row in regime_summary(final).itertuples(index=False)
    }


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
    :data:`fspace.plot.generative.FIGURES` and a dict of plain numbers (final test
    error per regime, separation, pairwise separation, denoising per noise kind, the
    latter on ``denoise_images`` evenly spaced probe digits with the first joint model).
    """
    from fspace.evaluation import evaluate
    from fspace.pipeline import embed_vectors
    from fspace.plot import generative as plots

    exp = experiment if isinstance(experiment, Experiment) else Experiment(experiment)
    vectors = evaluate(exp, progress=progress)
    emb = embed_vectors(exp, vectors, method=method, random_state=random_state, progress=progress)
    final = regime_errors(vectors.points)
    pairs = pairwise_separation(vectors)
    numbers: dict[str, Any] = {
        "final_error": _final_numbers(final),
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
            final, title=f"Final test error per regime ({_seeds(final)})"
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

    from fspace.training.denoise import NOISE_KINDS, corrupt, denoise
    from fspace.plot import generative as plots

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
    from pathlib import Path

    from fspace import _atomic
    from fspace.export import write_figure

    figures, numbers = generative_report(experiment, **options)
    out = Path(out_dir)
    written: list[os.PathLike] = []
    for name, fig in figures.items():
        size = {"width": fig.layout.width or 1000, "height": fig.layout.height or 750}
        for fmt in formats:
            written.append(write_figure(fig, out / f"{name}.{fmt}", scale=scale, **size))
    summary = out / "summary.json"
    _atomic.write_text(summary, json.dumps(numbers, indent=2, default=float))
    return numbers, [*written, summary]
