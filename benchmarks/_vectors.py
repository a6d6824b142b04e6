"""Realistic function vectors for the benchmarks, generated in seconds.

Softmax outputs of checkpoints along real training trajectories: ``n_runs`` small MLPs
(two groups that differ in activation and step size, several seeds each) are trained
with SGD on 4,000 MNIST digits downsampled to 14 x 14, and every ``every`` steps a
checkpoint is evaluated on ``n_probe`` probe digits (the 5,000 real ones, then shifted
and noisy copies). 2,000 checkpoints on 10,000 probes give 2,000 vectors of length
100,000: neighbouring checkpoints of a run are close, runs of a group share structure,
and late checkpoints crowd together as training converges, as in real experiments.
The matrix is cached under the temporary directory and memory-mapped on later calls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fspace.models.mlp import make_mlp
from fspace.vectors import FunctionVectors

N_CLASSES = 10
GROUPS = (("sigmoid", 0.5), ("relu", 0.05))  # (activation, SGD step) per group


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from fspace.data import load_dataset

    digits = load_dataset("mnist5k")
    x = torch.from_numpy(digits.images.copy()).reshape(-1, 1, 28, 28)
    x = torch.nn.functional.avg_pool2d(x, 2).reshape(len(x), -1)
    return x, torch.from_numpy(digits.labels.copy())


def probe_inputs(n_probe: int, seed: int = 0) -> torch.Tensor:
    """``n_probe`` 14 x 14 probe digits: the real ones first, then shifted noisy copies."""
    x, _ = _digits()
    gen = torch.Generator().manual_seed(seed)
    parts, have = [x], len(x)
    while have < n_probe:
        shift = tuple(int(s) for s in torch.randint(-1, 2, (2,), generator=gen))
        moved = torch.roll(x.reshape(-1, 14, 14), shifts=shift, dims=(1, 2)).reshape(len(x), -1)
        parts.append((moved + 0.1 * torch.randn(moved.shape, generator=gen)).clamp(0, 1))
        have += len(x)
    return torch.cat(parts)[:n_probe].contiguous()


def _forward(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """Logits of R stacked one-hidden-layer MLPs: ``x`` (R, n, 196) -> (R, n, 10)."""
    w1, b1, w2, b2 = params
    h = torch.baddbmm(b1[:, None], x, w1.transpose(1, 2))
    h = torch.sigmoid(h) if activation == "sigmoid" else torch.relu(h)
    return torch.baddbmm(b2[:, None], h, w2.transpose(1, 2))


def _trajectories(group: int, seeds, n_ckpts: int, every: int, train) -> list[list[torch.Tensor]]:
    """Stacked parameters of the group's runs (one per seed) after every ``every`` steps."""
    activation, lr = GROUPS[group]
    models = [
        make_mlp(n_in=196, hidden=[32], n_classes=N_CLASSES, activation=activation, seed=s)
        for s in seeds
    ]
    params = [
        torch.stack(ps).detach().requires_grad_()
        for ps in zip(*(m.parameters() for m in models), strict=True)
    ]
    x, y = train
    orders = torch.stack(
        [
            torch.from_numpy(np.random.default_rng([s, group]).permutation(len(x) * 20) % len(x))
            for s in seeds
        ]
    )
    states, step = [], 0
    for _ in range(n_ckpts):
        for _ in range(every):
            idx = orders[:, step * 32 : (step + 1) * 32]
            logits = _forward(params, x[idx], activation)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, N_CLASSES), y[idx].reshape(-1)
            )
            grads = torch.autograd.grad(loss * len(seeds), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(lr * g)
            step += 1
        states.append([p.detach().clone() for p in params])
    return states


@torch.no_grad()
def _outputs(params: list[torch.Tensor], probes: torch.Tensor, activation: str) -> torch.Tensor:
    x = probes.expand(len(params[0]), *probes.shape)
    return torch.softmax(_forward(params, x, activation), -1).reshape(len(params[0]), -1)


def generate(n_runs: int = 20, n_ckpts: int = 100, n_probe: int = 10_000, every: int = 10):
    """(matrix, points) of ``n_runs * n_ckpts`` checkpoints on ``n_probe`` probes."""
    x, y = _digits()
    train = (x[:4000], y[:4000])
    probes = probe_inputs(n_probe)
    matrix = np.empty((n_runs * n_ckpts, n_probe * N_CLASSES), dtype=np.float32)
    rows = []
    for group in range(len(GROUPS)):
        runs = list(range(group, n_runs, len(GROUPS)))
        seeds = [run // len(GROUPS) for run in runs]
        states = _trajectories(group, seeds, n_ckpts, every, train)
        for i, params in enumerate(states):
            out = _outputs(params, probes, GROUPS[group][0])
            for r, run in enumerate(runs):
                matrix[run * n_ckpts + i] = out[r].numpy()
    for run in range(n_runs):
        group = run % len(GROUPS)
        for i in range(n_ckpts):
            rows.append(
                {
                    "run": f"g{group}-r{run}",
                    "group": f"g{group}",
                    "seed": run // len(GROUPS),
                    "epoch": i,
                    "step": (i + 1) * every,
                    "checkpoint": f"g{group}-r{run}/c{i:04d}",
                }
            )
    return matrix, pd.DataFrame(rows)


def cached_vectors(
    n_runs: int = 20, n_ckpts: int = 100, n_probe: int = 10_000, *, mmap: bool = True
) -> FunctionVectors:
    """:func:`generate`'s vectors, cached as .npy under the temporary directory."""
    root = Path(tempfile.gettempdir()) / "fspace-bench-vectors"
    stem = root / f"vectors-{n_runs}x{n_ckpts}-p{n_probe}"
    npy, csv = stem.with_suffix(".npy"), stem.with_suffix(".csv")
    if not (npy.exists() and csv.exists()):
        root.mkdir(parents=True, exist_ok=True)
        matrix, points = generate(n_runs, n_ckpts, n_probe)
        tmp = stem.with_suffix(".tmp.npy")
        np.save(tmp, matrix)
        tmp.replace(npy)
        points.to_csv(csv, index=False)
        del matrix
    matrix = np.load(npy, mmap_mode="r" if mmap else None)
    return FunctionVectors(matrix, pd.read_csv(csv), "bench", "prob")
