"""Shared fixtures: tiny probe suites and recorded experiments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import make_mlp

from fspace import ProbeSuite, Recorder


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny test models run fastest on one thread, and CI machines are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def suite() -> ProbeSuite:
    gen = np.random.default_rng(0)
    return ProbeSuite.from_array(gen.normal(size=(20, 4)).astype(np.float32), name="probe")


def train_step(model: torch.nn.Module, seed: int, lr: float = 0.05) -> None:
    """One deterministic SGD step on random data, enough to move the function."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


def record_experiment(
    path, suite, *, groups=("pretrained", "random"), seeds=(0, 1, 2), epochs=4, online=True
):
    """Record groups x seeds runs of ``epochs + 1`` checkpoints each (epoch 0 included)."""
    for g, group in enumerate(groups):
        for seed in seeds:
            model = make_mlp(seed=seed + 10 * g)
            with Recorder(
                path,
                run=f"{group}-s{seed}",
                group=group,
                seed=seed,
                config={"depth": 1},
                probes=suite if online else None,
                model_factory="_models:make_mlp",
                model_kwargs={"seed": seed + 10 * g},
            ) as rec:
                for epoch in range(epochs + 1):
                    if epoch:
                        train_step(model, seed=1000 * seed + epoch)
                    rec.record(model, epoch=epoch, metrics={"test_error": 1.0 / (epoch + 1)})
    return path


@pytest.fixture
def recorded(tmp_path, suite):
    """An experiment with 2 groups x 3 seeds x 5 checkpoints, online vectors included."""
    return record_experiment(tmp_path / "exp", suite)
