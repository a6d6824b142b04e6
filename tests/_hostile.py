"""Shared pieces of the hostile-file tests: a small experiment, hand-built safetensors
files, and a reader harness that fails on a hang, a large allocation or any error
other than a CheckpointError naming the file."""

from __future__ import annotations

import contextlib
import json
import signal
import struct
import tracemalloc
from pathlib import Path

import numpy as np
from conftest import record_experiment

from fspace import Experiment, ProbeSuite
from fspace.errors import CheckpointError
from fspace.store import files, reading
from fspace.store.reading import read_mapped

GOOD = "runs/random-s0/checkpoints/e000001-s0000000001.safetensors"
NEW = "runs/random-s0/checkpoints/e000099-s0000000099.safetensors"
N_GOOD = 2 * 2 * 4  # groups x seeds x checkpoints
META = {"format_version": 2, "checksum": "0" * 64, "epoch": 1, "step": 1}


def record_base(path: Path) -> Path:
    """An experiment recorded without online vectors, so evaluating it loads weights."""
    gen = np.random.default_rng(0)
    suite = ProbeSuite.from_array(gen.normal(size=(12, 4)).astype(np.float32), name="probe")
    record_experiment(path, suite, seeds=(0, 1), epochs=3, online=False)
    Experiment(path).add_probes(suite)
    return path


class Hang(Exception):  # not an OSError (as TimeoutError is), which the reader catches
    """Raised into code that runs past its time limit."""


@contextlib.contextmanager
def bounded(seconds: float = 5.0, max_bytes: int | None = 16 * 2**20):
    """Fail if the block runs longer than ``seconds`` or allocates over ``max_bytes``
    of Python memory (a header claiming gigabytes must not be believed)."""

    def timeout(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    if max_bytes:
        tracemalloc.start()
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] if max_bytes else 0
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not max_bytes or peak < max_bytes, f"reading took {peak / 2**20:.0f} MiB"


def read_or_refuse(path: Path) -> tuple[dict, dict] | None:
    """Read ``path`` both ways (header only, then everything); None if both refuse it
    with a CheckpointError naming it. Any other exception fails the calling test."""
    results = []
    for read in (files.read_header, reading.read, read_mapped):
        try:
            with bounded():
                results.append(read(path))
        except CheckpointError as e:
            assert str(path) in str(e)
            results.append(None)
    if results[1] is not None:
        assert results[0] is not None, "read() loads what read_header() refuses"
    assert (results[1] is None) == (results[2] is None), "read() and read_mapped() disagree"
    return results[1]


def lenient_dumps(tensors: dict, meta: dict) -> bytes:
    """A tensor file as older fspace versions wrote it: metadata may hold infinity and
    NaN (which :func:`files.dumps` now refuses), with a valid checksum."""
    from safetensors.torch import save

    meta = json.loads(json.dumps({**meta, "format_version": files.FORMAT_VERSION}))
    meta["checksum"] = files.checksum(tensors, meta)
    return save(tensors, metadata={"fspace": json.dumps(meta, sort_keys=True)})


def safetensors_bytes(header: dict | bytes, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def with_meta(meta: dict, **entries) -> bytes:
    """A file with one 2-float tensor ``w`` (or ``entries``) and fspace metadata ``meta``."""
    tensors = entries or {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    header = {"__metadata__": {"fspace": json.dumps(meta)}, **tensors}
    return safetensors_bytes(header, b"\0" * 8)


TRAPPED: list[dict] = []


def trap(**kwargs):
    """An unregistered function a hostile run.json may name: it must never be called."""
    TRAPPED.append(kwargs)
    raise AssertionError(f"an unregistered model factory was called with {kwargs}")
