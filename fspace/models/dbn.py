"""A deep belief net that models images and labels jointly (Hinton, Osindero & Teh 2006).

Below the top, each layer has its own bottom-up *recognition* weights and top-down
*generative* weights (tied after greedy pre-training, untied by wake-sleep). The top
two layers form an undirected associative memory: an RBM whose visible units are the
penultimate layer together with ten softmax label units. The model classifies an
image by the label with the lowest free energy of that top RBM given the penultimate
representation, so ``forward(x)`` returns ``-F(h, label)`` for every label: logits
whose softmax is the model's ``p(label | image)``, recordable like any classifier.

>>> model = make_dbn(n_in=784, hidden=[500, 500], n_top=2000, seed=0)  # doctest: +SKIP
>>> sorted(model.state_dict())  # doctest: +SKIP
['generative.0.bias', 'generative.0.weight', ..., 'recognition.1.weight',
 'top.hbias', 'top.label_bias', 'top.label_weight', 'top.vbias', 'top.weight']

Training lives in :mod:`fspace.training.wakesleep`.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fspace.errors import ConfigError
from fspace.models._ops import sigmoid


class TopRBM(nn.Module):
    """The associative memory: an RBM over ``[penultimate, label]`` and ``n_top`` hidden units.

    Energy ``E(p, y, t) = -b.p - a.y - c.t - p.W t - y.U t`` with binary ``p`` and ``t``
    and a one-hot (softmax) label ``y``. Parameters: ``weight`` W ``(n_pen, n_top)``,
    ``label_weight`` U ``(n_classes, n_top)``, ``hbias`` c, ``vbias`` b, ``label_bias`` a.
    """

    def __init__(self, n_pen: int, n_top: int, n_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_pen, n_top))
        self.label_weight = nn.Parameter(torch.zeros(n_classes, n_top))
        self.hbias = nn.Parameter(torch.zeros(n_top))
        self.vbias = nn.Parameter(torch.zeros(n_pen))
        self.label_bias = nn.Parameter(torch.zeros(n_classes))

    @property
    def n_classes(self) -> int:
        return self.label_weight.shape[0]

    def hidden_input(self, pen: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Total input ``c + p W + y U`` to the top hidden units; ``label`` is one-hot or
        a vector of label probabilities (mean field)."""
        return self.hbias + pen @ self.weight + label @ self.label_weight

    def free_energies(self, pen: torch.Tensor) -> torch.Tensor:
        """``F(p, y)`` for every label ``y``: shape ``(batch, n_classes)``.

        ``F(p, y) = -b.p - a_y - sum_j softplus(c_j + (p W)_j + U_yj)``; one label at a
        time, so memory stays at ``batch x n_top``.
        """
        base = self.hbias + pen @ self.weight
        columns = [F.softplus(base + u).sum(dim=1) for u in self.label_weight]
        return -(pen @ self.vbias)[:, None] - self.label_bias - torch.stack(columns, dim=1)

    def label_probs(self, pen: torch.Tensor) -> torch.Tensor:
        """Exact ``p(y | p) = softmax(-F(p, y))`` of each row."""
        return torch.softmax(-self.free_energies(pen), dim=1)

    def mean_pen(self, top: torch.Tensor) -> torch.Tensor:
        """``E[p | t] = sigmoid(b + W t)``."""
        return sigmoid(self.vbias + top @ self.weight.T)

    def mean_label(self, top: torch.Tensor) -> torch.Tensor:
        """``p(y | t) = softmax(a + U t)``."""
        return torch.softmax(self.label_bias + top @ self.label_weight.T, dim=1)


