"""What the single-layer estimators (RBM, denoising autoencoder) share: input checks,
random generators, minibatches, progress reporting and the ``transform`` method."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError
from fspace.models._ops import sigmoid  # noqa: F401  (the estimators import it from here)

Progress = bool | Callable[[int, float], None] | None
"""``True`` shows a tqdm bar; a callable is called as ``progress(epoch, error)``
after each epoch; ``None``/``False`` reports nothing."""


def make_generator(
    random_state: int | torch.Generator | None, device: torch.device
) -> torch.Generator:
    """Turn ``random_state`` into a torch generator on ``device``.

    An int seeds a new generator; a generator is used as is; ``None`` seeds a new one
    from fresh entropy (never from or into the global generator).
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator(device=device)
    if random_state is None:
        generator.seed()
    elif isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        generator.manual_seed(int(random_state))
    else:
        raise ConfigError(
            f"random_state must be an int, a torch.Generator or None, got {random_state!r}"
        )
    return generator


def as_matrix(
    X: Any,
    device: torch.device,
    unit_interval: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Return ``X`` as a finite ``(n, d)`` tensor of ``dtype`` on ``device``.

    With ``unit_interval``, values must lie in [0, 1] (probabilities of binary units).
    """
    if not isinstance(X, torch.Tensor):
        array = np.asarray(X)
        if array.dtype.kind not in "biuf":
            raise ConfigError(f"X must hold numbers, got an array of {array.dtype}")
        # torch cannot wrap read-only arrays (e.g. the cached datasets) without copying.
        X = torch.from_numpy(array if array.flags.writeable else array.copy())
    X = X.to(device=device, dtype=dtype)
    if X.dim() != 2 or X.shape[0] == 0:
        raise ConfigError(
            f"X must be a non-empty 2-D array (n_samples, n_features), got {tuple(X.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ConfigError("X contains NaN or infinite values")
    if unit_interval and (X.min() < 0 or X.max() > 1):
        raise ConfigError(
            f"X must lie in [0, 1] (binary units, cross-entropy), got values in "
            f"[{X.min().item():.3g}, {X.max().item():.3g}]; scale it to [0, 1], or for an "
            "RBM use visible='gaussian' on standardised data"
        )
    return X


def check_positive(**values: float) -> None:
    """Raise ConfigError naming the first of ``values`` that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value!r}")


def check_training(epochs: int, momentum: float, weight_decay: float) -> None:
    """Raise ConfigError unless epochs >= 0 (an int), momentum in [0, 1), decay >= 0."""
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ConfigError(f"epochs must be an int >= 0, got {epochs!r}")
    if not 0 <= momentum < 1:
        raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
    if not weight_decay >= 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")


def minibatches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield index tensors covering ``0..n-1`` in a random order, ``batch_size`` at a time."""
    order = torch.randperm(n, generator=generator, device=generator.device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class EpochReporter:
    """Report the error after each epoch to a tqdm bar or a callable."""

    def __init__(self, progress: Progress, epochs: int, desc: str) -> None:
        self._callback = progress if callable(progress) else None
        self._bar = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=epochs, desc=desc, leave=False)

    def __call__(self, epoch: int, error: float) -> None:
        if self._callback is not None:
            self._callback(epoch, error)
        if self._bar is not None:
            self._bar.set_postfix(error=f"{error:.4g}")
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class LayerEstimator:
    """Base of the layer estimators: parameters, ``transform`` and a readable repr.

    Subclasses set ``_params`` (hyper-parameter names, in order) and implement
    ``mean_hiddens``; fitting sets ``weight_`` ``(n_visible, n_hidden)``, ``hbias_``
    and ``vbias_``.
    """

    _params: tuple[str, ...] = ()
    activation = "sigmoid"
    """Nonlinearity of the hidden units, as named by :class:`fspace.models.mlp.MLP`."""

    def get_params(self) -> dict[str, Any]:
        """Return the hyper-parameters given at construction."""
        return {name: getattr(self, name) for name in self._params}

    def set_params(self, **params: Any) -> LayerEstimator:
        """Change hyper-parameters (checked at the next ``fit``); return ``self``."""
        unknown = set(params) - set(self._params)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {sorted(unknown)} for {type(self).__name__}; "
                f"choose from {list(self._params)}"
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "weight_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def mean_hiddens(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def transform(self, X: Any, batch_size: int = 4096) -> torch.Tensor:
        """Return the mean hidden activations of ``X`` as a CPU tensor."""
        self._check_fitted()
        X = as_matrix(X, self.weight_.device, dtype=self.weight_.dtype)
        if X.shape[1] != self.weight_.shape[0]:
            raise ConfigError(
                f"X has {X.shape[1]} features but the layer expects {self.weight_.shape[0]}"
            )
        parts = [self.mean_hiddens(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
        return torch.cat(parts).cpu()
