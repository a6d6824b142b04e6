"""Live input columns copied run by run: the same values as a gather column by column."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fspace import live_inputs
from fspace.live_inputs import column_runs, take_columns

PATTERNS = {
    "borders": np.r_[3:12, 14:24, 30:40],  # long runs, like MNIST's live pixels
    "one run": np.arange(2, 38),
    "scattered": np.arange(0, 40, 3),  # runs of one column: gathered column by column
    "first and last": np.r_[0:10, 39:40],
}


@pytest.mark.parametrize("name", list(PATTERNS), ids=list(PATTERNS))
def test_runs_cover_the_live_columns_in_order(name):
    alive = PATTERNS[name]
    runs = column_runs(alive)
    rebuilt = np.concatenate([np.arange(first, end) for first, end, _ in runs])
    np.testing.assert_array_equal(rebuilt, alive)
    np.testing.assert_array_equal(runs[:, 2], np.r_[0, np.cumsum(runs[:-1, 1] - runs[:-1, 0])])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("name", list(PATTERNS), ids=list(PATTERNS))
def test_taken_by_runs_equal_the_gather(name, dtype):
    alive = PATTERNS[name]
    src = torch.randn(3, 7, 40).to(dtype)
    want = src[..., torch.from_numpy(alive)]
    out = torch.full_like(want, float("nan"))
    take_columns(src, alive, out, column_runs(alive))
    assert torch.equal(out, want)


def test_short_runs_are_gathered_column_by_column(monkeypatch):
    alive = PATTERNS["scattered"]
    taken = []
    real = np.take
    monkeypatch.setattr(live_inputs.np, "take", lambda *a, **k: taken.append(1) or real(*a, **k))
    src = torch.randn(5, 40)
    out = torch.empty(5, len(alive))
    take_columns(src, alive, out, column_runs(alive))
    assert taken and torch.equal(out, src[:, torch.from_numpy(alive)])
    taken.clear()
    take_columns(src, PATTERNS["borders"], torch.empty(5, 29), column_runs(PATTERNS["borders"]))
    assert not taken
