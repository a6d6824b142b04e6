"""The one evaluation core: several experiments at once, batches of structured probes,
errors that name the input, runs left behind, factories found in the current directory."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from _token_models import make_lm, make_token_classifier, token_suite_inputs
from conftest import record_experiment

from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.batched import function_vectors
from fspace.cli import main
from fspace.errors import ConfigError, ProbeMismatchError


def test_experiments_on_one_suite_are_evaluated_together(tmp_path, suite):
    a = record_experiment(tmp_path / "a", suite, groups=("g",), seeds=(0,), epochs=2)
    b = record_experiment(tmp_path / "b", suite, groups=("g",), seeds=(1,), epochs=1)
    both = evaluate([a, b], progress=False)
    assert len(both) == 3 + 2 and list(both.points["experiment"]) == [str(a)] * 3 + [str(b)] * 2
    np.testing.assert_array_equal(both.matrix[:3], evaluate(a, progress=False).matrix)
    np.testing.assert_array_equal(both.matrix[3:], evaluate(b, progress=False).matrix)


def test_experiments_on_different_suites_name_both_fingerprints(tmp_path, suite):
    other = ProbeSuite.from_array(suite.inputs[:10].clone(), name="probe")
    a = record_experiment(tmp_path / "a", suite, groups=("g",), seeds=(0,), epochs=1)
    b = record_experiment(tmp_path / "b", other, groups=("g",), seeds=(0,), epochs=1)
    with pytest.raises(ProbeMismatchError) as info:
        evaluate([a, b], progress=False)
    assert suite.fingerprint in str(info.value) and other.fingerprint in str(info.value)


def test_dict_probes_are_evaluated_in_batches_like_one_at_a_time():
    suite = ProbeSuite(token_suite_inputs(n=8), name="tokens")
    model = make_token_classifier(seed=0)
    states = [make_token_classifier(seed=s).state_dict() for s in range(3)]
    matrix = function_vectors(model, states, suite, output="logprob", device="cpu")
    for state, row in zip(states, matrix, strict=True):
        model.load_state_dict(state)
        out = model(**suite.inputs)["logits"].detach()
        torch.testing.assert_close(row, torch.log_softmax(out, -1).reshape(-1))


def test_offline_sequence_vectors_equal_the_recorded_ones(tmp_path):
    suite = ProbeSuite(token_suite_inputs(), name="tokens")
    path = tmp_path / "exp"
    for online in (True, False):
        with Recorder(
            path,
            run=f"r{int(online)}",
            probes=suite if online else None,
            model_factory="_token_models:make_lm",
            model_kwargs={"seed": 0},
        ) as rec:
            rec.record(make_lm(seed=0), epoch=0)
    fv = evaluate(path, progress=False)
    assert fv.kind == "sequence" and len(fv) == 2
    np.testing.assert_allclose(fv.matrix[0], fv.matrix[1], atol=1e-6)


def test_float_token_ids_name_the_input_and_keep_what_was_recorded(tmp_path):
    good = ProbeSuite(token_suite_inputs(), name="tokens")
    path = tmp_path / "exp"
    with Recorder(path, run="r", probes=good) as rec:
        rec.record(make_lm(), epoch=0)
    inputs = {k: v.float() for k, v in token_suite_inputs().items()}
    floats = ProbeSuite(inputs, name="floats")
    with Recorder(path, run="f", probes=floats) as rec:
        with pytest.raises(ConfigError) as info:
            rec.record(make_lm(), epoch=0)
    message = str(info.value)
    assert "input_ids float32" in message and "int64" in message and "\n" not in message
    assert not isinstance(info.value, ProbeMismatchError)
    assert [c.key for c in Experiment(path).checkpoints()] == ["r/e000000-s0000000000"]


def test_float64_features_with_a_float32_model_say_so(tmp_path):
    from _models import make_mlp

    suite = ProbeSuite.from_array(np.ones((4, 4)), name="f64")  # numpy's default: float64
    assert suite.inputs.dtype == torch.float64  # never cast
    with Recorder(tmp_path / "exp", run="r", probes=suite) as rec:
        with pytest.raises(ConfigError, match="float64.*float32"):
            rec.record(make_mlp(), epoch=0)


def test_a_run_in_which_nothing_was_recorded_is_removed(tmp_path, suite):
    path = tmp_path / "exp"
    record_experiment(path, suite, groups=("g",), seeds=(0,), epochs=1)
    with Recorder(path, run="empty", probes=suite):
        pass
    assert Experiment(path).run_ids() == ["g-s0"]
    with Recorder(path, run="g-s0", group="g", seed=0, probes=suite):
        pass  # reopened to resume: kept
    assert Experiment(path).run_ids() == ["g-s0"] and len(Experiment(path).checkpoints()) == 2


def test_cli_finds_a_factory_in_the_current_directory(tmp_path, suite, monkeypatch):
    path = record_experiment(tmp_path / "exp", suite, groups=("g",), seeds=(0,), online=False)
    Experiment(path).add_probes(suite)
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_factories.py").write_text(
        textwrap.dedent(
            """
            from _models import make_mlp as _make

            def make(seed=0):
                return _make(seed=seed)
            """
        )
    )
    monkeypatch.chdir(work)
    monkeypatch.delitem(sys.modules, "my_factories", raising=False)
    assert main(["evaluate", str(path), "--model-factory", "my_factories:make", "-q"]) == 0
    assert str(work) not in sys.path


def test_cli_commands_need_no_output_flag_for_a_logits_experiment(tmp_path, capsys):
    suite = ProbeSuite(token_suite_inputs(), name="tokens")
    path = tmp_path / "exp"
    with Recorder(path, run="r", probes=suite, output="logits") as rec:
        for epoch in range(3):
            rec.record(make_token_classifier(seed=epoch), epoch=epoch)
    assert main(["evaluate", str(path), "-q"]) == 0
    assert "classification output as logits" in capsys.readouterr().out
    assert main(["embed", str(path), "--method", "pca", "-q"]) == 0
    assert main(["info", str(path)]) == 0
    assert "vectors logits: classification output" in capsys.readouterr().out


@pytest.mark.parametrize("output", ["sketch", "token_logprob", "topk"])
def test_compact_forms_computed_offline_equal_the_recorded_ones(tmp_path, output):
    import shutil

    suite = ProbeSuite(token_suite_inputs(), name="tokens")
    path = tmp_path / "exp"
    params = {"k": 64} if output == "sketch" else {"k": 3} if output == "topk" else None
    with Recorder(
        path,
        run="r",
        probes=suite,
        output=output,
        output_params=params,
        model_factory="_token_models:make_lm",
    ) as rec:
        for epoch in range(3):
            rec.record(make_lm(seed=epoch), epoch=epoch)
    online = evaluate(path, progress=False)
    name = online.output
    shutil.rmtree(path / "runs" / "r" / "vectors")
    factory = iter(make_lm(seed=s) for s in range(3))
    offline = evaluate(
        path,
        output=output,
        output_params=params,
        progress=False,
        model_factory=lambda: next(factory),
        device="cpu",
    )
    assert offline.output == name and offline.kind == "sequence"
    np.testing.assert_allclose(offline.matrix, online.matrix, atol=1e-5)
