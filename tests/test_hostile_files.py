"""Hostile and broken files inside an experiment, made by hand: each kind of damage once.

Each one is refused with a CheckpointError that names it; no code in it runs; reading
it neither hangs nor allocates much; and the rest of the experiment still lists, loads,
evaluates and plots. Random files are thrown at the reader in test_hostile_properties.py.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _hostile import (
    GOOD,
    META,
    N_GOOD,
    NEW,
    bounded,
    read_or_refuse,
    record_base,
    safetensors_bytes,
    with_meta,
)

import fspace
from fspace import Experiment
from fspace.errors import CheckpointError
from fspace.pipeline import embed_experiment
from fspace.plot import trajectory_figure
from fspace.store import files, reading


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return record_base(tmp_path_factory.mktemp("hostile") / "base")


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory) -> np.ndarray:
    """Function vectors of the undamaged experiment, evaluated in a copy of it."""
    copy = tmp_path_factory.mktemp("reference") / "exp"
    shutil.copytree(base, copy)
    return fspace.evaluate(copy, progress=False).matrix


@pytest.fixture
def exp_path(base, tmp_path) -> Path:
    shutil.copytree(base, tmp_path / "exp")
    return tmp_path / "exp"


@pytest.fixture(scope="module")
def good(base) -> bytes:
    return (base / GOOD).read_bytes()


def assert_rest_works(exp_path: Path, reference: np.ndarray, skipped: Path | None) -> None:
    """The other checkpoints list, load, evaluate to the reference vectors, and plot."""
    with warnings.catch_warnings(record=True) as caught, bounded(120, max_bytes=None):
        warnings.simplefilter("always")
        exp = Experiment(exp_path)
        ckpts = exp.checkpoints()
        assert [p.path for p in exp.problems] == ([skipped] if skipped else [])
        assert len(ckpts) == N_GOOD
        for ckpt in ckpts:
            exp.load_weights(ckpt)
        vectors = fspace.evaluate(exp, progress=False)
        np.testing.assert_allclose(vectors.matrix, reference, rtol=1e-5, atol=1e-6)
        fig = trajectory_figure(embed_experiment(exp, method="pca", progress=False).frame)
    assert sum(len(trace.x) for trace in fig.data if trace.x is not None) >= N_GOOD
    if skipped:
        assert any(skipped.name in str(w.message) for w in caught), "skipped without a warning"


# hand-made files ---------------------------------------------------------------------


def _tiled(a: list[int], b: list[int], data: int) -> bytes:
    """Two 2-float tensors at offsets ``a`` and ``b`` in ``data`` bytes, with a checksum
    that matches (a hostile file can compute one as well as fspace can)."""
    tensors = {"a": torch.zeros(2), "b": torch.zeros(2)}
    meta = {**META, "checksum": ""}
    meta["checksum"] = files.checksum(tensors, meta)
    entries = {
        n: {"dtype": "F32", "shape": [2], "data_offsets": o}
        for n, o in zip("ab", (a, b), strict=True)
    }
    header = {"__metadata__": {"fspace": json.dumps(meta)}, **entries}
    return safetensors_bytes(header, b"\0" * data)


class _Payload:
    """Unpickling this creates a directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _pickled(marker: Path) -> bytes:
    return pickle.dumps({"0.weight": _Payload(marker)})


def _torch_saved(marker: Path) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({"0.weight": _Payload(marker)}, buf)
    return buf.getvalue()


