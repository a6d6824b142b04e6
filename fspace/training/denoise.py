"""Denoising with the joint density model: let top-down knowledge clean up the input.

:func:`denoise` infers a clean image and its label from a corrupted digit with a
:class:`~fspace.models.dbn.DBN`. Every hidden layer receives a blend of bottom-up
input (recognition weights, from the layer below, the noisy image at the bottom) and
top-down input (generative weights, from the layer above; the top RBM's prediction of
the penultimate layer given the label it infers): ``alpha * bottom_up + (1 - alpha) *
top_down``, the two shares always summing to one. Step by step the share moves from
bottom-up (``alpha = 1``: a plain recognition pass) to top-down, so the model's belief
about the digit increasingly overrides what it sees. Each step yields the image the
generative path draws from the first hidden layer and the most probable label.

:func:`corrupt` makes structured noise: isolated pixels, occluding bars, clutter
strokes, or another digit overlaid.

>>> noisy = corrupt(images, "bars", image_shape=(28, 28), seed=0)  # doctest: +SKIP
>>> result = denoise(model, noisy, steps=6)  # doctest: +SKIP
>>> result.images.shape, result.labels[-1]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError
from fspace.models.dbn import DBN
from fspace.training._layer import as_matrix, sigmoid

NOISE_KINDS = ("pixels", "bars", "clutter", "overlay")
"""Kinds of corruption :func:`corrupt` makes, from unstructured to most digit-like."""


def blend_schedule(steps: int, final_share: float = 0.0) -> np.ndarray:
    """Bottom-up shares ``alpha`` of ``steps`` steps, falling evenly from 1 to ``final_share``.

    The top-down share of step ``i`` is ``1 - alpha[i]``. The first step is always a
    pure bottom-up pass.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps must be a positive int, got {steps!r}")
    if not 0.0 <= final_share <= 1.0:
        raise ConfigError(f"final_share must lie in [0, 1], got {final_share!r}")
    if steps == 1:
        return np.ones(1)
    return np.linspace(1.0, float(final_share), int(steps))


@dataclass(frozen=True)
class Denoising:
    """What :func:`denoise` inferred at each step.

    ``images`` ``(steps, n, d)``: the cleaned images; ``labels`` ``(steps, n)``: the
    inferred labels; ``label_probs`` ``(steps, n, n_classes)``; ``bottom_up`` and
    ``top_down`` ``(steps,)``: the shares of each input, summing to one.
    """

    images: np.ndarray
    labels: np.ndarray
    label_probs: np.ndarray
    bottom_up: np.ndarray
    top_down: np.ndarray


@torch.no_grad()
def denoise(model: DBN, noisy: Any, *, steps: int = 6, final_share: float = 0.0) -> Denoising:
    """Clean up ``noisy`` images (rows in [0, 1]) by blending bottom-up and top-down input.

    The bottom-up shares follow :func:`blend_schedule`. At each step the hidden layers
    are updated bottom to top, each from the blend of its bottom-up input (the current
    state below) and its top-down input (the previous state above); then the label
    probabilities ``p(y | penultimate)`` come from the top RBM's free energies and the
    top hidden units from the penultimate layer and those probabilities (mean field).
    """
    if model.depth < 1:
        raise ConfigError("denoise needs a DBN with at least one hidden layer below the top")
    shares = blend_schedule(steps, final_share)
    dtype = model.top.weight.dtype
    v = as_matrix(noisy, model.top.weight.device, unit_interval=True, dtype=dtype)
    states = model.up(v)
    top_state = torch.zeros(len(v), model.top.weight.shape[1], dtype=dtype, device=v.device)
    images, probs = [], []
    for alpha in shares:
        states = _blended_pass(model, v, states, top_state, float(alpha))
        label = model.top.label_probs(states[-1])
        top_state = sigmoid(model.top.hidden_input(states[-1], label))
        images.append(sigmoid(model.generative[0](states[0])).cpu().numpy())
        probs.append(label.cpu().numpy())
    label_probs = np.stack(probs)
    return Denoising(
        images=np.stack(images),
        labels=label_probs.argmax(axis=2),
        label_probs=label_probs,
        bottom_up=shares,
        top_down=1.0 - shares,
    )


