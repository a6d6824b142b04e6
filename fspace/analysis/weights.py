"""What training did to the weights of any recorded model: the first layer's filters
drawn as images (receptive fields), and how far each weight tensor moved.

Checkpoint files keep no layer order, so the first layer is told by its shape: a
convolution whose kernels read the image's channels, or else a dense layer with one
weight per pixel of the image. The output layer is never drawn: a dense layer that is
the model's only weight matrix maps pixels straight to outputs and is left out.

Example::

    exp = Experiment("checkpoints/cnn")
    layer, before, after = first_layer_fields(exp, "cnn-s0", input_shape=(784,))
    print(layer.name, layer.kind, before.shape)   # conv1.weight conv (16, 5, 5)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fspace.errors import CheckpointError, ConfigError, EmptyExperimentError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    import torch

    from fspace.store import CheckpointInfo, Experiment

CHANGE_COLUMNS = ("run", "group", "seed", "layer", "relative_change", "change")
# Images are 8x8 (the small digits) or larger.
MIN_SIDE = 8
IMAGE_CHANNELS = (1, 3)


class NoImageLayerError(ConfigError):
    """The model has no first layer that reads an image; the message says why."""


@dataclass(frozen=True)
class ImageLayer:
    """The weight tensor drawn as receptive fields: its name in the state dict, its
    ``kind`` (``"dense"``: one weight per pixel; ``"conv"``: small kernels) and the
    shape of one field."""

    name: str
    kind: str
    field_shape: tuple[int, int]


def image_shape(input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """``(channels, height, width)`` of one model input, or NoImageLayerError.

    ``(h, w)`` and ``(c, h, w)`` with 1 or 3 channels are images, and a flat ``(n,)``
    input is a square image when ``n`` is a square (784 -> 28x28), each side at least 8.
    """
    shape = tuple(int(s) for s in input_shape or ())
    if len(shape) == 3 and shape[0] in IMAGE_CHANNELS and min(shape[1:]) >= MIN_SIDE:
        return shape  # type: ignore[return-value]
    if len(shape) == 2 and min(shape) >= MIN_SIDE:
        return (1, *shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        if side * side == shape[0] and side >= MIN_SIDE:
            return (1, side, side)
    if not shape:
        raise NoImageLayerError("the probe inputs are not images (their shape is unknown)")
    what = f"{shape[0]} values" if len(shape) == 1 else "x".join(map(str, shape))
    raise NoImageLayerError(f"the probe inputs are not images (each is {what})")


def natural_key(name: str) -> list:
    """Sort key that orders ``layer2`` before ``layer10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def image_layer(
    shapes: Mapping[str, Sequence[int]], input_shape: Sequence[int] | None
) -> ImageLayer:
    """The first layer whose weights have the input's image shape, from a state dict's
    tensor shapes; NoImageLayerError saying why there is none.

    A convolution kernel ``(out, c, kh, kw)`` reading the image's ``c`` channels comes
    first; else a dense weight ``(out, c * h * w)`` that is not the model's only weight
    matrix (that one is the output layer). Ties go to the first name in natural order
    (``layer2`` before ``layer10``).
    """
    channels, height, width = image_shape(input_shape)
    names = sorted((n for n in shapes if n.endswith("weight")), key=natural_key)
    convs = [n for n in names if len(shapes[n]) == 4 and shapes[n][1] == channels]
    if convs:
        kh, kw = (int(s) for s in shapes[convs[0]][2:])
        return ImageLayer(convs[0], "conv", (kh, kw))
    matrices = [n for n in names if len(shapes[n]) == 2]
    pixels = channels * height * width
    dense = [n for n in matrices if int(shapes[n][1]) == pixels]
    if dense and len(matrices) > 1:
        return ImageLayer(dense[0], "dense", (height, width))
    if dense:
        raise NoImageLayerError(
            f"the model's only layer ({dense[0]}) is its output layer: no hidden units"
        )
    raise NoImageLayerError(
        f"no layer of the model reads the {height}x{width} image directly "
        f"(no convolution over {channels} channel(s), no dense layer of {pixels} inputs)"
    )


