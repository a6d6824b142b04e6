"""Output kinds and vector forms: what a model returns, and what a function vector holds.

An **output kind** says what the model's output means and how it splits into rows:

- ``classification``: ``(n, classes)``, one distribution per probe;
- ``sequence``: ``(n, positions, vocab)``, one distribution per position, padding
  positions (zeros of the suite's ``attention_mask``) left out;
- ``regression``: ``(n, d)`` (or ``(n,)``) real values.

A **vector form** says what the function vector holds per row: ``prob`` (softmax
probabilities), ``logprob``, ``logits``, ``raw`` (regression values), or a compact
form for large outputs (``token_logprob``, ``topk``, ``sketch``; see
:mod:`fspace.outputs.forms`). Each kind lists the forms that make sense for it and
refuses the others when recording starts.

Both are registries that plug-ins extend (entry-point groups ``fspace.outputs`` for
kinds and ``fspace.output_forms`` for forms)::

    from fspace.outputs import FORMS, Form

    @FORMS.register("entropy", kinds=("classification", "sequence"))
    class Entropy(Form): ...

:class:`OutputSpec` is one choice of kind, form, parameters and output key; it is
stored with every cached function vector, so an experiment remembers how it was
recorded and no later command needs to be told again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError, ModelOutputError
from fspace.registry import Param, Registry

KINDS: Registry = Registry("output kind", "fspace.outputs")
"""Output kinds by name; ``entry.obj`` is a :class:`Kind`, ``entry.tags["forms"]`` the
names of the forms it allows (the first is its default)."""
FORMS: Registry = Registry("vector form", "fspace.output_forms")
"""Vector forms by name; ``entry.obj`` is a :class:`Form` subclass, ``entry.tags["kinds"]``
the kinds it applies to, ``entry.params`` its parameters."""


@dataclass
class Rows:
    """One batch of a model's output, split into rows by the kind.

    ``values`` is ``(checkpoints, rows, outcomes)``; ``next_ids`` (sequence outputs) is
    ``(rows,)``, the id of the token that follows each row's position in the probe
    (-1 where none does); ``start`` is the global index of the first row.
    """

    values: torch.Tensor
    start: int = 0
    next_ids: torch.Tensor | None = None


class Kind:
    """What a model output means; splits a batch of it into :class:`Rows`."""

    name = ""

    def rows(self, out: torch.Tensor, batch: Any, spec: OutputSpec, what: str) -> Rows:
        """``out`` is ``(checkpoints, batch, ...)``; ``batch`` the probe inputs."""
        raise NotImplementedError


class Form:
    """What a function vector holds. Subclasses override :meth:`transform` (rows to
    values, concatenated over batches) or :meth:`add` and :meth:`finish` (a vector
    accumulated over batches, such as a sketch).

    ``distribution``: the vector holds one distribution per row over the last axis of
    its layout, and :meth:`probabilities` turns it back into probabilities.
    """

    distribution = False
    storage_dtype = torch.float32
    """The dtype cached vectors of this form are stored in (float16 halves the files)."""

    def __init__(self, spec: OutputSpec, suite: Any) -> None:
        self.spec = spec
        self.suite = suite
        self.parts: list[torch.Tensor] = []

    def transform(self, rows: Rows) -> torch.Tensor:
        """``(checkpoints, rows, d)`` values of one batch."""
        raise NotImplementedError

    def add(self, rows: Rows) -> None:
        self.parts.append(self.transform(rows).float().to("cpu"))

    def finish(self) -> tuple[torch.Tensor, tuple[int, ...]]:
        """``(checkpoints, length)`` vectors and the layout of one of them."""
        cube = torch.cat(self.parts, 1)
        return cube.reshape(cube.shape[0], -1), tuple(cube.shape[1:])

    @staticmethod
    def probabilities(cube: np.ndarray) -> np.ndarray:
        """Probabilities from ``(n, rows, outcomes)`` values in this form."""
        raise ConfigError("these function vectors do not hold distributions")


@dataclass(frozen=True)
class OutputSpec:
    """A choice of output kind, vector form, their parameters and the output key.

    ``kind=None`` infers the kind from the output's shape (2-D: classification, 3-D:
    sequence; regression is never guessed). ``key`` picks the entry of a dict or
    ``ModelOutput``; ``extract`` and ``forward`` name user callables, for the record.
    """

    kind: str | None = None
    form: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    key: str = "logits"
    extract: str | None = None
    forward: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None:
            entry = KINDS.get(self.kind)
            if self.form is not None and self.form not in entry.tags["forms"]:
                raise ConfigError(
                    f"a {self.kind} output cannot be stored as {self.form!r}: use one of "
                    f"{', '.join(entry.tags['forms'])}"
                )
        if self.form is not None:
            entry = FORMS.get(self.form)
            known = {p.name for p in entry.params} | _kind_param_names(self.kind)
            unknown = set(self.params) - known
            if unknown:
                raise ConfigError(
                    f"vector form {self.form!r} has no parameter {sorted(unknown)[0]!r} "
                    f"(it has: {', '.join(sorted(known)) or 'none'})"
                )
            checked = {**entry.defaults(), **dict(self.params)}
            for p in entry.params:
                checked[p.name] = p.parse(checked[p.name])
            object.__setattr__(self, "params", checked)
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError(f"output key must be a non-empty string, got {self.key!r}")

    def with_default_form(self) -> OutputSpec:
        """This spec, with its kind's default form (probabilities when the kind is to
        be inferred) if it names none."""
        if self.form is not None:
            return self
        if self.kind is not None:
            return self.with_kind(self.kind)
        return OutputSpec(None, "prob", self.params, self.key, self.extract, self.forward)

    def with_kind(self, kind: str) -> OutputSpec:
        form = self.form or KINDS.get(kind).tags["forms"][0]
        return OutputSpec(kind, form, self.params, self.key, self.extract, self.forward)

    @property
    def name(self) -> str:
        """The name cached vectors are filed under: the form, then any parameter or key
        that differs from its default (``"prob"``, ``"sketch.k=1024"``)."""
        if self.form is None:
            raise ConfigError("the vector form is not known yet")
        defaults = FORMS.get(self.form).defaults()
        parts = [self.form]
        for k in sorted(self.params):
            if self.params[k] != defaults.get(k):
                parts.append(f"{k}={_safe(self.params[k])}")
        for k, v, default in (
            ("key", self.key, "logits"),
            ("extract", self.extract, None),
            ("forward", self.forward, None),
        ):
            if v != default:
                parts.append(f"{k}={_safe(v)}")
        return ".".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "form": self.form,
            "params": dict(self.params),
            "key": self.key,
            "extract": self.extract,
            "forward": self.forward,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> OutputSpec:
        return cls(
            kind=body.get("kind"),
            form=body.get("form"),
            params=dict(body.get("params") or {}),
            key=body.get("key") or "logits",
            extract=body.get("extract"),
            forward=body.get("forward"),
        )

    def describe(self) -> str:
        return f"{self.kind or 'any'} output as {self.name if self.form else 'default form'}"


def _kind_param_names(kind: str | None) -> set[str]:
    entries = [KINDS.get(kind)] if kind is not None else KINDS.entries()
    return {p.name for e in entries for p in e.params}


def _safe(value: Any) -> str:
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_+-]{1,40}", text):
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def callable_name(fn: Callable | None) -> str | None:
    """``module:qualname`` of a user callable, to file its vectors under."""
    if fn is None:
        return None
    if not callable(fn):
        raise ConfigError(f"expected a function, got {type(fn).__name__}")
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"


def as_spec(
    output: str | OutputSpec | None = None,
    *,
    kind: str | None = None,
    params: Mapping[str, Any] | None = None,
    key: str = "logits",
    extract: Callable | None = None,
    forward: Callable | None = None,
) -> OutputSpec:
    """An :class:`OutputSpec` from the arguments users pass (``output="logprob"``)."""
    if isinstance(output, OutputSpec):
        return output
    if output is not None and not isinstance(output, str):
        raise ConfigError(f"output must be a form name such as 'prob', got {output!r}")
    if output is not None and output not in FORMS:
        raise ConfigError(f"output {output!r} is not one of {', '.join(FORMS.names())}")
    if kind is None and output is not None:
        kinds = FORMS.get(output).tags.get("kinds", ())
        kind = kinds[0] if len(kinds) == 1 else None  # e.g. "raw": regression
    return OutputSpec(
        kind, output, dict(params or {}), key, callable_name(extract), callable_name(forward)
    )


def extract_output(out: Any, key: str, what: str) -> torch.Tensor:
    """The tensor in a model's output: itself, the first element of a tuple, or entry
    ``key`` of a dict or Hugging Face ``ModelOutput``."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, Mapping):
        if key not in out:
            available = ", ".join(repr(k) for k in out) or "none"
            raise ModelOutputError(
                f"{what} returned {type(out).__name__} without key {key!r} (available keys: "
                f"{available}); pass output_key= one of them, or extract=a function"
            )
        out = out[key]
    elif isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ModelOutputError(
            f"{what} returned {type(out).__name__}, not a tensor; pass extract= a function "
            f"that takes the model's output and returns the tensor to use"
        )
    return out


