"""Probe suites: the fixed inputs every checkpoint is evaluated on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from fspace.errors import ConfigError, ProbeMismatchError


def fingerprint(inputs: torch.Tensor) -> str:
    """A content fingerprint of probe inputs: 16 hex digits of a SHA-256 digest."""
    t = inputs.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class ProbeSuite:
    """A named, fingerprinted set of probe inputs (and optionally their labels).

    Example::

        suite = ProbeSuite.from_array(test_images[:1000], name="heldout")
        suite.fingerprint  # same inputs, same fingerprint, on any machine
    """

    inputs: torch.Tensor
    name: str = "default"
    targets: torch.Tensor | None = None
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, torch.Tensor):
            raise ConfigError(
                f"probe inputs must be a torch.Tensor or array, got {type(self.inputs).__name__}"
            )
        if self.inputs.ndim < 1 or self.inputs.shape[0] == 0:
            raise ConfigError(
                f"probe suite {self.name!r} is empty (inputs of shape {tuple(self.inputs.shape)})"
            )
        if not torch.is_floating_point(self.inputs):
            object.__setattr__(self, "inputs", self.inputs.float())
        if self.targets is not None and len(self.targets) != len(self.inputs):
            raise ConfigError(
                f"probe suite {self.name!r}: {len(self.targets)} targets for "
                f"{len(self.inputs)} inputs"
            )
        if not torch.isfinite(self.inputs).all():
            raise ConfigError(f"probe suite {self.name!r} has NaN or infinite inputs")
        object.__setattr__(self, "fingerprint", fingerprint(self.inputs))

    @classmethod
    def from_array(
        cls, inputs: np.ndarray | torch.Tensor, *, name: str = "default", targets=None
    ) -> ProbeSuite:
        """Build a suite from numpy arrays or tensors (float32 inputs, int64 targets)."""
        x = torch.as_tensor(np.asarray(inputs) if not torch.is_tensor(inputs) else inputs)
        y = None if targets is None else torch.as_tensor(np.asarray(targets)).long()
        return cls(inputs=x.float(), name=name, targets=y)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def require(self, fingerprint: str, what: str) -> None:
        """Raise ProbeMismatchError unless ``fingerprint`` is this suite's."""
        if fingerprint != self.fingerprint:
            raise ProbeMismatchError(
                f"{what} was computed on probe suite {fingerprint}, not on "
                f"{self.name!r} ({self.fingerprint}); function vectors from different probe "
                f"suites cannot be compared"
            )
