"""The RBM: energies and conditionals against brute force, sampling, learning."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import expit, logsumexp
from scipy.stats import norm

from fspace.data import load_mnist5k, load_sklearn_digits
from fspace.errors import ConfigError
from fspace.training import RBM


def _tiny_rbm(visible="binary", hidden="binary", n_visible=4, n_hidden=3, seed=0) -> RBM:
    """An RBM with given random parameters (no training)."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_hidden, visible=visible, hidden=hidden)
    rbm.weight_ = torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
    rbm.hbias_ = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    rbm.vbias_ = torch.randn(n_visible, generator=g, dtype=torch.float64)
    return rbm


def _energy(rbm: RBM, v: np.ndarray, h: np.ndarray) -> float:
    W, b, c = (t.numpy() for t in (rbm.weight_, rbm.vbias_, rbm.hbias_))
    visible = -b @ v if rbm.visible == "binary" else 0.5 * np.sum((v - b) ** 2)
    return visible - c @ h - v @ W @ h


def _brute_free_energy(rbm: RBM, v: np.ndarray) -> float:
    n_hidden = rbm.weight_.shape[1]
    states = np.array(list(itertools.product([0, 1], repeat=n_hidden)), dtype=float)
    return -logsumexp([-_energy(rbm, v, h) for h in states])


def _inputs(visible: str, n: int = 6, d: int = 4) -> torch.Tensor:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, (n, d)) if visible == "binary" else rng.normal(size=(n, d))
    return torch.tensor(x, dtype=torch.float64)


@pytest.mark.parametrize("visible", ["binary", "gaussian"])
def test_free_energy_matches_brute_force(visible):
    rbm = _tiny_rbm(visible)
    v = _inputs(visible)
    expected = [_brute_free_energy(rbm, row) for row in v.numpy()]
    np.testing.assert_allclose(rbm.free_energy(v).numpy(), expected, rtol=1e-10)


def test_free_energy_matches_scikit_learn():
    from sklearn.neural_network import BernoulliRBM

    rbm = _tiny_rbm(n_visible=6, n_hidden=5)
    reference = BernoulliRBM(n_components=5)
    reference.components_ = rbm.weight_.T.numpy()
    reference.intercept_hidden_ = rbm.hbias_.numpy()
    reference.intercept_visible_ = rbm.vbias_.numpy()
    v = _inputs("binary", d=6)
    np.testing.assert_allclose(rbm.free_energy(v).numpy(), reference._free_energy(v.numpy()))


@pytest.mark.parametrize("visible", ["binary", "gaussian"])
def test_nrelu_free_energy_is_stepped_sigmoid_free_energy(visible):
    # An NReLU unit stands for binary copies with bias offsets -0.5, -1.5, ...; 40
    # explicit copies are plenty for these inputs.
    rbm = _tiny_rbm(visible, "nrelu")
    rbm.weight_ *= 3  # make some units strongly active
    copies = 40
    binary = _tiny_rbm(visible)
    binary.weight_ = rbm.weight_.repeat_interleave(copies, dim=1)
    offsets = torch.arange(copies, dtype=torch.float64) + 0.5
    binary.hbias_ = (rbm.hbias_[:, None] - offsets).reshape(-1)
    binary.vbias_ = rbm.vbias_
    v = _inputs(visible)
    assert rbm.mean_hiddens(v).max() > 3
    np.testing.assert_allclose(rbm.free_energy(v), binary.free_energy(v), rtol=1e-6)


@pytest.mark.parametrize(
    "visible,hidden", [("binary", "binary"), ("gaussian", "binary"), ("binary", "nrelu")]
)
def test_conditional_means_match_formulas(visible, hidden):
    rbm = _tiny_rbm(visible, hidden)
    W, b, c = (t.numpy() for t in (rbm.weight_, rbm.vbias_, rbm.hbias_))
    v = _inputs(visible)
    h = torch.tensor(np.random.default_rng(2).random((6, 3)))
    x = v.numpy() @ W + c
    expected_h = expit(x) if hidden == "binary" else np.maximum(x, 0)
    np.testing.assert_allclose(rbm.mean_hiddens(v).numpy(), expected_h, rtol=1e-12)
    y = h.numpy() @ W.T + b
    expected_v = expit(y) if visible == "binary" else y
    np.testing.assert_allclose(rbm.mean_visibles(h).numpy(), expected_v, rtol=1e-12)


def test_binary_hidden_mean_is_brute_force_posterior():
    rbm = _tiny_rbm()
    v = _inputs("binary")[3].numpy()
    states = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)
    weights = np.exp([-_energy(rbm, v, h) for h in states])
    posterior_mean = weights @ states / weights.sum()
    mean = rbm.mean_hiddens(torch.tensor(v[None]))[0].numpy()
    np.testing.assert_allclose(mean, posterior_mean, rtol=1e-10)