class DBN(nn.Module):
    """Deep belief net ``n_in -> hidden[0] -> ... -> hidden[-1] <-> (n_top, labels)``.

    ``recognition[i]`` maps layer ``i`` up to layer ``i + 1`` (layer 0 is the image),
    ``generative[i]`` maps layer ``i + 1`` back down to layer ``i``; ``top`` is the
    :class:`TopRBM` over the last hidden layer (the *penultimate* layer) and the labels.
    With ``hidden=[]`` the top RBM sits directly on the pixels. Inputs of any shape
    ``(batch, ...)`` are flattened. All units are logistic (binary).
    """

    def __init__(
        self, n_in: int, hidden: Sequence[int], n_top: int, n_classes: int, seed: int = 0
    ) -> None:
        super().__init__()
        sizes = [int(n_in), *(int(h) for h in hidden)]
        for name, value in [("n_in", n_in), ("n_top", n_top), ("n_classes", n_classes)] + [
            (f"hidden[{i}]", h) for i, h in enumerate(hidden)
        ]:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        # skip_init: weights are drawn below from our own generator, not torch's global one.
        pairs = list(itertools.pairwise(sizes))
        self.recognition = nn.ModuleList(nn.utils.skip_init(nn.Linear, a, b) for a, b in pairs)
        self.generative = nn.ModuleList(nn.utils.skip_init(nn.Linear, b, a) for a, b in pairs)
        self.top = TopRBM(sizes[-1], int(n_top), int(n_classes))
        self.reset_parameters(seed)

    @property
    def depth(self) -> int:
        """Number of layers below the penultimate one (``len(hidden)``)."""
        return len(self.recognition)

    @torch.no_grad()
    def reset_parameters(self, seed: int) -> None:
        """Draw every weight from ``N(0, 0.01^2)`` with a generator seeded with ``seed``,
        generative weights tied to the recognition ones; zero every bias."""
        generator = torch.Generator().manual_seed(int(seed))
        for up, down in zip(self.recognition, self.generative, strict=True):
            up.weight.copy_(0.01 * torch.randn(up.weight.shape, generator=generator))
            down.weight.copy_(up.weight.T)
            up.bias.zero_()
            down.bias.zero_()
        for p in (self.top.weight, self.top.label_weight):
            p.copy_(0.01 * torch.randn(p.shape, generator=generator))
        for p in (self.top.hbias, self.top.vbias, self.top.label_bias):
            p.zero_()

    # Deterministic passes -------------------------------------------------------------

    def up(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Mean activations of every hidden layer in the bottom-up (recognition) pass."""
        states = []
        x = x.flatten(1)
        for layer in self.recognition:
            x = sigmoid(layer(x))
            states.append(x)
        return states

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation of ``x``: the last recognition layer's mean."""
        x = x.flatten(1)
        for layer in self.recognition:
            x = sigmoid(layer(x))
        return x

    def down(self, pen: torch.Tensor) -> torch.Tensor:
        """Mean image of the top-down (generative) pass from penultimate states ``pen``."""
        for layer in reversed(self.generative):
            pen = sigmoid(layer(pen))
        return pen

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``down(penultimate(x))``: the image the generative path rebuilds from ``x``."""
        return self.down(self.penultimate(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``-F(penultimate(x), y)`` of every label ``y``: ``(batch, n_classes)``."""
        return -self.top.free_energies(self.penultimate(x))

    # Sampling ---------------------------------------------------------------------------

    @torch.no_grad()
    def gibbs_label_probs(
        self, x: torch.Tensor, steps: int, generator: torch.Generator, burn_in: int = 10
    ) -> torch.Tensor:
        """Classify by Gibbs sampling the label units with the penultimate layer clamped.

        Alternates ``t ~ p(t | p, y)`` and ``y ~ p(y | t)`` and returns the fraction of
        the ``steps`` samples after ``burn_in`` that chose each label; it converges to
        the exact :meth:`TopRBM.label_probs`.
        """
        pen = self.penultimate(x)
        top = self.top
        n, k = pen.shape[0], top.n_classes
        label = torch.full((n, k), 1.0 / k, dtype=pen.dtype, device=pen.device)
        counts = torch.zeros_like(label)
        for step in range(burn_in + steps):
            t = torch.bernoulli(sigmoid(top.hidden_input(pen, label)), generator=generator)
            drawn = torch.multinomial(top.mean_label(t), 1, generator=generator)[:, 0]
            label = F.one_hot(drawn, k).to(pen.dtype)
            if step >= burn_in:
                counts += label
        return counts / max(steps, 1)

    @torch.no_grad()
    def generate(
        self, labels: torch.Tensor, steps: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Mean images generated for each label: ``steps`` rounds of alternating Gibbs
        sampling in the top RBM with the label units clamped, then a top-down pass."""
        top = self.top
        label = F.one_hot(labels.long(), top.n_classes).to(top.weight.dtype)
        pen = torch.bernoulli(
            sigmoid(top.vbias).expand(len(labels), -1).contiguous(), generator=generator
        )
        for _ in range(steps):
            t = torch.bernoulli(sigmoid(top.hidden_input(pen, label)), generator=generator)
            pen = torch.bernoulli(top.mean_pen(t), generator=generator)
        return self.down(top.mean_pen(t) if steps else pen)


def make_dbn(
    n_in: int = 784,
    hidden: Sequence[int] = (500, 500),
    n_top: int = 2000,
    n_classes: int = 10,
    seed: int = 0,
) -> DBN:
    """Build a :class:`DBN` from plain keyword values (as stored with a run).

    Referenced as ``"fspace.models.dbn:make_dbn"`` to rebuild a model from stored
    weights; the state-dict keys depend only on the number of layers.
    """
    return DBN(n_in, list(hidden), n_top, n_classes, seed=seed)