HEADER_DAMAGE = {
    "empty": lambda good, m: b"",
    "seven-bytes": lambda good, m: good[:7],
    "cut-in-header": lambda good, m: good[:40],
    "cut-in-data": lambda good, m: good[:-5],
    "header-claims-8-EiB": lambda good, m: struct.pack("<Q", 2**63 - 1) + good[8:],
    "header-claims-4-GiB": lambda good, m: struct.pack("<Q", 2**32) + good[8:],
    "header-not-json": lambda good, m: safetensors_bytes(b"{nope!  "),
    "header-not-utf8": lambda good, m: safetensors_bytes(b'{"\xff\xfe": 1}  '),
    "header-is-a-list": lambda good, m: safetensors_bytes([1, 2]),
    "header-nested-100k-deep": lambda good, m: safetensors_bytes(b"[" * 100_000),
    "plain-safetensors-no-fspace": lambda good, m: safetensors_bytes(
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
    ),
    "metadata-not-json": lambda good, m: safetensors_bytes(
        {"__metadata__": {"fspace": "{epoch: 1"}}
    ),
    "metadata-is-a-list": lambda good, m: safetensors_bytes({"__metadata__": {"fspace": "[1]"}}),
    "metadata-nested-100k-deep": lambda good, m: safetensors_bytes(
        {"__metadata__": {"fspace": "[" * 100_000}}
    ),
    "epoch-a-string": lambda good, m: with_meta({**META, "epoch": "1"}),
    "epoch-infinite": lambda good, m: with_meta({**META, "epoch": float("inf")}),
    "epoch-a-float": lambda good, m: with_meta({**META, "epoch": 1.5}),
    "step-negative": lambda good, m: with_meta({**META, "step": -1}),
    "metrics-a-list": lambda good, m: with_meta({**META, "metrics": [1, 2]}),
    "metrics-of-strings": lambda good, m: with_meta({**META, "metrics": {"acc": "high"}}),
    "no-format-version": lambda good, m: with_meta({"epoch": 1, "step": 1}),
    "newer-format": lambda good, m: with_meta({**META, "format_version": 99}),
    "offsets-infinite": lambda good, m: with_meta(
        META, w={"dtype": "F32", "shape": [2], "data_offsets": [0, float("inf")]}
    ),
    "offsets-past-the-end": lambda good, m: with_meta(
        META, w={"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}
    ),
    "shape-negative": lambda good, m: with_meta(
        META, w={"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}
    ),
    "shape-a-float": lambda good, m: with_meta(
        META, w={"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}
    ),
    "shape-huge": lambda good, m: with_meta(
        META, w={"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}
    ),
    "dtype-unsupported": lambda good, m: with_meta(
        META, w={"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}
    ),
    "entry-not-an-object": lambda good, m: with_meta(META, w=[1, 2, 3]),
    "overlapping-tensors": lambda good, m: _tiled([0, 8], [0, 8], data=8),
    "gap-between-tensors": lambda good, m: _tiled([0, 8], [12, 20], data=20),
    "bytes-after-the-tensors": lambda good, m: _tiled([0, 8], [8, 16], data=24),
    "pickle-with-payload": lambda good, m: _pickled(m),
    "torch-save-with-payload": lambda good, m: _torch_saved(m),
}


@pytest.mark.parametrize("damage", list(HEADER_DAMAGE), ids=list(HEADER_DAMAGE))
def test_unreadable_file_is_named_and_skipped(exp_path, good, reference, damage, tmp_path):
    marker = tmp_path / "code-ran"
    bad = exp_path / NEW
    bad.write_bytes(HEADER_DAMAGE[damage](good, marker))
    assert read_or_refuse(bad) is None
    assert_rest_works(exp_path, reference, skipped=bad)
    assert not marker.exists(), "unpickling ran code from the file"


def test_info_reports_every_unreadable_file(exp_path, capsys):
    """``fspace info`` lists what it can and names each broken file, with exit code 1."""
    from fspace.cli import main

    (exp_path / NEW).write_bytes(b"garbage")
    (exp_path / "runs/random-s1/run.json").write_text("{not json")
    probes = next((exp_path / "probes").glob("*.safetensors"))
    probes.write_bytes(probes.read_bytes()[:-1])
    assert main(["info", str(exp_path)]) == 1
    out = capsys.readouterr().out
    assert f"checkpoints {N_GOOD}" in out  # random-s1's checkpoints are still listed
    unreadable = [line for line in out.splitlines() if line.startswith("unreadable")]
    assert len(unreadable) == 3, out
    for path in (exp_path / NEW, exp_path / "runs/random-s1/run.json", probes):
        assert any(str(path) in line for line in unreadable), (path, out)


def test_a_damaged_run_json_leaves_out_its_run_only(exp_path, tmp_path, capsys):
    """Evaluation, maps and the command line go on without the run whose run.json is
    damaged, with a warning naming the file; asking for that run names it as the error."""
    from fspace.cli import main
    from fspace.errors import RunError

    shutil.copytree(exp_path, tmp_path / "whole")
    whole = fspace.evaluate(tmp_path / "whole", progress=False)
    bad = exp_path / "runs/random-s1/run.json"
    bad.write_text("{not json")
    with pytest.warns(UserWarning, match=r"left out run 'random-s1': .*run.json"):
        fv = fspace.evaluate(exp_path, progress=False)
    assert set(fv.points["run"]) == {"pretrained-s0", "pretrained-s1", "random-s0"}
    rows = whole.points.reset_index(drop=True).set_index("checkpoint").index
    np.testing.assert_array_equal(
        fv.matrix, whole.matrix[rows.get_indexer(fv.points["checkpoint"])]
    )
    with pytest.raises(RunError, match="run.json"):
        fspace.evaluate(exp_path, progress=False, runs=["random-s1"])
    capsys.readouterr()
    with pytest.warns(UserWarning, match=str(bad)):
        assert main(["embed", str(exp_path), "-q", "--method", "pca"]) == 0
    assert "12 checkpoints of 3 runs" in capsys.readouterr().out


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "link-to-dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.symlink_to(path.parent / "nowhere")


@pytest.mark.parametrize(
    "kind",
    [
        "fifo",
        "directory",
        "link-to-dev-zero",
        "dangling-link",
    ],
)
def test_not_a_regular_file_is_named_and_skipped(exp_path, reference, kind):
    bad = exp_path / NEW
    _special(kind, bad)
    assert read_or_refuse(bad) is None
    assert_rest_works(exp_path, reference, skipped=bad)


def _rewrite(path: Path, change) -> None:
    """Rewrite a checkpoint with changed tensors, with a valid checksum."""
    tensors, meta = reading.read(path)
    path.write_bytes(files.dumps(change(tensors), meta))


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def _digit_offset(data: bytes, text: bytes) -> int:
    return data.index(text) + len(text)


# Files whose header is fine, so they are listed, but whose contents are wrong.
CONTENT_DAMAGE = {
    "flipped-bit-in-weights": lambda p: p.write_bytes(_flip(p.read_bytes(), -3)),
    "flipped-bit-in-metrics": lambda p: p.write_bytes(
        _flip(p.read_bytes(), _digit_offset(p.read_bytes(), b'test_error\\": 0.'))
    ),
    "wrong-shapes": lambda p: _rewrite(p, lambda t: {k: torch.cat([v, v]) for k, v in t.items()}),
    "missing-tensor": lambda p: _rewrite(p, lambda t: dict(list(t.items())[1:])),
    "extra-tensor": lambda p: _rewrite(p, lambda t: {**t, "extra": torch.ones(3)}),
    "int8-weights": lambda p: _rewrite(p, lambda t: {k: v.to(torch.int8) for k, v in t.items()}),
}
_WEIGHTS_DONT_LOAD = {"flipped-bit-in-weights", "flipped-bit-in-metrics"}


def _content_cases():
    for name in CONTENT_DAMAGE:
        yield pytest.param(name, id=name)


@pytest.mark.parametrize("damage", list(_content_cases()))
def test_damaged_contents_are_named_when_used(exp_path, reference, damage):
    bad = exp_path / GOOD
    CONTENT_DAMAGE[damage](bad)
    exp = Experiment(exp_path)
    (ckpt,) = [c for c in exp.checkpoints() if c.path == bad]
    if damage in _WEIGHTS_DONT_LOAD:
        with pytest.raises(CheckpointError, match="checksum mismatch|not a valid") as info:
            exp.load_weights(ckpt)
        assert str(bad) in str(info.value)
    # Evaluating from weights names the file, either as the error or as a left-out warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fspace.evaluate(exp, progress=False)
            assert any(str(bad) in str(w.message) for w in caught), "damage went unnoticed"
        except CheckpointError as e:
            assert str(bad) in str(e)


def test_damaged_contents_with_cached_vectors_still_plot(base, tmp_path, reference):
    """With the function vectors cached (as recorded online), a corrupted checkpoint
    does not stop the experiment from evaluating and plotting."""
    exp_path = tmp_path / "exp"
    shutil.copytree(base, exp_path)
    fspace.evaluate(exp_path, progress=False)
    bad = exp_path / GOOD
    bad.write_bytes(_flip(bad.read_bytes(), -3))
    assert read_or_refuse(bad) is None
    exp = Experiment(exp_path)
    assert len(exp.checkpoints()) == N_GOOD
    np.testing.assert_allclose(fspace.evaluate(exp, progress=False).matrix, reference, rtol=1e-6)
    assert trajectory_figure(embed_experiment(exp, method="pca", progress=False).frame).data


def test_files_of_the_first_format_still_verify(tmp_path):
    """Format 1 checksummed tensors only; such files must keep loading."""
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}
    meta = {"kind": "checkpoint", "epoch": 1, "step": 1, "format_version": 1}
    old_checksum = files.checksum(tensors)  # what format 1 stored
    from safetensors.torch import save

    path = tmp_path / "old.safetensors"
    body = json.dumps({**meta, "checksum": old_checksum})
    path.write_bytes(save(tensors, metadata={"fspace": body}))
    loaded, loaded_meta = reading.read(path)
    torch.testing.assert_close(loaded["w"], tensors["w"])
    assert loaded_meta["epoch"] == 1
    path.write_bytes(save(tensors, metadata={"fspace": body.replace('"epoch": 1', '"epoch": 2')}))
    reading.read(path)  # format 1 did not cover metadata: a change there goes unnoticed


def test_scalar_tensors_round_trip(tmp_path):
    """0-dim tensors (BatchNorm's num_batches_tracked) are checksummed and stored."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    path = files.write(tmp_path / "bn.safetensors", model.state_dict(), {"epoch": 0})
    loaded, _ = reading.read(path)
    assert loaded["1.num_batches_tracked"].shape == ()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0)
