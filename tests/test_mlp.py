"""The MLP classifier and its factory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fspace.errors import ConfigError
from fspace.models import MLP, make_mlp
from fspace.models.mlp import INITS, init_bound


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_forward_shapes(depth, activation):
    model = make_mlp(n_in=12, hidden=[7] * depth, n_classes=3, activation=activation, seed=0)
    x = torch.rand(5, 1, 3, 4)  # flattened to 12 features
    assert model(x).shape == (5, 3)
    states = model.hidden_states(x)
    assert model.depth == depth and [s.shape for s in states] == [(5, 7)] * depth
    torch.testing.assert_close(model.output(states[-1]), model(x))


def test_state_dict_keys_are_stable():
    model = make_mlp(n_in=4, hidden=[3, 2], n_classes=2)
    assert list(model.state_dict()) == [
        "hidden_layers.0.weight",
        "hidden_layers.0.bias",
        "hidden_layers.1.weight",
        "hidden_layers.1.bias",
        "output.weight",
        "output.bias",
    ]


def test_forward_matches_numpy_reference():
    model = make_mlp(n_in=6, hidden=[5, 4], n_classes=3, seed=2)
    x = np.random.default_rng(0).random((8, 6)).astype(np.float32)
    p = {k: v.numpy() for k, v in model.state_dict().items()}
    h = 1 / (1 + np.exp(-(x @ p["hidden_layers.0.weight"].T + p["hidden_layers.0.bias"])))
    h = 1 / (1 + np.exp(-(h @ p["hidden_layers.1.weight"].T + p["hidden_layers.1.bias"])))
    expected = h @ p["output.weight"].T + p["output.bias"]
    np.testing.assert_allclose(model(torch.tensor(x)).detach().numpy(), expected, rtol=1e-5)


def test_make_mlp_is_deterministic_per_seed():
    kwargs = {"n_in": 10, "hidden": [6, 6], "n_classes": 4, "activation": "sigmoid"}
    a, b = make_mlp(**kwargs, seed=7), make_mlp(**kwargs, seed=7)
    c = make_mlp(**kwargs, seed=8)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.hidden_layers[0].weight, c.hidden_layers[0].weight)
    assert not torch.equal(a.output.weight, c.output.weight)


def test_construction_leaves_global_generator_alone():
    state = torch.random.get_rng_state()
    make_mlp(n_in=20, hidden=[10, 10], n_classes=2, seed=1)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize(
    "activation,hidden_bound", [("sigmoid", 1 / 10), ("relu", math.sqrt(6) / 10)]
)
def test_initial_weights_are_small(activation, hidden_bound):
    model = make_mlp(n_in=100, hidden=[50], n_classes=10, activation=activation, seed=0)
    weight = model.hidden_layers[0].weight
    assert weight.abs().max() <= hidden_bound
    assert weight.abs().max() > 0.9 * hidden_bound  # uses the whole range
    assert model.output.weight.abs().max() <= 1 / math.sqrt(50)
    assert torch.count_nonzero(model.hidden_layers[0].bias) == 0
    assert torch.count_nonzero(model.output.bias) == 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden": [5, 0]}, r"hidden\[1\]"),
        ({"hidden": [5.5]}, r"hidden\[0\]"),
        ({"n_in": 0, "hidden": [3]}, "n_in"),
        ({"hidden": [3], "activation": "tanh"}, "activation"),
    ],
    ids=["zero-width", "float-width", "no-inputs", "unknown-activation"],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MLP(**{"n_in": 4, "n_classes": 2, **kwargs})


def test_make_mlp_accepts_stored_json_values():
    model = make_mlp(**{"n_in": 4, "hidden": [3, 3], "n_classes": 2, "seed": 0})
    assert isinstance(model, MLP) and model.depth == 2


@pytest.mark.parametrize(
    "activation,init,bounds",
    [
        ("sigmoid", "uniform", [1 / math.sqrt(100), 1 / math.sqrt(60), 1 / math.sqrt(40)]),
        ("relu", "uniform", [math.sqrt(6 / 100), math.sqrt(6 / 60), 1 / math.sqrt(40)]),
        (
            "sigmoid",
            "normalized",
            [4 * math.sqrt(6 / 160), 4 * math.sqrt(6 / 100), math.sqrt(6 / 50)],
        ),
        ("relu", "normalized", [math.sqrt(6 / 160), math.sqrt(6 / 100), math.sqrt(6 / 50)]),
    ],
    ids=["sigmoid-uniform", "relu-uniform", "sigmoid-normalized", "relu-normalized"],
)
def test_initial_weights_are_uniform_within_each_schemes_bound(activation, init, bounds):
    model = make_mlp(n_in=100, hidden=[60, 40], n_classes=10, activation=activation, init=init)
    layers = [*model.hidden_layers, model.output]
    for layer, bound in zip(layers, bounds, strict=True):
        weight = layer.weight.detach().numpy().ravel()
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.95 * bound  # uses the whole range
        # uniform on [-b, b]: mean 0, variance b^2 / 3 (within sampling error)
        assert abs(weight.mean()) < 0.05 * bound
        assert weight.var() == pytest.approx(bound**2 / 3, rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0


def test_normalized_init_is_reproducible_by_seed_and_differs_from_uniform():
    kwargs = {"n_in": 30, "hidden": [20, 20], "n_classes": 5, "init": "normalized"}
    a, b, c = make_mlp(**kwargs, seed=3), make_mlp(**kwargs, seed=3), make_mlp(**kwargs, seed=4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.hidden_layers[1].weight, c.hidden_layers[1].weight)
    # same generator draws, other scale: the schemes differ by a factor per layer
    uniform = make_mlp(**{**kwargs, "init": "uniform"}, seed=3)
    ratio = a.hidden_layers[0].weight / uniform.hidden_layers[0].weight
    torch.testing.assert_close(ratio, torch.full_like(ratio, 4 * math.sqrt(6 / 50) * math.sqrt(30)))


def test_init_bound_matches_glorot_and_bengio():
    assert init_bound("normalized", 784, 100, "sigmoid") == pytest.approx(4 * math.sqrt(6 / 884))
    assert init_bound("normalized", 100, 10, None) == pytest.approx(math.sqrt(6 / 110))
    assert init_bound("uniform", 784, 100, "sigmoid") == pytest.approx(1 / 28)


@pytest.mark.parametrize("bad", ["glorot", "", None], ids=["unknown", "empty", "none"])
def test_unknown_init_is_a_one_line_config_error(bad):
    with pytest.raises(ConfigError, match=r"^init must be one of \('uniform', 'normalized'\)") as e:
        make_mlp(n_in=4, hidden=[3], n_classes=2, init=bad)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="init"):
        init_bound(bad, 4, 3, "sigmoid")


def test_experiment_settings_name_the_same_init_schemes():
    from fspace.experiments.pretraining import config

    assert config.INITS == INITS