def kind_of(out: torch.Tensor, spec: OutputSpec, what: str) -> str:
    """The kind ``spec`` declares, or the one ``out`` (with a checkpoint axis) implies."""
    if spec.kind is not None:
        return spec.kind
    per_checkpoint = out.ndim - 1
    if per_checkpoint == 2:
        return "classification"
    if per_checkpoint == 3:
        return "sequence"
    raise ModelOutputError(
        f"{what} returned shape {tuple(out.shape[1:])}: expected (n, classes) or "
        f"(n, positions, vocab); for real values declare kind='regression'"
    )


def form_for(spec: OutputSpec, suite: Any) -> Form:
    """A new :class:`Form` accumulator for ``spec`` (whose kind is known) on ``suite``."""
    entry = FORMS.get(spec.form)
    return entry.obj(spec, suite)


def as_stored(v: torch.Tensor, spec: OutputSpec) -> torch.Tensor:
    """``v`` in the storage dtype of ``spec``'s form (or its ``dtype`` parameter): the
    values a later read returns."""
    dtype = spec.params.get("dtype")
    dtype = FORMS.get(spec.form).obj.storage_dtype if dtype is None else getattr(torch, dtype)
    return v.reshape(-1).to(dtype)


def kind_param(name: str, default: str, help: str) -> Param:
    return Param(name, str, default, help)
