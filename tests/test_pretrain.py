"""Greedy layer-wise pre-training and initialising an MLP from the stack."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fspace.data import load_sklearn_digits
from fspace.errors import ConfigError
from fspace.models import make_mlp
from fspace.training import METHODS, init_from_stack, pretrain_stack


@pytest.fixture(scope="module")
def digits64() -> np.ndarray:
    return load_sklearn_digits().images[:200]


@pytest.mark.parametrize("method", ["rbm", "dae"])
def test_stack_shapes(digits64, method):
    stack = pretrain_stack(digits64, [16, 8, 4], method=method, epochs=2, random_state=0)
    assert [type(layer) for layer in stack] == [METHODS[method]] * 3
    assert [tuple(layer.weight_.shape) for layer in stack] == [(64, 16), (16, 8), (8, 4)]
    assert [tuple(layer.hbias_.shape) for layer in stack] == [(16,), (8,), (4,)]
    assert all(len(layer.reconstruction_errors_) == 2 for layer in stack)


@pytest.mark.parametrize("method", ["rbm", "dae"])
def test_each_layer_is_trained_on_the_layer_below(digits64, method):
    stack = pretrain_stack(digits64, [16, 8], method=method, epochs=2, random_state=5)
    # Refit the top layer by hand on the bottom layer's mean activations.
    top = METHODS[method](**stack[1].get_params()).fit(stack[0].transform(digits64))
    torch.testing.assert_close(top.weight_, stack[1].weight_, rtol=0, atol=0)


def test_stack_is_deterministic_per_random_state(digits64):
    a = pretrain_stack(digits64, [8, 4], epochs=1, random_state=1)
    b = pretrain_stack(digits64, [8, 4], epochs=1, random_state=1)
    c = pretrain_stack(digits64, [8, 4], epochs=1, random_state=2)
    assert all(torch.equal(x.weight_, y.weight_) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].weight_, c[0].weight_)
    assert a[0].random_state != a[1].random_state  # layers get distinct seeds


def test_first_layer_parameters_apply_to_the_bottom_only(digits64):
    standardised = (digits64 - digits64.mean(0)) / (digits64.std(0) + 0.1)
    stack = pretrain_stack(
        standardised,
        [8, 4],
        epochs=1,
        random_state=0,
        first_layer={"visible": "gaussian", "learning_rate": 0.005},
        batch_size=50,
    )
    assert [layer.visible for layer in stack] == ["gaussian", "binary"]
    assert [layer.learning_rate for layer in stack] == [0.005, 0.05]
    assert [layer.batch_size for layer in stack] == [50, 50]


@pytest.mark.parametrize("method", ["rbm", "dae"])
def test_init_from_stack_copies_exactly(digits64, method):
    stack = pretrain_stack(digits64, [16, 8], method=method, epochs=1, random_state=0)
    model = make_mlp(n_in=64, hidden=[16, 8, 5], n_classes=10, seed=3)
    fresh = make_mlp(n_in=64, hidden=[16, 8, 5], n_classes=10, seed=3)
    assert init_from_stack(model, stack) is model
    for layer, target in zip(stack, model.hidden_layers, strict=False):
        assert torch.equal(target.weight, layer.weight_.T)
        assert torch.equal(target.bias, layer.hbias_)
    # Layers above the stack and the output layer keep their initial weights.
    assert torch.equal(model.hidden_layers[2].weight, fresh.hidden_layers[2].weight)
    assert torch.equal(model.output.weight, fresh.output.weight)
    # The MLP's hidden layers now compute the stack's features.
    with torch.no_grad():
        states = model.hidden_states(torch.tensor(digits64))
    features = stack[1].transform(stack[0].transform(digits64))
    torch.testing.assert_close(states[1], features)


def test_nrelu_stack_initialises_a_relu_mlp(digits64):
    stack = pretrain_stack(digits64, [8], epochs=1, random_state=0, hidden="nrelu")
    with pytest.raises(ConfigError, match="activation='relu'"):
        init_from_stack(make_mlp(n_in=64, hidden=[8], n_classes=2), stack)
    model = init_from_stack(make_mlp(n_in=64, hidden=[8], n_classes=2, activation="relu"), stack)
    with torch.no_grad():
        state = model.hidden_states(torch.tensor(digits64))[0]
    torch.testing.assert_close(state, stack[0].transform(digits64))


@pytest.mark.parametrize(
    "hidden,message",
    [([16], "does not fit an MLP of depth 1"), ([16, 9], "hidden layer 1 is 16 -> 9")],
    ids=["too-deep", "wrong-width"],
)
def test_init_from_stack_rejects_mismatches(digits64, hidden, message):
    stack = pretrain_stack(digits64, [16, 8], epochs=1, random_state=0)
    with pytest.raises(ConfigError, match=message):
        init_from_stack(make_mlp(n_in=64, hidden=hidden, n_classes=2), stack)


def test_pretrain_errors_name_the_layer(digits64):
    with pytest.raises(ConfigError, match="method"):
        pretrain_stack(digits64, [4], method="vae")
    with pytest.raises(ConfigError, match="hidden_sizes"):
        pretrain_stack(digits64, [])
    with pytest.raises(ConfigError, match=r"unknown rbm layer parameter\(s\) \['corruption'\]"):
        pretrain_stack(digits64, [4], corruption=0.5)
    with pytest.raises(ConfigError, match=r"layer 0 \(dae, 4 units\): corruption"):
        pretrain_stack(digits64, [4], method="dae", corruption=2.0)


def test_progress_callable_gets_layer_epoch_error(digits64):
    seen = []
    stack = pretrain_stack(
        digits64, [6, 3], epochs=2, random_state=0, progress=lambda *args: seen.append(args)
    )
    assert [(layer, epoch) for layer, epoch, _ in seen] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [err for _, _, err in seen] == [
        *stack[0].reconstruction_errors_,
        *stack[1].reconstruction_errors_,
    ]
