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
- batched: ``fspace.evaluate()`` (stacked weights, reads verified on background
  threads, writes on background threads).

The vector cache is deleted before each measurement. Timings on a shared machine are
noisy: compare the ratios within one round, not absolute times across runs.
``--sweep`` also times the batched forward alone for several batch lengths.
``--device cuda`` (the default is ``cpu``) times instead ``evaluate()`` on the GPU, each
round against the device's peak FP32 rate (``benchmarks/_gpu.py``: a table of common
GPUs, else a measured large matmul), an 8192^3 matmul and a matmul of the model's layer
shapes measured there; the plain loop, sweep and profile stay on the CPU path.
``--profile`` then, in one more round next to its own matmul reference, splits
``evaluate()``'s wall time by phase (reads and checksums, gathering the first layer's
live input columns, each layer's product with its bias, activations, softmax and
format, writes and fsyncs; functions wrapped with a clock, the library unchanged),
gives the rate of the products alone and of each layer's, times ``evaluate()`` keeping
every input feature, lists the operators torch.profiler finds taking the CPU time, and
measures evaluate()'s parts alone in CPU seconds (``_evaluate_cpu.py``): evaluate() as
shipped, with the schedule before, with the weights already in memory; reading,
checksum, gather and writes alone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from fspace import Experiment, ProbeSuite, Recorder, evaluate, function_vector
from fspace.batched import MAX_BATCH
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


def matmul_gflops(repeats: int = 20, device: str = "cpu") -> float:
    """GFLOP/s of torch.matmul on the model's two large layer shapes (on ``device``)."""
    x, h = torch.rand(1000, 784, device=device), torch.rand(1000, 500, device=device)
    w1, w2 = torch.rand(784, 500, device=device), torch.rand(500, 500, device=device)
    torch.matmul(x, w1)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(x, w1)
        torch.matmul(h, w2)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
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


def batched(path: Path, device: str = "cpu") -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = evaluate(path, progress=False, device=device)  # the matrix is on the host
    return time.perf_counter() - start, vectors.matrix


def gpu_rounds(path: Path, n: int, rounds: int, device: torch.device) -> None:
    """Batched evaluate() on the GPU ``device``, each round against its peak."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
    from _gpu import describe, rate_line

    print(describe(device))
    batched(path, device)  # warm up: CUDA context, kernels
    for r in range(rounds):
        clear_vectors(path)
        took, _ = batched(path, device)
        layers = matmul_gflops(200, device)
        print(
            f"round {r + 1}: batched {n / took:.1f} ckpt/s on {device} | matmul of the "
            f"layer shapes {layers:.0f} GFLOP/s | evaluate()/that "
            f"{n * FLOPS / took / 1e9 / layers:.3f}"
        )
        print(rate_line(f"round {r + 1}: evaluate()", n * FLOPS, took, device, torch.float32))


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


class PhaseTimer:
    """Seconds per phase, summed over the threads that ran it: wall seconds, and the
    CPU seconds of the thread that ran each call (for phases on background threads,
    what they took of the cores; the wall seconds include time descheduled)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float, cpu: float = 0.0) -> None:
        with self._lock:
            self.seconds[phase] += seconds
            self.cpu[phase] += cpu
            self.calls[phase] += 1

    def wrap(self, phase: str | Callable[..., str], fn: Callable) -> Callable:
        """``fn`` timed under ``phase`` (or ``phase(*args)``, the name of its call)."""

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                name = phase(*args) if callable(phase) else phase
                self.add(name, time.perf_counter() - start, time.thread_time() - cpu)

        return timed


def _linear_phase(layer: torch.nn.Linear, x: torch.Tensor) -> str:
    if x.shape[-2] == 1:  # batch_size_for's one-probe forward, which sizes the batch
        return "forward: one-probe sizing pass"
    return f"forward: linear {layer.in_features}->{layer.out_features}"


def _product_phase(x: torch.Tensor, params, name: str) -> str:
    weight = params[f"{name}.weight"]
    return f"forward: {weight.shape[-1]}->{weight.shape[-2]} product + bias"


@contextlib.contextmanager
def timed_phases(timer: PhaseTimer):
    """Time evaluate()'s phases by wrapping the functions that run them (no library
    change: the wrappers only add a clock read on each side)."""
    import fspace.batched as batched_mod
    import fspace.evaluation as evaluation_mod
    import fspace.stacked as stacked_mod
    import fspace.vector_rows as vector_rows
    from fspace.models.mlp import MLP
    from fspace.outputs.apply import Accumulator

    patches = [
        (batched_mod, "_read_slot", "read + checksum into the stack [threads]"),
        (batched_mod, "take_columns", "gather live input columns [threads]"),
        (Experiment, "save_vector", "write + fsync [threads]"),
        (batched_mod, "narrowed", "find dead inputs, narrow first layer (once)"),
        (batched_mod, "_forward_stack", TOTAL),
        (stacked_mod, "_product", _product_phase),
        (stacked_mod, "_activate", "forward: activation (in place)"),
        (torch.nn.Linear, "forward", _linear_phase),
        (MLP, "_nonlinearity", "forward: activation"),
        (Accumulator, "add", "softmax + format"),
        (Accumulator, "finish", "softmax + format"),
        (batched_mod, "_split", "split rows + finite check"),
        (evaluation_mod, "as_stored", "cast to stored dtype"),
        (vector_rows.Rows, "put", "copy into the matrix"),
    ]
    with contextlib.ExitStack() as stack:
        for owner, name, phase in patches:
            fn = getattr(owner, name)
            stack.enter_context(mock.patch.object(owner, name, timer.wrap(phase, fn)))
        yield


TOTAL = "batched compute (_forward_stack)"