N_DRAWS = 20_000


def _repeat(row: torch.Tensor) -> torch.Tensor:
    return row.expand(N_DRAWS, -1).float()


@pytest.mark.parametrize("visible", ["binary", "gaussian"])
def test_visible_samples_follow_conditional(visible):
    rbm = _tiny_rbm(visible)
    for name in ("weight_", "vbias_", "hbias_"):
        setattr(rbm, name, getattr(rbm, name).float())
    h = _repeat(torch.tensor([1.0, 0.0, 1.0]))
    draws = rbm.sample_visibles(h, torch.Generator().manual_seed(0))
    mean = rbm.mean_visibles(h[:1])[0]
    std = (mean * (1 - mean)).sqrt() if visible == "binary" else torch.ones_like(mean)
    assert (draws.mean(0) - mean).abs().max() < 4 * std.max() / math.sqrt(N_DRAWS)
    if visible == "binary":
        assert set(draws.unique().tolist()) <= {0.0, 1.0}
    else:
        np.testing.assert_allclose(draws.std(0).numpy(), 1.0, atol=0.03)


@pytest.mark.parametrize("hidden", ["binary", "nrelu"])
def test_hidden_samples_follow_conditional(hidden):
    rbm = _tiny_rbm("binary", hidden)
    for name in ("weight_", "vbias_", "hbias_"):
        setattr(rbm, name, getattr(rbm, name).float())
    v = _repeat(torch.tensor([1.0, 0.0, 1.0, 1.0]))
    draws = rbm.sample_hiddens(v, torch.Generator().manual_seed(0)).double()
    x = (v[:1].double() @ rbm.weight_.double() + rbm.hbias_.double())[0].numpy()
    if hidden == "binary":
        expected, std = expit(x), np.sqrt(expit(x) * (1 - expit(x)))
    else:
        # E[max(0, x + s e)] for e ~ N(0, 1) and s^2 = sigmoid(x).
        s = np.sqrt(expit(x))
        expected = x * norm.cdf(x / s) + s * norm.pdf(x / s)
        std = s
    assert np.all(np.abs(draws.mean(0).numpy() - expected) < 4 * std / math.sqrt(N_DRAWS) + 1e-9)
    assert draws.min() >= 0


def test_gibbs_step_keeps_shape_and_support():
    rbm = _tiny_rbm()
    rbm.weight_, rbm.vbias_, rbm.hbias_ = (t.float() for t in (rbm.weight_, rbm.vbias_, rbm.hbias_))
    v = _inputs("binary").float()
    out = rbm.gibbs(v, torch.Generator().manual_seed(0))
    assert out.shape == v.shape and set(out.unique().tolist()) <= {0.0, 1.0}


@pytest.fixture(scope="module")
def digits64() -> np.ndarray:
    return load_sklearn_digits().images[:500]


@pytest.mark.parametrize(
    "visible,hidden,learning_rate",
    [
        ("binary", "binary", 0.1),
        ("gaussian", "binary", 0.02),
        ("binary", "nrelu", 0.03),
        ("gaussian", "nrelu", 0.005),
    ],
    ids=["binary", "gaussian", "nrelu", "gaussian-nrelu"],
)
def test_reconstruction_error_falls(digits64, visible, hidden, learning_rate):
    X = digits64
    if visible == "gaussian":
        X = (X - X.mean(0)) / (X.std(0) + 0.1)
    rbm = RBM(32, visible=visible, hidden=hidden, learning_rate=learning_rate, epochs=10)
    errors = rbm.set_params(random_state=0).fit(X).reconstruction_errors_
    assert len(errors) == 10
    assert errors[-1] < 0.6 * errors[0]
    assert all(np.isfinite(errors))


@pytest.fixture(scope="module")
def mnist300() -> np.ndarray:
    return load_mnist5k().images[::16][:300]


@pytest.mark.parametrize("persistent", [False, True], ids=["cd", "pcd"])
def test_training_improves_pseudo_likelihood(mnist300, persistent):
    params = {"n_hidden": 64, "persistent": persistent, "random_state": 0, "batch_size": 10}
    untrained = RBM(**params, epochs=0).fit(mnist300)
    trained = RBM(**params, epochs=10).fit(mnist300)
    before = untrained.pseudo_likelihood(mnist300, random_state=1).mean()
    after = trained.pseudo_likelihood(mnist300, random_state=1).mean()
    assert after > before + 15  # nats per digit
    assert trained.reconstruction_errors_[-1] < trained.reconstruction_errors_[0]


