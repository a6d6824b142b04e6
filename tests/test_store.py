"""The experiment store: round trips, atomic writes, concurrent writers, broken files."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle

import pytest
import torch
from _models import make_mlp

from fspace import Experiment, Recorder
from fspace.errors import CheckpointError, ConfigError, NotAnExperimentError, RunError
from fspace.store import files, reading


def test_round_trip_weights_and_metadata(tmp_path):
    model = make_mlp(seed=3)
    with Recorder(tmp_path / "exp", run="r0", group="random", seed=3, config={"lr": 0.1}) as rec:
        rec.record(model, epoch=2, step=40, metrics={"test_error": 0.25})
    exp = Experiment(tmp_path / "exp")
    (ckpt,) = exp.checkpoints()
    assert (ckpt.run, ckpt.epoch, ckpt.step, ckpt.metrics) == ("r0", 2, 40, {"test_error": 0.25})
    assert ckpt.key == "r0/e000002-s0000000040"
    run = exp.run("r0")
    assert (run.group, run.seed, run.config) == ("random", 3, {"lr": 0.1})
    weights = exp.load_weights(ckpt)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0)


def test_metadata_is_read_without_loading_tensors(recorded, monkeypatch):
    """Listing reads only headers: every way to read tensors is refused, and no byte
    beyond the files' headers is read."""
    import mmap

    import safetensors.torch

    from fspace.store import reading

    def refuse(*args, **kwargs):
        raise AssertionError("tensors were loaded")

    for module, name in [
        (safetensors.torch, "load"),
        (safetensors.torch, "load_file"),
        (reading, "read_copy"),
        (reading, "read_mapped"),
        (reading, "read_into"),
        (reading, "read"),
        (mmap, "mmap"),
        (os, "preadv"),
    ]:
        monkeypatch.setattr(module, name, refuse)
    counted = {"bytes": 0}
    opened = files.open_regular

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            data = self.f.read(n)
            counted["bytes"] += len(data)
            return data

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def counting_open(path, limit=None):
        f, size = opened(path, limit)
        return Counting(f), size

    monkeypatch.setattr(files, "open_regular", counting_open)
    ckpts = Experiment(recorded).checkpoints()
    assert len(ckpts) == 30
    headers = sum(8 + int.from_bytes(c.path.read_bytes()[:8], "little") for c in ckpts)
    assert 0 < counted["bytes"] <= headers  # not one byte of a tensor


def test_interrupted_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    rec = Recorder(tmp_path / "exp", run="r0", group="g", seed=0)
    rec.record(make_mlp(), epoch=0)
    rec.flush()

    def crash(fd):
        raise OSError(5, "simulated power loss")

    monkeypatch.setattr(os, "fsync", crash)
    rec.record(make_mlp(), epoch=1)
    with pytest.raises(Exception, match="simulated power loss"):
        rec.close()
    exp = Experiment(tmp_path / "exp")
    assert [c.epoch for c in exp.checkpoints()] == [0]
    leftovers = list((tmp_path / "exp" / "runs" / "r0" / "checkpoints").iterdir())
    assert [p.name for p in leftovers] == ["e000000-s0000000000.safetensors"]


def test_killed_writer_temp_file_is_ignored(recorded):
    # What SIGKILL leaves behind mid-write: a hidden temp file with part of the bytes.
    ckpt_dir = recorded / "runs" / "random-s0" / "checkpoints"
    real = next(ckpt_dir.glob("*.safetensors")).read_bytes()
    (ckpt_dir / ".e000009-s0000000009.safetensors.abc.tmp").write_bytes(real[: len(real) // 2])
    exp = Experiment(recorded)
    assert len(exp.checkpoints()) == 30
    assert exp.problems == []


def _flip_byte(path, offset_from_end=3):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_checksum_catches_corrupted_weights(recorded):
    exp = Experiment(recorded)
    ckpt = exp.checkpoints(run="random-s1")[2]
    _flip_byte(ckpt.path)
    with pytest.raises(CheckpointError, match="checksum") as info:
        exp.load_weights(ckpt)
    assert str(ckpt.path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x10\x00", id="truncated-length"),
        pytest.param((2**40).to_bytes(8, "little") + b"{}", id="huge-header-claim"),
        pytest.param((5).to_bytes(8, "little") + b"nope!", id="header-not-json"),
        pytest.param(pickle.dumps({"w": [1.0, 2.0]}), id="pickle"),
    ],
)
def test_broken_checkpoint_is_skipped_and_named(recorded, content):
    bad = recorded / "runs" / "random-s0" / "checkpoints" / "e000099-s0000000099.safetensors"
    bad.write_bytes(content)
    exp = Experiment(recorded)
    with pytest.warns(UserWarning, match="e000099"):
        ckpts = exp.checkpoints()
    assert len(ckpts) == 30
    assert [p.path for p in exp.problems] == [bad]
    with pytest.raises(CheckpointError, match="e000099"):
        reading.read(bad)


def test_pickle_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        reading.read(path)
    with pytest.raises(CheckpointError):
        files.read_header(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "path_kind", [pytest.param("missing", id="missing"), pytest.param("plain-dir", id="plain-dir")]
)
def test_path_that_is_not_an_experiment(tmp_path, path_kind):
    path = tmp_path / "somewhere"
    if path_kind == "plain-dir":
        path.mkdir()
    with pytest.raises(NotAnExperimentError, match="somewhere"):
        Experiment(path)


def test_same_run_with_other_group_is_refused(tmp_path):
    with Recorder(tmp_path / "exp", run="r0", group="random", seed=0) as rec:
        rec.record(make_mlp(), epoch=0)  # a run left empty would be removed on close
    with pytest.raises(RunError, match="already exists"):
        Recorder(tmp_path / "exp", run="r0", group="pretrained", seed=0)


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".hidden", "x" * 200])
def test_unsafe_run_ids_are_refused(tmp_path, bad):
    with pytest.raises(ConfigError, match="run id"):
        Recorder(tmp_path / "exp", run=bad, group="g")
    assert not (tmp_path / "escape").exists()


def _write_run(path, run, n):
    model = make_mlp(seed=run)
    with Recorder(path, run=f"w{run}", group=f"g{run % 2}", seed=run) as rec:
        for epoch in range(n):
            rec.record(model, epoch=epoch)


def test_concurrent_writers_into_one_experiment(tmp_path):
    path = tmp_path / "exp"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_run, args=(path, i, 6)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    exp = Experiment(path)
    assert len(exp.runs()) == 4
    assert len(exp.checkpoints()) == 24
    for ckpt in exp.checkpoints():
        exp.load_weights(ckpt)  # every listed checkpoint is whole
