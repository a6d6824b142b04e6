"""Crash safety: a recording process killed with SIGKILL loses at most the checkpoint it
was writing, leaves nothing that breaks a reader, and a resumed run finishes cleanly.

Workers are forked from a warm server (see ``_workers.py``) so each kill costs tens of
milliseconds instead of a fresh interpreter. Rerun with ``pytest -m slow tests/test_crash.py``.
"""

from __future__ import annotations

import random
import signal
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch
from _workers import ForkServer, probe_suite, reference_weights

from fspace import Experiment, Recorder, function_vector
from fspace.errors import RecorderError
from fspace.store import files, layout

KILLS = 60
EPOCHS = 40
MAX_DELAY_S = 0.4  # a worker starts in ~0.1 s and records 40 epochs in ~0.5 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ForkServer(tmp_path_factory.mktemp("fork-server") / "stderr.txt")
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def reference():
    """Weights and online function vectors of an uninterrupted run, epoch by epoch."""
    from _models import make_mlp

    suite = probe_suite()
    weights = reference_weights(EPOCHS)
    vectors = []
    for state in weights:
        model = make_mlp(seed=7)
        model.load_state_dict(state)
        vectors.append(function_vector(model, suite))
    return weights, vectors


def _text(log: Path, last_worker: bool = False) -> str:
    text = log.read_text() if log.exists() else ""
    return text.split("start")[-1] if last_worker else text


def _logged(log: Path, last_worker: bool = False) -> list[tuple[int, bool]]:
    """(epoch, written) for every epoch the training loop saw ``record`` finish."""
    lines = _text(log, last_worker).splitlines()
    return [(int(e), w == "1") for e, w in (x.split() for x in lines if x[:1].isdigit())]


def _check(
    path: Path, run: str, log: Path, reference, on_disk: set[int], started: bool = True
) -> set[int]:
    """Check the experiment after a kill; return the epochs of ``run`` now on disk.

    ``on_disk`` holds the epochs found after the previous kill: the worker that just
    died (if it ``started`` its log) must have reported ``written=False`` exactly for
    those it was asked again.
    """
    weights, vectors = reference
    exp = Experiment(path)  # the experiment opens
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped, unreadable file fails the test
        ckpts = [c for c in exp.checkpoints() if c.run == run]
    assert exp.problems == []
    epochs = [c.epoch for c in ckpts]
    assert epochs == list(range(len(epochs))), f"gap in the recorded epochs: {epochs}"
    logged = _logged(log)
    assert [e for e, _ in logged] == list(range(len(logged))), logged
    # Everything the loop saw recorded is there; at most the one being written is extra.
    assert len(logged) <= len(epochs) <= len(logged) + 1, (len(logged), epochs)
    # The resumed loop may ask again for the checkpoint it did not see finish.
    for epoch, written in _logged(log, last_worker=True) if started else []:
        assert written == (epoch not in on_disk), f"epoch {epoch}: written={written}"
    suite = probe_suite()
    for ckpt in ckpts:
        stored = exp.load_weights(ckpt)  # verifies the checksum
        for name, value in weights[ckpt.epoch].items():
            torch.testing.assert_close(stored[name], value, rtol=1e-5, atol=1e-6)
        vector = exp.load_vector(ckpt, suite.fingerprint, "prob")
        assert vector is not None, f"{ckpt.key} is listed without its online vector"
        # Probabilities are cached as float16: within 2.5e-4 of what the model gave.
        torch.testing.assert_close(vector, vectors[ckpt.epoch], rtol=0, atol=2.5e-4)
    # A run directory is claimed by linking run.json in; a kill just before leaves an
    # unclaimed directory, which may only belong to the run that was being started.
    exp.runs()
    for problem in exp.problems:
        assert not ckpts and problem.path.parent.name == run, problem
    return set(epochs)


