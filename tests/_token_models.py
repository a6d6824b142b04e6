"""Tiny models of other output kinds, registered as ``_token_models:NAME``: a language
model over token ids with an attention mask, a classifier of token ids returning a dict,
a model of two inputs and a regression MLP."""

from __future__ import annotations

import torch
from torch import nn

from fspace.factories import register_factory

VOCAB = 11


def _init(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    return model


class TinyLM(nn.Module):
    """``(n, positions, VOCAB)`` next-token logits; takes ``input_ids`` (int64 only) and
    an ``attention_mask``, as Hugging Face language models do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 6)
        self.mix = nn.Linear(6, 6)
        self.head = nn.Linear(6, VOCAB)

    def forward(self, input_ids, attention_mask=None):
        h = torch.tanh(self.mix(self.embed(input_ids)))
        h = torch.cumsum(h, dim=1)  # each position sees the ones before it
        return {"logits": self.head(h), "hidden": h}


class TokenClassifier(nn.Module):
    """``{"logits": (n, 3)}`` from token ids and a mask (mean of the real positions)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, input_ids, attention_mask):
        m = attention_mask.unsqueeze(-1).float()
        h = (self.embed(input_ids) * m).sum(1) / m.sum(1)
        return {"logits": self.head(h)}


class TwoInputs(nn.Module):
    """``model(image, extra)``: an input tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(2, 3)

    def forward(self, image, extra):
        return self.a(image) + self.b(extra)


@register_factory
def make_lm(seed: int = 0) -> nn.Module:
    return _init(TinyLM(), seed)


@register_factory
def make_token_classifier(seed: int = 0) -> nn.Module:
    return _init(TokenClassifier(), seed)


@register_factory
def make_two_inputs(seed: int = 0) -> nn.Module:
    return _init(TwoInputs(), seed)


@register_factory
def make_regressor(seed: int = 0, n_out: int = 1) -> nn.Module:
    return _init(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, n_out)), seed)


def token_suite_inputs(n: int = 6, positions: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """int64 ids with right padding: probe ``i`` has ``positions - i % 3`` real tokens."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, positions), generator=gen)
    mask = torch.ones(n, positions, dtype=torch.int64)
    for i in range(n):
        mask[i, positions - i % 3 :] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}