def _blended_pass(
    model: DBN, v: torch.Tensor, states: list[torch.Tensor], top_state: torch.Tensor, alpha: float
) -> list[torch.Tensor]:
    """New hidden states, bottom to top, each from ``alpha`` bottom-up + rest top-down."""
    new = []
    below = v
    for i, layer in enumerate(model.recognition):
        bottom_up = layer(below)
        if i + 1 < model.depth:
            top_down = model.generative[i + 1](states[i + 1])
        else:
            top_down = model.top.vbias + top_state @ model.top.weight.T
        below = sigmoid(alpha * bottom_up + (1.0 - alpha) * top_down)
        new.append(below)
    return new


def corrupt(
    images: Any,
    kind: str,
    *,
    image_shape: tuple[int, int],
    seed: int = 0,
    labels: Any = None,
    amount: float | None = None,
) -> np.ndarray:
    """Return a corrupted copy of ``images`` (rows in [0, 1]) as float32 ``(n, h * w)``.

    ``kind`` is one of :data:`NOISE_KINDS`:

    * ``"pixels"``: each pixel switched on with probability ``amount`` (default 0.1);
    * ``"bars"``: ``amount`` (default 2) occluding bars, horizontal or vertical, about
      1/14 of the image thick, switched fully on;
    * ``"clutter"``: ``amount`` (default 3) random straight strokes;
    * ``"overlay"``: another image of a different label (``labels`` needed) from the
      same set, overlaid by pixel-wise maximum.

    The result depends only on the inputs and ``seed``.
    """
    x = np.array(images, dtype=np.float32).reshape(len(images), -1)
    h, w = image_shape
    if x.shape[1] != h * w:
        raise ConfigError(f"images have {x.shape[1]} pixels, not image_shape {image_shape}")
    rng = np.random.default_rng(seed)
    if kind == "pixels":
        return np.maximum(x, (rng.random(x.shape) < (amount or 0.1)).astype(np.float32))
    if kind == "overlay":
        return _overlay(x, labels, rng)
    if kind not in NOISE_KINDS:
        raise ConfigError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    draw = _bar if kind == "bars" else _stroke
    count = int(amount or (2 if kind == "bars" else 3))
    out = x.reshape(-1, h, w)
    for image in out:
        for _ in range(count):
            draw(image, rng)
    return out.reshape(len(x), -1)


def _bar(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape
    thick = max(1, round(min(h, w) / 14))
    if rng.random() < 0.5:
        row = int(rng.integers(0, h - thick + 1))
        image[row : row + thick, :] = 1.0
    else:
        col = int(rng.integers(0, w - thick + 1))
        image[:, col : col + thick] = 1.0


def _stroke(image: np.ndarray, rng: np.random.Generator) -> None:
    # A straight stroke of length between a quarter and a half of the image, one to
    # two pixels thick, like a stray pen mark.
    h, w = image.shape
    length = rng.uniform(0.25, 0.5) * min(h, w)
    angle = rng.uniform(0, np.pi)
    y0, x0 = rng.uniform(0, h), rng.uniform(0, w)
    t = np.linspace(0.0, 1.0, max(2, int(3 * length)))
    ys = np.clip(np.round(y0 + t * length * np.sin(angle)), 0, h - 1).astype(int)
    xs = np.clip(np.round(x0 + t * length * np.cos(angle)), 0, w - 1).astype(int)
    image[ys, xs] = 1.0
    if min(h, w) >= 14:
        image[ys, np.clip(xs + 1, 0, w - 1)] = 1.0


def _overlay(x: np.ndarray, labels: Any, rng: np.random.Generator) -> np.ndarray:
    if labels is None:
        raise ConfigError("overlay noise needs the labels, to overlay a different digit")
    labels = np.asarray(labels)
    if labels.shape != (len(x),) or len(np.unique(labels)) < 2:
        raise ConfigError(
            f"overlay noise needs one label per image and at least two classes, got labels "
            f"of shape {labels.shape}"
        )
    out = x.copy()
    for i in range(len(x)):
        others = np.flatnonzero(labels != labels[i])
        out[i] = np.maximum(x[i], x[rng.choice(others)])
    return out
