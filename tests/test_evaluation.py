"""Function vectors: equal to a hand computation, cached, and refused when malformed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import make_dropout_mlp, make_mlp
from conftest import record_experiment

from fspace import Experiment, ProbeSuite, evaluate, function_vector
from fspace.errors import (
    CheckpointError,
    ConfigError,
    EmptyExperimentError,
    ModelOutputError,
    ProbeMismatchError,
    RunError,
)


def _by_hand(model, x: np.ndarray, output: str) -> np.ndarray:
    w1, b1, w2, b2 = (p.detach().numpy().astype(np.float64) for p in model.parameters())
    logits = np.tanh(x @ w1.T + b1) @ w2.T + b2
    logprob = logits - logits.max(1, keepdims=True)
    logprob -= np.log(np.exp(logprob).sum(1, keepdims=True))
    return {"logits": logits, "logprob": logprob, "prob": np.exp(logprob)}[output].reshape(-1)


@pytest.mark.parametrize("output", ["prob", "logprob", "logits"])
def test_function_vector_equals_hand_computation(suite, output):
    model = make_mlp(seed=4)
    v = function_vector(model, suite, output=output, batch_size=7)  # several batches
    assert v.shape == (len(suite) * 3,)
    np.testing.assert_allclose(v.numpy(), _by_hand(model, suite.inputs.numpy(), output), atol=1e-5)
    assert not v.requires_grad


def test_function_vector_runs_in_eval_mode(suite):
    model = make_dropout_mlp()
    model.train()
    a = function_vector(model, suite)
    b = function_vector(model, suite)
    torch.testing.assert_close(a, b)  # dropout off
    assert model.training


@pytest.mark.parametrize(
    ("forward", "match"),
    [
        pytest.param(lambda x: x.sum().item(), "float, not a tensor", id="non-tensor"),
        pytest.param(lambda x: x[:, :1].reshape(-1), "shape", id="1-d"),
        pytest.param(lambda x: x[:2], "shape", id="wrong-rows"),
        pytest.param(lambda x: x / 0.0, "NaN or infinite", id="inf"),
    ],
)
def test_malformed_model_outputs(suite, forward, match):
    class Bad(torch.nn.Module):
        def forward(self, x):
            return forward(x)

    with pytest.raises(ModelOutputError, match=match):
        function_vector(Bad(), suite)


def test_offline_equals_online_and_is_cached(tmp_path, suite, monkeypatch):
    online = evaluate(record_experiment(tmp_path / "on", suite), progress=False)
    offline_path = record_experiment(tmp_path / "off", suite, online=False)
    Experiment(offline_path).add_probes(suite)
    offline = evaluate(offline_path, progress=False)
    np.testing.assert_array_equal(online.matrix, offline.matrix)
    assert list(online.points["checkpoint"]) == list(offline.points["checkpoint"])
    assert set(online.points.columns) >= {"run", "group", "seed", "epoch", "step", "test_error"}

    import fspace.factories

    def must_not_build(*args, **kwargs):
        raise AssertionError("a cached checkpoint was evaluated again")

    monkeypatch.setattr(fspace.factories, "build_model", must_not_build)
    again = evaluate(offline_path, progress=False)
    np.testing.assert_array_equal(again.matrix, offline.matrix)
    # The values come from the cache: a cached vector changed on disk is what is returned.
    exp = Experiment(offline_path)
    ckpt = exp.checkpoints()[2]
    marked = torch.full((offline.matrix.shape[1],), 0.25)
    exp.save_vector(ckpt, suite.fingerprint, "prob", marked)
    read = evaluate(offline_path, progress=False)
    np.testing.assert_array_equal(read.matrix[2], marked.numpy())
    np.testing.assert_array_equal(np.delete(read.matrix, 2, 0), np.delete(offline.matrix, 2, 0))


def test_evaluate_selected_runs_and_unknown_run(recorded):
    fv = evaluate(recorded, runs=["random-s0"], progress=False)
    assert set(fv.points["run"]) == {"random-s0"}
    with pytest.raises(RunError, match="nosuch"):
        evaluate(recorded, runs=["nosuch"], progress=False)


def test_empty_experiment(tmp_path, suite):
    exp = Experiment.create(tmp_path / "exp")
    exp.add_probes(suite)
    with pytest.raises(EmptyExperimentError, match="no checkpoints"):
        evaluate(exp, progress=False)


def test_probe_suite_mismatch(recorded, suite):
    other = ProbeSuite.from_array(np.ones((5, 4), np.float32), name="other")
    Experiment(recorded).add_probes(other)
    with pytest.raises(ProbeMismatchError, match="2 probe suites"):
        evaluate(recorded, progress=False)
    a = evaluate(recorded, probes="probe", progress=False)
    b = evaluate(recorded, probes="other", progress=False)
    with pytest.raises(ProbeMismatchError, match="different probe suites"):
        a.check_compatible(b)


def test_weights_that_do_not_fit_the_factory(tmp_path, suite):
    path = record_experiment(tmp_path / "exp", suite, seeds=(0,), epochs=1, online=False)
    Experiment(path).add_probes(suite)
    with pytest.raises(CheckpointError, match="does not fit"):
        evaluate(path, model_factory=lambda seed: make_mlp(hidden=5, seed=seed), progress=False)


def test_unknown_output(suite):
    with pytest.raises(ConfigError, match="probabilities|prob"):
        function_vector(make_mlp(), suite, output="probabilities")
