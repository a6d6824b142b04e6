"""A small convolutional classifier with max pooling, for comparison with the MLPs.

``conv 5x5 -> ReLU -> maxpool 2x2 -> conv 5x5 -> ReLU -> maxpool 2x2 -> linear``; the
convolutions are padded to keep the image size, so any image of at least 4x4 pixels
works (28x28 MNIST: 28 -> 14 -> 7; 8x8 digits: 8 -> 4 -> 2). It takes the same flat
``(batch, height * width)`` inputs as the MLPs and returns class logits, so its
function vectors on a probe suite have the same length as theirs.

>>> model = make_convnet(image_shape=(28, 28), channels=(16, 32), seed=0)  # doctest: +SKIP
>>> sorted(model.state_dict())  # doctest: +SKIP
['conv1.bias', 'conv1.weight', 'conv2.bias', 'conv2.weight', 'output.bias', 'output.weight']
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from fspace.errors import ConfigError


class ConvNet(nn.Module):
    """Two convolution + max-pooling stages of ReLU units and a linear output layer.

    Weights start uniform in ``±sqrt(6 / fan_in)`` (He-uniform; ``±1/sqrt(fan_in)`` for
    the output layer), biases at zero, all drawn from a generator seeded with ``seed``.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int] = (16, 32),
        n_classes: int = 10,
        kernel_size: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or min(shape) < 4:
            raise ConfigError(
                f"image_shape must be (height, width) of at least 4x4, got {image_shape!r}"
            )
        values = [("n_classes", n_classes), ("kernel_size", kernel_size)]
        values += [(f"channels[{i}]", c) for i, c in enumerate(channels)]
        for name, value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if len(channels) != 2 or kernel_size % 2 == 0:
            raise ConfigError(
                f"need two channel counts and an odd kernel_size, got channels={channels!r}, "
                f"kernel_size={kernel_size!r}"
            )
        self.image_shape = shape
        c1, c2 = (int(c) for c in channels)
        pad = kernel_size // 2
        # skip_init: parameters are drawn from our own generator in reset_parameters.
        self.conv1 = nn.utils.skip_init(nn.Conv2d, 1, c1, kernel_size, padding=pad)
        self.conv2 = nn.utils.skip_init(nn.Conv2d, c1, c2, kernel_size, padding=pad)
        self.pool = nn.MaxPool2d(2)
        h, w = (s // 2 // 2 for s in shape)
        self.output = nn.utils.skip_init(nn.Linear, c2 * h * w, int(n_classes))
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Redraw all weights from a generator seeded with ``seed``; zero the biases."""
        generator = torch.Generator().manual_seed(int(seed))
        for layer in (self.conv1, self.conv2, self.output):
            fan_in = layer.weight[0].numel()
            relu = layer is not self.output
            bound = math.sqrt(6 / fan_in) if relu else 1 / math.sqrt(fan_in)
            layer.weight.copy_(
                (torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound
            )
            layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits ``(batch, n_classes)`` of flat or image-shaped inputs."""
        x = x.reshape(x.shape[0], 1, *self.image_shape)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.output(x.flatten(1))


def make_convnet(
    image_shape: Sequence[int] = (28, 28),
    channels: Sequence[int] = (16, 32),
    n_classes: int = 10,
    kernel_size: int = 5,
    seed: int = 0,
) -> ConvNet:
    """Build a :class:`ConvNet` from plain keyword values (as stored with a run).

    Referenced as ``"fspace.models.conv:make_convnet"``; the same arguments always give
    the same initial weights.
    """
    return ConvNet(list(image_shape), list(channels), n_classes, kernel_size, seed=seed)
