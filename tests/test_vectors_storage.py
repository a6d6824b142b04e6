"""Cached function vectors: exact round trips, float16 storage, old files, bad files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import record_experiment

from fspace import Experiment, evaluate
from fspace.errors import CheckpointError, ModelOutputError, ProbeMismatchError
from fspace.outputs import OutputSpec, as_stored
from fspace.store import files, layout
from fspace.store.vectors import FLOAT16_TOLERANCE, MAP_TOLERANCE, STATISTIC_TOLERANCE


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


def test_float16_storage_halves_the_file_and_keeps_probabilities(exp, suite):
    ckpt = exp.checkpoints()[0]
    v = _vector(3000)
    wide = OutputSpec(form="prob", params={"dtype": "float32"})  # float32 on request
    assert wide.name == "prob.dtype=float32"
    exp.save_vector(ckpt, suite.fingerprint, "prob", as_stored(v, wide))
    path = layout.vector_path(exp.path, ckpt.run, suite.fingerprint, "prob", ckpt.name)
    assert files.read_header(path)[0]["vector"]["dtype"] == "F32"
    size32 = path.stat().st_size
    exp.save_vector(ckpt, suite.fingerprint, "prob", as_stored(v, OutputSpec(form="prob")))
    assert files.read_header(path)[0]["vector"]["dtype"] == "F16"  # the default
    assert path.stat().st_size < 0.6 * size32
    back = exp.load_vector(ckpt, suite.fingerprint, "prob")
    assert back.dtype == torch.float32
    assert (back - v).abs().max() <= FLOAT16_TOLERANCE
    torch.testing.assert_close(back, v.half().float(), rtol=0, atol=0)
    row = torch.zeros(3000)  # float16 into a float32 row: converted on the way
    torch.testing.assert_close(exp.load_vector(ckpt, suite.fingerprint, "prob", out=row), back)


def test_evaluate_returns_what_is_stored_in_float16_too(tmp_path, suite):
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


def _trajectories(seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Softmax vectors of 6 runs x 30 checkpoints (2 groups) on 100 probes, 10 classes:
    each run moves from its own random start towards its group's target function."""
    gen = np.random.default_rng(seed)
    targets = 3 * gen.normal(size=(2, 100, 10))
    rows, points = [], []
    for run in range(6):
        start, group = 3 * gen.normal(size=(100, 10)), run % 2
        walk = np.cumsum(0.15 * gen.normal(size=(30, 100, 10)), axis=0)
        for t in range(30):
            a = 1 - np.exp(-t / 8)
            logits = (1 - a) * start + a * targets[group] + walk[t]
            e = np.exp(logits - logits.max(-1, keepdims=True))
            rows.append((e / e.sum(-1, keepdims=True)).reshape(-1))
            points.append(
                {"run": f"r{run}", "group": f"g{group}", "seed": run, "epoch": t, "step": t}
            )
            points[-1]["checkpoint"] = f"r{run}/c{t:02d}"
    return np.asarray(rows, np.float32), pd.DataFrame(points)


def _path_lengths(matrix: np.ndarray) -> np.ndarray:
    steps = np.linalg.norm(np.diff(matrix.reshape(6, 30, -1), axis=1), axis=2)
    return steps.sum(1)


@pytest.mark.slow
def test_float16_moves_maps_and_statistics_less_than_a_seed_does():
    from scipy.spatial import procrustes

    from fspace import embed
    from fspace.vectors import FunctionVectors

    x32, points = _trajectories(0)
    x16 = as_stored(torch.from_numpy(x32), OutputSpec(form="prob")).float().numpy()
    x16 = x16.reshape(x32.shape)
    assert np.abs(x16 - x32).max() <= FLOAT16_TOLERANCE

    def tsne(matrix, seed):
        return embed(FunctionVectors(matrix, points, "t"), "tsne", random_state=seed)

    base, half, other = tsne(x32, 0), tsne(x16, 0), tsne(x32, 1)
    for measure in ("trustworthiness", "continuity"):
        assert abs(half.quality[measure] - base.quality[measure]) <= MAP_TOLERANCE
    # t-SNE lays the same neighbourhoods out differently after any small change: the
    # layout moves about as much as with another seed, not more.
    by_dtype = procrustes(base.coords, half.coords)[2]
    assert by_dtype <= 1.5 * procrustes(base.coords, other.coords)[2]
    # Statistics: each run's path length, and all distances, against how much they vary
    # with the seed of the data (the same experiment run again).
    lengths = _path_lengths(x32)
    by_seed = np.abs(_path_lengths(_trajectories(1)[0]) - lengths).mean()
    assert np.abs(_path_lengths(x16) - lengths).max() <= STATISTIC_TOLERANCE * by_seed
    d32, d16, d_seed = (
        np.linalg.norm(m[::5, None] - m[None, ::5], axis=2) for m in (x32, x16, _trajectories(1)[0])
    )
    assert np.abs(d16 - d32).max() <= STATISTIC_TOLERANCE * np.abs(d_seed - d32).mean()
