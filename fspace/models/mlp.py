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
INITS = ("uniform", "normalized")
"""Initial weight schemes: ``uniform`` in ``±1/sqrt(fan_in)`` (Erhan et al. 2010; ReLU
hidden layers ``±sqrt(6/fan_in)``), or Glorot & Bengio's (2010) ``normalized``
``±sqrt(6/(fan_in+fan_out))``, four times that for sigmoid hidden layers."""


def init_bound(init: str, fan_in: int, fan_out: int, unit: str | None) -> float:
    """Half-width of the uniform distribution a layer's weights start from.

    ``unit`` is the nonlinearity that follows the layer (``"sigmoid"`` or ``"relu"``;
    None for the linear output layer). ``uniform``: ``1/sqrt(fan_in)``, or
    ``sqrt(6/fan_in)`` before ReLU units. ``normalized`` (Glorot & Bengio 2010):
    ``sqrt(6/(fan_in+fan_out))``, times 4 before sigmoid units, whose slope at 0 is 1/4.

    >>> round(init_bound("normalized", 784, 100, "sigmoid"), 4)
    0.3295
    """
    if init == "uniform":
        return math.sqrt(6 / fan_in) if unit == "relu" else 1 / math.sqrt(fan_in)
    if init == "normalized":
        return (4.0 if unit == "sigmoid" else 1.0) * math.sqrt(6 / (fan_in + fan_out))
    raise ConfigError(f"init must be one of {INITS}, got {init!r}")


class MLP(nn.Module):
    """Fully connected classifier ``n_in -> hidden[0] -> ... -> n_classes`` (logits).

    Inputs of any shape ``(batch, ...)`` are flattened. Weights start uniform in
    ``±bound`` of the scheme ``init`` (:data:`INITS`, :func:`init_bound`): ``uniform``
    ``±1/sqrt(fan_in)`` (sigmoid; as in Erhan et al. 2010) or ``±sqrt(6/fan_in)``
    (ReLU); ``normalized`` as Glorot & Bengio (2010). Biases start at zero; all is drawn
    from a generator seeded with ``seed``.
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
        init: str = "uniform",
    ) -> None:
        super().__init__()
        for name, value in [("n_in", n_in), ("n_classes", n_classes)] + [
            (f"hidden[{i}]", h) for i, h in enumerate(hidden)
        ]:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {init!r}")
        self.activation, self.init = activation, init
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
            unit = self.activation if i < self.depth else None
            bound = init_bound(self.init, layer.in_features, layer.out_features, unit)
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
    init: str = "uniform",
) -> MLP:
    """Build an :class:`MLP` from plain keyword values (as stored with a run).

    The same arguments always give the same initial weights. Referenced as
    ``"fspace.models.mlp:make_mlp"`` to rebuild a model from stored weights.
    """
    return MLP(n_in, list(hidden), n_classes, activation=activation, seed=seed, init=init)
