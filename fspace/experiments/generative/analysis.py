"""Analyses of the generative experiment (:mod:`fspace.experiments.generative`).

Pure functions of points frames, function vectors and a joint model; the figure
builders are in :mod:`.figures`, and :func:`.report.generative_report` puts
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

from fspace.analysis.separation import accuracies, require_columns
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
    require_columns(frame, ("run", "group", "seed", "epoch", "step", "test_error"), "regime_errors")
    last = frame.sort_values(["run", "epoch", "step"], kind="stable").groupby("run").tail(1)
    out = last.loc[:, ["run", "group", "seed", "epoch", "test_error"]]
    rank = {g: i for i, g in enumerate(regime_order(out["group"].tolist()))}
    out = out.assign(_rank=out["group"].map(rank)).sort_values(["_rank", "seed", "run"])
    return out.drop(columns="_rank").reset_index(drop=True)


def regime_summary(final: pd.DataFrame) -> pd.DataFrame:
    """Final test error per regime across seeds: ``group, mean, std, min, max, n``
    (sample std, NaN for one run), in regime order."""
    require_columns(final, ("group", "test_error"), "regime_summary")
    if final.empty:
        return pd.DataFrame(columns=["group", "mean", "std", "min", "max", "n"])
    stats = final.groupby("group")["test_error"].agg(["mean", "std", "min", "max", "count"])
    stats = stats.rename(columns={"count": "n"}).reindex(regime_order(final["group"].tolist()))
    return stats.rename_axis("group").reset_index()


def learning_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Test error per regime and epoch across seeds: ``group, epoch, mean, std, n``."""
    require_columns(frame, ("group", "epoch", "test_error"), "learning_curves")
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
    require_columns(points, ("run", "group", "epoch"), "pairwise_separation")
    keep = (points["epoch"] >= min_epoch).to_numpy()
    groups = points["group"].to_numpy()
    pairs = list(itertools.combinations(regime_order(points["group"].tolist()), 2))
    subsets = [keep & np.isin(groups, pair) for pair in pairs]
    accuracy = accuracies(vectors.matrix, groups, points["run"].to_numpy(), subsets)
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


def seeds_label(final: pd.DataFrame) -> str:
    n = final.groupby("group")["seed"].nunique()
    return f"{n.min()} seeds" if n.min() == n.max() else f"{n.min()}-{n.max()} seeds"


def final_numbers(final: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(row.group): {"mean": float(row.mean), "std": float(row.std), "n": int(row.n)}
        for row in regime_summary(final).itertuples(index=False)
    }
