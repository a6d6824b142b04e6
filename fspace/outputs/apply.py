"""Turning a model's outputs on a probe suite into function vectors.

:func:`function_vector` is the pure computation for one model. :class:`Accumulator`
turns batches of outputs, of one model or of many checkpoints at once (a leading
checkpoint axis), into vectors in the chosen :class:`~fspace.outputs.base.OutputSpec`; the
Recorder, the offline evaluator and the batched evaluator all go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fspace.errors import ConfigError, ModelOutputError
from fspace.outputs.base import KINDS, OutputSpec, as_spec, extract_output, form_for, kind_of
from fspace.probes import Inputs, ProbeSuite, call_model

OUTPUT_BUDGET = 1 << 24
"""Output values one batch may produce per checkpoint (64 MiB of float32); batches of
probes are sized to it after the first one, so a language model's vocabulary-wide
outputs never fill the memory."""
MAX_BATCH = 4096
"""Probes per batch at most."""


class EvalMode:
    """Put every submodule in eval mode, and restore each one's own mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc) -> None:
        for m, mode in self.modes:
            m.training = mode


@dataclass(frozen=True)
class Vectors:
    """``matrix`` ``(checkpoints, length)`` float32 on the CPU, in ``spec`` (kind and form
    known), each one of shape ``layout`` before flattening."""

    matrix: torch.Tensor
    spec: OutputSpec
    layout: tuple[int, ...]


class Accumulator:
    """Function vectors of one or more checkpoints, fed one batch of outputs at a time."""

    def __init__(self, suite: ProbeSuite, spec: OutputSpec, what: str) -> None:
        self.suite = suite
        self.spec = spec
        self.what = what
        self.form = None
        self.rows = 0

    def add(self, out: torch.Tensor, batch: Inputs) -> None:
        """``out``: the extracted output tensor ``(checkpoints, batch, ...)``."""
        if self.form is None:
            self.spec = self.spec.with_kind(kind_of(out, self.spec, self.what))
            self.form = form_for(self.spec, self.suite)
            self.kind = KINDS.get(self.spec.kind).obj()
        rows = self.kind.rows(out, batch, self.spec, self.what)
        rows.start = self.rows
        self.rows += rows.values.shape[1]
        self.form.add(rows)

    def finish(self, *, finite: bool = True) -> Vectors:
        """The vectors; with ``finite``, ModelOutputError if any value is NaN or infinite."""
        matrix, layout = self.form.finish()
        if finite and not torch.isfinite(matrix).all():
            bad = int((~torch.isfinite(matrix)).sum())
            raise ModelOutputError(
                f"{self.what} produced {bad} NaN or infinite outputs on the probes"
            )
        return Vectors(matrix.to(torch.float32), self.spec, layout)


def batch_size_for(run: Callable[[Inputs], torch.Tensor], suite: ProbeSuite, device) -> int:
    """Probes per batch such that one batch's output, ``(checkpoints, probes, ...)`` as
    ``run(inputs)`` returns it, holds at most :data:`OUTPUT_BUDGET` values. Measured on
    one probe, whose output is then dropped: every batch is full, so the values do not
    depend on how the outputs' size was found."""
    out = run(suite.batch(0, 1, device))
    per_probe = max(1, out.numel() // max(1, out.shape[1]))
    return max(1, min(MAX_BATCH, OUTPUT_BUDGET // per_probe))


def _check_model(model: Any, probes: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(probes, ProbeSuite):
        raise ConfigError(
            f"probes must be a ProbeSuite or a tensor of inputs, got {type(probes).__name__}"
        )


@torch.no_grad()
def model_vectors(
    model: nn.Module,
    suite: ProbeSuite,
    spec: OutputSpec,
    *,
    extract: Callable | None = None,
    forward: Callable | None = None,
    batch_size: int | None = None,
    what: str = "model",
) -> Vectors:
    """The function vector of ``model`` on ``suite`` (a matrix of one row), in ``spec``."""
    _check_model(model, suite)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    acc = Accumulator(suite, spec, what)

    def run(batch: Inputs) -> torch.Tensor:
        raw = forward(model, batch) if forward is not None else call_model(model, batch)
        out = extract(raw) if extract is not None else extract_output(raw, spec.key, what)
        if not isinstance(out, torch.Tensor):
            raise ModelOutputError(
                f"extract= returned {type(out).__name__} for {what}, not a tensor"
            )
        return out.unsqueeze(0)

    with EvalMode(model):
        size = batch_size or batch_size_for(run, suite, device)
        for _, _, batch in suite.batches(size, device):
            acc.add(run(batch), batch)
    return acc.finish()


def function_vector(
    model: nn.Module,
    probes: ProbeSuite | Any,
    *,
    output: str | OutputSpec = "prob",
    kind: str | None = None,
    params: dict[str, Any] | None = None,
    output_key: str = "logits",
    extract: Callable | None = None,
    forward: Callable | None = None,
    batch_size: int | None = None,
    what: str = "model",
) -> torch.Tensor:
    """Outputs of ``model`` on every probe input, as one float32 vector.

    The model runs in eval mode under ``no_grad`` (each submodule's own mode is restored
    afterwards) and is called as ``model(inputs)``, ``model(**inputs)`` or
    ``model(*inputs)`` by the suite's structure, or as ``forward(model, inputs)``. Its
    output may be a tensor, a tuple (first element), a dict or ``ModelOutput`` (entry
    ``output_key``), or anything ``extract(output)`` turns into a tensor. ``kind`` and
    ``output`` (the vector form) are described in :mod:`fspace.outputs`.

    Example::

        v = function_vector(model, suite)   # shape (len(suite) * n_classes,)
    """
    if isinstance(probes, torch.Tensor):
        probes = ProbeSuite(probes)
    spec = as_spec(
        output, kind=kind, params=params, key=output_key, extract=extract, forward=forward
    )
    result = model_vectors(
        model, probes, spec, extract=extract, forward=forward, batch_size=batch_size, what=what
    )
    return result.matrix[0]
