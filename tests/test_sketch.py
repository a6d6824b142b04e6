"""The Hellinger sketch: an exact linear projection of the square-root probabilities,
unbiased for squared Hellinger distances, the same on any batch size."""

from __future__ import annotations

import math

import numpy as np
import torch

from fspace import ProbeSuite, function_vector
from fspace.outputs import Rows
from fspace.outputs.sketch import dense_matrix, sketch_rows


def _logits(rows: int, vocab: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * scale


def _hellinger2(a: torch.Tensor, b: torch.Tensor) -> float:
    """sum over rows of 1/2 ||sqrt(p) - sqrt(q)||^2, in float64."""
    pa, pb = torch.softmax(a.double(), -1).sqrt(), torch.softmax(b.double(), -1).sqrt()
    return float(0.5 * ((pa - pb) ** 2).sum())


def test_sketch_is_the_dense_projection_of_square_root_probabilities():
    logits = _logits(7, 13, seed=0)
    s = sketch_rows(Rows(logits.unsqueeze(0)), k=32, seed=3)
    dense = dense_matrix(3, 7, 13, 32)
    expected = dense @ torch.softmax(logits, -1).sqrt().reshape(-1)
    torch.testing.assert_close(s[0], expected, atol=1e-5, rtol=1e-5)


def test_sketch_does_not_depend_on_the_batches():
    logits = _logits(40, 9, seed=1)
    whole = sketch_rows(Rows(logits.unsqueeze(0)), k=64, seed=0)
    parts = sum(
        sketch_rows(Rows(logits[i : i + 7].unsqueeze(0), start=i), k=64, seed=0, chunk=3)
        for i in range(0, 40, 7)
    )
    torch.testing.assert_close(parts, whole, atol=1e-5, rtol=1e-5)


def test_squared_distances_are_unbiased_over_seeds():
    a, b = _logits(30, 50, seed=2), _logits(30, 50, seed=3)
    exact = _hellinger2(a, b)
    estimates = []
    for seed in range(300):
        sa = sketch_rows(Rows(a.unsqueeze(0)), k=16, seed=seed)
        sb = sketch_rows(Rows(b.unsqueeze(0)), k=16, seed=seed)
        estimates.append(float(((sa - sb) ** 2).sum()))
    # k=16: each estimate has relative std ~ sqrt(2/16) = 0.35; the mean of 300, ~0.02
    assert abs(np.mean(estimates) / exact - 1) < 0.08


def test_pairwise_distances_at_k_4096_within_a_few_percent():
    models = [_logits(64, 200, seed=s, scale=2.0) for s in range(5)]
    sketches = [sketch_rows(Rows(m.unsqueeze(0)), k=4096, seed=0)[0] for m in models]
    errors = []
    for i in range(5):
        for j in range(i):
            exact = math.sqrt(_hellinger2(models[i], models[j]))
            errors.append(abs(float((sketches[i] - sketches[j]).norm()) / exact - 1))
    assert max(errors) < 0.05, errors


def test_sketch_form_while_recording_a_sequence_model():
    from _token_models import make_lm, token_suite_inputs

    suite = ProbeSuite(token_suite_inputs(n=9), name="tokens")
    model = make_lm(seed=0)
    v = function_vector(model, suite, output="sketch", params={"k": 64, "seed": 1})
    assert v.shape == (64,)
    logits = model(**suite.inputs)["logits"].detach()[suite.inputs["attention_mask"].bool()]
    expected = sketch_rows(Rows(logits.unsqueeze(0)), k=64, seed=1)[0]
    torch.testing.assert_close(v, expected, atol=1e-5, rtol=1e-5)
