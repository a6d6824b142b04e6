"""CPU seconds of evaluate()'s parts, each measured alone (``bench_evaluate.py --profile``).

Wall times on a shared 2-core machine say little about who took the cores; CPU seconds
do. Each variant here is measured with its wall time, this process's CPU seconds (all
threads, user and system) and the whole machine's busy core-seconds (every process, from
``/proc/stat``), so that what other processes took during it is printed beside it:

- ``evaluate()`` as shipped (the next batch read on 2 threads while the current one
  computes), with the next batch read between the products instead (on every core),
  and with 1 read thread;
- ``evaluate()`` with every batch's weights already in memory: no reading, checksum or
  gathering of live input columns, the rest unchanged (writes included), and the same
  without writing the vectors;
- the reading alone, as ``evaluate()`` reads (its threads, its stacks), with and without
  the checksum and the gather; SHA-256 alone over the same bytes; the gather alone; the
  writes alone.

From these, what reading costs the two cores is computed rather than guessed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import torch

import fspace.batched as batched_mod
from fspace import Experiment, evaluate
from fspace.models.mlp import make_mlp
from fspace.store import files


def machine_busy() -> float:
    """Core-seconds the whole machine has been busy since boot (every process, from
    ``/proc/stat``); NaN where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """Wall seconds, this process's CPU seconds and the machine's busy core-seconds."""

    wall: float = 0.0
    cpu: float = 0.0
    machine: float = 0.0

    @property
    def others(self) -> float:
        """Core-seconds other processes (and the kernel's own threads) took meanwhile."""
        return self.machine - self.cpu


@contextlib.contextmanager
def measured() -> Iterator[Usage]:
    """Measure the block: wall time, process CPU time, machine busy time."""
    use = Usage()
    wall, cpu, machine = time.perf_counter(), time.process_time(), machine_busy()
    try:
        yield use
    finally:
        use.wall = time.perf_counter() - wall
        use.cpu = time.process_time() - cpu
        use.machine = machine_busy() - machine


class Batches:
    """The benchmark's checkpoints in the batches evaluate() forms, and what reading
    them needs (the model, the narrowed first layer)."""

    def __init__(self, path: Path, shape: dict) -> None:
        exp = Experiment(path)
        self.exp = exp
        self.ckpts = exp.checkpoints()
        self.model = make_mlp(**shape)
        self.narrow = batched_mod.narrowed(self.model, exp.probes())
        self.size = batched_mod._batch_length(self.model)
        self.batches = [self.ckpts[i : i + self.size] for i in range(0, len(self.ckpts), self.size)]

    def preload(self) -> dict:
        """Every batch read into a stack of its own, by the keys of its checkpoints."""
        stacks = self.read(keep=True)
        return {tuple(c.key for c in b): s for b, s in zip(self.batches, stacks, strict=True)}

    def stack(self):
        return batched_mod._Stack(self.model, self.size, self.narrow)

    def read(self, keep: bool = False) -> list:
        """Read every batch as evaluate() does (its threads and two stacks, or a stack
        per batch with ``keep``); return the stacks kept."""
        kept, stacks = [], [self.stack(), self.stack()]
        threads = batched_mod.read_threads(torch.device("cpu"))
        with ThreadPoolExecutor(threads, thread_name_prefix="bench-read") as pool:
            for k, batch in enumerate(self.batches):
                stack = self.stack() if keep else stacks[k % 2]
                if not all(f.result() for f in stack.read(pool, batch)):
                    raise RuntimeError("a checkpoint did not fit its stack")
                kept.append(stack)
        return kept if keep else []


def _from_memory(preloaded: dict) -> Callable:
    """A ``_Stack.read`` that hands out the stack read beforehand for that batch."""

    def read(self, pool, batch) -> list[Future]:
        vars(self).update(vars(preloaded[tuple(c.key for c in batch)]))
        done: Future = Future()
        done.set_result(True)
        return [done] * len(batch)

    return read


def matmul_per_cpu_second(repeats: int = 20) -> float:
    """GFLOP per CPU-second (this process, all threads) of ``torch.matmul`` on the
    model's two large layer shapes: what the products cost the cores, however long
    they waited for them on a busy machine."""
    x, h = torch.rand(1000, 784), torch.rand(1000, 500)
    w1, w2 = torch.rand(784, 500), torch.rand(500, 500)
    torch.matmul(x, w1)
    start = time.process_time()
    for _ in range(repeats):
        torch.matmul(x, w1)
        torch.matmul(h, w2)
    return repeats * 2 * 1000 * (784 * 500 + 500 * 500) / (time.process_time() - start) / 1e9


def _evaluate(path: Path, clear: Callable[[Path], None]) -> Usage:
    clear(path)
    with measured() as use:
        evaluate(path, progress=False)
    return use


