"""Training the joint density model: greedy pre-training, then contrastive wake-sleep.

Greedy pre-training (Hinton, Osindero & Teh 2006, Sec. 4) fits a stack of RBMs to the
images, one layer at a time, then the top RBM to the penultimate features together
with the labels; the recognition and generative weights start tied.

Generative fine-tuning is the *up-down* algorithm (contrastive wake-sleep, ibid. Sec. 5
and Appendix B), here for any number of layers below the top:

* **up (wake) pass**: a stochastic bottom-up pass with the recognition weights; each
  generative layer learns to reconstruct the sampled states of the layer below from
  the states above (the delta rule);
* **associative memory**: with the labels clamped in the positive phase, ``cd_k``
  steps of alternating Gibbs sampling in the top RBM give its CD-k update;
* **down (sleep) pass**: a stochastic top-down pass with the generative weights from
  the end of the Gibbs chain; each recognition layer learns to predict the states of
  the layer above from those below.

Updates are plain steps (no momentum), and :func:`up_down_epoch` draws its minibatch
order and samples from the generator it is given; seeded per epoch, an interrupted
run therefore resumes exactly from its last saved weights.

>>> model = pretrain_dbn(X, y, hidden=[500, 500], n_top=2000, random_state=0)  # doctest: +SKIP
>>> up_down_epoch(model, X, y, learning_rate=0.01, generator=g)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fspace.errors import ConfigError
from fspace.models.dbn import DBN, TopRBM
from fspace.training._layer import (
    as_matrix,
    check_positive,
    check_training,
    make_generator,
    minibatches,
    sigmoid,
)
from fspace.training.rbm import RBM


def _one_hot(labels: Any, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels), device=like.device).long()
    if labels.ndim != 1 or len(labels) != len(like):
        raise ConfigError(
            f"labels must be a 1-D array of {len(like)} class indices, got shape "
            f"{tuple(labels.shape)}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ConfigError(
            f"labels must lie in 0..{n_classes - 1}, got {int(labels.min())}..{int(labels.max())}"
        )
    return F.one_hot(labels, n_classes).to(like.dtype)


# Greedy pre-training --------------------------------------------------------------------


@torch.no_grad()
def fit_top(
    top: TopRBM,
    pen: torch.Tensor,
    labels: Any,
    *,
    epochs: int = 10,
    learning_rate: float = 0.05,
    batch_size: int = 50,
    cd_k: int = 1,
    momentum: float = 0.5,
    weight_decay: float = 1e-4,
    random_state: int | torch.Generator | None = None,
) -> list[float]:
    """Fit ``top`` to penultimate features ``pen`` and their labels by CD-k, in place.

    Starts from the current parameters (small random weights from :func:`make_dbn`)
    with the visible biases set to the data's log-odds. Returns the mean squared
    reconstruction error of ``pen`` per epoch.
    """
    check_positive(learning_rate=learning_rate, batch_size=batch_size, cd_k=cd_k)
    check_training(epochs, momentum, weight_decay)
    pen = as_matrix(pen, top.weight.device, unit_interval=True)
    y = _one_hot(labels, top.n_classes, pen)
    generator = make_generator(random_state, pen.device)
    top.vbias.copy_(torch.logit(pen.mean(0).clamp(1e-3, 1 - 1e-3)))
    top.label_bias.copy_(torch.log(y.mean(0).clamp_min(1e-3)))
    params = [top.weight, top.label_weight, top.hbias, top.vbias, top.label_bias]
    velocities = [torch.zeros_like(p) for p in params]
    errors = []
    for _ in range(epochs):
        total = 0.0
        for batch in minibatches(len(pen), batch_size, generator):
            grads, error = _top_cd(top, pen[batch], y[batch], cd_k, generator)
            for p, v, g in zip(params, velocities, grads, strict=True):
                if p.ndim == 2:  # weight decay on the weights only, as in the RBM
                    g = g - weight_decay * p
                v.mul_(momentum).add_(g, alpha=learning_rate)
                p.add_(v)
            total += error
        errors.append(total / len(pen))
    return errors


def _top_cd(top: TopRBM, pen: torch.Tensor, y: torch.Tensor, cd_k: int, generator):
    """CD-k statistics of the top RBM: gradients (W, U, c, b, a) and summed error."""
    t0 = sigmoid(top.hidden_input(pen, y))
    t = torch.bernoulli(t0, generator=generator)
    for step in range(cd_k):
        p = top.mean_pen(t)
        label = top.mean_label(t)
        if step < cd_k - 1:  # mean values for the last reconstruction: less noise
            p = torch.bernoulli(p, generator=generator)
        tk = sigmoid(top.hidden_input(p, label))
        t = torch.bernoulli(tk, generator=generator)
    n = len(pen)
    grads = [
        (pen.T @ t0 - p.T @ tk) / n,
        (y.T @ t0 - label.T @ tk) / n,
        (t0 - tk).mean(0),
        (pen - p).mean(0),
        (y - label).mean(0),
    ]
    return grads, float(((pen - top.mean_pen(t0)) ** 2).sum())


@torch.no_grad()
def dbn_from_stack(stack: Sequence[RBM], n_top: int, n_classes: int, seed: int = 0) -> DBN:
    """A :class:`DBN` whose lower layers are the binary RBMs of ``stack``, weights tied.

    The top RBM keeps the small random weights of ``seed``; fit it with :func:`fit_top`.
    """
    for i, rbm in enumerate(stack):
        if rbm.visible != "binary" or rbm.hidden != "binary":
            raise ConfigError(
                f"stack layer {i} has {rbm.visible} visible and {rbm.hidden} hidden units; "
                "the joint model needs binary units throughout"
            )
    n_in = stack[0].weight_.shape[0]
    model = DBN(n_in, [r.weight_.shape[1] for r in stack], n_top, n_classes, seed=seed)
    for rbm, up, down in zip(stack, model.recognition, model.generative, strict=True):
        up.weight.copy_(rbm.weight_.T)
        up.bias.copy_(rbm.hbias_)
        down.weight.copy_(rbm.weight_)
        down.bias.copy_(rbm.vbias_)
    return model


def pretrain_dbn(
    X: Any,
    labels: Any,
    hidden: Sequence[int],
    n_top: int,
    *,
    n_classes: int = 10,
    epochs: int = 10,
    learning_rate: float = 0.05,
    batch_size: int = 50,
    random_state: int | None = None,
    stack: Sequence[RBM] | None = None,
) -> DBN:
    """Greedily pre-train a joint model of ``X`` (rows in [0, 1]) and ``labels``.

    Fits one binary RBM per entry of ``hidden`` (or takes the fitted ``stack``), then
    the top RBM on the penultimate features and the labels.
    """
    from fspace.training.pretrain import pretrain_stack

    X = as_matrix(X, torch.device("cpu"), unit_interval=True)
    seeds = np.random.SeedSequence(random_state).generate_state(2)
    if stack is None and hidden:
        stack = pretrain_stack(
            X,
            hidden,
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            random_state=int(seeds[0]),
        )
    model = (
        dbn_from_stack(stack, n_top, n_classes, seed=int(seeds[1]))
        if stack
        else DBN(X.shape[1], [], n_top, n_classes, seed=int(seeds[1]))
    )
    fit_top(
        model.top,
        model.penultimate(X),
        labels,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        random_state=int(seeds[1]),
    )
    return model


# Contrastive wake-sleep ------------------------------------------------------------------


@torch.no_grad()
def up_down_epoch(
    model: DBN,
    X: Any,
    labels: Any,
    *,
    learning_rate: float = 0.01,
    cd_k: int = 3,
    batch_size: int = 50,
    generator: torch.Generator,
) -> float:
    """One epoch of the up-down algorithm over ``X`` and ``labels``, in place.

    Minibatches are taken in an order drawn from ``generator``. Returns the mean
    squared error per image of the generative layer's prediction of the data from the
    sampled first-layer states during the wake pass (before each update).
    """
    check_positive(learning_rate=learning_rate, cd_k=cd_k, batch_size=batch_size)
    v = as_matrix(X, model.top.weight.device, unit_interval=True)
    y = _one_hot(labels, model.top.n_classes, v)
    total = 0.0
    for batch in minibatches(len(v), batch_size, generator):
        total += up_down_step(model, v[batch], y[batch], learning_rate, cd_k, generator)
    return total / len(v)


@torch.no_grad()
def up_down_step(
    model: DBN,
    v: torch.Tensor,
    y: torch.Tensor,
    learning_rate: float,
    cd_k: int,
    generator: torch.Generator,
) -> float:
    """One up-down update on a minibatch (images ``v``, one-hot labels ``y``)."""
    wake = [v]
    for layer in model.recognition:
        wake.append(torch.bernoulli(sigmoid(layer(wake[-1])), generator=generator))
    top, pen = model.top, wake[-1]
    t0 = torch.bernoulli(sigmoid(top.hidden_input(pen, y)), generator=generator)
    t, neg_pen, neg_label = t0, pen, y
    for _ in range(cd_k):
        neg_pen = torch.bernoulli(top.mean_pen(t), generator=generator)
        neg_label = top.mean_label(t)
        t = torch.bernoulli(sigmoid(top.hidden_input(neg_pen, neg_label)), generator=generator)
    sleep = _sleep_pass(model, neg_pen, generator)
    error = _learn_generative(model, wake, learning_rate)
    _learn_recognition(model, sleep, learning_rate)
    n, lr = len(v), learning_rate
    top.weight.add_(pen.T @ t0 - neg_pen.T @ t, alpha=lr / n)
    top.label_weight.add_(y.T @ t0 - neg_label.T @ t, alpha=lr / n)
    top.hbias.add_((t0 - t).mean(0), alpha=lr)
    top.vbias.add_((pen - neg_pen).mean(0), alpha=lr)
    top.label_bias.add_((y - neg_label).mean(0), alpha=lr)
    return error


def _sleep_pass(model: DBN, pen: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """States of a stochastic top-down pass, bottom (visible probabilities) first."""
    states = [pen]
    for i, layer in enumerate(reversed(model.generative)):
        mean = sigmoid(layer(states[-1]))
        last = i == len(model.generative) - 1
        # Visible probabilities, as in Hinton et al.'s pseudo-code: less noise.
        states.append(mean if last else torch.bernoulli(mean, generator=generator))
    return states[::-1]


def _learn_generative(model: DBN, wake: list[torch.Tensor], lr: float) -> float:
    """Delta rule for each generative layer: reconstruct the layer below from above."""
    error = 0.0
    for i, layer in enumerate(model.generative):
        below, above = wake[i], wake[i + 1]
        diff = below - sigmoid(layer(above))
        if i == 0:
            error = float((diff**2).sum())
        layer.weight.add_(diff.T @ above, alpha=lr / len(below))
        layer.bias.add_(diff.mean(0), alpha=lr)
    return error


def _learn_recognition(model: DBN, sleep: list[torch.Tensor], lr: float) -> None:
    """Delta rule for each recognition layer: predict the dreamt layer above."""
    for i, layer in enumerate(model.recognition):
        below, above = sleep[i], sleep[i + 1]
        diff = above - sigmoid(layer(below))
        layer.weight.add_(diff.T @ below, alpha=lr / len(below))
        layer.bias.add_(diff.mean(0), alpha=lr)


@torch.no_grad()
def generative_error(model: DBN, X: Any) -> float:
    """Mean over rows of ``||x - down(penultimate(x))||^2``: how well the generative
    path rebuilds an image from its deterministic bottom-up representation."""
    v = as_matrix(X, model.top.weight.device).flatten(1)
    return float(((v - model.reconstruct(v)) ** 2).sum(1).mean())
