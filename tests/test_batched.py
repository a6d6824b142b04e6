"""Batched evaluation: the same function vectors as one checkpoint at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import make_mlp as tiny_mlp
from conftest import record_experiment, train_step

import fspace.batched as batched
from fspace import Experiment, ProbeSuite, Recorder, evaluate, function_vector
from fspace.batched import batch_problem, function_vectors, signature
from fspace.errors import CheckpointError
from fspace.models.mlp import make_mlp
from fspace.store import RunInfo, files, reading
from fspace.store.reading import read_into, read_mapped
from fspace.store.vectors import FLOAT16_TOLERANCE


def _states(model: torch.nn.Module, n: int) -> list[dict[str, torch.Tensor]]:
    states = []
    for i in range(n):
        train_step(model, seed=i, lr=0.5)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    return states


MODELS = {
    "sequential-tanh": lambda: tiny_mlp(seed=1),
    "mlp-sigmoid": lambda: make_mlp(n_in=4, hidden=[7, 5], n_classes=3, seed=2),
    "mlp-relu": lambda: make_mlp(n_in=4, hidden=[6], n_classes=3, activation="relu", seed=3),
}


@pytest.mark.parametrize("output", ["prob", "logprob", "logits"])
@pytest.mark.parametrize("name", list(MODELS), ids=list(MODELS))
def test_function_vectors_equal_one_at_a_time(name, output, suite):
    model = MODELS[name]()
    states = _states(model, 5)
    matrix = function_vectors(model, states, suite, output=output, batch_size=7, device="cpu")
    assert matrix.shape == (5, len(suite) * 3)
    for state, row in zip(states, matrix, strict=True):
        model.load_state_dict(state)
        torch.testing.assert_close(row, function_vector(model, suite, output=output))


class _BatchNormModel(torch.nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)

    def forward(self, x):
        return self.layers(x)


class _Branching(torch.nn.Module):
    """Control flow that depends on the data: vmap cannot map it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        out = self.linear(x)
        return out * 2 if bool(out.sum() > 0) else out


def test_batch_problem_names_buffers():
    assert batch_problem(tiny_mlp()) is None
    assert "buffers" in batch_problem(_BatchNormModel())
    assert "running_mean" in batch_problem(_BatchNormModel())


@pytest.mark.parametrize(
    "factory", [_BatchNormModel, _Branching], ids=["batch-norm", "data-dependent-branch"]
)
def test_architectures_that_cannot_be_batched_give_the_same_vectors(tmp_path, suite, factory):
    path = tmp_path / "exp"
    model = factory()
    expected = []
    with Recorder(path, run="r", group="g") as rec:
        for epoch in range(4):
            train_step(model, seed=epoch, lr=0.3)
            rec.record(model, epoch=epoch)
            expected.append(function_vector(model, suite))
    Experiment(path).add_probes(suite)
    fv = evaluate(path, model_factory=factory, progress=False, device="cpu")
    # Probabilities are stored as float16: evaluate returns the stored values.
    np.testing.assert_array_equal(fv.matrix, torch.stack(expected).half().float().numpy())


def test_offline_evaluation_in_many_batches_equals_the_plain_loop(tmp_path, suite, monkeypatch):
    # Three runs of one architecture (seeds differ) and batches of 4: batch boundaries
    # fall inside runs and both read-ahead stacks are used.
    monkeypatch.setattr(batched, "MAX_BATCH", 4)
    path = record_experiment(tmp_path / "exp", suite, groups=("g",), epochs=4, online=False)
    exp = Experiment(path)
    exp.add_probes(suite)
    fv = evaluate(path, progress=False, device="cpu")
    ckpts = exp.checkpoints()
    assert len(ckpts) == 15 and list(fv.points["checkpoint"]) == [c.key for c in ckpts]
    for ckpt, row in zip(ckpts, fv.matrix, strict=True):
        model = tiny_mlp(**exp.run(ckpt.run).model_kwargs)
        model.load_state_dict(exp.load_weights(ckpt))
        direct = function_vector(model, suite).numpy()
        np.testing.assert_allclose(row, direct, rtol=0, atol=FLOAT16_TOLERANCE)
        cached = exp.load_vector(ckpt, suite.fingerprint, "prob")
        np.testing.assert_array_equal(cached.numpy(), row)


def test_nan_checkpoint_among_good_ones_is_left_out_by_name(tmp_path, suite):
    path = record_experiment(tmp_path / "exp", suite, groups=("g",), seeds=(0,), online=False)
    exp = Experiment(path)
    exp.add_probes(suite)
    bad = exp.checkpoints()[2]
    weights, meta = reading.read(bad.path)
    weights["0.weight"][0, 0] = float("nan")
    files.write(bad.path, weights, meta)
    with pytest.warns(UserWarning, match=bad.key):
        fv = evaluate(path, progress=False, device="cpu")
    assert bad.key not in set(fv.points["checkpoint"]) and len(fv) == 4
    assert np.isfinite(fv.matrix).all()


