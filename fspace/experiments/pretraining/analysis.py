"""Analyses of the pre-training experiment, each a pure function of recorded data.

The frames are points frames (:func:`fspace.evaluation.points_frame`, or an
embedding's ``frame``): one row per checkpoint with columns ``run, group, seed, epoch,
step, checkpoint``, the run's config values (``depth``, ``pretraining``, ...) and its
metrics (``test_error``, ``train_loss``). Epoch 0 holds the weights before
fine-tuning. The command line and the dashboard call the same functions, so they
always show the same numbers.

Example::

    exp = Experiment("checkpoints/pretraining")
    final = final_errors(points_frame(exp, exp.checkpoints()))
    print(error_summary(final))
    print(format_summary(summary(final=final, changes=weight_changes(exp))))
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from fspace.errors import CheckpointError, ConfigError, EmptyExperimentError
from fspace.store import CheckpointInfo, Experiment

FINAL_COLUMNS = ("run", "group", "depth", "seed", "epoch", "test_error")
SUMMARY_COLUMNS = ("group", "depth", "mean", "std", "min", "max", "n")
CHANGE_COLUMNS = ("run", "group", "depth", "seed", "layer", "relative_change", "change")
# The layout of fspace.models.mlp's state dict: hidden_layers.<i>.weight, output.weight.
_HIDDEN_WEIGHT = re.compile(r"hidden_layers\.(\d+)\.weight")
_OUTPUT_WEIGHT = "output.weight"


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{what} needs column(s) {', '.join(missing)}, but the frame has "
            f"{', '.join(map(str, frame.columns)) or 'no columns'}; pass a points frame of "
            f"the pre-training experiment (fspace.evaluation.points_frame or an embedding's "
            f"frame)"
        )


def final_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """The test error of every run at its last checkpoint: one row per run.

    Columns ``run, group, depth, seed, epoch, test_error``, sorted by group, depth and
    seed; ``epoch`` is the epoch of the last checkpoint (the latest step within it).
    """
    _require(
        frame, ("run", "group", "seed", "epoch", "step", "depth", "test_error"), "final_errors"
    )
    last = frame.sort_values(["run", "epoch", "step"], kind="stable").groupby("run").tail(1)
    out = last.loc[:, list(FINAL_COLUMNS)].sort_values(["group", "depth", "seed", "run"])
    return out.reset_index(drop=True)


def error_summary(final: pd.DataFrame) -> pd.DataFrame:
    """Final test error across seeds per group and depth: mean, std, min, max and n.

    ``std`` is the sample standard deviation (``ddof=1``, NaN for a single run); ``n``
    counts the runs with a finite error.
    """
    _require(final, ("group", "depth", "test_error"), "error_summary")
    if final.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    stats = final.groupby(["group", "depth"], sort=True)["test_error"].agg(
        ["mean", "std", "min", "max", "count"]
    )
    return stats.rename(columns={"count": "n"}).reset_index()


def _open(experiment: Experiment | str | os.PathLike) -> Experiment:
    return experiment if isinstance(experiment, Experiment) else Experiment(experiment)


def _first_and_last(exp: Experiment, run: str) -> tuple[CheckpointInfo, CheckpointInfo]:
    ckpts = exp.checkpoints(run)
    if not ckpts:
        raise EmptyExperimentError(
            f"run {run!r} in {exp.path} has no checkpoints; record some with fspace.Recorder"
        )
    order = sorted(ckpts, key=lambda c: (c.epoch, c.step))
    return order[0], order[-1]


def _weight_matrices(
    weights: dict[str, torch.Tensor], ckpt: CheckpointInfo
) -> list[tuple[str, torch.Tensor]]:
    """The weight matrices of an MLP checkpoint, input to output, named "hidden 1", ...,
    "output"."""
    hidden = sorted(
        (int(m.group(1)), key) for key in weights if (m := _HIDDEN_WEIGHT.fullmatch(key))
    )
    if not hidden or _OUTPUT_WEIGHT not in weights:
        keys = ", ".join(sorted(weights)[:6])
        raise CheckpointError(
            f"checkpoint {ckpt.key} holds {keys}, not the weights of an fspace MLP "
            f"(hidden_layers.<i>.weight and output.weight); these analyses need runs built "
            f"with fspace.models.mlp"
        )
    names = [f"hidden {i}" for i in range(1, len(hidden) + 1)]
    layers = [(name, weights[key]) for name, (_, key) in zip(names, hidden, strict=True)]
    return [*layers, ("output", weights[_OUTPUT_WEIGHT])]


def _image_shape(n_in: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    if image_shape is None:
        side = math.isqrt(n_in)
        if side * side != n_in:
            raise ConfigError(
                f"the first layer has {n_in} inputs, not a square image; pass "
                f"image_shape=(height, width)"
            )
        return side, side
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or shape[0] * shape[1] != n_in:
        raise ConfigError(
            f"image_shape {image_shape!r} does not hold the first layer's {n_in} inputs"
        )
    return shape


def receptive_fields(
    experiment: Experiment | str | os.PathLike,
    run: str,
    n: int = 16,
    image_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """First-layer filters of ``run`` before and after fine-tuning, as images.

    Returns two float32 arrays of shape ``(n, height, width)``: rows of
    ``hidden_layers.0.weight`` at the run's first checkpoint (epoch 0) and at its last
    one. The ``n`` units are those with the largest weight norm at epoch 0 (ties by
    unit index), in decreasing order, the same units in both arrays; fewer if the layer
    is narrower. ``image_shape`` defaults to a square of the input size.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive int, got {n!r}")
    exp = _open(experiment)
    first, last = _first_and_last(exp, run)
    before = _weight_matrices(exp.load_weights(first), first)[0][1].float().numpy()
    after = _weight_matrices(exp.load_weights(last), last)[0][1].float().numpy()
    if before.shape != after.shape:
        raise CheckpointError(
            f"run {run!r}: first-layer weights change shape from {before.shape} "
            f"({first.key}) to {after.shape} ({last.key})"
        )
    shape = _image_shape(before.shape[1], image_shape)
    norms = np.linalg.norm(before.astype(np.float64), axis=1)
    units = np.argsort(-norms, kind="stable")[:n]
    return before[units].reshape(-1, *shape), after[units].reshape(-1, *shape)