def _check_complete(path: Path, runs: list[str], reference) -> None:
    exp = Experiment(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ckpts = exp.checkpoints()
    assert sorted({c.run for c in ckpts}) == sorted(runs)
    for run in runs:
        assert [c.epoch for c in ckpts if c.run == run] == list(range(EPOCHS)), run
        names = [p.name for p in (layout.run_dir(path, run) / "checkpoints").iterdir()]
        assert len([n for n in names if not n.startswith(".")]) == EPOCHS, "duplicates"
    for ckpt in ckpts:
        exp.load_weights(ckpt)
    assert {r.id for r in exp.runs()} == set(runs) and exp.problems == []


def _finish(server: ForkServer, path: Path, run: str, log: Path) -> None:
    pid = server.start("record_resumable", path=str(path), run=run, epochs=EPOCHS, log=str(log))
    assert server.wait(pid) == 0, "the resumed worker failed; see fork-server/stderr.txt"


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path, server, reference):
    path = tmp_path / "exp"
    Experiment.create(path)
    gen = random.Random(20260101)
    stats: Counter[str] = Counter()
    runs: list[str] = []
    on_disk: set[int] = set()
    start, slowdown = time.perf_counter(), 1.0
    while stats["kills"] < KILLS:
        assert stats["kills"] + stats["finished"] < 20 * KILLS, f"kills do not land: {stats}"
        if not runs or stats["finished"] == len(runs):
            runs.append(f"r{len(runs)}")
            on_disk = set()
        run, log = runs[-1], tmp_path / f"{runs[-1]}.log"
        seen_before, starts = len(_logged(log)), _text(log).count("start")
        pid = server.start("record_resumable", path=str(path), run=run, epochs=EPOCHS, log=str(log))
        time.sleep(gen.uniform(0, MAX_DELAY_S * slowdown))
        status = server.kill(pid)
        assert status in (0, -signal.SIGKILL), f"worker failed ({status}); see its stderr"
        stats["kills" if status else "finished"] += 1
        started = _text(log).count("start") > starts  # killed before its first line?
        after = _check(path, run, log, reference, on_disk, started)
        if status:
            opened = started and "open" in _text(log, last_worker=True)
            stats["while recording" if opened else "while starting"] += 1
            stats["stored, not yet reported"] += opened and len(after) > len(_logged(log))
            progressed = len(_logged(log)) > seen_before
            stats["progress"] += progressed
            # On a loaded machine workers start slowly: wait longer until kills land
            # mid-recording again, so that the test means the same under any load.
            slowdown = min(10.0, max(1.0, slowdown * (0.9 if progressed else 1.25)))
        else:  # the worker finished before the kill: wait less, or no kill ever lands
            slowdown = max(1.0, slowdown * 0.8)
        on_disk = after
    for run in runs[stats["finished"] :]:
        _finish(server, path, run, tmp_path / f"{run}.log")
    _check_complete(path, runs, reference)
    stats["temp files left"] = len(list(path.glob("runs/*/*/**/.*.tmp")))
    stats["seconds"] = round(time.perf_counter() - start)
    stats["final slowdown"] = round(slowdown, 2)
    print(f"\n{len(runs)} runs of {EPOCHS} epochs: {dict(stats)}")
    # The kills must have hit runs in the middle of recording, not only at start-up.
    assert stats["progress"] >= KILLS // 4


@pytest.mark.slow
def test_sigkill_after_every_file_system_step(tmp_path, server, reference):
    """Kill right after each single step of the writes (open, fsync, link, rename,
    unlink, mkdir) of a fresh 3-epoch run, then resume it to the end."""
    epochs, step = 3, 0
    while True:
        step += 1
        path, log = tmp_path / f"exp{step}", tmp_path / f"log{step}"
        Experiment.create(path)
        pid = server.start(
            "record_until_killed",
            path=str(path),
            run="r",
            epochs=epochs,
            log=str(log),
            kill_after=step,
        )
        status = server.wait(pid)
        if status == 0:
            break
        assert status == -signal.SIGKILL, f"worker failed ({status}); see its stderr"
        on_disk = _check(path, "r", log, reference, set())
        pid = server.start("record_resumable", path=str(path), run="r", epochs=epochs, log=str(log))
        assert server.wait(pid) == 0
        _check(path, "r", log, reference, on_disk)  # the resumed worker wrote nothing twice
        assert [c.epoch for c in Experiment(path).checkpoints()] == list(range(epochs))
    print(f"\nkilled after each of {step - 1} file-system steps")
    assert step > 30  # every write of run.json, the probes, 3 vectors and 3 checkpoints


def test_a_failed_write_is_retried_by_recording_again(tmp_path, monkeypatch):
    """After a write fails (a full disk), recording the same checkpoint again writes it
    instead of being skipped as already recorded."""
    from _models import make_mlp

    real_write, failed = files.write, []

    def disk_full_once(path, *args, **kwargs):
        if not failed:
            failed.append(path)
            raise OSError(28, "No space left on device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(files, "write", disk_full_once)
    rec = Recorder(tmp_path / "exp", run="r", group="g")
    rec.record(make_mlp(), epoch=0)
    with pytest.raises(RecorderError, match="No space left"):
        rec.flush()
    assert rec.record(make_mlp(), epoch=0) is True
    rec.close()
    assert [c.epoch for c in Experiment(tmp_path / "exp").checkpoints()] == [0]


def test_a_killed_writer_s_run_is_taken_over(tmp_path, server):
    """While a writer holds a run, a second one is refused; once the first is killed
    with SIGKILL (its lease file left behind), the second takes the run over at once."""
    from _models import make_mlp

    from fspace.errors import RunBusyError

    path, ready = tmp_path / "exp", tmp_path / "ready"
    Experiment.create(path)
    pid = server.start("hold_run", path=str(path), run="r", ready=str(ready))
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "the holding worker never started"
        time.sleep(0.02)
    with pytest.raises(RunBusyError, match=f"being written by process {pid}"):
        Recorder(path, run="r", group="g", seed=0)
    assert server.kill(pid) == -signal.SIGKILL
    assert (path / "runs" / "r" / ".writer").exists()  # the dead writer's lease stays
    with Recorder(path, run="r", group="g", seed=0) as rec:
        assert rec.record(make_mlp(), epoch=0) is False  # the dead writer's checkpoint
        assert rec.record(make_mlp(), epoch=1) is True
    assert [c.epoch for c in Experiment(path).checkpoints()] == [0, 1]
    assert not (path / "runs" / "r" / ".writer").exists()  # released on close
