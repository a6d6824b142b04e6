"""Worker processes for the crash and concurrency tests, forked from one warm parent.

Importing torch costs 1-3 s per interpreter, which would make 50 kills or 9 concurrent
processes slow. :class:`ForkServer` starts one interpreter that imports torch and fspace
once and then forks a fresh worker process for each job (a few milliseconds). The
server itself runs no torch operation, so a forked worker inherits no thread pool.
Each worker is a real process with its own pid: the tests SIGKILL it.

The server reads one JSON request per line on stdin and answers one JSON line:
``{"op": "start", "job": NAME, "kwargs": {...}}`` -> ``{"pid": PID}``;
``{"op": "wait", "pid": PID}`` -> ``{"status": S}`` (exit code, or -signal).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

SUITE_SHAPE = (16, 4)
MODEL_SEED = 7


def probe_suite():
    """The probe suite every worker records with (same inputs, same fingerprint)."""
    from fspace import ProbeSuite

    inputs = np.random.default_rng(0).normal(size=SUITE_SHAPE).astype(np.float32)
    return ProbeSuite.from_array(inputs, name="probe")


def reference_weights(epochs: int) -> list[dict]:
    """The state dict after each epoch of an uninterrupted run, for comparison."""
    from _models import make_mlp
    from conftest import train_step

    model = make_mlp(seed=MODEL_SEED)
    out = []
    for epoch in range(epochs):
        if epoch:
            train_step(model, seed=epoch)
        out.append({k: v.clone() for k, v in model.state_dict().items()})
    return out


def _log(path: str, line: str) -> None:
    # One small O_APPEND write: a SIGKILL leaves whole lines only.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def record_resumable(path: str, run: str, epochs: int, log: str) -> None:
    """A training loop that resumes after a crash the way real ones do.

    It picks up from its own log (the loop's state, which may lag the experiment by the
    checkpoint that was being written), reloads those weights from the experiment,
    and records every epoch from there; ``record`` must refuse the ones already stored.
    Each log line is ``epoch written`` after ``record`` returned and the write is on disk.
    """
    from _models import make_mlp
    from conftest import train_step

    from fspace import Recorder

    _log(log, "start")
    done = [
        int(line.split()[0]) for line in Path(log).read_text().split("\n") if line[:1].isdigit()
    ]
    model = make_mlp(seed=MODEL_SEED)
    with Recorder(
        path,
        run=run,
        group="crash",
        seed=0,
        probes=probe_suite(),
        model_factory="_models:make_mlp",
        model_kwargs={"seed": MODEL_SEED},
    ) as rec:
        _log(log, "open")
        start = max(done, default=-1) + 1
        if start:
            exp = rec.experiment
            (last,) = [c for c in exp.checkpoints(run) if c.epoch == start - 1]
            model.load_state_dict(exp.load_weights(last))
        for epoch in range(start, epochs):
            if epoch:
                train_step(model, seed=epoch)
            written = rec.record(model, epoch=epoch, metrics={"loss": 1.0 / (epoch + 1)})
            rec.flush()
            _log(log, f"{epoch} {int(written)}")
    _log(log, "done")


def _kill_after(step: int) -> None:
    """Make this process SIGKILL itself right after its ``step``-th file-system change:
    a file opened for writing, an fsync, a link, rename, unlink or mkdir."""
    import builtins
    import io
    import threading

    lock = threading.Lock()  # the Recorder writes on a background thread
    count = [0]

    def tick() -> None:
        with lock:
            count[0] += 1
            if count[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)

    def after(fn):
        def wrapped(*args, **kwargs):
            result = fn(*args, **kwargs)
            tick()
            return result

        return wrapped

    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if set(mode) & set("wxa+"):
            tick()
        return f

    builtins.open = io.open = open_
    for name in ("fsync", "link", "replace", "rename", "unlink", "mkdir"):
        setattr(os, name, after(getattr(os, name)))


def record_until_killed(path: str, run: str, epochs: int, log: str, kill_after: int) -> None:
    """:func:`record_resumable`, SIGKILLed right after file-system step ``kill_after``."""
    _kill_after(kill_after)
    record_resumable(path, run, epochs, log)


def record_run(path: str, run: str, checkpoints: int, seed: int, pause: float = 0.0) -> None:
    """Record ``checkpoints`` checkpoints of one run with online function vectors,
    training for ``pause`` seconds (sleeping) between two of them."""
    from _models import make_mlp
    from conftest import train_step

    from fspace import Recorder

    model = make_mlp(seed=seed)
    with Recorder(
        path,
        run=run,
        group=f"g{seed % 2}",
        seed=seed,
        probes=probe_suite(),
        model_factory="_models:make_mlp",
        model_kwargs={"seed": seed},
    ) as rec:
        for epoch in range(checkpoints):
            if epoch:
                time.sleep(pause)
                train_step(model, seed=1000 * seed + epoch)
            rec.record(model, epoch=epoch, metrics={"test_error": 1.0 / (epoch + 1)})


def claim_run(path: str, run: str, seed: int, result: str) -> None:
    """Try to open ``run`` with this ``seed``; write "won" or the RunError to ``result``."""
    from _models import make_mlp

    from fspace import Recorder
    from fspace.errors import RunError

    try:
        with Recorder(path, run=run, group="g", seed=seed) as rec:
            rec.record(make_mlp(), epoch=0)  # a run left empty would be removed on close
        Path(result).write_text("won")
    except RunError as e:
        Path(result).write_text(f"lost: {e}")


def read_repeatedly(path: str, stop: str, report: str) -> None:
    """Read the experiment over and over as the dashboard would, until ``stop`` exists.

    Every pass lists the checkpoints, loads (and so verifies) the weights and online
    vector of each one not seen before and of a few random ones, and every few passes
    evaluates the whole experiment. Any warning is an error. Writes counts to ``report``.
    """
    import fspace
    from fspace import Experiment

    warnings.simplefilter("error")
    gen = random.Random(0)
    seen: set[str] = set()
    counts = {"passes": 0, "while_writing": 0, "loads": 0, "evaluations": 0}
    counts["runs_in_creation"] = 0
    while not Path(path, "fspace-experiment.json").exists():
        time.sleep(0.001)
    suite = probe_suite()
    kept = Experiment(path)  # one long-lived instance, as a dashboard keeps, and fresh ones
    finished = False
    while not finished:
        finished = Path(stop).exists()  # one more full pass after the writers are done
        exp = kept if counts["passes"] % 2 else Experiment(path)
        ckpts = exp.checkpoints()
        new = [c for c in ckpts if c.key not in seen]
        for ckpt in new + gen.sample(ckpts, min(3, len(ckpts))):
            exp.load_weights(ckpt)
            assert exp.load_vector(ckpt, suite.fingerprint, "prob") is not None, ckpt.key
            counts["loads"] += 1
        seen.update(c.key for c in new)
        exp.runs()
        # A run directory whose run.json is not linked in yet; see the concurrency test.
        counts["runs_in_creation"] += len(exp.problems)
        if ckpts and counts["passes"] % 4 == 0:
            vectors = fspace.evaluate(exp, progress=False)
            assert len(vectors.points) >= len(ckpts)
            counts["evaluations"] += 1
        counts["passes"] += 1
        counts["while_writing"] += bool(ckpts) and not finished
    counts["checkpoints_seen"] = len(seen)
    Path(report).write_text(json.dumps(counts))


def hold_run(path: str, run: str, ready: str) -> None:
    """Record one checkpoint of ``run``, say so in the file ``ready``, then keep the run
    open (its writer lease held) until killed."""
    from _models import make_mlp

    from fspace import Recorder

    rec = Recorder(path, run=run, group="g", seed=0, model_factory="_models:make_mlp")
    rec.record(make_mlp(), epoch=0)
    rec.flush()
    Path(ready).write_text("holding")
    time.sleep(600)


def write_same_run(path: str, run: str, checkpoints: int, result: str) -> None:
    """:func:`record_run` of ``run`` (seed 0); write "done" or the RunError to ``result``."""
    from fspace.errors import RunError

    try:
        record_run(path, run, checkpoints, seed=0, pause=0.02)
        Path(result).write_text("done")
    except RunError as e:
        Path(result).write_text(f"refused: {type(e).__name__}: {e}")


JOBS = {
    "hold_run": hold_run,
    "write_same_run": write_same_run,
    "record_resumable": record_resumable,
    "record_until_killed": record_until_killed,
    "record_run": record_run,
    "claim_run": claim_run,
    "read_repeatedly": read_repeatedly,
}


def _child(job: str, kwargs: dict) -> None:
    # Never return into the server loop: exit straight away, skipping its atexit handlers.
    os.dup2(2, 1)  # the server's stdout is the reply channel
    status = 0
    try:
        JOBS[job](**kwargs)
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    os._exit(status)


def serve() -> None:
    """The server loop: import once, then fork a worker per request."""
    import _models  # noqa: F401 - imported once here, inherited by every fork
    import conftest  # noqa: F401
    import torch

    import fspace.evaluation
    import fspace.record  # noqa: F401

    torch.set_num_threads(1)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "start":
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(request["job"], request["kwargs"])
            reply = {"pid": pid}
        else:
            _, status = os.waitpid(request["pid"], 0)
            reply = {"status": os.waitstatus_to_exitcode(status)}
        print(json.dumps(reply), flush=True)


class ForkServer:
    """Client side: start the server, fork jobs, kill and reap them."""

    def __init__(self, stderr_path: Path) -> None:
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=Path(__file__).parent,
        )
        self._reply(timeout=120)

    def _reply(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"fork server gave no answer within {timeout} s")
        return json.loads(line)

    def _ask(self, request: dict, timeout: float = 60) -> dict:
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    def start(self, job: str, **kwargs) -> int:
        """Fork a worker running ``job(**kwargs)``; return its pid."""
        return self._ask({"op": "start", "job": job, "kwargs": kwargs})["pid"]

    def wait(self, pid: int, timeout: float = 120) -> int:
        """Wait for a worker to end; its exit code, or minus the signal that ended it."""
        return self._ask({"op": "wait", "pid": pid}, timeout)["status"]

    def kill(self, pid: int) -> int:
        """SIGKILL a worker (if it has not ended by itself) and reap it."""
        os.kill(pid, signal.SIGKILL)  # an ended worker stays a zombie until wait() reaps it
        return self.wait(pid)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)
        self._stderr.close()


if __name__ == "__main__":
    serve()
