"""Batched offline evaluation against the plain per-checkpoint loop (prints ratios).

    python benchmarks/bench_evaluate.py                    # 500 checkpoints, 2 rounds
    python benchmarks/bench_evaluate.py --checkpoints 100 --rounds 1 --sweep

Records ``--checkpoints`` checkpoints of the MLP 784-500-500-10 (10 runs whose weights
take a random walk from their initial ones) into a temporary experiment with a probe
suite of 1,000 MNIST digits. Then, each round, side by side on the same machine:

- matmul: ``torch.matmul`` GFLOP/s on the model's own layer shapes, 1000x784 @ 784x500
  and 1000x500 @ 500x500, the machine's matrix-product speed for this work;
- plain: per checkpoint, ``load_weights`` (checksum verified), ``load_state_dict``,
  ``function_vector``, ``save_vector``: the loop ``evaluate()`` ran before;
- batched: ``fspace.evaluate()`` (stacked weights and ``vmap``, memory-mapped reads
  verified on background threads, writes on background threads).

The vector cache is deleted before each measurement. Timings on a shared machine are
noisy: compare the ratios within one round, not absolute times across runs.
``--sweep`` also times the batched forward alone for several batch lengths.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fspace import Experiment, ProbeSuite, Recorder, evaluate, function_vector
from fspace.models.mlp import make_mlp
from fspace.outputs import OutputSpec, as_stored

SHAPE = {"n_in": 784, "hidden": [500, 500], "n_classes": 10}
FLOPS = 2 * 1000 * (784 * 500 + 500 * 500 + 500 * 10)  # per checkpoint, 1,000 probes


def record(path: Path, n_ckpts: int, n_runs: int = 10) -> ProbeSuite:
    """Record ``n_ckpts`` checkpoints in ``n_runs`` runs; return the probe suite."""
    from fspace.data import load_dataset

    digits = load_dataset("mnist5k")
    suite = ProbeSuite.from_array(digits.images[:1000].copy(), name="digits")
    Experiment.create(path).add_probes(suite)
    gen = torch.Generator().manual_seed(0)
    per_run = -(-n_ckpts // n_runs)
    for r in range(n_runs):
        kwargs = {**SHAPE, "seed": r}
        model = make_mlp(**kwargs)
        with Recorder(
            path,
            run=f"r{r}",
            group="g",
            seed=r,
            model_factory="fspace.models.mlp:make_mlp",
            model_kwargs=kwargs,
        ) as rec:
            for epoch in range(min(per_run, n_ckpts - r * per_run)):
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(torch.randn(p.shape, generator=gen), alpha=0.01)
                rec.record(model, epoch=epoch)
    return suite


def matmul_gflops(repeats: int = 20) -> float:
    """GFLOP/s of torch.matmul on the model's two large layer shapes."""
    x, h = torch.rand(1000, 784), torch.rand(1000, 500)
    w1, w2 = torch.rand(784, 500), torch.rand(500, 500)
    torch.matmul(x, w1)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(x, w1)
        torch.matmul(h, w2)
    took = time.perf_counter() - start
    return repeats * 2 * 1000 * (784 * 500 + 500 * 500) / took / 1e9


def clear_vectors(path: Path) -> None:
    for d in path.glob("runs/*/vectors"):
        shutil.rmtree(d)


def plain_loop(path: Path, suite: ProbeSuite) -> tuple[float, np.ndarray]:
    """The per-checkpoint loop; returns (seconds, matrix of the vectors as stored)."""
    exp = Experiment(path)
    model = make_mlp(**SHAPE)
    start = time.perf_counter()
    rows = []
    for ckpt in exp.checkpoints():
        model.load_state_dict(exp.load_weights(ckpt))
        v = function_vector(model, suite)
        exp.save_vector(ckpt, suite.fingerprint, "prob", v)
        rows.append(v)
    took = time.perf_counter() - start
    return took, np.stack([as_stored(v, OutputSpec(form="prob")).float().numpy() for v in rows])


def batched(path: Path) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = evaluate(path, progress=False)
    return time.perf_counter() - start, vectors.matrix


def sweep(path: Path, suite: ProbeSuite, lengths=(1, 4, 8, 16, 32, 64)) -> None:
    """Time the batched forward alone (weights already in memory) per batch length."""
    from fspace.batched import function_vectors

    exp = Experiment(path)
    states = [exp.load_weights(c) for c in exp.checkpoints()[:64]]
    model = make_mlp(**SHAPE)
    for b in lengths:
        function_vectors(model, states[:b], suite)
        start = time.perf_counter()
        done = 0
        while done < len(states):
            function_vectors(model, states[done : done + b], suite)
            done += b
        took = time.perf_counter() - start
        print(
            f"  sweep: batch of {b:3d}: {done / took:6.1f} ckpt/s, "
            f"{done * FLOPS / took / 1e9:6.1f} GFLOP/s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="time batch lengths too")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="fspace-bench-evaluate-"))
    try:
        path = root / "exp"
        start = time.perf_counter()
        suite = record(path, args.checkpoints)
        n = args.checkpoints
        print(
            f"recorded {n} checkpoints of MLP 784-500-500-10 in {time.perf_counter() - start:.0f} s"
        )
        print(f"torch threads: {torch.get_num_threads()}; {FLOPS / 1e9:.2f} GFLOP per checkpoint")
        if args.sweep:
            sweep(path, suite)
        for r in range(args.rounds):
            mm = matmul_gflops()
            clear_vectors(path)
            t_plain, m_plain = plain_loop(path, suite)
            clear_vectors(path)
            t_batch, m_batch = batched(path)
            mm2 = matmul_gflops()
            matmul = (mm + mm2) / 2
            plain_rate, batch_rate = n / t_plain, n / t_batch
            batch_gflops = n * FLOPS / t_batch / 1e9
            print(
                f"round {r + 1}: matmul {matmul:.1f} GFLOP/s | plain {plain_rate:.1f} ckpt/s "
                f"({n * FLOPS / t_plain / 1e9:.1f} GFLOP/s) | batched {batch_rate:.1f} ckpt/s "
                f"({batch_gflops:.1f} GFLOP/s)"
            )
            print(
                f"round {r + 1}: batched/plain throughput {batch_rate / plain_rate:.2f}x "
                f"(target >= 3x); batched/matmul {batch_gflops / matmul:.2f} (target >= 0.8); "
                f"max |batched - plain| {np.abs(m_batch - m_plain).max():.1e}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
