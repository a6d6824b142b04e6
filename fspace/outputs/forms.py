"""The built-in output kinds and vector forms (see :mod:`fspace.outputs.base`).

Compact forms for large outputs (a language model's probability vector is probes x
positions x vocabulary values):

- ``token_logprob``: the log-probability of the probe's own next token at each position;
- ``topk``: the probabilities of ``k`` tokens (the suite's most frequent next tokens, or
  the ids given as ``tokens``) plus the probability of all other tokens together, so each
  row stays a distribution;
- ``sketch``: a seeded random projection of the square-root probabilities to ``k``
  values, computed while recording (:mod:`fspace.outputs.sketch`). The Euclidean
  distance between two sketches estimates the Hellinger distance between the models,
  ``sqrt(sum over rows of H^2)`` with ``H^2 = 1/2 ||sqrt(p) - sqrt(q)||^2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError, ModelOutputError
from fspace.outputs.base import FORMS, KINDS, Form, Kind, OutputSpec, Rows, kind_param
from fspace.registry import Param

_MASK = kind_param("mask_key", "attention_mask", "probe input marking real (1) vs padding (0)")
_IDS = kind_param("ids_key", "input_ids", "probe input holding the token ids")


def _check_batch(out: torch.Tensor, batch_len: int, ndim: int, expected: str, what: str):
    if out.ndim != ndim + 1 or out.shape[1] != batch_len:
        raise ModelOutputError(
            f"{what} returned shape {tuple(out.shape[1:])} for {batch_len} probe inputs; "
            f"expected {expected}"
        )


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    first = next(iter(batch.values())) if isinstance(batch, Mapping) else batch[0]
    return first.shape[0]


@KINDS.register(
    "classification",
    label="Classification",
    help="(n, classes): one distribution over the classes per probe",
    forms=("prob", "logprob", "logits", "topk", "sketch"),
)
class Classification(Kind):
    name = "classification"

    def rows(self, out, batch, spec, what):
        _check_batch(out, _batch_len(batch), 2, "(n, classes) logits", what)
        if out.shape[-1] < 2 and FORMS.get(spec.form).obj.distribution:
            raise ModelOutputError(
                f"{what} returned {out.shape[-1]} column per probe: its softmax is always 1. "
                f"For real values declare kind='regression' (vectors of raw values)"
            )
        return Rows(out)


@KINDS.register(
    "sequence",
    label="Sequence",
    help="(n, positions, vocab): one distribution per position, padding left out",
    params=(_MASK, _IDS),
    forms=("prob", "logprob", "logits", "token_logprob", "topk", "sketch"),
)
class Sequence(Kind):
    name = "sequence"

    def rows(self, out, batch, spec, what):
        n = _batch_len(batch)
        _check_batch(out, n, 3, "(n, positions, vocab) logits", what)
        positions = out.shape[2]
        mask = _input(batch, spec.params.get("mask_key", "attention_mask"), integer=False)
        if mask is None:
            mask = torch.ones(n, positions, dtype=torch.bool, device=out.device)
        elif tuple(mask.shape) != (n, positions):
            raise ModelOutputError(
                f"{what} returned {positions} positions but the attention mask has shape "
                f"{tuple(mask.shape)}"
            )
        mask = mask.to(out.device).bool()
        ids = _input(batch, spec.params.get("ids_key", "input_ids"), integer=True)
        next_ids = None
        if ids is not None and tuple(ids.shape) == (n, positions):
            ids = ids.to(out.device)
            nxt = torch.full_like(ids, -1)
            follows = mask[:, :-1] & mask[:, 1:]
            nxt[:, :-1] = torch.where(follows, ids[:, 1:], torch.full_like(ids[:, 1:], -1))
            next_ids = nxt[mask]
        return Rows(out[:, mask], next_ids=next_ids)


def _input(batch: Any, key: str, *, integer: bool) -> torch.Tensor | None:
    if isinstance(batch, Mapping):
        return batch.get(key)
    if integer and isinstance(batch, torch.Tensor) and not batch.is_floating_point():
        return batch
    return None


@KINDS.register(
    "regression",
    label="Regression",
    help="(n, d) or (n,): real values, compared as they are",
    forms=("raw",),
)
class Regression(Kind):
    name = "regression"

    def rows(self, out, batch, spec, what):
        n = _batch_len(batch)
        if out.ndim == 2 and out.shape[1] == n:
            out = out.unsqueeze(-1)
        _check_batch(out, n, 2, "(n, d) or (n,) values", what)
        return Rows(out)


# forms ---------------------------------------------------------------------------------

_DISTRIBUTIONS = ("classification", "sequence")


@FORMS.register(
    "prob",
    label="probabilities",
    help="softmax probabilities",
    kinds=_DISTRIBUTIONS,
    params=(
        Param(
            "dtype",
            str,
            "float16",
            "dtype the vectors are cached in: float16 (half the bytes; see "
            "fspace.store.vectors.FLOAT16_TOLERANCE) or float32",
            choices=("float16", "float32"),
        ),
    ),
)
class Prob(Form):
    distribution = True
    storage_dtype = torch.float16

    def transform(self, rows):
        return torch.softmax(rows.values.float(), dim=-1)

    @staticmethod
    def probabilities(cube):
        return cube


@FORMS.register("logprob", label="log-probabilities", help="log-softmax", kinds=_DISTRIBUTIONS)
class LogProb(Form):
    distribution = True

    def transform(self, rows):
        return torch.log_softmax(rows.values.float(), dim=-1)

    @staticmethod
    def probabilities(cube):
        return np.exp(cube)


@FORMS.register("logits", label="logits", help="raw logits", kinds=_DISTRIBUTIONS)
class Logits(Form):
    distribution = True

    def transform(self, rows):
        return rows.values.float()

    @staticmethod
    def probabilities(cube):
        e = np.exp(cube - cube.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


@FORMS.register("raw", label="raw values", help="the output's values", kinds=("regression",))
class Raw(Form):
    def transform(self, rows):
        return rows.values.float()


@FORMS.register(
    "token_logprob",
    label="next-token log-probabilities",
    help="log-probability of the probe's own next token at each position",
    kinds=("sequence",),
)
class TokenLogProb(Form):
    def transform(self, rows):
        if rows.next_ids is None:
            raise ConfigError(
                "token_logprob needs the probe suite's token ids (an int tensor, or an "
                "'input_ids' entry of a dict suite, or set ids_key)"
            )
        keep = rows.next_ids >= 0
        logp = torch.log_softmax(rows.values[:, keep].float(), dim=-1)
        index = rows.next_ids[keep].view(1, -1, 1).expand(logp.shape[0], -1, 1)
        return logp.gather(-1, index)

    def finish(self):
        matrix, layout = super().finish()
        return matrix, layout[:1]


@FORMS.register(
    "topk",
    label="top-k tokens",
    help="probabilities of k chosen tokens plus the rest together",
    kinds=_DISTRIBUTIONS,
    params=(
        Param("k", int, 32, "the suite's k most frequent next tokens (or classes)", low=1),
        Param("tokens", str, "", "comma-separated token ids to keep instead"),
    ),
)
class TopK(Form):
    distribution = True

    def __init__(self, spec: OutputSpec, suite: Any) -> None:
        super().__init__(spec, suite)
        self.tokens: torch.Tensor | None = _parse_ids(spec.params.get("tokens", ""))

    def _choose(self, rows: Rows) -> torch.Tensor:
        k = int(self.spec.params["k"])
        ids = self.suite.token_ids(self.spec.params.get("ids_key", "input_ids"))
        if ids is None or self.spec.kind != "sequence":
            return torch.arange(min(k, rows.values.shape[-1]))
        mask = self.suite.get(self.spec.params.get("mask_key", "attention_mask"))
        flat = ids[mask.bool()] if mask is not None else ids.reshape(-1)
        counts = torch.bincount(flat.long(), minlength=rows.values.shape[-1])
        # most frequent first, ties by the lower id: the same choice on any machine
        order = sorted(range(len(counts)), key=lambda i: (-int(counts[i]), i))
        return torch.tensor(sorted(order[:k]), dtype=torch.int64)

    def transform(self, rows):
        if self.tokens is None:
            self.tokens = self._choose(rows)
        vocab = rows.values.shape[-1]
        if int(self.tokens.max()) >= vocab:
            raise ConfigError(f"topk tokens include id {int(self.tokens.max())} >= vocab {vocab}")
        p = torch.softmax(rows.values.float(), dim=-1)
        kept = p.index_select(-1, self.tokens.to(p.device))
        rest = (1 - kept.sum(-1, keepdim=True)).clamp_min(0)
        return torch.cat([kept, rest], -1)

    @staticmethod
    def probabilities(cube):
        return cube


def _parse_ids(text: str) -> torch.Tensor | None:
    if not text:
        return None
    try:
        ids = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ConfigError(f"topk tokens must be comma-separated ids, got {text!r}") from None
    if not ids or ids[0] < 0:
        raise ConfigError(f"topk tokens must be ids >= 0, got {text!r}")
    return torch.tensor(ids, dtype=torch.int64)


@FORMS.register(
    "sketch",
    label="Hellinger sketch",
    help="seeded random projection of the square-root probabilities to k values",
    kinds=_DISTRIBUTIONS,
    params=(
        Param("k", int, 4096, "sketch length", low=16),
        Param("seed", int, 0, "seed of the projection", low=0),
    ),
)
class Sketch(Form):
    def __init__(self, spec: OutputSpec, suite: Any) -> None:
        super().__init__(spec, suite)
        self.sum: torch.Tensor | None = None

    def add(self, rows):
        from fspace.outputs.sketch import sketch_rows

        part = sketch_rows(rows, int(self.spec.params["k"]), int(self.spec.params["seed"]))
        self.sum = part if self.sum is None else self.sum + part

    def finish(self):
        return self.sum.float().to("cpu"), (self.sum.shape[1],)