def test_exact_pseudo_likelihood_matches_brute_force_conditionals():
    rbm = _tiny_rbm()
    v = _inputs("binary")
    states = np.array(list(itertools.product([0, 1], repeat=3)), dtype=float)

    def log_joint(row):  # log of the unnormalised p(v), summing over h
        return logsumexp([-_energy(rbm, row, h) for h in states])

    expected = []
    for row in v.numpy():
        total = 0.0
        for j in range(len(row)):
            flipped = row.copy()
            flipped[j] = 1 - flipped[j]
            total += log_joint(row) - np.logaddexp(log_joint(row), log_joint(flipped))
        expected.append(total)
    np.testing.assert_allclose(rbm.pseudo_likelihood(v, exact=True).numpy(), expected, rtol=1e-10)


def test_stochastic_pseudo_likelihood_is_unbiased_for_exact():
    rbm = _tiny_rbm()
    v = _inputs("binary", n=1).repeat(4000, 1)
    stochastic = rbm.pseudo_likelihood(v, random_state=0).mean()
    exact = rbm.pseudo_likelihood(v[:1], exact=True)[0]
    assert abs(stochastic - exact) < 0.1 * abs(exact)


def test_cd_k_and_determinism(digits64):
    params = {"n_hidden": 16, "cd_k": 3, "epochs": 2, "random_state": 3}
    a, b = RBM(**params).fit(digits64), RBM(**params).fit(digits64)
    c = RBM(**{**params, "random_state": 4}).fit(digits64)
    assert (
        torch.equal(a.weight_, b.weight_) and a.reconstruction_errors_ == b.reconstruction_errors_
    )
    assert not torch.equal(a.weight_, c.weight_)
    assert a.weight_.shape == (64, 16) and a.hbias_.shape == (16,) and a.vbias_.shape == (64,)


def test_fit_leaves_global_generator_alone(digits64):
    state = torch.random.get_rng_state()
    RBM(8, epochs=1, random_state=0).fit(digits64[:50])
    assert torch.equal(state, torch.random.get_rng_state())


def test_estimator_conventions(digits64):
    rbm = RBM(8, learning_rate=-1.0, epochs=1)
    assert rbm.get_params()["learning_rate"] == -1.0  # stored, not checked, by __init__
    assert not hasattr(rbm, "weight_")
    with pytest.raises(ConfigError, match="not fitted"):
        rbm.transform(digits64)
    with pytest.raises(ConfigError, match="learning_rate"):
        rbm.fit(digits64)
    rbm.learning_rate = 0.05
    assert rbm.fit(digits64) is rbm
    features = rbm.transform(digits64)
    assert features.shape == (500, 8) and features.dtype == torch.float32
    torch.testing.assert_close(features, rbm.mean_hiddens(torch.tensor(digits64)))
    assert "RBM(n_hidden=8" in repr(rbm)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"visible": "poisson"}, "visible"),
        ({"hidden": "tanh"}, "hidden"),
        ({"cd_k": 0}, "cd_k"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": -1}, "epochs"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"random_state": "seed"}, "random_state"),
    ],
    ids=lambda p: str(p) if isinstance(p, str) else next(iter(p)),
)
def test_bad_hyper_parameters(params, message, digits64):
    with pytest.raises(ConfigError, match=message):
        RBM(4, **{"epochs": 1, **params}).fit(digits64[:20])


@pytest.mark.parametrize(
    "X,message",
    [
        (np.full((4, 3), 2.0), r"\[0, 1\]"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.zeros(5), "2-D"),
    ],
    ids=["out-of-range", "nan", "one-dimensional"],
)
def test_bad_input(X, message):
    with pytest.raises(ConfigError, match=message):
        RBM(2, epochs=1, random_state=0).fit(X)


def test_divergence_is_reported(digits64):
    X = (digits64 - digits64.mean(0)) / (digits64.std(0) + 0.01)
    with pytest.raises(ConfigError, match="diverged"):
        RBM(16, visible="gaussian", learning_rate=50.0, epochs=3, random_state=0).fit(X)


def test_progress_callback(digits64):
    seen = []
    RBM(4, epochs=3, random_state=0).fit(digits64[:50], progress=lambda e, err: seen.append(e))
    assert seen == [0, 1, 2]


def test_pseudo_likelihood_needs_binary_visibles(digits64):
    rbm = RBM(4, visible="gaussian", epochs=0, random_state=0).fit(digits64)
    with pytest.raises(ConfigError, match="binary"):
        rbm.pseudo_likelihood(digits64)