def variants(
    path: Path, shape: dict, clear: Callable[[Path], None]
) -> tuple[dict[str, Usage], float]:
    """Every variant of the module docstring, measured in this order, and matmul's GFLOP
    per CPU-second (the mean of one measurement before them and one after)."""
    b = Batches(path, shape)
    out: dict[str, Usage] = {}
    per_cpu = matmul_per_cpu_second()
    out["evaluate() as shipped"] = _evaluate(path, clear)
    with mock.patch.object(batched_mod, "READ_BETWEEN_PRODUCTS", True):
        out["evaluate(), reads between the products"] = _evaluate(path, clear)
    with mock.patch.object(batched_mod, "read_threads", lambda device: 1):
        out["evaluate(), reads during the products, 1 thread"] = _evaluate(path, clear)
    preloaded = b.preload()
    with mock.patch.object(batched_mod._Stack, "read", _from_memory(preloaded)):
        with mock.patch.object(Experiment, "save_vector", lambda *a, **k: None):
            out["evaluate(), in memory, vectors not written"] = _evaluate(path, clear)
        out["evaluate(), weights already in memory"] = _evaluate(path, clear)
    with measured() as out["read + checksum + gather alone"]:
        b.read()
    no_hash = functools.partial(batched_mod.read_into, verify=False)
    with mock.patch.object(batched_mod, "read_into", no_hash):
        with measured() as out["read + gather alone (no checksum)"]:
            b.read()
        with (
            mock.patch.object(batched_mod, "take_columns", lambda *a: None),
            measured() as out["read alone (no checksum, no gather)"],
        ):
            b.read()
    stacks = list(preloaded.values())
    slots = [(s, i) for batch, s in zip(b.batches, stacks, strict=True) for i in range(len(batch))]
    with measured() as out["SHA-256 alone, same bytes (1 thread)"]:
        for s, i in slots:
            files.checksum(s.state(i))
    if b.narrow is not None:
        alive, weight = b.narrow.alive.numpy(), b.narrow.weight
        with measured() as out["gather alone (1 thread)"]:
            for s, i in slots:
                batched_mod.take_columns(s.full[weight][i], alive, s.live[i], s.runs)
    del preloaded, stacks, slots
    out["writes alone (2 threads)"] = _writes(b, path, clear)
    return out, (per_cpu + matmul_per_cpu_second()) / 2


def _writes(b: Batches, path: Path, clear: Callable[[Path], None]) -> Usage:
    """Write the cached vectors again, as evaluate() does (2 threads, each with fsync)."""
    vectors = evaluate(path, progress=False)  # cached by the variant before
    fingerprint, output = vectors.fingerprint, vectors.output
    rows = torch.from_numpy(vectors.matrix).to(torch.float16)
    clear(path)
    with (
        measured() as use,
        ThreadPoolExecutor(2) as pool,
    ):
        for w in [
            pool.submit(b.exp.save_vector, c, fingerprint, output, rows[i])
            for i, c in enumerate(b.ckpts)
        ]:
            w.result()
    return use


def report(
    out: dict[str, Usage], n: int, flops: float, matmul: float, cores: int, per_cpu: float
) -> None:
    """Print the variants' table and what follows from it; ``matmul`` is GFLOP/s of wall
    time, ``per_cpu`` GFLOP per CPU-second (:func:`matmul_per_cpu_second`)."""
    print(
        f"cpu: {n} checkpoints, {cores} cores; 'others' = core-seconds other processes "
        f"took meanwhile; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"matmul {matmul:.1f} GFLOP/s of wall, {per_cpu:.1f} GFLOP per CPU-second"
    )
    print(
        f"{'variant':48s} {'wall s':>7s} {'CPU s':>7s} {'others':>7s} {'of matmul':>9s} "
        f"{'per CPU s':>9s}"
    )
    for name, u in out.items():
        rate = ""
        if name.startswith("eval"):
            rate = (
                f"{n * flops / u.wall / 1e9 / matmul:9.2f} {n * flops / u.cpu / 1e9 / per_cpu:9.2f}"
            )
        print(f"{name:48s} {u.wall:7.2f} {u.cpu:7.2f} {u.others:7.2f} {rate}")
    shipped = out["evaluate() as shipped"]
    between = out["evaluate(), reads between the products"]
    memory = out["evaluate(), weights already in memory"]
    reading = out["read + checksum + gather alone"]
    sha = out["SHA-256 alone, same bytes (1 thread)"]
    print(
        f"cpu: reading costs {reading.cpu:.2f} CPU s, {reading.cpu / (cores * shipped.wall):.0%} "
        f"of {cores} cores over the shipped evaluate()'s {shipped.wall:.2f} s; SHA-256 is "
        f"{sha.cpu / reading.cpu:.0%} of it ({sha.cpu:.2f} s)"
    )
    for label, u in (("shipped", shipped), ("between the products", between)):
        added = u.wall - memory.wall
        extra = u.cpu - memory.cpu
        print(
            f"cpu: {label}: reading added {added:.2f} s of wall to evaluate() for "
            f"{reading.cpu:.2f} s of reading CPU: {added / reading.cpu:.2f} s per CPU-second "
            f"(1.0 = not hidden at all, {1 / cores:.2f} = shared perfectly among {cores} "
            f"cores, 0 = hidden); {extra:.2f} CPU s more than in memory "
            f"({extra / reading.cpu:.2f} per CPU-second of reading)"
        )
    budget = n * flops / (0.8 * per_cpu * 1e9)
    need = memory.cpu + reading.cpu
    print(
        f"cpu: at 0.8 of matmul's FLOP per CPU-second, evaluate() may use {budget:.2f} CPU s "
        f"({budget / cores:.2f} s on {cores} cores never idle); its parts measured alone use "
        f"{need:.2f} ({memory.cpu:.2f} in memory with writes + {reading.cpu:.2f} reading): "
        f"{need / budget:.2f} of the budget (above 1: 0.8 is out of reach on a quiet machine)"
    )
    print(
        f"cpu: as shipped, evaluate() used {shipped.cpu:.2f} CPU s, {shipped.cpu / budget:.2f} "
        f"of that budget, keeping the {cores} cores {shipped.cpu / (cores * shipped.wall):.0%} "
        f"busy"
    )
    busy = shipped.others / (cores * shipped.wall)
    if busy > 0.1:
        print(
            f"cpu: the machine was busy: other processes took {busy:.0%} of the cores during "
            f"the shipped evaluate(); compare CPU seconds here, not wall times"
        )
