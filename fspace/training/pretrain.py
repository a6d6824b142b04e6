"""Greedy layer-wise pre-training (Hinton et al. 2006; Bengio et al. 2007): train a
stack of RBMs or denoising autoencoders, each on the mean activations of the one
below, then copy the stack into an :class:`~fspace.models.mlp.MLP`.

>>> stack = pretrain_stack(X, [500, 500], method="rbm", epochs=10, random_state=0)  # doctest: +SKIP
>>> model = init_from_stack(make_mlp(hidden=[500, 500], seed=1), stack)  # doctest: +SKIP

A first-layer RBM with ``visible="gaussian"`` expects standardised input (each feature
with zero mean and unit variance); pass it through ``first_layer`` so that the upper
layers, whose inputs are sigmoid probabilities, keep binary visible units.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError
from fspace.models.mlp import MLP
from fspace.training._layer import LayerEstimator, Progress, as_matrix
from fspace.training.dae import DenoisingAutoencoder
from fspace.training.rbm import RBM

StackProgress = bool | Callable[[int, int, float], None] | None

METHODS: dict[str, type[LayerEstimator]] = {"rbm": RBM, "dae": DenoisingAutoencoder}
"""Layer estimators by name; a new pre-training scheme registers its class here."""


def pretrain_stack(
    X: Any,
    hidden_sizes: Sequence[int],
    method: str = "rbm",
    epochs: int = 10,
    random_state: int | None = None,
    progress: StackProgress = None,
    first_layer: Mapping[str, Any] | None = None,
    **layer_params: Any,
) -> list[LayerEstimator]:
    """Train one layer estimator per entry of ``hidden_sizes``, bottom to top.

    Layer ``i`` is fitted on the mean hidden activations (``transform``) of layer
    ``i - 1``. ``layer_params`` go to every layer, ``first_layer`` (e.g.
    ``{"visible": "gaussian", "learning_rate": 0.005}``) only to the bottom one.
    Each layer gets its own seed derived from ``random_state``. ``progress``: ``True``
    for a tqdm bar per layer, or a callable ``progress(layer, epoch, error)``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if not hidden_sizes:
        raise ConfigError("hidden_sizes is empty: give at least one layer size")
    cls = METHODS[method]
    _check_layer_params(cls, method, {*layer_params, *(first_layer or {})})
    seeds = np.random.SeedSequence(random_state).generate_state(len(hidden_sizes))
    inputs = as_matrix(X, torch.device(layer_params.get("device", "cpu")))
    stack: list[LayerEstimator] = []
    for i, size in enumerate(hidden_sizes):
        params = {**layer_params, **(first_layer or {})} if i == 0 else dict(layer_params)
        layer = cls(n_hidden=size, epochs=epochs, random_state=int(seeds[i]), **params)
        try:
            layer.fit(inputs, progress=_layer_progress(progress, i))
        except ConfigError as error:
            raise ConfigError(
                f"pre-training layer {i} ({method}, {size} units): {error}"
            ) from error
        stack.append(layer)
        if i + 1 < len(hidden_sizes):
            inputs = layer.transform(inputs)
    return stack


def pretrain_stack_online(
    chunks: Callable[[int], Iterable[torch.Tensor]],
    hidden_sizes: Sequence[int],
    method: str = "rbm",
    *,
    below: Sequence[LayerEstimator] = (),
    random_state: int | None = None,
    **layer_params: Any,
) -> list[LayerEstimator]:
    """Train layers on top of the trained layers ``below``, greedily, from a stream.

    Layer ``i`` (counting ``below``) makes one pass (``partial_fit``) over each chunk of
    raw inputs that ``chunks(i)`` yields, passed through the layers under it: with a
    stream of fresh data (e.g. distorted digits), each minibatch is new. Layer ``i``'s
    seed depends only on ``random_state`` and ``i``, so a stack grown one layer at a
    time is the stack trained at once. Returns the new layers only.

    >>> new = pretrain_stack_online(lambda i: stream_chunks(i), [500], "rbm",
    ...                             below=stack, random_state=0)  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    cls = METHODS[method]
    _check_layer_params(cls, method, set(layer_params))
    stack = list(below)
    for size in hidden_sizes:
        i = len(stack)
        seed = int(np.random.SeedSequence([random_state or 0, i]).generate_state(1)[0])
        layer = cls(n_hidden=size, random_state=seed, **layer_params)
        for chunk in chunks(i):
            inputs = chunk
            for lower in stack:
                inputs = lower.transform(inputs)
            try:
                layer.partial_fit(inputs)
            except ConfigError as error:
                raise ConfigError(
                    f"pre-training layer {i} ({method}, {size} units): {error}"
                ) from error
        if not hasattr(layer, "weight_"):
            raise ConfigError(f"pre-training layer {i}: the stream gave no data")
        stack.append(layer)
    return stack[len(below) :]


def _check_layer_params(cls: type[LayerEstimator], method: str, names: set[str]) -> None:
    # pretrain_stack sets these itself, per layer.
    allowed = [p for p in cls._params if p not in ("n_hidden", "epochs", "random_state")]
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ConfigError(f"unknown {method} layer parameter(s) {unknown}; choose from {allowed}")


def _layer_progress(progress: StackProgress, layer: int) -> Progress:
    return functools.partial(progress, layer) if callable(progress) else progress


@torch.no_grad()
def init_from_stack(model: MLP, stack: Sequence[LayerEstimator]) -> MLP:
    """Copy the weights and hidden biases of ``stack`` into ``model``'s hidden layers.

    ``stack[i].weight_`` ``(n_in, n_out)`` becomes ``model.hidden_layers[i].weight``
    (transposed); the output layer and any hidden layers above the stack keep their
    initial weights. Returns ``model``.
    """
    if len(stack) > model.depth:
        raise ConfigError(
            f"a stack of {len(stack)} layers does not fit an MLP of depth {model.depth}"
        )
    for i, (layer, target) in enumerate(zip(stack, model.hidden_layers, strict=False)):
        weight = layer.weight_.T
        if tuple(weight.shape) != tuple(target.weight.shape):
            raise ConfigError(
                f"stack layer {i} has weights {tuple(layer.weight_.shape)} (in, out) but MLP "
                f"hidden layer {i} is {target.in_features} -> {target.out_features}"
            )
        if layer.activation != model.activation:
            raise ConfigError(
                f"stack layer {i} computes {layer.activation} units but the MLP uses "
                f"{model.activation!r}; build the MLP with activation={layer.activation!r}"
            )
        target.weight.copy_(weight)
        target.bias.copy_(layer.hbias_)
    return model