def field_images(weight: np.ndarray, layer: ImageLayer) -> np.ndarray:
    """The fields of ``layer``'s weight as ``(units, h, w)`` images; a convolution's
    kernels over several channels are averaged over the channels."""
    w = np.asarray(weight, dtype=np.float32)
    if layer.kind == "conv":
        return w.mean(axis=1)
    channels = w.shape[1] // math.prod(layer.field_shape)
    return w.reshape(w.shape[0], channels, *layer.field_shape).mean(axis=1)


def _ends(exp: Experiment, run: str) -> tuple[CheckpointInfo, CheckpointInfo]:
    ckpts = sorted(exp.checkpoints(run), key=lambda c: (c.epoch, c.step))
    if not ckpts:
        raise EmptyExperimentError(f"run {run!r} in {exp.path} has no checkpoints yet")
    return ckpts[0], ckpts[-1]


def first_layer_fields(
    exp: Experiment, run: str, input_shape: Sequence[int] | None, n: int = 16
) -> tuple[ImageLayer, np.ndarray, np.ndarray]:
    """The receptive fields of ``run`` at its first and last checkpoint.

    Returns the layer (:func:`image_layer`) and two float32 arrays ``(k, h, w)``: the
    ``k <= n`` units with the largest weight norm at the first checkpoint, in
    decreasing order, the same units in both. NoImageLayerError when the model has no
    such layer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive int, got {n!r}")
    first, last = _ends(exp, run)
    w0, w1 = exp.load_weights(first), exp.load_weights(last)
    layer = image_layer({k: tuple(v.shape) for k, v in w0.items()}, input_shape)
    if layer.name not in w1 or w1[layer.name].shape != w0[layer.name].shape:
        raise CheckpointError(
            f"run {run!r}: {layer.name} differs in shape between {first.key} and {last.key}"
        )
    before = field_images(w0[layer.name].float().numpy(), layer)
    after = field_images(w1[layer.name].float().numpy(), layer)
    norms = np.linalg.norm(before.reshape(len(before), -1).astype(np.float64), axis=1)
    units = np.argsort(-norms, kind="stable")[:n]
    return layer, before[units], after[units]


def relative_change(w0: torch.Tensor, w1: torch.Tensor) -> tuple[float, float]:
    """``(||w1 - w0|| / ||w0||, ||w1 - w0||)`` in Frobenius norm; NaN where w0 is zero."""
    import torch

    w0 = w0.double()
    norm = float(torch.linalg.norm(w0))
    change = float(torch.linalg.norm(w1.double() - w0))
    return (change / norm if norm > 0 else math.nan), change


def weight_changes(exp: Experiment, runs: Sequence[str] | None = None) -> pd.DataFrame:
    """How far each weight matrix or kernel of each run moved from its first checkpoint
    to its last: one row per run and tensor (2-D or more) present in both.

    Columns ``run, group, seed, layer, relative_change, change``; ``layer`` is the
    tensor's name; runs without checkpoints give no rows.
    """
    import pandas as pd

    rows = []
    for info in exp.runs() if runs is None else [exp.run(r) for r in runs]:
        if not exp.checkpoints(info.id):
            continue
        first, last = _ends(exp, info.id)
        w0, w1 = exp.load_weights(first), exp.load_weights(last)
        seed = -1 if info.seed is None else int(info.seed)
        for name in sorted(w0, key=natural_key):
            if w0[name].ndim < 2 or name not in w1 or w1[name].shape != w0[name].shape:
                continue
            rel, change = relative_change(w0[name], w1[name])
            rows.append((info.id, info.group, seed, name, rel, change))
    return pd.DataFrame(rows, columns=list(CHANGE_COLUMNS))
