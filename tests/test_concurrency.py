"""Concurrent writers and readers on one experiment directory.

fspace keeps no shared index: the files are the truth. Each run is written by one
process only, into its own directory, every file appears atomically (temporary file,
fsync, then rename), and names that several processes may race for (the experiment
marker, run.json, a probe suite) are claimed with a hard link, which fails if the name
exists, just like O_EXCL. So writers never lock anything, and a reader sees each file
either whole or not at all. Only the writer of one run holds something: a lease file in
the run's directory, which refuses a second live writer of the same run.
"""

from __future__ import annotations

import json
import time
import warnings

import pytest
import torch
from _models import make_mlp
from _workers import ForkServer, probe_suite

from fspace import Experiment, function_vector

WRITERS = 8
CHECKPOINTS = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ForkServer(tmp_path_factory.mktemp("fork-server") / "stderr.txt")
    yield srv
    srv.close()


@pytest.mark.slow
def test_writers_and_a_reader_at_once(tmp_path, server):
    path, stop, report = tmp_path / "exp", tmp_path / "stop", tmp_path / "reader.json"
    start = time.perf_counter()
    reader = server.start("read_repeatedly", path=str(path), stop=str(stop), report=str(report))
    writers = [
        server.start(
            "record_run", path=str(path), run=f"w{i}", checkpoints=CHECKPOINTS, seed=i, pause=0.04
        )
        for i in range(WRITERS)
    ]
    statuses = [server.wait(pid) for pid in writers]
    took = time.perf_counter() - start
    stop.touch()
    reader_status = server.wait(reader)
    assert statuses == [0] * WRITERS, "a writer failed; see fork-server/stderr.txt"
    assert reader_status == 0, "the reader failed; see fork-server/stderr.txt"
    counts = json.loads(report.read_text())
    exp = Experiment(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ckpts = exp.checkpoints()
    assert len(ckpts) == WRITERS * CHECKPOINTS
    assert sorted({c.run for c in ckpts}) == sorted(f"w{i}" for i in range(WRITERS))
    assert [c.epoch for c in ckpts if c.run == "w3"] == list(range(CHECKPOINTS))
    for ckpt in ckpts:
        exp.load_weights(ckpt)
    assert len(exp.runs()) == WRITERS and exp.problems == []
    assert len(exp.probe_suites()) == 1
    # The reader really overlapped the writers: it saw all of them, more than once.
    assert counts["checkpoints_seen"] == WRITERS * CHECKPOINTS
    assert counts["while_writing"] >= 3 and counts["evaluations"] >= 1
    print(f"\n{WRITERS} writers x {CHECKPOINTS} checkpoints in {took:.1f} s; reader: {counts}")


def test_one_run_id_is_claimed_by_one_process(tmp_path, server):
    """Six processes open the same run id with different seeds at the same moment:
    exactly one gets it, the others are told it exists with another seed."""
    path = tmp_path / "exp"
    results = [tmp_path / f"claim{i}" for i in range(6)]
    pids = [
        server.start("claim_run", path=str(path), run="same", seed=i, result=str(results[i]))
        for i in range(6)
    ]
    assert [server.wait(pid) for pid in pids] == [0] * 6
    outcomes = [r.read_text() for r in results]
    assert outcomes.count("won") == 1, outcomes
    winner = outcomes.index("won")
    assert Experiment(path).run("same").seed == winner
    for outcome in outcomes:
        assert outcome == "won" or "already exists" in outcome


def test_two_live_writers_of_one_run(tmp_path, server):
    """Two processes record the same run id (same group and seed) at the same moment:
    one records every checkpoint, the other is refused with RunBusyError before it
    writes any, and every stored vector is the one its stored weights give."""
    path = tmp_path / "exp"
    Experiment.create(path)
    results = [tmp_path / f"writer{i}" for i in range(2)]
    pids = [
        server.start("write_same_run", path=str(path), run="same", checkpoints=30, result=str(r))
        for r in results
    ]
    assert [server.wait(pid) for pid in pids] == [0, 0]
    outcomes = sorted(r.read_text() for r in results)
    assert outcomes[0] == "done" and outcomes[1].startswith("refused: RunBusyError"), outcomes
    assert "is being written by process" in outcomes[1]
    exp = Experiment(path)
    ckpts = exp.checkpoints()
    assert [c.epoch for c in ckpts] == list(range(30)) and exp.problems == []
    suite = probe_suite()
    model = make_mlp()
    for ckpt in ckpts:
        model.load_state_dict(exp.load_weights(ckpt))
        cached = exp.load_vector(ckpt, suite.fingerprint, "prob")
        # Probabilities are cached as float16: within 2.5e-4 of what the model gives.
        torch.testing.assert_close(cached, function_vector(model, suite), rtol=0, atol=2.5e-4)
