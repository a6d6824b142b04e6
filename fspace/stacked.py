"""The forward pass of many checkpoints of one plain MLP as a few large matrix products.

``torch.func.vmap`` maps a model's own forward over stacked weights, which turns each
``Linear`` into a batched product followed by a separate bias add, and each activation
into one more pass over memory. For models that are a chain of ``Linear`` layers and
element-wise activations (:class:`~fspace.models.mlp.MLP`, or an ``nn.Sequential`` of
``Linear``, ``ReLU``, ``Sigmoid`` and ``Tanh``, after an optional ``nn.Flatten``), this
module computes the same outputs directly:

- each layer is one ``baddbmm`` over all checkpoints: the bias is written into the
  output and the product accumulates onto it, with no separate pass for the add;
- the first layer reads the probe inputs, which every checkpoint shares, through a
  view with a batch stride of 0 (nothing copied). One wide product of the probes with
  all checkpoints' weights side by side, ``(probes, in) @ (in, checkpoints * out)``,
  took 1.6x the time of the next layer's ``baddbmm`` for the same FLOPs in the same
  run (docs/performance.md, section 1);
- activations run in place.

Example::

    plan = plan_for(model)          # None for any other architecture
    out = plan.forward(stacked, x)  # (checkpoints, probes, classes)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

Activation = Callable[[torch.Tensor], torch.Tensor] | None

_IN_PLACE: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu_,
    nn.Sigmoid: torch.sigmoid_,
    nn.Tanh: torch.tanh_,
}


@dataclass(frozen=True)
class StackedPlan:
    """The ``Linear`` layers of a plain MLP, in order, each with the in-place activation
    that follows it (None: none); ``flattens``: whether the model flattens its inputs
    (else it takes only inputs of one dimension per probe)."""

    layers: tuple[tuple[str, Activation], ...]
    flattens: bool = True

    def takes(self, x: torch.Tensor) -> bool:
        """Whether :meth:`forward` computes what the model's own forward does on ``x``."""
        return x.is_floating_point() and (self.flattens or x.ndim == 2)

    def forward(self, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(checkpoints, probes, out)`` of every stacked checkpoint on ``x``
        ``(probes, features)``; ``params`` holds each weight and bias stacked along a first
        dimension of one entry per checkpoint."""
        count = len(params[f"{self.layers[0][0]}.weight"])
        # Every checkpoint reads the same probes: a view, with a batch stride of 0.
        h = x.reshape(len(x), -1).expand(count, -1, -1)
        for name, act in self.layers:
            h = _activate(_product(h, params, name), act)
        return h

    def widest(self, model: nn.Module) -> int:
        """The most values per probe and checkpoint any layer produces."""
        return max(model.get_submodule(name).out_features for name, _ in self.layers)


def _product(h: torch.Tensor, params: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    """``(checkpoints, probes, out)``: each checkpoint's ``h`` times its weights, the bias
    written first and the product accumulated onto it."""
    weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")
    if bias is None:
        return torch.bmm(h, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))


def _activate(h: torch.Tensor, act: Activation) -> torch.Tensor:
    return h if act is None else act(h)


def plan_for(model: nn.Module) -> StackedPlan | None:
    """The :class:`StackedPlan` of ``model`` if it is a plain MLP, else None."""
    from fspace.models.mlp import MLP

    if type(model) is MLP:
        act = torch.sigmoid_ if model.activation == "sigmoid" else torch.relu_
        hidden = tuple((f"hidden_layers.{i}", act) for i in range(model.depth))
        return StackedPlan((*hidden, ("output", None)))
    if type(model) is not nn.Sequential:
        return None
    children = list(model.named_children())
    flattens = bool(children) and isinstance(children[0][1], nn.Flatten)
    if flattens:
        if (children[0][1].start_dim, children[0][1].end_dim) != (1, -1):
            return None
        children = children[1:]
    layers: list[tuple[str, Activation]] = []
    for name, module in children:
        if type(module) is nn.Linear:
            layers.append((name, None))
        elif type(module) in _IN_PLACE and layers and layers[-1][1] is None:
            layers[-1] = (layers[-1][0], _IN_PLACE[type(module)])
        else:  # anything else, or two activations in a row: vmap maps its forward
            return None
    return StackedPlan(tuple(layers), flattens) if layers else None
