"""Hostile and careless experiment directories: writes outside the experiment, a second
writer, values JSON cannot hold, odd run names, sparse files, misplaced files, a full
disk and duplicate checkpoints. Each test fails if the protection it names is removed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from _hostile import GOOD, N_GOOD, bounded, lenient_dumps, record_base
from _models import make_mlp

from fspace import Experiment, Recorder, evaluate
from fspace.cli import main
from fspace.errors import (
    ConfigError,
    ExportError,
    FspaceError,
    RecorderError,
    RunBusyError,
    RunError,
    StoreWriteError,
)
from fspace.store import files, lease, reading


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return record_base(tmp_path_factory.mktemp("hostile-experiments") / "base")


@pytest.fixture
def exp_path(base, tmp_path) -> Path:
    path = tmp_path / "box" / "exp"
    shutil.copytree(base, path)
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fspace ")]
    return code, err


# 2. containment ---------------------------------------------------------------------


def test_run_id_in_run_json_must_match_its_directory(exp_path, tmp_path):
    run_json = exp_path / "runs" / "random-s0" / "run.json"
    body = json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**body, "id": "../../../ESCAPED"}))
    before = _tree(tmp_path)
    with pytest.raises(RunError, match="names run '../../../ESCAPED'.*directory 'random-s0'"):
        Recorder(exp_path, run="random-s0", group=body["group"], seed=body["seed"])
    assert _tree(tmp_path) == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = Experiment(exp_path)
        assert "random-s0" not in {r.id for r in exp.runs()}
    assert any("ESCAPED" in p.message for p in exp.problems)


@pytest.mark.parametrize("link", ["runs/r9", "runs/random-s0/vectors", "cache", "probes"])
def test_no_write_follows_a_link_out_of_the_experiment(exp_path, tmp_path, link):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = exp_path / link
    if target.exists():
        shutil.rmtree(target)
    target.symlink_to(outside, target_is_directory=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if link == "runs/r9":
            with pytest.raises(StoreWriteError, match="symbolic link"):
                Recorder(exp_path, run="r9", group="g", seed=0)
        elif link == "cache":
            with pytest.warns(UserWarning, match="not cached.*symbolic link"):
                from fspace.pipeline import embed_experiment

                embed_experiment(exp_path, method="pca", progress=False)
        elif link == "probes":
            with pytest.raises(StoreWriteError, match="symbolic link"):
                Experiment(exp_path).add_probes(_other_suite())
        else:
            with pytest.raises(FspaceError, match="symbolic link"):
                evaluate(exp_path, progress=False)
    assert list(outside.iterdir()) == []


def _other_suite():
    from fspace import ProbeSuite

    return ProbeSuite.from_array(np.ones((3, 4), np.float32), name="other")


def test_export_creates_missing_directories_only_inside_the_current_one(
    exp_path, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    far = tmp_path.parent / f"{tmp_path.name}-nonexistent" / "dir"
    code, err = _cli(
        ["export", str(exp_path), "-o", str(far / "x.html"), "--method", "pca"], capsys
    )
    assert code == 2 and "does not exist; create it first" in err[-1]
    assert not far.parent.exists()
    with pytest.raises(ExportError, match="does not exist"):
        from fspace.export import check_destination

        check_destination("/nonexistent-fspace-dir/x.png")
    code, _ = _cli(["export", str(exp_path), "-o", "figs/new/x.html", "--method", "pca"], capsys)
    assert code == 0 and (tmp_path / "figs" / "new" / "x.html").is_file()


# 3. one writer per run --------------------------------------------------------------


def test_a_second_live_writer_is_refused(tmp_path):
    first = Recorder(tmp_path / "exp", run="r", group="g", seed=0)
    with pytest.raises(RunBusyError, match=f"being written by process {os.getpid()}"):
        Recorder(tmp_path / "exp", run="r", group="g", seed=0)
    first.close()
    Recorder(tmp_path / "exp", run="r", group="g", seed=0).close()  # free again


@pytest.mark.parametrize("age", [10.0, 120.0], ids=["fresh", "stale"])
def test_a_writer_on_another_host_is_trusted_until_its_heartbeat_stops(tmp_path, age):
    with Recorder(tmp_path / "exp", run="r", group="g", seed=0) as rec:
        rec.record(make_mlp(), epoch=0)
    other = {"token": "x" * 32, "host": socket.gethostname() + "-other", "pid": 1}
    (tmp_path / "exp" / "runs" / "r" / ".writer").write_text(
        json.dumps({**other, "heartbeat": time.time() - age})
    )
    if age < lease.TTL:
        with pytest.raises(RunBusyError, match="heartbeat 10 s ago"):
            Recorder(tmp_path / "exp", run="r", group="g", seed=0)
    else:
        Recorder(tmp_path / "exp", run="r", group="g", seed=0).close()


def test_a_writer_that_lost_its_lease_saves_nothing_and_says_so(tmp_path):
    rec = Recorder(tmp_path / "exp", run="r", group="g", seed=0)
    assert rec.record(make_mlp(), epoch=0) is True
    rec.flush()
    lease_file = tmp_path / "exp" / "runs" / "r" / ".writer"
    taken = {"token": "y" * 32, "host": "elsewhere", "pid": 1, "heartbeat": time.time()}
    lease_file.write_text(json.dumps(taken))
    rec.record(make_mlp(), epoch=1)
    with pytest.raises(RecorderError, match="lost the lease"):
        rec.close()
    assert [c.epoch for c in Experiment(tmp_path / "exp").checkpoints()] == [0]


def test_a_checkpoint_written_meanwhile_by_another_is_reported_not_dropped(tmp_path):
    rec = Recorder(tmp_path / "exp", run="r", group="g", seed=0)
    rec.record(make_mlp(seed=1), epoch=0)
    rec.flush()
    # As if another writer had bypassed the lease: the same checkpoint appears meanwhile.
    exp = Experiment(tmp_path / "exp")
    (ckpt,) = exp.checkpoints()
    twin = ckpt.path.with_name("e000001-s0000000001.safetensors")
    weights, meta = reading.read(ckpt.path)
    twin.write_bytes(files.dumps(weights, {**meta, "epoch": 1, "step": 1}))
    rec.record(make_mlp(seed=2), epoch=1)
    with pytest.raises(RecorderError, match="was not saved"):
        rec.close()


# 4. one bad value -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metrics": {"loss": float("inf")}},
        {"metrics": {"loss": float("-inf")}},
        {"metrics": {"loss": float("nan")}},
    ],
    ids=["inf", "-inf", "nan"],
)
def test_non_finite_metrics_are_left_out_and_the_checkpoint_kept(tmp_path, kwargs):
    with Recorder(tmp_path / "exp", run="r", group="g", seed=0) as rec:
        with pytest.warns(RuntimeWarning, match="metric 'loss' is .*without it"):
            assert rec.record(make_mlp(), epoch=0, metrics={**kwargs["metrics"], "acc": 0.5})
    (ckpt,) = Experiment(tmp_path / "exp").checkpoints()
    assert ckpt.metrics == {"acc": 0.5}


@pytest.mark.parametrize("value", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_non_finite_config_is_refused_before_anything_is_written(tmp_path, value):
    with pytest.raises(ConfigError, match="config"):
        Recorder(tmp_path / "exp", run="r", group="g", config={"lr": value})
    assert not (tmp_path / "exp").exists()


def test_old_files_with_infinity_still_embed_and_export(exp_path, tmp_path, capsys):
    run_json = exp_path / "runs" / "random-s0" / "run.json"
    body = json.loads(run_json.read_text())
    body["config"] = {"lr": float("inf"), "wd": float("nan")}
    run_json.write_text(json.dumps(body))  # Python writes Infinity and NaN
    good = exp_path / GOOD
    weights, meta = reading.read(good)
    good.write_bytes(lenient_dumps(weights, {**meta, "metrics": {"loss": float("-inf")}}))
    code, err = _cli(["embed", str(exp_path), "--method", "pca", "--csv", "-"], capsys)
    assert code == 0, err
    code, err = _cli(
        ["export", str(exp_path), "-o", str(tmp_path / "m.html"), "--method", "pca"], capsys
    )
    assert code == 0, err


@pytest.mark.parametrize("name", ["sgd-s0 (copy)", "has space", "ünïcødé", "-dash", "a..b"])
def test_odd_run_directories_are_skipped_with_a_warning(exp_path, name, capsys):
    shutil.copytree(exp_path / "runs" / "random-s0", exp_path / "runs" / name)
    with pytest.warns(UserWarning, match="skipped, run directory"):
        ckpts = Experiment(exp_path).checkpoints()
    assert len(ckpts) == N_GOOD
    code, err = _cli(["info", str(exp_path)], capsys)
    assert code == 1 and err == []  # listed as unreadable, no error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _cli(["embed", str(exp_path), "--method", "pca", "--csv", "-"], capsys)[0] == 0
        from fspace.app.state import ExperimentHandle

        scan = ExperimentHandle("exp", exp_path).scan()
    assert len(scan.checkpoints) == N_GOOD and any(name in p.message for p in scan.problems)


# 5. bounded reading -----------------------------------------------------------------


def _sparse(path: Path, meta: dict, nbytes: int) -> None:
    header = {
        "__metadata__": {"fspace": json.dumps({"format_version": 2, "checksum": "0", **meta})},
        "inputs": {"dtype": "F32", "shape": [nbytes // 4], "data_offsets": [0, nbytes]},
    }
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + nbytes)


def test_a_sparse_probe_file_fails_fast_and_small(exp_path, capsys):
    probe = exp_path / "probes" / "probe.safetensors"
    _sparse(probe, {"kind": "probes", "name": "probe", "fingerprint": "f" * 16}, 2 * 2**30)
    assert probe.stat().st_blocks * 512 < 2**20  # the filesystem keeps it sparse
    with bounded(seconds=5, max_bytes=16 * 2**20):
        code = main(["info", str(exp_path)])
        out = capsys.readouterr().out
        with pytest.warns(UserWarning, match="sparse file"):
            assert Experiment(exp_path).probe_suites() == {}
        with pytest.raises(FspaceError, match="sparse file"):
            reading.read(probe)
    assert code == 1 and "sparse file" in out


def test_a_sparse_checkpoint_fails_fast_and_small(exp_path, capsys):
    bad = exp_path / "runs" / "random-s0" / "checkpoints" / "e000009-s0000000009.safetensors"
    _sparse(bad, {"epoch": 9, "step": 9}, 4 * 2**30)
    with bounded(seconds=5, max_bytes=16 * 2**20):
        with pytest.raises(FspaceError, match="sparse file"):
            reading.read(bad)
        with pytest.warns(UserWarning, match="sparse file"):
            assert len(Experiment(exp_path).checkpoints()) == N_GOOD


# 6. one-line errors for misplaced and malformed files -------------------------------


@pytest.mark.parametrize("case", ["checkpoint-in-probes", "fingerprint-list", "no-inputs"])
def test_misplaced_or_malformed_probe_files(exp_path, case, capsys):
    probes = exp_path / "probes"
    weights, _ = reading.read(exp_path / GOOD)
    if case == "checkpoint-in-probes":
        shutil.copy(exp_path / GOOD, probes / "copied.safetensors")
    elif case == "fingerprint-list":
        body = {"kind": "probes", "name": "listed", "fingerprint": ["a", "b"]}
        (probes / "listed.safetensors").write_bytes(files.dumps(weights, body))
    else:
        body = {"kind": "probes", "name": "empty", "fingerprint": "0123456789abcdef"}
        (probes / "empty.safetensors").write_bytes(files.dumps(weights, body))
    code, err = _cli(["info", str(exp_path)], capsys)
    assert code == 1 and err == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = Experiment(exp_path)
        if case == "no-inputs":
            with pytest.raises(FspaceError, match="empty"):
                exp.probes("empty")
        else:
            assert set(exp.probe_suites()) == {"probe"}  # the bad file is skipped
            assert len(evaluate(exp_path, probes="probe", progress=False)) == N_GOOD


def test_a_huge_epoch_is_refused_by_name(exp_path, capsys):
    weights, meta = reading.read(exp_path / GOOD)
    huge = exp_path / "runs" / "random-s0" / "checkpoints" / "e999999-s0000000000.safetensors"
    huge.write_bytes(lenient_dumps(weights, {**meta, "epoch": 10**300}))
    with pytest.warns(UserWarning, match="'epoch' must be an int in the epoch range"):
        assert len(Experiment(exp_path).checkpoints()) == N_GOOD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(evaluate(exp_path, progress=False)) == N_GOOD
    with Recorder(exp_path, run="big", group="g") as rec, pytest.raises(ConfigError, match="range"):
        rec.record(make_mlp(), epoch=10**300)


@pytest.mark.parametrize("command", ["evaluate", "embed", "export"])
def test_a_full_disk_is_one_line(exp_path, tmp_path, command, monkeypatch, capsys):
    import errno

    import fspace._atomic

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fspace._atomic.os, "fsync", full)
    argv = {
        "evaluate": ["evaluate", str(exp_path)],
        "embed": ["embed", str(exp_path), "--method", "pca", "--csv", str(tmp_path / "m.csv")],
        "export": ["export", str(exp_path), "-o", str(tmp_path / "m.html"), "--method", "pca"],
    }[command]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, err = _cli(argv, capsys)
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err


# 7. duplicates ----------------------------------------------------------------------


def test_a_duplicate_checkpoint_file_is_reported_not_dropped(exp_path, capsys):
    shutil.copy(exp_path / GOOD, exp_path / GOOD.replace("e000001", "copy-of-e000001"))
    with pytest.warns(UserWarning, match="copy-of-e000001.*under another file name"):
        fv = evaluate(exp_path, progress=False)
    assert len(fv) == N_GOOD and fv.points["checkpoint"].is_unique
    code, _ = _cli(["info", str(exp_path)], capsys)
    assert code == 1


def test_the_heartbeat_keeps_a_lease_fresh_and_release_removes_it(tmp_path):
    exp = Experiment.create(tmp_path / "exp")
    held = exp.writer("r", ttl=1.2)
    first = lease.read(held.path)["heartbeat"]
    end = time.monotonic() + 10  # a heartbeat comes every ttl / 6 (later on a busy machine)
    while lease.read(held.path)["heartbeat"] <= first and time.monotonic() < end:
        time.sleep(0.05)
    assert lease.read(held.path)["heartbeat"] > first
    assert not lease.stale(lease.read(held.path), 1.2)
    held.check()
    held.release()
    assert not held.path.exists()
    exp.writer("r").release()  # free again


def test_the_dashboard_does_not_follow_a_linked_experiment(exp_path, tmp_path):
    from fspace.app.state import Registry

    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(exp_path, root / "real")
    (root / "linked").symlink_to(exp_path, target_is_directory=True)
    assert Registry(root).names() == ["real"]
