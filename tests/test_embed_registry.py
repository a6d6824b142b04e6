"""The registry of embedding methods: what each entry declares for the edges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fspace.embedding import METHODS, EmbeddingMethod, Param, embed, get_method, register
from fspace.embedding.base import check_value
from fspace.errors import ConfigError
from fspace.vectors import FunctionVectors


@pytest.fixture
def fresh(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))


def _vectors(n=6, dim=4):
    gen = np.random.default_rng(0)
    points = pd.DataFrame({"run": "r", "checkpoint": [f"r/{i}" for i in range(n)]})
    return FunctionVectors(gen.normal(size=(n, dim)).astype(np.float32), points, "fp")


@pytest.mark.parametrize(
    ("name", "label", "metric", "distances", "first", "shown"),
    [
        ("tsne", "t-SNE", False, "any", "perplexity", ("perplexity",)),
        ("pca", "PCA", True, ("euclidean",), "svd_solver", ()),
        ("umap", "UMAP", False, "any", "n_neighbors", ("n_neighbors", "min_dist")),
    ],
    ids=["tsne", "pca", "umap"],
)
def test_builtin_entries_declare_label_tags_and_params(
    name, label, metric, distances, first, shown
):
    entry = METHODS.get(name)
    assert entry.label == label and entry.help
    assert entry.tags == {"metric": metric, "distances": distances, "dashboard": shown}
    assert entry.params[0].name == first
    assert all(p.help for p in entry.params)
    assert entry.obj.name == name and entry.obj.params == entry.params


def test_declared_defaults_are_the_method_defaults():
    assert METHODS.get("tsne").defaults()["perplexity"] == 30.0
    assert METHODS.get("umap").param("n_neighbors").low == 2
    assert get_method("tsne").defaults == METHODS.get("tsne").defaults()


def test_registered_params_are_checked_without_a_check_hook(fresh):
    @register("scaled", label="Scaled", params=[Param("scale", float, 1.0, "factor", low=0.5)])
    class Scaled(EmbeddingMethod):
        def fit(self, matrix, params, *, progress):
            return params["scale"] * matrix[:, :2], None

        def transform(self, state, matrix, params):
            return params["scale"] * matrix[:, :2]

    vectors = _vectors()
    assert embed(vectors, "scaled", scale=2).params["scale"] == 2.0
    tags = {"metric": False, "distances": ("euclidean",), "dashboard": ("scale",)}
    assert METHODS.get("scaled").tags == tags
    with pytest.raises(ConfigError, match="scale must be at least 0.5"):
        embed(vectors, "scaled", scale=0.1)
    with pytest.raises(ConfigError, match="scale must be float, got '2'"):
        embed(vectors, "scaled", scale="2")


def test_a_class_named_by_an_entry_point_keeps_its_declared_params(fresh):
    class Declared(EmbeddingMethod):
        params = (Param("k", int, 3, "neighbours", low=1),)

        def fit(self, matrix, params, *, progress):
            return matrix[:, :2], None

        def transform(self, state, matrix, params):
            return matrix[:, :2]

    # What Registry._load_plugins does with "name = module:Class".
    METHODS.register("declared")(Declared)
    assert METHODS.get("declared").param("k").default == 3
    assert get_method("declared").resolve({"k": 2}, 5) == {"k": 2}


def test_only_method_classes_and_known_tag_values_are_registered(fresh):
    with pytest.raises(ConfigError, match="must be an EmbeddingMethod subclass"):
        register("f")(len)

    class Any2(EmbeddingMethod):
        def fit(self, matrix, params, *, progress):
            return matrix[:, :2], None

        def transform(self, state, matrix, params):
            return matrix[:, :2]

    with pytest.raises(ConfigError, match="tag metric"):
        register("m", metric="yes")(Any2)
    with pytest.raises(ConfigError, match="tag distances"):
        register("d", distances=())(Any2)
    with pytest.raises(ConfigError, match="tag dashboard names unknown parameter.*k"):
        register("s", dashboard=("k",))(Any2)


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (Param("k", int, 1), True, "k must be int"),
        (Param("k", int, 1), 1.0, "k must be int"),
        (Param("x", float, 1.0), "1", "x must be float"),
        (Param("x", float, 1.0), None, "x needs a value"),
        (Param("s", str, "a", choices=("a", "b")), "c", "s must be one of"),
    ],
    ids=["bool-as-int", "float-as-int", "text-as-float", "none", "choice"],
)
def test_python_values_are_not_converted_from_text(param, value, message):
    with pytest.raises(ConfigError, match=message):
        check_value(param, value)


def test_numpy_numbers_are_accepted_as_python_numbers():
    assert check_value(Param("k", int, 1), np.int64(3)) == 3
    assert check_value(Param("x", float, 1.0), np.float32(0.5)) == 0.5
    assert check_value(Param("n", int, None), None) is None


def test_tsne_learning_rate_auto_is_the_unset_default():
    params = get_method("tsne").resolve({"learning_rate": "auto", "perplexity": 2}, 10)
    assert params["learning_rate"] == "auto"
    assert (
        get_method("tsne").resolve({"learning_rate": 50, "perplexity": 2}, 10)["learning_rate"]
        == 50.0
    )