def test_a_checkpoint_that_does_not_fit_is_named(tmp_path, suite, monkeypatch):
    monkeypatch.setattr(batched, "MAX_BATCH", 2)
    path = record_experiment(tmp_path / "exp", suite, groups=("g",), seeds=(0,), online=False)
    exp = Experiment(path)
    exp.add_probes(suite)
    victim = exp.checkpoints()[3]
    _, meta = reading.read(victim.path)
    files.write(victim.path, tiny_mlp(hidden=5).state_dict(), meta)
    with pytest.raises(CheckpointError, match=f"{victim.key}.*does not fit"):
        evaluate(path, progress=False, device="cpu")


def test_runs_differing_only_in_seed_share_a_batch():
    def run(**kwargs):
        return RunInfo(id="r", group="g", seed=0, model_factory="m:f", model_kwargs=kwargs)

    assert signature(run(hidden=5, seed=1), None) == signature(run(hidden=5, seed=2), None)
    assert signature(run(hidden=5, seed=1), None) != signature(run(hidden=6, seed=1), None)
    assert signature(run(hidden=5), "other:f") != signature(run(hidden=5), None)


def test_read_into_equals_files_read_and_verifies(tmp_path):
    tensors = {
        "w": torch.randn(3, 4),
        "b": torch.arange(5, dtype=torch.int16),
        "s": torch.tensor(2),
    }
    path = files.write(tmp_path / "t.safetensors", tensors, {"kind": "test"})
    out = {k: torch.empty_like(v) for k, v in tensors.items()}
    assert read_into(path, out)["kind"] == "test"
    for k, v in reading.read(path)[0].items():
        torch.testing.assert_close(out[k], v, rtol=0, atol=0)
        torch.testing.assert_close(read_mapped(path)[0][k], v, rtol=0, atol=0)
    assert read_into(path, {**out, "w": torch.empty(4, 3)}) is None  # other shape
    assert read_into(path, {"w": out["w"]}) is None  # other names
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    for read in (lambda: read_into(path, out), lambda: read_mapped(path)):
        with pytest.raises(CheckpointError, match="checksum"):
            read()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_vectors_equal_cpu_vectors(suite):
    model = make_mlp(n_in=4, hidden=[16, 16], n_classes=3)
    states = _states(model, 6)
    on_cpu = function_vectors(model, states, suite, device="cpu")
    on_gpu = function_vectors(model.cuda(), states, suite, device="cuda")
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-5, rtol=1e-4)


def test_default_device_is_the_gpu_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert batched.default_device().type == expected


def test_probe_suite_given_as_a_tensor(suite):
    model = tiny_mlp()
    matrix = function_vectors(model, [model.state_dict()], suite.inputs, device="cpu")
    torch.testing.assert_close(matrix[0], function_vector(model, ProbeSuite(suite.inputs)))


DEAD_INPUT_MODELS = {
    "mlp": lambda: make_mlp(n_in=6, hidden=[5], n_classes=3, seed=4),
    "sequential": lambda: torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.Sigmoid(), torch.nn.Linear(5, 3)
    ),
    "flatten-first": lambda: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)
    ),
}


@pytest.mark.parametrize("name", list(DEAD_INPUT_MODELS), ids=list(DEAD_INPUT_MODELS))
def test_inputs_zero_on_every_probe_are_skipped_with_the_same_vectors(name):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(30, 6, generator=gen)
    inputs[:, [0, 3, 4]] = 0  # blank on every probe, like MNIST's border pixels
    if name == "flatten-first":
        inputs = inputs.reshape(30, 2, 3)
    model = DEAD_INPUT_MODELS[name]()
    states = _states_for(model, 4)
    params = {k: torch.stack([s[k] for s in states]) for k in states[0]}
    pruned, pruned_params, pruned_suite = batched.skip_dead_inputs(
        model, params, ProbeSuite(inputs)
    )
    assert pruned_suite.inputs.shape == (30, 3)
    first = next(m for m in pruned.modules() if isinstance(m, torch.nn.Linear))
    assert first.in_features == 3 and pruned_params[next(iter(params))].shape[-1] == 3
    matrix = function_vectors(model, states, inputs, device="cpu")
    for state, row in zip(states, matrix, strict=True):
        model.load_state_dict(state)
        torch.testing.assert_close(row, function_vector(model, inputs))


def _states_for(model: torch.nn.Module, n: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        {k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()}
        for _ in range(n)
    ]
