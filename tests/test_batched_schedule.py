"""When the batched evaluator reads the next batch: during the products, or on the CPU
between them (READ_BETWEEN_PRODUCTS); the vectors are the same either way, and a
corrupted checkpoint is still named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fspace.batched as batched
from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.errors import CheckpointError
from fspace.models.mlp import make_mlp

KWARGS = {"n_in": 12, "hidden": [8], "n_classes": 3, "seed": 0}


@pytest.fixture
def exp_path(tmp_path, monkeypatch):
    inputs = torch.rand(20, 12, generator=torch.Generator().manual_seed(0))
    inputs[:, :4] = 0  # dead inputs: the read threads also gather the live columns
    path = tmp_path / "exp"
    Experiment.create(path).add_probes(ProbeSuite.from_array(inputs.numpy(), name="p"))
    model = make_mlp(**KWARGS)
    with Recorder(
        path, run="r", model_factory="fspace.models.mlp:make_mlp", model_kwargs=KWARGS
    ) as rec:
        for epoch in range(7):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.05 * (epoch + 1))
            rec.record(model, epoch=epoch)
    monkeypatch.setattr(batched, "MAX_BATCH", 3)  # 7 checkpoints: batches of 3, 3, 1
    return path


def _events(monkeypatch) -> list[str]:
    """'read' when a batch's reads are submitted, 'compute' when its forward starts."""
    events: list[str] = []
    read, forward = batched._Stack.read, batched._forward_stack

    def logged_read(self, pool, batch):
        events.append(f"read {len(batch)}")
        return read(self, pool, batch)

    def logged_forward(model, params, *args, **kwargs):
        events.append(f"compute {len(next(iter(params.values())))}")
        return forward(model, params, *args, **kwargs)

    monkeypatch.setattr(batched._Stack, "read", logged_read)
    monkeypatch.setattr(batched, "_forward_stack", logged_forward)
    return events


def test_between_the_products_the_next_batch_is_read_after_them(exp_path, monkeypatch):
    events = _events(monkeypatch)
    monkeypatch.setattr(batched, "READ_BETWEEN_PRODUCTS", True)
    evaluate(exp_path, progress=False, device="cpu")
    assert events == ["read 3", "compute 3", "read 3", "compute 3", "read 1", "compute 1"]


def test_by_default_the_next_batch_is_read_during_the_products(exp_path, monkeypatch):
    events = _events(monkeypatch)
    evaluate(exp_path, progress=False, device="cpu")
    assert events == ["read 3", "read 3", "compute 3", "read 1", "compute 3", "compute 1"]


def test_both_schedules_give_the_same_vectors_as_one_at_a_time(exp_path, monkeypatch):
    exp = Experiment(exp_path)
    suite = exp.probes()
    model = make_mlp(**KWARGS)
    reference = []
    for ckpt in exp.checkpoints():
        model.load_state_dict(exp.load_weights(ckpt))
        reference.append(torch.softmax(model(suite.inputs), -1).detach().reshape(-1).numpy())
    during = evaluate(exp_path, progress=False, device="cpu", dtype="stored").matrix
    for d in exp_path.glob("runs/*/vectors"):
        for f in d.rglob("*.safetensors"):
            f.unlink()
    monkeypatch.setattr(batched, "READ_BETWEEN_PRODUCTS", True)
    between = evaluate(exp_path, progress=False, device="cpu", dtype="stored").matrix
    np.testing.assert_array_equal(between, during)
    np.testing.assert_allclose(between.astype(np.float32), np.stack(reference), atol=1e-3)


@pytest.mark.parametrize("between", [False, True], ids=["during", "between"])
def test_a_corrupted_checkpoint_in_a_later_batch_is_named(exp_path, monkeypatch, between):
    monkeypatch.setattr(batched, "READ_BETWEEN_PRODUCTS", between)
    bad = Experiment(exp_path).checkpoints()[4].path  # in the second batch
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0x01  # a byte of the first layer's weights
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{bad.name}: checksum mismatch"):
        evaluate(exp_path, progress=False, device="cpu")


def test_read_threads_follow_torch_when_reading_between_the_products(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 6)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert batched.read_threads(cpu) == 2 and batched.reads_overlap(cpu)
    monkeypatch.setattr(batched, "READ_BETWEEN_PRODUCTS", True)
    assert batched.read_threads(cpu) == 6 and not batched.reads_overlap(cpu)
    assert batched.read_threads(cuda) == 2 and batched.reads_overlap(cuda)
