"""Outputs of any structure, output kinds and vector forms, and what the experiment
remembers of them: compared with hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _token_models import VOCAB, make_lm, make_regressor, make_token_classifier, token_suite_inputs

from fspace import Experiment, ProbeSuite, Recorder, evaluate, function_vector
from fspace.errors import ConfigError, ModelOutputError
from fspace.outputs import FORMS, KINDS, OutputSpec


@pytest.fixture
def tokens() -> ProbeSuite:
    return ProbeSuite(token_suite_inputs(), name="tokens")


@pytest.fixture
def features() -> ProbeSuite:
    gen = np.random.default_rng(0)
    return ProbeSuite.from_array(gen.normal(size=(9, 4)).astype(np.float32), name="features")


class _Returns(torch.nn.Module):
    def __init__(self, wrap) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.wrap = wrap

    def forward(self, x):
        return self.wrap(self.linear(x))


def _model_output(logits):
    transformers = pytest.importorskip("transformers")
    return transformers.modeling_outputs.SequenceClassifierOutput(logits=logits)


@pytest.mark.parametrize(
    ("wrap", "kwargs"),
    [
        pytest.param(lambda y: y, {}, id="tensor"),
        pytest.param(lambda y: (y, y * 0), {}, id="tuple"),
        pytest.param(lambda y: {"logits": y, "other": y * 0}, {}, id="dict"),
        pytest.param(lambda y: {"scores": y}, {"output_key": "scores"}, id="dict-key"),
        pytest.param(lambda y: [{"z": y}], {"extract": lambda out: out[0]["z"]}, id="extract"),
        pytest.param(_model_output, {}, id="model-output"),
    ],
)
def test_outputs_of_any_structure_give_the_tensors_vector(wrap, kwargs, features):
    model = _Returns(wrap)
    reference = torch.softmax(model.linear(features.inputs), -1).detach().reshape(-1)
    torch.testing.assert_close(function_vector(model, features, **kwargs), reference)


def test_wrong_output_key_names_the_available_keys(features):
    model = _Returns(lambda y: {"logits": y, "hidden_states": y})
    with pytest.raises(ModelOutputError, match="'scores'.*'logits', 'hidden_states'") as info:
        function_vector(model, features, output_key="scores")
    assert "\n" not in str(info.value)


def test_registries_list_kinds_and_their_forms():
    assert {"classification", "sequence", "regression"} <= set(KINDS.names())
    assert KINDS.get("regression").tags["forms"] == ("raw",)
    for kind in KINDS:
        for form in kind.tags["forms"]:
            assert kind.name in FORMS.get(form).tags["kinds"]


def _by_hand_sequence(model, suite):
    """Log-softmax over the vocabulary at every real (unmasked) position."""
    logits = model(**suite.inputs)["logits"].detach().double()
    mask = suite.inputs["attention_mask"].bool()
    return torch.log_softmax(logits, -1)[mask]


def test_sequence_outputs_give_one_distribution_per_real_position(tokens, tmp_path):
    model = make_lm(seed=1)
    expected = _by_hand_sequence(model, tokens)  # (valid positions, vocab)
    v = function_vector(model, tokens, output="logprob")
    np.testing.assert_allclose(v.numpy(), expected.reshape(-1).numpy(), atol=1e-5)
    # Recorded, the vectors know their kind and layout, and their distributions.
    with Recorder(
        tmp_path / "exp",
        run="r",
        probes=tokens,
        output="logprob",
        model_factory="_token_models:make_lm",
        model_kwargs={"seed": 1},
    ) as rec:
        rec.record(model, epoch=0)
    fv = evaluate(tmp_path / "exp", progress=False)
    assert fv.kind == "sequence" and fv.output == "logprob"
    assert fv.layout == (int(tokens.inputs["attention_mask"].sum()), VOCAB)
    dist = fv.distributions()
    np.testing.assert_allclose(dist[0], expected.exp().numpy(), atol=1e-5)
    np.testing.assert_allclose(dist.sum(-1), 1, atol=1e-5)


def test_padding_does_not_change_the_vector(tokens):
    model = make_lm(seed=2)
    inputs = dict(tokens.inputs)
    ids = inputs["input_ids"].clone()
    ids[inputs["attention_mask"] == 0] = 7  # other padding token ids
    a = function_vector(model, tokens)
    b = function_vector(model, ProbeSuite({**inputs, "input_ids": ids}))
    torch.testing.assert_close(a, b)


def test_next_token_log_probabilities_of_the_probes_own_tokens(tokens):
    model = make_lm(seed=3)
    logp = torch.log_softmax(model(**tokens.inputs)["logits"].detach(), -1)
    ids, mask = tokens.inputs["input_ids"], tokens.inputs["attention_mask"]
    expected = [
        logp[i, t, ids[i, t + 1]].item()
        for i in range(ids.shape[0])
        for t in range(ids.shape[1] - 1)
        if mask[i, t] and mask[i, t + 1]
    ]
    v = function_vector(model, tokens, output="token_logprob")
    np.testing.assert_allclose(v.numpy(), expected, atol=1e-5)


def test_topk_keeps_the_suites_most_frequent_tokens_and_the_rest(tokens):
    model = make_lm(seed=4)
    v = function_vector(model, tokens, output="topk", params={"k": 3}).reshape(-1, 4)
    ids = tokens.inputs["input_ids"][tokens.inputs["attention_mask"].bool()]
    counts = torch.bincount(ids, minlength=VOCAB)
    chosen = sorted(sorted(range(VOCAB), key=lambda i: (-int(counts[i]), i))[:3])
    p = torch.softmax(model(**tokens.inputs)["logits"].detach(), -1)
    p = p[tokens.inputs["attention_mask"].bool()]
    torch.testing.assert_close(v[:, :3], p[:, chosen])
    torch.testing.assert_close(v.sum(1), torch.ones(len(v)))
    chosen_by_hand = function_vector(model, tokens, output="topk", params={"tokens": "1,2"})
    torch.testing.assert_close(chosen_by_hand.reshape(-1, 3)[:, :2], p[:, [1, 2]])


def test_softmax_of_one_column_is_refused_and_nothing_is_recorded(tmp_path, features):
    model = make_regressor()
    with Recorder(tmp_path / "exp", run="r", probes=features) as rec:
        with pytest.raises(ModelOutputError, match="1 column.*kind='regression'") as info:
            rec.record(model, epoch=0)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "exp" / "runs" / "r").exists()  # no empty run left behind
    with pytest.raises(ConfigError, match="regression output cannot be stored as 'prob'"):
        Recorder(tmp_path / "exp", run="r", probes=features, kind="regression", output="prob")


@pytest.mark.parametrize("declare", [{"kind": "regression"}, {"output": "raw"}], ids=str)
def test_regression_outputs_are_raw_values(tmp_path, features, declare):
    model = make_regressor(seed=5, n_out=2)
    with Recorder(
        tmp_path / "exp",
        run="r",
        probes=features,
        **declare,
        model_factory="_token_models:make_regressor",
        model_kwargs={"seed": 5, "n_out": 2},
    ) as rec:
        rec.record(model, epoch=0)
    fv = evaluate(tmp_path / "exp", progress=False)  # no flags: remembered
    assert (fv.kind, fv.output, fv.layout) == ("regression", "raw", (9, 2))
    np.testing.assert_allclose(fv.matrix[0], model(features.inputs).detach().reshape(-1), atol=1e-6)
    with pytest.raises(ConfigError, match="not distributions"):
        fv.distributions()
    # a form of another kind is refused at once, naming the recorded kind's forms (the
    # models are not built: their factory is never asked for)
    with pytest.raises(ConfigError, match="recorded with regression outputs, whose forms are raw"):
        evaluate(tmp_path / "exp", output="prob", model_factory="nowhere:nothing", progress=False)


def test_an_experiment_recorded_with_logits_is_evaluated_without_flags(tmp_path, tokens):
    path = tmp_path / "exp"
    models = [make_token_classifier(seed=s) for s in range(3)]
    with Recorder(
        path,
        run="r",
        probes=tokens,
        output="logits",
        model_factory="_token_models:make_token_classifier",
    ) as rec:
        for epoch, model in enumerate(models):
            rec.record(model, epoch=epoch)
    exp = Experiment(path)
    lost = exp.checkpoints()[1]
    (
        path
        / "runs"
        / "r"
        / "vectors"
        / f"{tokens.fingerprint}-logits"
        / f"{lost.name}.safetensors"
    ).unlink()
    fv = evaluate(path, progress=False, model_factory=lambda: models[1])  # recomputes one
    assert (fv.kind, fv.output) == ("classification", "logits")
    for row, model in zip(fv.matrix, models, strict=True):
        expected = model(**tokens.inputs)["logits"].detach().reshape(-1).numpy()
        np.testing.assert_allclose(row, expected, atol=1e-5)
    assert exp.vector_outputs(tokens.fingerprint)[(tokens.fingerprint, "logits")]["spec"]["kind"]


def test_several_recorded_outputs_must_be_told_apart(tmp_path, features):
    path = tmp_path / "exp"
    model = torch.nn.Linear(4, 3)
    for run, output in (("a", "prob"), ("b", "logits")):
        with Recorder(path, run=run, probes=features, output=output) as rec:
            rec.record(model, epoch=0)
    with pytest.raises(ConfigError, match="logits, prob"):
        evaluate(path, progress=False, runs=["a"])
    assert evaluate(path, output="prob", runs=["a"], progress=False).output == "prob"


def test_output_spec_names_are_stable_file_names():
    assert OutputSpec(form="prob").name == "prob"
    assert OutputSpec(form="sketch", params={"k": 64}).name == "sketch.k=64"
    assert OutputSpec(form="topk", params={"tokens": "1,2,3"}).name.startswith("topk.tokens=")
    assert OutputSpec(form="prob", key="scores").name == "prob.key=scores"
    with pytest.raises(ConfigError, match="has no parameter 'kk'"):
        OutputSpec(form="sketch", params={"kk": 3})


def _pick_z(out):
    return out["z"]


def _call_with_scale(model, x):
    return {"z": model.linear(x) * 2}


def test_forward_and_extract_are_remembered_and_asked_for_again(tmp_path, features):
    model = _Returns(lambda y: y)
    path = tmp_path / "exp"
    with Recorder(
        path, run="r", probes=features, output="logits", forward=_call_with_scale, extract=_pick_z
    ) as rec:
        rec.record(model, epoch=0)
    fv = evaluate(path, progress=False)
    np.testing.assert_allclose(
        fv.matrix[0], (model.linear(features.inputs) * 2).detach().reshape(-1), atol=1e-6
    )
    assert "forward=" in fv.output and "extract=" in fv.output
    import shutil

    shutil.rmtree(path / "runs" / "r" / "vectors")
    spec = fv.output
    with pytest.raises(ConfigError, match="recorded with extract=.*_pick_z"):
        evaluate(
            path,
            output=OutputSpec.from_json(
                {
                    "kind": "classification",
                    "form": "logits",
                    "extract": "test_outputs:_pick_z",
                    "forward": "test_outputs:_call_with_scale",
                }
            ),
            model_factory=lambda: model,
            progress=False,
        )
    again = evaluate(
        path,
        output="logits",
        forward=_call_with_scale,
        extract=_pick_z,
        model_factory=lambda: model,
        progress=False,
    )
    assert again.output == spec
    np.testing.assert_allclose(again.matrix, fv.matrix, atol=1e-6)