def weight_changes(
    experiment: Experiment | str | os.PathLike, runs: Sequence[str] | None = None
) -> pd.DataFrame:
    """How far fine-tuning moved each weight matrix of each run, relative to its start.

    One row per run and layer (``"hidden 1"``, ..., ``"output"``) with
    ``relative_change = ||W_last - W_0||_F / ||W_0||_F`` (NaN where ``W_0`` is zero)
    and the absolute ``change = ||W_last - W_0||_F``, between the run's first
    checkpoint (epoch 0) and its last. ``depth`` is the number of hidden layers. Runs
    without checkpoints give no rows.
    """
    exp = _open(experiment)
    infos = exp.runs() if runs is None else [exp.run(r) for r in runs]
    rows = []
    for info in infos:
        if not exp.checkpoints(info.id):
            continue
        first, last = _first_and_last(exp, info.id)
        before = _weight_matrices(exp.load_weights(first), first)
        after = _weight_matrices(exp.load_weights(last), last)
        label = {
            "run": info.id,
            "group": info.group,
            "depth": len(before) - 1,
            "seed": -1 if info.seed is None else int(info.seed),
        }
        for (layer, w0), (_, w1) in zip(before, after, strict=True):
            rows.append({**label, "layer": layer, **_change(w0, w1, layer, first, last)})
    return pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))


