"""Greedy pre-training of the joint model and contrastive wake-sleep (up-down)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fspace.data import load_sklearn_digits, split_heldout
from fspace.errors import ConfigError
from fspace.training.rbm import RBM
from fspace.training.wakesleep import (
    dbn_from_stack,
    fit_top,
    generative_error,
    pretrain_dbn,
    up_down_epoch,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: torch's thread pool costs more than it saves, several times over on
    # a busy machine. Restored afterwards, so other tests keep their setting.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    train, test = split_heldout(load_sklearn_digits(), 300, seed=0)
    as_tensor = lambda a: torch.from_numpy(np.array(a))  # noqa: E731
    return as_tensor(train.images), as_tensor(train.labels), as_tensor(test.images)


@pytest.fixture(scope="module", params=[(24,), (24, 16)], ids=["one-layer", "two-layers"])
def pretrained(request, digits):
    x, y, _ = digits
    model = pretrain_dbn(
        x, y, list(request.param), 32, epochs=3, learning_rate=0.1, batch_size=10, random_state=0
    )
    return model


def test_wake_sleep_lowers_the_generative_reconstruction_error(pretrained, digits):
    x, y, test = digits
    model = copy.deepcopy(pretrained)
    before = generative_error(model, test)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        up_down_epoch(model, x, y, learning_rate=0.1, batch_size=10, generator=gen)
    after = generative_error(model, test)
    assert after < 0.97 * before


def test_wake_sleep_unties_recognition_and_generative_weights(pretrained, digits):
    x, y, _ = digits
    model = copy.deepcopy(pretrained)
    for up, down in zip(model.recognition, model.generative, strict=True):
        torch.testing.assert_close(up.weight, down.weight.T)  # tied after pre-training
    up_down_epoch(model, x[:200], y[:200], generator=torch.Generator().manual_seed(0))
    for up, down in zip(model.recognition, model.generative, strict=True):
        assert not torch.allclose(up.weight, down.weight.T)


def test_an_epoch_depends_only_on_the_weights_and_the_generator(pretrained, digits):
    # What makes an interrupted wake-sleep run resume exactly from saved weights.
    x, y, _ = digits
    a, b = copy.deepcopy(pretrained), copy.deepcopy(pretrained)
    for model in (a, b):
        up_down_epoch(model, x[:300], y[:300], generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_zero_learning_rate_leaves_the_model_alone(pretrained, digits):
    x, y, _ = digits
    model = copy.deepcopy(pretrained)
    gen = torch.Generator().manual_seed(0)
    up_down_epoch(model, x[:100], y[:100], learning_rate=1e-300, generator=gen)
    torch.testing.assert_close(model.state_dict(), pretrained.state_dict())


def test_dbn_from_stack_reproduces_the_rbms(digits):
    x, _, _ = digits
    rbm = RBM(12, epochs=1, random_state=0).fit(x[:200])
    model = dbn_from_stack([rbm], n_top=8, n_classes=10)
    torch.testing.assert_close(model.up(x[:5])[0], rbm.mean_hiddens(x[:5]))
    expected = rbm.mean_visibles(rbm.mean_hiddens(x[:5]))
    torch.testing.assert_close(model.reconstruct(x[:5]), expected)


def test_fit_top_learns_the_labels(digits):
    x, y, _ = digits
    rbm = RBM(24, epochs=3, learning_rate=0.1, batch_size=10, random_state=0).fit(x)
    model = dbn_from_stack([rbm], n_top=32, n_classes=10)
    pen = model.penultimate(x)
    errors = fit_top(model.top, pen, y, epochs=3, learning_rate=0.1, batch_size=10)
    assert errors[-1] < 0.5 * errors[0]
    train_error = float((model(x).argmax(1) != y).float().mean())
    assert train_error < 0.4  # chance is 0.9


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        pytest.param([0, 1, 12], "0..9", id="out-of-range"),
        pytest.param([0, 1], "3 class indices", id="too-few"),
    ],
)
def test_bad_labels_are_refused(digits, labels, match):
    x, _, _ = digits
    model = dbn_from_stack([RBM(4, epochs=1, random_state=0).fit(x[:20])], 4, 10)
    with pytest.raises(ConfigError, match=match):
        up_down_epoch(model, x[:3], labels, generator=torch.Generator())


def test_non_binary_stacks_are_refused(digits):
    x, _, _ = digits
    rbm = RBM(4, hidden="nrelu", learning_rate=0.005, epochs=1, random_state=0).fit(x[:20])
    with pytest.raises(ConfigError, match="binary units"):
        dbn_from_stack([rbm], 4, 10)
