"""Probe suites of any structure: dtypes kept exactly, stored with them, fingerprinted over
names, dtypes, shapes and bytes, and the model called by the suite's structure."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from _token_models import TwoInputs, make_lm, make_token_classifier, token_suite_inputs

from fspace import Experiment, ProbeSuite, function_vector
from fspace.errors import ConfigError
from fspace.probes import call_model


def test_int64_token_ids_stay_exact_through_the_store(tmp_path):
    ids = np.array([[16_777_217, 3], [2**40 + 1, 5]], dtype=np.int64)  # not floats
    suite = ProbeSuite.from_array(ids, name="ids")
    assert suite.inputs.dtype == torch.int64
    assert suite.inputs[0, 0].item() == 16_777_217
    exp = Experiment.create(tmp_path / "exp")
    exp.add_probes(suite)
    back = exp.probes("ids")
    assert back.inputs.dtype == torch.int64 and torch.equal(back.inputs, suite.inputs)
    assert back.fingerprint == suite.fingerprint


@pytest.mark.parametrize("structure", ["dict", "tuple"])
def test_structured_suites_keep_every_dtype_in_the_file(tmp_path, structure):
    parts = {
        "input_ids": torch.tensor([[1, 2], [3, 4], [5, 6]], dtype=torch.int64),
        "flags": torch.tensor([[True], [False], [True]]),
        "pixels": torch.arange(6, dtype=torch.uint8).reshape(3, 2),
        "scale": torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64),
        "half": torch.ones(3, 2, dtype=torch.float16),
    }
    inputs = parts if structure == "dict" else tuple(parts.values())
    suite = ProbeSuite(inputs, name="mixed", targets=torch.tensor([0, 1, 0]))
    assert suite.structure == structure and len(suite) == 3
    exp = Experiment.create(tmp_path / "exp")
    exp.add_probes(suite)
    back = exp.probes("mixed")
    assert back.structure == structure and back.fingerprint == suite.fingerprint
    for (name, a), (_, b) in zip(suite.named().items(), back.named().items(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert torch.equal(back.targets, suite.targets)


def test_one_float_tensor_keeps_its_fingerprint_formula():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    h = hashlib.sha256(f"{x.dtype}|{tuple(x.shape)}|".encode())
    h.update(x.numpy().tobytes())
    assert ProbeSuite(x).fingerprint == h.hexdigest()[:16]  # experiments stay readable


def _changed(name: str):
    base = token_suite_inputs()
    if name == "same":
        return dict(base)
    if name == "key-renamed":
        return {"ids": base["input_ids"], "attention_mask": base["attention_mask"]}
    if name == "dtype":
        return {**base, "attention_mask": base["attention_mask"].to(torch.int32)}
    if name == "shape":
        return {k: v.reshape(v.shape[0], 1, -1) for k, v in base.items()}
    if name == "one-byte":
        ids = base["input_ids"].clone()
        ids[0, 0] += 1
        return {**base, "input_ids": ids}
    if name == "tuple":
        return tuple(base.values())
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("name", "equal"),
    [
        ("same", True),
        ("key-renamed", False),
        ("dtype", False),
        ("shape", False),
        ("one-byte", False),
        ("tuple", False),
    ],
)
def test_fingerprint_covers_names_dtypes_shapes_and_bytes(name, equal):
    reference = ProbeSuite(token_suite_inputs()).fingerprint
    assert (ProbeSuite(_changed(name)).fingerprint == reference) is equal


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        pytest.param(
            {"a": torch.zeros(3, 2), "b": torch.zeros(4, 2)}, "first dimension", id="rows"
        ),
        pytest.param(torch.zeros(3, 2, dtype=torch.complex64), "complex64", id="complex"),
        pytest.param({"a": torch.full((2, 2), float("nan"))}, "NaN", id="nan"),
        pytest.param({1: torch.zeros(2)}, "keyword", id="non-str-key"),
        pytest.param({}, "empty", id="empty-dict"),
        pytest.param(np.array(["a", "b"]), "numbers", id="strings"),
    ],
)
def test_bad_suites_are_refused(inputs, match):
    with pytest.raises(ConfigError, match=match):
        ProbeSuite.from_array(inputs)


def test_model_called_by_the_suites_structure():
    seen = {}

    def model(*args, **kwargs):
        seen.update(args=len(args), kwargs=sorted(kwargs))

    call_model(model, torch.zeros(2))
    assert seen == {"args": 1, "kwargs": []}
    call_model(model, {"input_ids": torch.zeros(2), "attention_mask": torch.zeros(2)})
    assert seen == {"args": 0, "kwargs": ["attention_mask", "input_ids"]}
    call_model(model, (torch.zeros(2), torch.zeros(2)))
    assert seen == {"args": 2, "kwargs": []}


def test_tuple_suite_is_passed_positionally():
    gen = torch.Generator().manual_seed(0)
    image, extra = torch.randn(7, 4, generator=gen), torch.randn(7, 2, generator=gen)
    model = TwoInputs()
    v = function_vector(model, ProbeSuite((image, extra)), output="logits")
    torch.testing.assert_close(v, model(image, extra).detach().reshape(-1))


class _CharTokenizer:
    """A tokenizer object of the user's own: characters to ids, nothing downloaded."""

    def encode(self, text: str) -> list[int]:
        return [1 + (ord(c) % 10) for c in text]


def test_suite_from_texts_with_the_users_tokenizer():
    suite = ProbeSuite.from_texts(["abc", "hello", "a"], _CharTokenizer(), name="texts")
    ids, mask = suite.inputs["input_ids"], suite.inputs["attention_mask"]
    assert ids.dtype == torch.int64 and ids.shape == (3, 5)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]]
    assert ids[0, :3].tolist() == _CharTokenizer().encode("abc") and ids[0, 3:].tolist() == [0, 0]
    short = ProbeSuite.from_texts(["hello"], _CharTokenizer(), max_length=2, keys="input_ids")
    assert isinstance(short.inputs, torch.Tensor) and short.inputs.shape == (1, 2)
    with pytest.raises(ConfigError, match="encode"):
        ProbeSuite.from_texts(["a"], object())


def test_suite_from_texts_with_a_transformers_tokenizer_built_from_a_local_vocab():
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "the": 2, "cat": 3, "sat": 4}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]"
    )
    suite = ProbeSuite.from_texts(["the cat sat", "the dog"], tok, max_length=4)
    assert suite.inputs["input_ids"].tolist() == [[2, 3, 4, 0], [2, 1, 0, 0]]
    assert suite.inputs["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert suite.inputs["input_ids"].dtype == torch.int64


def test_dict_suite_evaluates_token_models():
    suite = ProbeSuite(token_suite_inputs(), name="tokens")
    v = function_vector(make_token_classifier(), suite)
    assert v.shape == (len(suite) * 3,)
    lm = function_vector(make_lm(), suite, output="logits")
    assert lm.numel() == int(suite.inputs["attention_mask"].sum()) * 11
