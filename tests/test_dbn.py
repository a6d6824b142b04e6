"""The joint model of images and labels: free energies against brute force, the
classifier it defines, sampling, and rebuilding it from stored weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.special import expit, logsumexp, softmax

from fspace.data import load_sklearn_digits, split_heldout
from fspace.errors import ConfigError
from fspace.models.dbn import DBN, make_dbn
from fspace.training.wakesleep import pretrain_dbn


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: torch's thread pool costs more than it saves, several times over on
    # a busy machine. Restored afterwards, so other tests keep their setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_dbn(hidden=(5,), n_in=4, n_top=4, n_classes=3, seed=0) -> DBN:
    """A DBN in float64 with every parameter drawn at random (no training)."""
    model = make_dbn(n_in, list(hidden), n_top, n_classes, seed=seed).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def _energy(top, pen: np.ndarray, label: int, t: np.ndarray) -> float:
    W, U, c, b, a = (
        x.detach().numpy()
        for x in (top.weight, top.label_weight, top.hbias, top.vbias, top.label_bias)
    )
    return -(b @ pen) - a[label] - c @ t - pen @ W @ t - U[label] @ t


def _brute_free_energies(top, pen: np.ndarray) -> np.ndarray:
    """-log sum_t exp(-E(pen, label, t)) over all binary top states, for every label."""
    n_top, n_classes = top.weight.shape[1], top.label_weight.shape[0]
    states = np.array(list(itertools.product([0, 1], repeat=n_top)), dtype=float)
    return np.array(
        [-logsumexp([-_energy(top, pen, y, t) for t in states]) for y in range(n_classes)]
    )


@pytest.mark.parametrize(
    "pen",
    [
        pytest.param(np.array([[0, 1, 1, 0, 1], [1, 1, 1, 1, 1]], float), id="binary"),
        pytest.param(np.array([[0.2, 0.9, 0.5, 0.1, 0.7]]), id="probabilities"),
    ],
)
def test_free_energy_with_labels_matches_brute_force_sum(pen):
    model = _random_dbn()
    got = model.top.free_energies(torch.tensor(pen)).detach().numpy()
    expected = np.stack([_brute_free_energies(model.top, row) for row in pen])
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_forward_gives_the_exact_label_posterior_of_the_penultimate_layer():
    model = _random_dbn(hidden=(3, 5))
    x = torch.rand(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    weights = [layer.weight.detach().numpy() for layer in model.recognition]
    biases = [layer.bias.detach().numpy() for layer in model.recognition]
    pen = x.numpy()
    for w, b in zip(weights, biases, strict=True):
        pen = expit(pen @ w.T + b)
    # p(y | pen) = sum_t exp(-E(pen, y, t)) / sum_{y', t} exp(-E(pen, y', t))
    expected = softmax(-np.stack([_brute_free_energies(model.top, row) for row in pen]), axis=1)
    got = torch.softmax(model(x), dim=1).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_gibbs_sampling_of_the_label_units_converges_to_the_exact_posterior():
    model = _random_dbn(n_top=6)
    with torch.no_grad():
        model.top.label_weight.mul_(0.5)  # soft posteriors: every label gets sampled
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    chains = 2000  # many short chains per input: vectorised, so fast
    gen = torch.Generator().manual_seed(0)
    sampled = model.gibbs_label_probs(x.repeat(chains, 1), steps=10, generator=gen)
    sampled = sampled.reshape(chains, 3, -1).mean(0).numpy()
    exact = model.top.label_probs(model.penultimate(x)).detach().numpy()
    np.testing.assert_allclose(sampled, exact, atol=0.02)


@pytest.mark.parametrize("hidden", [(), (6,), (6, 5)], ids=["top-only", "one-layer", "two-layers"])
def test_factory_rebuilds_the_same_function_from_a_state_dict(hidden):
    model = _random_dbn(hidden=hidden).float()
    kwargs = {"n_in": 4, "hidden": list(hidden), "n_top": 4, "n_classes": 3, "seed": 9}
    rebuilt = make_dbn(**kwargs)
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rebuilt(x), model(x))
    assert rebuilt(x).shape == (5, 3)


def test_initial_weights_depend_only_on_the_seed():
    a, b, c = make_dbn(6, [5], 4, 3, seed=1), make_dbn(6, [5], 4, 3, seed=1), make_dbn(6, [5], 4, 3)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.recognition[0].weight, c.recognition[0].weight)
    torch.testing.assert_close(a.generative[0].weight, a.recognition[0].weight.T)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"hidden": [0]}, id="zero-width"),
        pytest.param({"n_top": 0}, id="no-top"),
        pytest.param({"n_classes": 1.5}, id="float-classes"),
    ],
)
def test_bad_sizes_are_refused(kwargs):
    with pytest.raises(ConfigError):
        make_dbn(**{"n_in": 4, "hidden": [3], "n_top": 4, "n_classes": 3, **kwargs})


def test_generated_images_are_reproducible_probabilities():
    model = _random_dbn().float()
    labels = torch.tensor([0, 1, 2, 2])
    a = model.generate(labels, 20, torch.Generator().manual_seed(0))
    b = model.generate(labels, 20, torch.Generator().manual_seed(0))
    assert a.shape == (4, 4) and float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(a, b)


@pytest.fixture(scope="module")
def digits_model():
    train, test = split_heldout(load_sklearn_digits(), 300, seed=0)
    model = pretrain_dbn(
        train.images,
        train.labels,
        hidden=[32],
        n_top=64,
        epochs=5,
        learning_rate=0.1,
        batch_size=10,
        random_state=0,
    )
    return model, torch.from_numpy(test.images.copy()), torch.from_numpy(test.labels.copy())


def test_free_energy_classification_beats_chance_by_far(digits_model):
    model, x, y = digits_model
    error = float((model(x).argmax(1) != y).float().mean())
    assert error < 0.3  # chance is 0.9


def test_gibbs_classification_agrees_with_free_energy_classification(digits_model):
    model, x, _ = digits_model
    sampled = model.gibbs_label_probs(x[:100], 50, torch.Generator().manual_seed(0))
    agree = (sampled.argmax(1) == model(x[:100]).argmax(1)).float().mean()
    assert agree > 0.85
