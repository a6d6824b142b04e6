"""A denoising autoencoder layer (Vincent et al. 2008) in torch.

Masking noise sets a fixed fraction ``corruption`` of each input's components to 0;
the layer encodes the corrupted input with sigmoid units, decodes with the transposed
(tied) weights and sigmoid outputs, and learns to reconstruct the clean input under
the cross-entropy loss, by minibatch SGD with momentum. Inputs must lie in [0, 1].

>>> dae = DenoisingAutoencoder(100, corruption=0.25, random_state=0).fit(X)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from fspace.errors import ConfigError
from fspace.training._layer import (
    EpochReporter,
    LayerEstimator,
    Progress,
    as_matrix,
    check_positive,
    check_training,
    make_generator,
    minibatches,
    sigmoid,
)


class DenoisingAutoencoder(LayerEstimator):
    """Tied-weight sigmoid autoencoder trained to undo masking noise.

    Learned attributes: ``weight_`` ``(n_visible, n_hidden)``, ``hbias_`` (encoder),
    ``vbias_`` (decoder) and ``reconstruction_errors_``: the training loss per epoch,
    i.e. the mean over samples of the summed cross-entropy between the clean input and
    the reconstruction of its corrupted copy.
    """

    _params = (
        "n_hidden",
        "corruption",
        "learning_rate",
        "batch_size",
        "epochs",
        "momentum",
        "weight_decay",
        "random_state",
        "device",
    )

    def __init__(
        self,
        n_hidden: int = 256,
        *,
        corruption: float = 0.25,
        learning_rate: float = 0.1,
        batch_size: int = 20,
        epochs: int = 10,
        momentum: float = 0.5,
        weight_decay: float = 0.0,
        random_state: int | torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.n_hidden = n_hidden
        self.corruption = corruption
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device

    def corrupt(self, v: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return ``v`` with ``round(corruption * d)`` random components per row set to 0."""
        n_drop = round(self.corruption * v.shape[1])
        if n_drop == 0:
            return v
        scores = torch.rand(v.shape, generator=generator, device=v.device)
        dropped = scores.topk(n_drop, dim=1, largest=False).indices
        return v.scatter(1, dropped, 0.0)

    def mean_hiddens(self, v: torch.Tensor) -> torch.Tensor:
        """Code of ``v``: ``sigmoid(v W + c)``."""
        return sigmoid(v @ self.weight_ + self.hbias_)

    def mean_visibles(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction from a code: ``sigmoid(h W^T + b)``."""
        return sigmoid(h @ self.weight_.T + self.vbias_)

    def _loss(self, corrupted: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        logits = self.mean_hiddens(corrupted) @ self.weight_.T + self.vbias_
        return F.binary_cross_entropy_with_logits(logits, clean, reduction="sum") / len(clean)

    @torch.no_grad()
    def reconstruction_error(self, X: Any) -> float:
        """Mean over rows of the summed cross-entropy of the clean reconstruction."""
        self._check_fitted()
        X = as_matrix(X, self.weight_.device, unit_interval=True)
        return self._loss(X, X).item()

    def _validate(self) -> None:
        check_positive(
            n_hidden=self.n_hidden, learning_rate=self.learning_rate, batch_size=self.batch_size
        )
        if not 0 <= self.corruption < 1:
            raise ConfigError(f"corruption must be in [0, 1), got {self.corruption!r}")
        check_training(self.epochs, self.momentum, self.weight_decay)

    def _initialise(self, n_visible: int, generator: torch.Generator) -> None:
        # Glorot-uniform range, times 4 for sigmoid units (as in the Theano DAE tutorial).
        bound = 4 * math.sqrt(6 / (n_visible + self.n_hidden))
        u = torch.rand(n_visible, self.n_hidden, generator=generator, device=generator.device)
        self.weight_ = (2 * u - 1) * bound
        self.hbias_ = torch.zeros(self.n_hidden, device=generator.device)
        self.vbias_ = torch.zeros(n_visible, device=generator.device)

    @torch.no_grad()
    def fit(self, X: Any, progress: Progress = None) -> DenoisingAutoencoder:
        """Train on the rows of ``X`` (values in [0, 1]); return ``self``.

        ``progress``: ``True`` for a tqdm bar, or a callable ``progress(epoch, error)``.
        """
        X = self._begin(X)
        reporter = EpochReporter(progress, self.epochs, "DAE")
        try:
            for _ in range(self.epochs):
                self._pass(X)
                reporter(len(self.reconstruction_errors_) - 1, self.reconstruction_errors_[-1])
        finally:
            reporter.close()
        return self

    @torch.no_grad()
    def partial_fit(self, X: Any) -> DenoisingAutoencoder:
        """One pass over the rows of ``X`` in minibatches, continuing from where the
        previous call left off (the first call initialises the weights); return
        ``self``. Trains on a stream of fresh data, one call per chunk; ``epochs`` is
        not used."""
        if not hasattr(self, "_velocities"):
            X = self._begin(X)
        else:
            X = as_matrix(X, self.weight_.device, unit_interval=True)
        self._pass(X)
        return self

    def _begin(self, X: Any) -> torch.Tensor:
        self._validate()
        X = as_matrix(X, torch.device(self.device), unit_interval=True)
        self._generator = make_generator(self.random_state, X.device)
        self._initialise(X.shape[1], self._generator)
        self._velocities = [torch.zeros_like(p) for p in (self.weight_, self.hbias_, self.vbias_)]
        self.reconstruction_errors_: list[float] = []
        return X

    def _pass(self, X: torch.Tensor) -> None:
        epoch, generator = len(self.reconstruction_errors_), self._generator
        total = torch.zeros((), device=X.device)
        for batch in minibatches(len(X), self.batch_size, generator):
            clean = X[batch]
            total += self._update(self.corrupt(clean, generator), clean, self._velocities)
        self.reconstruction_errors_.append(total.item() / len(X))
        if not math.isfinite(self.reconstruction_errors_[-1]):
            raise ConfigError(
                f"DAE training diverged in epoch {epoch}; lower learning_rate "
                f"(now {self.learning_rate})"
            )

    def gradients(
        self, corrupted: torch.Tensor, clean: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Return the loss and its gradients w.r.t. (``weight_``, ``hbias_``, ``vbias_``).

        Written out by hand (tied weights: the weight gradient has an encoder and a
        decoder part) so that training can update in place without autograd.
        """
        h = self.mean_hiddens(corrupted)
        logits = h @ self.weight_.T + self.vbias_
        loss = F.binary_cross_entropy_with_logits(logits, clean, reduction="sum") / len(clean)
        d_out = (sigmoid(logits) - clean) / len(clean)
        d_hidden = (d_out @ self.weight_) * h * (1 - h)
        d_weight = corrupted.T @ d_hidden + d_out.T @ h
        return loss, (d_weight, d_hidden.sum(dim=0), d_out.sum(dim=0))

    def _update(
        self, corrupted: torch.Tensor, clean: torch.Tensor, velocities: list[torch.Tensor]
    ) -> torch.Tensor:
        """One momentum SGD step; return the minibatch loss times its size."""
        loss, grads = self.gradients(corrupted, clean)
        params = (self.weight_, self.hbias_, self.vbias_)
        grads[0].add_(self.weight_, alpha=self.weight_decay)
        for param, velocity, grad in zip(params, velocities, grads, strict=True):
            velocity.mul_(self.momentum).add_(grad, alpha=-self.learning_rate)
            param.add_(velocity)
        return loss * len(clean)