def _change(
    w0: torch.Tensor, w1: torch.Tensor, layer: str, first: CheckpointInfo, last: CheckpointInfo
) -> dict[str, float]:
    if w0.shape != w1.shape:
        raise CheckpointError(
            f"run {first.run!r}: layer {layer!r} has shape {tuple(w0.shape)} in {first.key} "
            f"but {tuple(w1.shape)} in {last.key}"
        )
    w0 = w0.double()
    norm = float(torch.linalg.norm(w0))
    change = float(torch.linalg.norm(w1.double() - w0))
    return {"relative_change": change / norm if norm > 0 else math.nan, "change": change}


def summary(
    final: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    separation: dict[str, float | int] | None = None,
) -> dict[str, Any]:
    """The experiment's headline numbers as a plain dict of str, int and float.

    ``final_error[group][depth]`` holds mean, std and n of the final test error (from
    :func:`final_errors`); ``first_layer_change[group]`` the mean relative change of the
    first hidden layer (from :func:`weight_changes`); ``separation`` the output of
    :func:`separation`. Parts whose input is None are left out.
    """
    out: dict[str, Any] = {}
    if final is not None:
        table: dict[str, dict[int, dict[str, float]]] = {}
        for row in error_summary(final).itertuples(index=False):
            stats = {"mean": float(row.mean), "std": float(row.std), "n": int(row.n)}
            table.setdefault(str(row.group), {})[int(row.depth)] = stats
        out["final_error"] = table
    if changes is not None:
        first = changes[changes["layer"] == "hidden 1"]
        means = first.groupby("group", sort=True)["relative_change"].mean()
        out["first_layer_change"] = {str(g): float(v) for g, v in means.items()}
    if separation is not None:
        out["separation"] = {
            k: (int(v) if k.startswith("n_") else float(v)) for k, v in separation.items()
        }
    return out


def format_summary(numbers: dict[str, Any]) -> str:
    """Lines of text for a :func:`summary` dict, for printing (with the evidence parts
    the report adds: runs at chance, the table beside the paper, the separation with
    intervals, the learning rates)."""
    from fspace.experiments.pretraining import evidence

    lines = []
    if "chance_rule" in numbers:
        runs = numbers.get("at_chance", [])
        lines.append(
            f"runs at chance ({numbers['chance_rule']}): {len(runs)}, left out of the "
            "numbers below" + (":" if runs else "")
        )
        lines += [f"  AT CHANCE  {r['run']}  test error {r['test_error']:.4f}" for r in runs]
    for group, depths in numbers.get("final_error", {}).items():
        for depth, s in sorted(depths.items()):
            lines.append(
                f"final test error  {group:<10} depth {depth}: "
                f"{s['mean']:.4f} ± {s['std']:.4f}  (n={s['n']})"
            )
    for r in numbers.get("rates", []):
        how = "chosen on validation" if r.get("lr_selected") else "fixed"
        plr = f", pre-training lr {r['pretrain_lr']}" if r["group"] == "pretrained" else ""
        lines.append(f"learning rate  {r['group']:<10} depth {r['depth']}: {r['lr']} ({how}){plr}")
    for group, value in numbers.get("first_layer_change", {}).items():
        lines.append(f"first-layer relative change  {group:<10}: {value:.4f}")
    sep = numbers.get("separation")
    if sep:
        lines.append(
            f"group separation (leave-one-run-out 1-NN accuracy, chance {sep['chance']:.3f}):"
        )
        for space in ("function_space", "map"):
            if space in sep:
                lines.append(
                    f"  {space.replace('_', ' '):<15} all {sep[space]:.3f} "
                    f"(n={sep['n_points']})  epoch>=1 {sep[space + '_finetuned']:.3f} "
                    f"(n={sep['n_points_finetuned']})"
                )
    tests = numbers.get("separation_tests")
    if tests:
        lines.append("group separation with 95% bootstrap intervals (Hellinger distance):")
        lines += evidence.format_separation(tests)
    claims = numbers.get("claims", {}).get("best_depth")
    if claims:
        best = ", ".join(f"{g} {d}" for g, d in claims.items())
        lines.append(f"best depth by mean test error: {best} (paper: random 2, pretrained 4)")
    return "\n".join(lines)