def effective_flops(path: Path) -> tuple[float, int]:
    """FLOP per checkpoint with the dead input features left out, as evaluate() runs."""
    suite = Experiment(path).probes()
    flat = suite.inputs.reshape(len(suite), -1)
    alive = int(flat.ne(0).any(0).sum())
    return 2 * len(suite) * (alive * 500 + 500 * 500 + 500 * 10), alive


def bmm_gflops(alive: int, batch: int = MAX_BATCH, repeats: int = 5) -> float:
    """GFLOP/s of torch.bmm on the stacked shapes the batched forward multiplies."""
    x, h = torch.rand(1000, alive), torch.rand(batch, 1000, 500)
    w1, w2 = torch.rand(batch, alive, 500), torch.rand(batch, 500, 500)
    xs = x.expand(batch, -1, -1)
    torch.bmm(xs, w1)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.bmm(xs, w1)
        torch.bmm(h, w2)
    took = time.perf_counter() - start
    return repeats * batch * 2 * 1000 * (alive * 500 + 500 * 500) / took / 1e9


def profile_round(path: Path, n: int) -> None:
    """Wall time of evaluate() split by phase, the forward's rate against matmul, and
    the torch.profiler operators that take the CPU time."""
    flops, alive = effective_flops(path)
    mm = matmul_gflops()
    bmm = bmm_gflops(alive)
    clear_vectors(path)
    timer = PhaseTimer()
    with timed_phases(timer):
        wall, _ = batched(path)
    mm = (mm + matmul_gflops()) / 2
    print(f"profile: evaluate() of {n} checkpoints: {wall:.2f} s wall ({n / wall:.1f} ckpt/s)")
    print(f"{'phase':48s} {'seconds':>8s} {'of wall':>8s} {'calls':>6s} {'thread CPU s':>12s}")
    for phase, s in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        cpu = f"{timer.cpu[phase]:12.2f}" if phase.endswith("[threads]") else ""
        print(f"{phase:48s} {s:8.2f} {s / wall:8.1%} {timer.calls[phase]:6d} {cpu}")
    inside = sum(s for p, s in timer.seconds.items() if p.startswith(("forward", "softmax")))
    vmap_rest = timer.seconds[TOTAL] - inside
    outside = (
        wall
        - timer.seconds[TOTAL]
        - sum(
            timer.seconds[p]
            for p in ("split rows + finite check", "cast to stored dtype", "copy into the matrix")
        )
    )
    print(
        f"{'rest of compute (plan, vmap, stacking)':48s} {vmap_rest:8.2f} {vmap_rest / wall:8.1%}"
    )
    print(
        f"{'main thread waiting on reads/writes, other':48s} {outside:8.2f} {outside / wall:8.1%}"
    )
    linear = sum(s for p, s in timer.seconds.items() if p.endswith("product + bias"))
    print(
        f"profile: forward products alone {n * flops / linear / 1e9:.1f} GFLOP/s "
        f"({alive} live inputs; {n * FLOPS / linear / 1e9:.1f} counted on all 784) | "
        f"matmul {mm:.1f} | bmm on the stacked shapes {bmm:.1f} GFLOP/s"
    )
    print(
        f"profile: products/matmul {n * flops / linear / 1e9 / mm:.2f}; "
        f"whole evaluate()/matmul {n * FLOPS / wall / 1e9 / mm:.2f} (target >= 0.8)"
    )
    first, second = (timer.seconds[f"forward: {a}->500 product + bias"] for a in (alive, 500))
    if first and second:
        print(
            f"profile: first layer's products {n * 2000 * alive * 500 / first / 1e9:.1f} "
            f"GFLOP/s, second layer's {n * 2000 * 500 * 500 / second / 1e9:.1f} GFLOP/s"
        )
    for label, took in (("keeping every input feature", keeping_every_input(path)),):
        print(
            f"profile: evaluate() {label}: {n / took:.1f} ckpt/s, "
            f"{n * FLOPS / took / 1e9:.1f} GFLOP/s, {n * FLOPS / took / 1e9 / mm:.2f} "
            f"of matmul (as shipped: {n / wall:.1f} ckpt/s, profiled)"
        )
    torch_profile(path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path
    import _evaluate_cpu

    used, per_cpu = _evaluate_cpu.variants(path, SHAPE, clear_vectors)
    mm = (mm + matmul_gflops()) / 2
    _evaluate_cpu.report(used, n, FLOPS, mm, torch.get_num_threads(), per_cpu)


def keeping_every_input(path: Path) -> float:
    """Seconds of evaluate() with no input feature left out of the first layer."""
    import fspace.live_inputs as live_inputs_mod

    clear_vectors(path)
    with mock.patch.object(live_inputs_mod, "DEAD_INPUT_SHARE", 1.0):
        took, _ = batched(path)
    return took


def torch_profile(path: Path, rows: int = 10) -> None:
    """The operators that take evaluate()'s CPU time, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    clear_vectors(path)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        batched(path)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"torch.profiler: {total / 1e6:.2f} s of operator self CPU time; top {rows}:")
    for e in events[:rows]:
        print(
            f"  {e.key[:44]:44s} {e.self_cpu_time_total / 1e6:7.2f} s "
            f"{e.self_cpu_time_total / total:6.1%} {e.count:7d} calls"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="time batch lengths too")
    parser.add_argument(
        "--profile", action="store_true", help="then profile evaluate() by phase and operator"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    args = parser.parse_args(argv)
    from fspace.device import resolve_device

    device = resolve_device(args.device, option="--device")
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
        if device.type == "cuda":
            gpu_rounds(path, n, args.rounds, device)
            return 0
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
        if args.profile:
            profile_round(path, n)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
