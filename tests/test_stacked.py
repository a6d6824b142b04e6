"""The stacked forward of plain MLPs: the same outputs as each checkpoint's own forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import fspace.batched as batched
from fspace import Experiment, ProbeSuite, Recorder, evaluate, function_vector
from fspace.models.mlp import make_mlp
from fspace.stacked import plan_for

PLAIN = {
    "mlp-sigmoid": lambda: make_mlp(n_in=6, hidden=[7, 5], n_classes=3, seed=1),
    "mlp-relu-deep": lambda: make_mlp(
        n_in=6, hidden=[5, 4, 4], n_classes=3, activation="relu", seed=2
    ),
    "mlp-no-hidden": lambda: make_mlp(n_in=6, hidden=[], n_classes=3, seed=3),
    "sequential-tanh": lambda: nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)),
    "flatten-sigmoid-no-bias": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(6, 5, bias=False), nn.Sigmoid(), nn.Linear(5, 3)
    ),
    "linear-chain": lambda: nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 3), nn.ReLU()),
}
OTHERS = {
    "dropout": lambda: nn.Sequential(nn.Linear(6, 5), nn.Dropout(0.1), nn.Linear(5, 3)),
    "two-activations": lambda: nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Tanh()),
    "activation-first": lambda: nn.Sequential(nn.ReLU(), nn.Linear(6, 3)),
    "flatten-from-0": lambda: nn.Sequential(nn.Flatten(0), nn.Linear(6, 3)),
    "subclass": lambda: type("Seq", (nn.Sequential,), {})(nn.Linear(6, 3)),
    "gelu": lambda: nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3)),
}


def _states(model: nn.Module, n: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        {k: v + 0.5 * torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()}
        for _ in range(n)
    ]


@pytest.mark.parametrize("name", list(PLAIN), ids=list(PLAIN))
def test_stacked_forward_equals_each_checkpoints_own_forward(name):
    model = PLAIN[name]()
    states = _states(model, 5)
    stacked = {k: torch.stack([s[k] for s in states]) for k in states[0]}
    x = torch.randn(11, 2, 3) if "flatten" in name else torch.randn(11, 6)
    plan = plan_for(model)
    assert plan is not None and plan.takes(x)
    out = plan.forward(stacked, x)
    assert out.shape == (5, 11, 3)
    for state, row in zip(states, out, strict=True):
        model.load_state_dict(state)
        with torch.no_grad():
            torch.testing.assert_close(row, model(x))


@pytest.mark.parametrize("name", list(OTHERS), ids=list(OTHERS))
def test_other_architectures_have_no_plan(name):
    assert plan_for(OTHERS[name]()) is None


def test_a_sequential_without_flatten_takes_only_flat_inputs():
    plan = plan_for(PLAIN["sequential-tanh"]())
    assert plan.takes(torch.zeros(3, 6)) and not plan.takes(torch.zeros(3, 2, 3))
    assert not plan.takes(torch.zeros(3, 6, dtype=torch.int64))


def test_evaluate_reads_live_columns_once_and_never_gathers_per_batch(tmp_path, suite, monkeypatch):
    """With inputs zero on every probe, evaluate() narrows the first layer once per
    architecture and gathers each checkpoint's live columns as it is read."""
    inputs = suite.inputs.clone()
    inputs[:, [0, 2]] = 0
    probes = ProbeSuite(inputs, name="blank")
    monkeypatch.setattr(batched, "MAX_BATCH", 3)  # several batches, both stacks in use
    model, expected = make_mlp(n_in=4, hidden=[6], n_classes=3, seed=0), []
    with Recorder(
        tmp_path / "exp",
        run="r",
        model_factory="fspace.models.mlp:make_mlp",
        model_kwargs={"n_in": 4, "hidden": [6], "n_classes": 3},
    ) as rec:
        for epoch, state in enumerate(_states(model, 7)):
            model.load_state_dict(state)
            rec.record(model, epoch=epoch)
            expected.append(function_vector(model, probes))
    Experiment(tmp_path / "exp").add_probes(probes)
    narrowed = []
    monkeypatch.setattr(batched, "narrowed", _counting(batched.narrowed, narrowed))
    monkeypatch.setattr(batched, "skip_dead_inputs", _refuse)
    fv = evaluate(tmp_path / "exp", progress=False, device="cpu")
    assert [n.alive.tolist() for n in narrowed] == [[1, 3]]
    reference = torch.stack(expected).half().float().numpy()  # stored as float16
    np.testing.assert_allclose(fv.matrix, reference, rtol=0, atol=1e-3)


def _counting(fn, calls):
    def counted(*args):
        out = fn(*args)
        calls.append(out)
        return out

    return counted


def _refuse(*args):
    raise AssertionError("evaluate() gathered the live columns of a whole batch")


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str
)
def test_live_columns_are_taken_exactly_for_every_dtype(dtype):
    from fspace.live_inputs import take_columns

    src = torch.randn(2, 5, 9).to(dtype)
    alive = np.array([0, 3, 4, 8])
    out = torch.empty(2, 5, 4, dtype=dtype)
    take_columns(src, alive, out)
    assert torch.equal(out, src[..., torch.from_numpy(alive)])
