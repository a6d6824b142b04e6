"""Tiny model factories that tests record with, registered as ``_models:NAME``."""

from __future__ import annotations

import torch
from torch import nn

from fspace.factories import register_factory


@register_factory
def make_mlp(n_in: int = 4, hidden: int = 8, n_out: int = 3, seed: int = 0) -> nn.Module:
    """A small MLP with deterministic initial weights."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model


@register_factory
def make_dropout_mlp(n_in: int = 4, n_out: int = 3) -> nn.Module:
    """An MLP whose output depends on train/eval mode (dropout)."""
    return nn.Sequential(nn.Linear(n_in, 16), nn.Dropout(0.5), nn.Linear(16, n_out))
