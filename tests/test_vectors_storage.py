"""Cached function vectors: exact round trips, float16 storage, old files, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import record_experiment

from fspace import Experiment, evaluate
from fspace.errors import CheckpointError, ModelOutputError, ProbeMismatchError
from fspace.outputs import OutputSpec, as_stored
from fspace.outputs.forms import Prob
from fspace.store import files, layout


@pytest.fixture
def exp(recorded) -> Experiment:
    return Experiment(recorded)


def _vector(n: int = 60, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(n // 3, 3, generator=gen), -1).reshape(-1)


def test_round_trip_is_exact_by_default(exp, suite):
    ckpt = exp.checkpoints()[0]
    v = _vector()
    exp.save_vector(ckpt, suite.fingerprint, "prob", v)
    torch.testing.assert_close(exp.load_vector(ckpt, suite.fingerprint, "prob"), v, rtol=0, atol=0)
    row = torch.zeros(60)
    assert exp.load_vector(ckpt, suite.fingerprint, "prob", out=row) is row
    torch.testing.assert_close(row, v, rtol=0, atol=0)
    assert exp.vector_size(suite.fingerprint, "prob") == 60


def test_float16_storage_halves_the_file_and_keeps_probabilities(exp, suite, monkeypatch):
    ckpt = exp.checkpoints()[0]
    v = _vector(3000)
    exp.save_vector(ckpt, suite.fingerprint, "prob", v)
    path = layout.vector_path(exp.path, ckpt.run, suite.fingerprint, "prob", ckpt.name)
    size32 = path.stat().st_size
    monkeypatch.setattr(Prob, "storage_dtype", torch.float16)
    exp.save_vector(ckpt, suite.fingerprint, "prob", as_stored(v, OutputSpec(form="prob")))
    assert files.read_header(path)[0]["vector"]["dtype"] == "F16"
    assert path.stat().st_size < 0.6 * size32
    back = exp.load_vector(ckpt, suite.fingerprint, "prob")
    assert back.dtype == torch.float32
    assert (back - v).abs().max() <= 2.5e-4
    torch.testing.assert_close(back, v.half().float(), rtol=0, atol=0)
    row = torch.zeros(3000)  # float16 into a float32 row: converted on the way
    torch.testing.assert_close(exp.load_vector(ckpt, suite.fingerprint, "prob", out=row), back)


def test_evaluate_returns_what_is_stored_in_float16_too(tmp_path, suite, monkeypatch):
    monkeypatch.setattr(Prob, "storage_dtype", torch.float16)
    path = record_experiment(tmp_path / "exp", suite, seeds=(0,), online=False)
    Experiment(path).add_probes(suite)
    first = evaluate(path, progress=False)
    again = evaluate(path, progress=False)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    assert first.matrix.dtype == np.float32
    np.testing.assert_array_equal(first.matrix, first.matrix.astype(np.float16))


def test_files_of_the_first_format_are_read(exp, suite):
    from safetensors.torch import save

    ckpt = exp.checkpoints()[1]
    v = _vector()
    # Format 1: checksum over the tensors only, no format_version bump.
    meta = {"kind": "vector", "fingerprint": suite.fingerprint, "output": "prob"}
    meta.update(format_version=1, checksum=files.checksum({"vector": v}))
    path = layout.vector_path(exp.path, ckpt.run, suite.fingerprint, "prob", ckpt.name)
    path.write_bytes(save({"vector": v}, metadata={"fspace": json.dumps(meta)}))
    torch.testing.assert_close(exp.load_vector(ckpt, suite.fingerprint, "prob"), v)
    row = torch.zeros(60)
    torch.testing.assert_close(exp.load_vector(ckpt, suite.fingerprint, "prob", out=row), v)


def test_corrupted_vector_file_is_named(exp, suite):
    ckpt = exp.checkpoints()[2]
    path = layout.vector_path(exp.path, ckpt.run, suite.fingerprint, "prob", ckpt.name)
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path.name)):
        exp.load_vector(ckpt, suite.fingerprint, "prob")
    with pytest.raises(CheckpointError, match="checksum"):
        evaluate(exp, progress=False)


def test_a_vector_of_another_suite_is_refused(exp, suite):
    ckpt = exp.checkpoints()[0]
    good = layout.vector_path(exp.path, ckpt.run, suite.fingerprint, "prob", ckpt.name)
    other = layout.vector_path(exp.path, ckpt.run, "0" * 16, "prob", ckpt.name)
    other.parent.mkdir(parents=True)
    other.write_bytes(good.read_bytes())
    with pytest.raises(ProbeMismatchError, match=suite.fingerprint):
        exp.load_vector(ckpt, "0" * 16, "prob")


def test_vectors_of_different_lengths_are_refused_by_name(exp, suite):
    ckpts = exp.checkpoints()
    exp.save_vector(ckpts[3], suite.fingerprint, "prob", _vector(30))
    with pytest.raises(ModelOutputError, match=f"{ckpts[3].key}: 30"):
        evaluate(exp, progress=False)


def test_missing_vector_is_none(exp):
    assert exp.load_vector(exp.checkpoints()[0], "f" * 16, "prob") is None
    assert exp.vector_size("f" * 16, "prob") is None
