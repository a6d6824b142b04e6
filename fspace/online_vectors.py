"""Online function vectors: the vector of each checkpoint the Recorder records.

The first one is computed inside ``record()``, so that a model or probe suite that do not
fit fail at once; the others on the recorder's worker thread, on a shadow copy of the
model loaded with each checkpoint's weights, or from the outputs the training loop
already computed on the probe suite (``record(..., probe_outputs=out)``).
"""

from __future__ import annotations

import copy
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fspace.errors import ConfigError, FspaceError, ModelOutputError, ProbeMismatchError
from fspace.outputs import OutputSpec
from fspace.outputs.apply import Accumulator, Vectors, model_vectors
from fspace.outputs.base import extract_output
from fspace.probes import ProbeSuite

_DTYPE_HINTS = ("scalar type", "dtype", "Long, Int", "Double", "expected scalar")


def cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU copy of ``tensor``, made by the calling thread alone.

    torch copies a large tensor with its OpenMP team, which on a busy machine waits for
    its other threads to be scheduled (tens of ms at a load of 10 on 2 cores): a plain
    ``memcpy`` through numpy takes the training thread a fraction of a millisecond.
    """
    t = tensor.detach()
    if t.device.type != "cpu" or t.layout != torch.strided or not t.is_contiguous():
        return t.to("cpu", copy=True)
    if t.numel() == 0 or t.is_quantized or t.is_conj() or t.is_neg():
        return t.to("cpu", copy=True)
    raw = t.reshape(-1).view(torch.uint8).numpy().copy()
    return torch.from_numpy(raw).view(t.dtype).view(t.shape)


class OnlineVectors:
    """The function vectors of one run's checkpoints on ``probes`` (None: no vectors).

    ``spec`` becomes the vectors' own once the first is computed (the kind, once known,
    holds for every later checkpoint); ``background`` turns False if the model cannot be
    copied; ``notes`` collects the worker thread's warnings, for the recorder to show.
    """

    def __init__(
        self,
        probes: ProbeSuite | None,
        spec: OutputSpec,
        *,
        run: str,
        extract: Callable | None,
        forward: Callable | None,
        background: bool,
        vector_size: int | None,
    ) -> None:
        self.probes, self.spec, self.run = probes, spec, run
        self.background = background
        self.notes: list[str] = []
        self._extract, self._forward = extract, forward
        self._vector_size = vector_size  # of the experiment's vectors on probes, if known
        self._shadow: tuple[weakref.ref, nn.Module] | None = None  # (its model, the copy)
        self._tried = False  # whether a vector was computed in record() (the first is)

    def job(
        self, model: nn.Module, weights: dict, probe_outputs: Any, epoch: int, step: int
    ) -> Vectors | Callable[[], Vectors | None] | None:
        """The function vector now (the first one, or without ``background``), or a
        function that computes it on the background thread."""
        what = f"run {self.run!r} at epoch {epoch}, step {step}"
        if self.probes is None:
            if probe_outputs is not None:
                raise ConfigError("probe_outputs= needs a probe suite: pass Recorder(probes=...)")
            return None
        if probe_outputs is not None:
            out = self._output_copy(probe_outputs, what)
            compute = lambda: _outputs_vectors(out, self.probes, self.spec, what)  # noqa: E731
        else:
            shadow = self._shadow_of(model) if self.background else None
            if shadow is None or not self._tried:
                compute = lambda: self._forward_vectors(model, what)  # noqa: E731
            else:  # the weights are the CPU copy record() made
                compute = lambda: self.shadow_vectors(shadow, weights, what)  # noqa: E731
        if not self._tried or not self.background:
            vector = self._checked(compute, model, what, background=False)
            self._tried = True
            return vector
        return lambda: self._checked(compute, model, what, background=True)

    def _output_copy(self, raw: Any, what: str) -> torch.Tensor:
        out = self._extract(raw) if self._extract is not None else None
        if self._extract is None:
            out = extract_output(raw, self.spec.key, what)
        if not isinstance(out, torch.Tensor):
            raise ConfigError(
                f"probe_outputs of {what} must hold a tensor, got {type(out).__name__}"
            )
        if out.shape[:1] != (len(self.probes),):
            raise ProbeMismatchError(
                f"probe_outputs of {what} has shape {tuple(out.shape)}, but probe suite "
                f"{self.probes.name!r} has {len(self.probes)} probes: pass the model's "
                f"output on the whole suite, in order"
            )
        return cpu_copy(out)

    def _shadow_of(self, model: nn.Module) -> nn.Module | None:
        """The background thread's copy of ``model``, made at its first record (None if it
        cannot be copied: its vectors are then computed inside ``record()``)."""
        if self._shadow is not None and self._shadow[0]() is model:
            return self._shadow[1]
        try:
            shadow = copy.deepcopy(model)
        except Exception as e:  # any model that cannot be copied
            warnings.warn(
                f"run {self.run!r}: the model cannot be copied ({type(e).__name__}: {e}); "
                f"its function vectors are computed inside record()",
                stacklevel=4,
            )
            self.background = False
            return None
        for p in shadow.parameters():
            p.grad = None
            p.requires_grad_(False)
        self._shadow = (weakref.ref(model), shadow)
        return shadow

    def _forward_vectors(self, model: nn.Module, what: str) -> Vectors:
        return model_vectors(
            model, self.probes, self.spec, extract=self._extract, forward=self._forward, what=what
        )

    def shadow_vectors(self, shadow: nn.Module, weights: dict, what: str) -> Vectors:
        """The function vector of ``weights``, loaded into the shadow copy of the model."""
        shadow.load_state_dict(weights)
        return self._forward_vectors(shadow, what)

    def _checked(
        self, compute: Callable[[], Vectors], model: nn.Module, what: str, *, background: bool
    ) -> Vectors | None:
        try:
            v = compute()
        except ModelOutputError as e:
            if "NaN" not in str(e):
                raise
            note = f"{e}; the weights are saved without a function vector"
            if background:  # shown by the next record(), flush() or close()
                self.notes.append(note)
            else:
                warnings.warn(note, stacklevel=4)
            return None
        except FspaceError:
            raise
        except Exception as e:  # the model's own forward failed on the probe inputs
            raise _forward_error(e, what, self.probes, model) from e
        self.spec = v.spec  # the kind, once known, holds for every later checkpoint
        size = v.matrix.shape[1]
        if self._vector_size is None:
            self._vector_size = size
        elif size != self._vector_size:
            raise ModelOutputError(
                f"{what}: function vector has {size} values on probe suite "
                f"{self.probes.name!r}, but the experiment's checkpoints have "
                f"{self._vector_size}; the model's output size differs from the experiment's"
            )
        return v


def _forward_error(e: Exception, what: str, suite: ProbeSuite, model: nn.Module) -> FspaceError:
    """The error to raise when the model's own forward fails on the probe inputs."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if any(hint in str(e) for hint in _DTYPE_HINTS):
        params = {str(p.dtype).removeprefix("torch.") for p in model.parameters()}
        return ConfigError(
            f"{what}: the model cannot take probe suite {suite.name!r} as it is "
            f"({suite.describe()}; model parameters {', '.join(sorted(params)) or 'none'}): "
            f"{first}. fspace never casts probe inputs: build the suite with the dtypes the "
            f"model takes (token ids as int64, features as the parameters' float dtype)"
        )
    return ProbeMismatchError(
        f"{what}: the model raised {type(e).__name__} on probe suite {suite.name!r} "
        f"({len(suite)} probes: {suite.describe()}): {first}; the probe inputs must be what "
        f"the model's forward takes (or pass forward=)"
    )


def _outputs_vectors(out: torch.Tensor, suite: ProbeSuite, spec: OutputSpec, what: str) -> Vectors:
    """The function vector of outputs a training loop computed on the whole ``suite``."""
    acc = Accumulator(suite, spec, what)
    acc.add(out.unsqueeze(0), suite.batch(0, len(suite)))
    return acc.finish()
