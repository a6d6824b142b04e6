"""The multilayer perceptron of the pre-training experiments: ``depth`` hidden layers of
sigmoid (or ReLU) units and a linear output layer giving class logits.

>>> model = make_mlp(n_in=784, hidden=[500, 500], n_classes=10, seed=0)  # doctest: +SKIP
>>> sorted(model.state_dict())  # doctest: +SKIP
['hidden_layers.0.bias', 'hidden_layers.0.weight', 'hidden_layers.1.bias', ...,
 'output.bias', 'output.weight']
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from fspace.errors import ConfigError

ACTIVATIONS = ("sigmoid", "relu")


class MLP(nn.Module):
    """Fully connected classifier ``n_in -> hidden[0] -> ... -> n_classes`` (logits).

    Inputs of any shape ``(batch, ...)`` are flattened. Weights start uniform in
    ``±1/sqrt(fan_in)`` (sigmoid; as in Erhan et al. 2010) or ``±sqrt(6/fan_in)``
    (ReLU), biases at zero, all drawn from a generator seeded with ``seed``.
    """

    fspace_input_layer = "hidden_layers.0"
    """The Linear layer the flattened inputs go into first (see :mod:`fspace.batched`)."""

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_classes: int,
        activation: str = "sigmoid",
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in [("n_in", n_in), ("n_classes", n_classes)] + [
            (f"hidden[{i}]", h) for i, h in enumerate(hidden)
        ]:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        sizes = [int(n_in), *(int(h) for h in hidden)]
        # skip_init: parameters are drawn below from our own generator, and building
        # the layers must not consume numbers from torch's global generator.
        self.hidden_layers = nn.ModuleList(
            nn.utils.skip_init(nn.Linear, a, b) for a, b in itertools.pairwise(sizes)
        )
        self.output = nn.utils.skip_init(nn.Linear, sizes[-1], int(n_classes))
        self.reset_parameters(seed)

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden_layers)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Redraw all weights from a generator seeded with ``seed``; zero the biases."""
        generator = torch.Generator().manual_seed(int(seed))
        for i, layer in enumerate([*self.hidden_layers, self.output]):
            fan_in = layer.in_features
            is_hidden_relu = self.activation == "relu" and i < self.depth
            bound = math.sqrt(6 / fan_in) if is_hidden_relu else 1 / math.sqrt(fan_in)
            weight = (torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound
            layer.weight.copy_(weight)
            layer.bias.zero_()

    def _nonlinearity(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) if self.activation == "sigmoid" else torch.relu(x)

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the activations of every hidden layer, first to last."""
        states = []
        x = x.flatten(1)
        for layer in self.hidden_layers:
            x = self._nonlinearity(layer(x))
            states.append(x)
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits ``(batch, n_classes)``."""
        x = x.flatten(1)
        for layer in self.hidden_layers:
            x = self._nonlinearity(layer(x))
        return self.output(x)


def make_mlp(
    n_in: int = 784,
    hidden: Sequence[int] = (500,),
    n_classes: int = 10,
    activation: str = "sigmoid",
    seed: int = 0,
) -> MLP:
    """Build an :class:`MLP` from plain keyword values (as stored with a run).

    The same arguments always give the same initial weights. Referenced as
    ``"fspace.models.mlp:make_mlp"`` to rebuild a model from stored weights.
    """
    return MLP(n_in, list(hidden), n_classes, activation=activation, seed=seed)
