"""The denoising autoencoder: masking noise, gradients, learning, conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit

from fspace.data import load_sklearn_digits
from fspace.errors import ConfigError
from fspace.training import DenoisingAutoencoder


@pytest.fixture(scope="module")
def digits64() -> np.ndarray:
    return load_sklearn_digits().images[:400]


@pytest.mark.parametrize("corruption", [0.0, 0.1, 0.25, 0.5, 0.9])
def test_masking_noise_drops_the_requested_fraction(corruption):
    dae = DenoisingAutoencoder(corruption=corruption)
    ones = torch.ones(50, 30)
    corrupted = dae.corrupt(ones, torch.Generator().manual_seed(0))
    dropped = (corrupted == 0).sum(dim=1)
    assert torch.all(dropped == round(corruption * 30))
    assert torch.all((corrupted == 0) | (corrupted == 1))
    if corruption > 0:  # different components for different rows
        assert len({tuple(row.tolist()) for row in corrupted}) > 40


def test_masking_keeps_undropped_values():
    dae = DenoisingAutoencoder(corruption=0.5)
    x = torch.rand(20, 10) + 0.1
    corrupted = dae.corrupt(x, torch.Generator().manual_seed(1))
    kept = corrupted != 0
    torch.testing.assert_close(corrupted[kept], x[kept])


def _with_parameters(n_visible=7, n_hidden=5, seed=0) -> DenoisingAutoencoder:
    g = torch.Generator().manual_seed(seed)
    dae = DenoisingAutoencoder(n_hidden)
    dae.weight_ = torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
    dae.hbias_ = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    dae.vbias_ = torch.randn(n_visible, generator=g, dtype=torch.float64)
    return dae


def test_gradients_match_autograd():
    dae = _with_parameters()
    clean = torch.rand(9, 7, dtype=torch.float64)
    corrupted = dae.corrupt(clean, torch.Generator().manual_seed(0))
    loss, grads = dae.gradients(corrupted, clean)
    params = [p.clone().requires_grad_(True) for p in (dae.weight_, dae.hbias_, dae.vbias_)]
    W, c, b = params
    h = torch.sigmoid(corrupted @ W + c)
    reference = torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(h @ W.T + b), clean, reduction="sum"
    ) / len(clean)
    reference.backward()
    torch.testing.assert_close(loss, reference.detach())
    for ours, param in zip(grads, params, strict=True):
        torch.testing.assert_close(ours, param.grad)


def test_encoder_and_decoder_formulas():
    dae = _with_parameters()
    W, c, b = (t.numpy() for t in (dae.weight_, dae.hbias_, dae.vbias_))
    x = np.random.default_rng(0).random((4, 7))
    h = expit(x @ W + c)
    np.testing.assert_allclose(dae.transform(x).numpy(), h, rtol=1e-10)
    np.testing.assert_allclose(dae.mean_visibles(torch.tensor(h)).numpy(), expit(h @ W.T + b))


def test_reconstruction_error_falls(digits64):
    dae = DenoisingAutoencoder(32, corruption=0.25, epochs=10, random_state=0).fit(digits64)
    errors = dae.reconstruction_errors_
    assert len(errors) == 10 and errors[-1] < 0.7 * errors[0]
    untrained = DenoisingAutoencoder(32, epochs=0, random_state=0).fit(digits64)
    assert dae.reconstruction_error(digits64) < 0.7 * untrained.reconstruction_error(digits64)


def test_deterministic_per_random_state(digits64):
    a = DenoisingAutoencoder(8, epochs=2, random_state=1).fit(digits64)
    b = DenoisingAutoencoder(8, epochs=2, random_state=1).fit(digits64)
    c = DenoisingAutoencoder(8, epochs=2, random_state=2).fit(digits64)
    assert torch.equal(a.weight_, b.weight_)
    assert not torch.equal(a.weight_, c.weight_)
    assert a.weight_.shape == (64, 8) and a.hbias_.shape == (8,) and a.vbias_.shape == (64,)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"corruption": 1.0}, "corruption"),
        ({"corruption": -0.1}, "corruption"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"epochs": 1.5}, "epochs"),
        ({"momentum": -0.5}, "momentum"),
    ],
    ids=["all-corrupted", "negative-corruption", "zero-rate", "float-epochs", "negative-momentum"],
)
def test_bad_hyper_parameters(params, message, digits64):
    with pytest.raises(ConfigError, match=message):
        DenoisingAutoencoder(4, **{"epochs": 1, **params}).fit(digits64[:10])


def test_inputs_must_be_probabilities():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        DenoisingAutoencoder(4, epochs=1).fit(np.full((5, 3), -1.0))


def test_fit_returns_self_and_reports_progress(digits64):
    seen = []
    dae = DenoisingAutoencoder(4, epochs=2, random_state=0)
    assert dae.fit(digits64[:40], progress=lambda e, err: seen.append((e, err))) is dae
    assert [e for e, _ in seen] == [0, 1]
    assert [err for _, err in seen] == dae.reconstruction_errors_
    assert not dae.weight_.requires_grad
