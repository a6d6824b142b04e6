"""Input features that are zero on every probe, left out of a model's first layer.

What such a feature adds to the first layer's outputs is exactly zero, so its weight
columns need not be multiplied: a third of MNIST's pixels are blank on every digit. The
batched evaluator (:mod:`fspace.batched`) finds them once per architecture and probe
suite (:func:`narrowed`), and its read threads copy each checkpoint's live columns
(:func:`take_columns`) as they read it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fspace.probes import ProbeSuite

DEAD_INPUT_SHARE = 0.1
"""Skip input features zero on every probe when they are at least this share."""
INPUT_LAYER_ATTRIBUTE = "fspace_input_layer"
"""A model whose forward flattens its one input tensor and feeds it to a Linear layer
first may name that layer in this attribute (e.g. ``"hidden_layers.0"``), so that
input features zero on every probe are skipped."""

RUN_COLUMNS = 8
"""Live columns per run, on average, from which they are copied run by run."""

_SAME_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def first_linear(model: nn.Module, inputs: torch.Tensor) -> str | None:
    """Name of the Linear layer the flattened inputs go into first, if that is certain:
    the one a model names in :data:`INPUT_LAYER_ATTRIBUTE`, or the first layer of a
    plain ``nn.Sequential`` (after an ``nn.Flatten``)."""
    named = getattr(model, INPUT_LAYER_ATTRIBUTE, None)
    if isinstance(named, str):
        try:
            layer = model.get_submodule(named)
        except AttributeError:  # e.g. an MLP without hidden layers
            return None
        return named if isinstance(layer, nn.Linear) else None
    if type(model) is nn.Sequential:
        children = list(model.named_children())
        first = 0
        if children and isinstance(children[0][1], nn.Flatten):
            if (children[0][1].start_dim, children[0][1].end_dim) != (1, -1):
                return None
            first = 1
        elif inputs.ndim != 2:  # a Linear would act on the last dimension only
            return None
        if len(children) > first and isinstance(children[first][1], nn.Linear):
            return children[first][0]
    return None


@dataclass(frozen=True)
class Narrowed:
    """``model`` with its first layer narrowed to the input features that are not zero
    on every probe (``alive``), and the probe suite of those features alone."""

    model: nn.Module
    suite: ProbeSuite
    weight: str  # the narrowed layer's weight
    alive: torch.Tensor


def narrowed(model: nn.Module, suite: ProbeSuite) -> Narrowed | None:
    """The narrowed model, or None when no input is dead or the first layer is unknown.
    What the dropped features add is exactly zero. (A third of MNIST's pixels are blank
    on every digit.)"""
    inputs = suite.inputs
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        return None
    name = first_linear(model, inputs)
    if name is None:
        return None
    flat = inputs.reshape(len(inputs), -1)
    alive = flat.ne(0).any(0).nonzero().squeeze(1)
    if len(alive) > (1 - DEAD_INPUT_SHARE) * flat.shape[1]:
        return None
    pruned = copy.deepcopy(model)
    parent, _, child = name.rpartition(".")
    old = pruned.get_submodule(name)
    new = nn.Linear(len(alive), old.out_features, bias=old.bias is not None, device="meta")
    setattr(pruned.get_submodule(parent) if parent else pruned, child, new)
    live = ProbeSuite(flat.index_select(1, alive), name=suite.name)
    return Narrowed(pruned, live, f"{name}.weight", alive)


def skip_dead_inputs(model, params, suite: ProbeSuite):
    """``(model, params, suite)`` with the dead input features left out (see
    :func:`narrowed`), the stacked first-layer weights gathered to the live columns."""
    narrow = narrowed(model, suite)
    if narrow is None:
        return model, params, suite
    weight = params[narrow.weight]
    # Advanced indexing gathers the columns about twice as fast as index_select on CPU.
    return narrow.model, {**params, narrow.weight: weight[..., narrow.alive]}, narrow.suite


def column_runs(alive: np.ndarray) -> np.ndarray:
    """``(first, end, target)`` of each run of consecutive columns in the sorted ``alive``:
    columns ``first:end`` go to ``target:target + end - first``."""
    breaks = np.flatnonzero(np.diff(alive) != 1) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(alive)]
    return np.stack([alive[starts], alive[ends - 1] + 1, starts], 1).astype(np.int64)


def take_columns(
    src: torch.Tensor, alive: np.ndarray, out: torch.Tensor, runs: np.ndarray | None = None
) -> None:
    """``out[...] = src[..., alive]`` by numpy, on the calling thread alone: the read
    threads gather each checkpoint's live columns without starting torch thread teams.

    With ``runs`` (:func:`column_runs` of ``alive``) averaging at least
    :data:`RUN_COLUMNS` columns, each run is copied as one slice: a third of MNIST's
    pixels are blank, in 31 runs along the borders, and slices copy them in half the
    time of a gather column by column."""
    same = _SAME_SIZE.get(src.element_size())
    if same is None or src.device.type != "cpu":
        out.copy_(src[..., torch.from_numpy(alive)])
        return
    source, target = src.view(same).numpy(), out.view(same).numpy()
    if runs is not None and len(alive) >= RUN_COLUMNS * len(runs):
        for first, end, at in runs.tolist():
            target[..., at : at + end - first] = source[..., first:end]
        return
    np.take(source, alive, axis=-1, out=target, mode="clip")
