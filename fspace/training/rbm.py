"""A restricted Boltzmann machine in torch, trained by contrastive divergence.

Follows scikit-learn's ``BernoulliRBM`` conventions: ``__init__`` only stores
hyper-parameters, ``fit`` validates them and returns ``self``, learned attributes end
in ``_``. Unit types:

* visible ``"binary"`` (inputs in [0, 1]) or ``"gaussian"`` (unit variance; feed
  standardised inputs: zero mean and unit variance per feature);
* hidden ``"binary"`` or ``"nrelu"``: noisy rectified linear units (Nair & Hinton
  2010), sampled as ``max(0, x + N(0, sigmoid(x)))``; their mean is taken to be the
  noise-free ``max(0, x)``, as at recognition time.

The energy is ``E(v, h) = V(v) - c.h - v.W h`` with ``V(v) = -b.v`` for binary and
``||v - b||^2 / 2`` for Gaussian visible units.

>>> rbm = RBM(n_hidden=100, epochs=5, random_state=0).fit(X)  # doctest: +SKIP
>>> features = rbm.transform(X)  # doctest: +SKIP
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
    check_choice,
    check_positive,
    check_training,
    make_generator,
    minibatches,
    sigmoid,
)

VISIBLE = ("binary", "gaussian")
HIDDEN = ("binary", "nrelu")
_SSU_TAIL = 17  # softplus(-17) < 5e-8: stepped-sigmoid terms beyond max(x) + 17 are negligible


class RBM(LayerEstimator):
    """Restricted Boltzmann machine trained by CD-k or persistent CD with momentum.

    Learned attributes: ``weight_`` ``(n_visible, n_hidden)``, ``hbias_``, ``vbias_``
    (tensors on ``device``) and ``reconstruction_errors_`` (mean squared reconstruction
    error per sample, one float per epoch, measured on each minibatch as it is used).
    ``random_state`` may be an int, a ``torch.Generator`` or ``None`` (fresh entropy).
    A ``learning_rate`` around 0.05 suits binary units; Gaussian visible or NReLU
    hidden units need about ten times less.
    """

    _params = (
        "n_hidden",
        "visible",
        "hidden",
        "learning_rate",
        "batch_size",
        "epochs",
        "cd_k",
        "persistent",
        "momentum",
        "weight_decay",
        "random_state",
        "device",
    )

    def __init__(
        self,
        n_hidden: int = 256,
        *,
        visible: str = "binary",
        hidden: str = "binary",
        learning_rate: float = 0.05,
        batch_size: int = 20,
        epochs: int = 10,
        cd_k: int = 1,
        persistent: bool = False,
        momentum: float = 0.5,
        weight_decay: float = 1e-4,
        random_state: int | torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.n_hidden = n_hidden
        self.visible = visible
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.cd_k = cd_k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device

    @property
    def activation(self) -> str:
        """MLP nonlinearity that reproduces ``mean_hiddens``: "sigmoid" or "relu"."""
        return "relu" if self.hidden == "nrelu" else "sigmoid"

    # Conditional distributions -------------------------------------------------------

    def _hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.weight_ + self.hbias_

    def _hidden_mean(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid(x) if self.hidden == "binary" else torch.relu(x)

    def _hidden_sample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.hidden == "binary":
            return torch.bernoulli(sigmoid(x), generator=generator)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.relu(x + noise * sigmoid(x).sqrt())

    def mean_hiddens(self, v: torch.Tensor) -> torch.Tensor:
        """E[h | v] (binary), or the noise-free ``max(0, x)`` (NReLU)."""
        return self._hidden_mean(self._hidden_input(v))

    def sample_hiddens(self, v: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw h ~ p(h | v)."""
        return self._hidden_sample(self._hidden_input(v), generator)

    def mean_visibles(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: ``sigmoid(W h + b)`` (binary) or ``W h + b`` (Gaussian)."""
        x = h @ self.weight_.T + self.vbias_
        return sigmoid(x) if self.visible == "binary" else x

    def sample_visibles(self, h: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw v ~ p(v | h)."""
        mean = self.mean_visibles(h)
        if self.visible == "binary":
            return torch.bernoulli(mean, generator=generator)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise

    def gibbs(self, v: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One Gibbs step v -> h -> v', returning the sampled v'."""
        return self.sample_visibles(self.sample_hiddens(v, generator), generator)

    # Free energy and scores -------------------------------------------------------------

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """Free energy ``F(v) = -log sum_h exp(-E(v, h))`` of each row of ``v``.

        NReLU units have no closed form; each is treated as the stepped-sigmoid unit it
        approximates (Nair & Hinton 2010, Sec. 2): binary copies sharing weights with
        bias offsets -0.5, -1.5, ..., contributing ``-sum_i softplus(x - i + 0.5)``,
        summed until further terms fall below float32 precision.
        """
        x = self._hidden_input(v)
        if self.visible == "binary":
            visible_term = -(v @ self.vbias_)
        else:
            visible_term = 0.5 * ((v - self.vbias_) ** 2).sum(dim=1)
        if self.hidden == "binary":
            return visible_term - F.softplus(x).sum(dim=1)
        n_steps = max(math.ceil(x.max().item()), 0) + _SSU_TAIL
        total = torch.zeros_like(x)
        for i in range(1, n_steps + 1):
            total += F.softplus(x - i + 0.5)
        return visible_term - total.sum(dim=1)

    @torch.no_grad()
    def reconstruction_error(self, X: Any) -> float:
        """Mean over rows of ``||x - E[v | E[h | x]]||^2``."""
        self._check_fitted()
        X = as_matrix(X, self.weight_.device, dtype=self.weight_.dtype)
        return ((X - self.mean_visibles(self.mean_hiddens(X))) ** 2).sum(dim=1).mean().item()

    @torch.no_grad()
    def pseudo_likelihood(
        self, X: Any, random_state: int | torch.Generator | None = None, exact: bool = False
    ) -> torch.Tensor:
        """Log pseudo-likelihood of each row of ``X`` (binary visible units only).

        As in scikit-learn's ``BernoulliRBM.score_samples``: flip one random bit per row
        and return ``d * log sigmoid(F(v_flipped) - F(v))``. With ``exact``, sum
        ``log sigmoid(F(v_flip_j) - F(v))`` over all ``d`` bits instead (``d`` free
        energies per row: for small models).
        """
        self._check_fitted()
        if self.visible != "binary":
            raise ConfigError("pseudo_likelihood needs visible='binary' units")
        v = as_matrix(X, self.weight_.device, unit_interval=True, dtype=self.weight_.dtype)
        n, d = v.shape
        energy = self.free_energy(v)
        if exact:
            columns = range(d)
        else:
            generator = make_generator(random_state, v.device)
            columns = [torch.randint(0, d, (n,), generator=generator, device=v.device)]
        total = torch.zeros(n, device=v.device, dtype=v.dtype)
        rows = torch.arange(n, device=v.device)
        for j in columns:
            flipped = v.clone()
            flipped[rows, j] = 1 - flipped[rows, j]
            total += F.logsigmoid(self.free_energy(flipped) - energy)
        return (total if exact else d * total).cpu()

    # Training ----------------------------------------------------------------------------

    def _validate(self) -> None:
        check_choice("visible", self.visible, VISIBLE)
        check_choice("hidden", self.hidden, HIDDEN)
        check_positive(
            n_hidden=self.n_hidden,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            cd_k=self.cd_k,
        )
        check_training(self.epochs, self.momentum, self.weight_decay)

    def _initialise(self, X: torch.Tensor, generator: torch.Generator) -> None:
        # Hinton's guide (2010): small Gaussian weights, zero hidden biases, visible
        # biases at the data's log-odds (binary) or mean (Gaussian).
        n_visible = X.shape[1]
        self.weight_ = 0.01 * torch.randn(
            n_visible, self.n_hidden, generator=generator, device=X.device
        )
        self.hbias_ = torch.zeros(self.n_hidden, device=X.device)
        mean = X.mean(dim=0)
        if self.visible == "binary":
            self.vbias_ = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        else:
            self.vbias_ = mean.clone()

    @torch.no_grad()
    def fit(self, X: Any, progress: Progress = None) -> RBM:
        """Train on the rows of ``X``; return ``self``.

        ``progress``: ``True`` for a tqdm bar, or a callable ``progress(epoch, error)``.
        """
        X = self._begin(X)
        reporter = EpochReporter(progress, self.epochs, "RBM")
        try:
            for _ in range(self.epochs):
                self._pass(X)
                reporter(len(self.reconstruction_errors_) - 1, self.reconstruction_errors_[-1])
        finally:
            reporter.close()
        return self

    @torch.no_grad()
    def partial_fit(self, X: Any) -> RBM:
        """One pass over the rows of ``X`` in minibatches, continuing from where the
        previous call left off (the first call initialises the weights, using ``X`` for
        the visible biases); return ``self``. Trains on a stream of fresh data, one call
        per chunk; ``epochs`` is not used."""
        if not hasattr(self, "_velocities"):
            X = self._begin(X)
        else:
            X = as_matrix(X, self.weight_.device, unit_interval=self.visible == "binary")
        self._pass(X)
        return self

    def _begin(self, X: Any) -> torch.Tensor:
        self._validate()
        X = as_matrix(X, torch.device(self.device), unit_interval=self.visible == "binary")
        self._generator = make_generator(self.random_state, X.device)
        self._initialise(X, self._generator)
        self._velocities = [torch.zeros_like(p) for p in (self.weight_, self.vbias_, self.hbias_)]
        start = torch.randint(
            0, len(X), (self.batch_size,), generator=self._generator, device=X.device
        )
        self._chain = X[start].clone() if self.persistent else None
        self.reconstruction_errors_: list[float] = []
        return X

    def _pass(self, X: torch.Tensor) -> None:
        epoch = len(self.reconstruction_errors_)
        self.reconstruction_errors_.append(self._epoch(X, self._generator, self._velocities, epoch))

    def _epoch(
        self,
        X: torch.Tensor,
        generator: torch.Generator,
        velocities: list[torch.Tensor],
        epoch: int,
    ) -> float:
        """Train one epoch; return the mean reconstruction error."""
        total = torch.zeros((), device=X.device)
        try:
            for batch in minibatches(len(X), self.batch_size, generator):
                total += self._update(X[batch], generator, velocities)
        except RuntimeError:  # e.g. sampling from NaN probabilities: say why
            self._check_finite(epoch)
            raise
        self._check_finite(epoch)
        return total.item() / len(X)

    def _update(
        self, v0: torch.Tensor, generator: torch.Generator, velocities: list[torch.Tensor]
    ) -> torch.Tensor:
        """One CD-k (or PCD) step on a minibatch; return its summed reconstruction error."""
        x0 = self._hidden_input(v0)
        h0 = self._hidden_mean(x0)
        error = ((v0 - self.mean_visibles(h0)) ** 2).sum()
        v, x = (self._chain, None) if self.persistent else (v0, x0)
        for step in range(self.cd_k):
            h = self._hidden_sample(x if x is not None else self._hidden_input(v), generator)
            # CD uses mean visibles for the last reconstruction (less noise); a
            # persistent chain must keep sampling to stay a Markov chain.
            last = step == self.cd_k - 1
            v = (
                self.mean_visibles(h)
                if last and not self.persistent
                else self.sample_visibles(h, generator)
            )
            x = self._hidden_input(v)
        hk = self._hidden_mean(x)
        if self.persistent:
            self._chain = v
        self._step(v0, h0, v, hk, velocities)
        return error

    def _step(
        self,
        v0: torch.Tensor,
        h0: torch.Tensor,
        v: torch.Tensor,
        hk: torch.Tensor,
        velocities: list[torch.Tensor],
    ) -> None:
        """Momentum update from positive (v0, h0) and negative (v, hk) statistics."""
        lr = self.learning_rate
        dw, dv, dh = velocities
        # In-place updates: fresh weight-sized temporaries per minibatch cost more than
        # the arithmetic for small batches.
        dw.mul_(self.momentum).add_(self.weight_, alpha=-lr * self.weight_decay)
        dw.addmm_(v0.T, h0, alpha=lr / len(v0)).addmm_(v.T, hk, alpha=-lr / len(v))
        dv.mul_(self.momentum).add_(v0.mean(dim=0) - v.mean(dim=0), alpha=lr)
        dh.mul_(self.momentum).add_(h0.mean(dim=0) - hk.mean(dim=0), alpha=lr)
        self.weight_.add_(dw)
        self.vbias_.add_(dv)
        self.hbias_.add_(dh)

    def _check_finite(self, epoch: int) -> None:
        if not torch.isfinite(self.weight_).all():
            raise ConfigError(
                f"RBM training diverged in epoch {epoch} (non-finite weights); lower "
                f"learning_rate (now {self.learning_rate}) or standardise the input"
            )
