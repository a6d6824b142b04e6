"""The dashboard's edges read registries: pages and their navigation, the map controls
and the URL's words."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from conftest import record_experiment

from fspace.app import navigation as page_registry
from fspace.app.controls import param_row
from fspace.app.maps import MapEntry, used_label
from fspace.app.server import create_app
from fspace.app.specs import MapSpec
from fspace.app.state import EXTENSION
from fspace.app.views import View, parse_view, view_query
from fspace.errors import ConfigError
from fspace.registry import Param

# Pages that open the default t-SNE map on 4 checkpoints warn that perplexity was lowered.
pytestmark = pytest.mark.filterwarnings("ignore:t-SNE. perplexity:UserWarning")

PAGE = '''
"""A page of a third-party package."""
from dash import html

LAYOUTS = []


def layout(exp=None, **query):
    LAYOUTS.append(exp)
    return html.Div(f"the plug-in page of {exp}", id="plugin-page")
'''


@pytest.fixture
def fresh_pages(monkeypatch):
    """Pages declared in a test vanish after it."""
    monkeypatch.setattr(page_registry.PAGES, "_entries", dict(page_registry.PAGES._entries))
    monkeypatch.setattr(page_registry, "_PATHS", dict(page_registry._PATHS))
    monkeypatch.setattr(page_registry, "_MODULES", dict(page_registry._MODULES))


@pytest.fixture
def root(tmp_path, suite):
    record_experiment(tmp_path / "exp", suite, seeds=(0,), epochs=1)
    record_experiment(tmp_path / "other", suite, seeds=(0,), epochs=1)
    return tmp_path


@pytest.fixture
def plugin_page(tmp_path, monkeypatch, fresh_pages):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "my_page.py").write_text(PAGE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    page_registry.add_page(
        "mine",
        "my_page",
        label="Mine",
        order=5,
        help="a page of a plug-in",
        applies=lambda exp: exp.path.name == "exp",
        redirect_from=("/old-mine",),
    )


def route(client, path: str, search: str = "") -> str:
    """The page Dash's router renders for ``path`` (what a browser would show)."""
    outputs = [("_pages_content", "children"), ("_pages_store", "data")]
    body = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    return json.dumps(response.get_json())  # without the escapes of "/" and "<"


def header_links(text: str) -> list[tuple[str, str]]:
    """(label, href) of the header's page links in a rendered page."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            if node.get("type") == "Nav":
                for link in props.get("children", []):
                    found.append((link["props"]["children"], link["props"]["href"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    return found


def test_a_plugin_page_is_routed_linked_and_listed(root, plugin_page):
    app = create_app(root)
    try:
        client = app.server.test_client()
        page = route(client, "/mine", "?exp=exp")
        assert "the plug-in page of exp" in page
        links = header_links(route(client, "/trajectories", "?exp=exp"))
        labels = [label for label, _ in links]
        assert labels == [p.label for p in page_registry.nav_pages()]
        assert ("Mine", "/mine?exp=exp") in links and labels[0] == "Trajectories"
        # The home page links each experiment to the pages that apply to it.
        home = route(client, "/")
        assert '"/mine?exp=exp"' in home and "/mine?exp=other" not in home
        assert '"/trajectories?exp=other"' in home
        # Not found names every page; an older path redirects with its query.
        assert "Mine" in route(client, "/nowhere") and "no such page" in route(client, "/x")
        moved = client.get("/old-mine?exp=exp")
        assert moved.status_code == 301 and moved.headers["Location"].endswith("/mine?exp=exp")
    finally:
        app.server.extensions[EXTENSION].close()


def test_every_linked_page_is_served(root):
    app = create_app(root)
    try:
        client = app.server.test_client()
        for page in page_registry.nav_pages():
            shown = route(client, page.tags["path"], "?exp=exp")
            assert "no such page" not in shown, page.name
            assert "Traceback" not in shown
    finally:
        app.server.extensions[EXTENSION].close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "mine"}, "must start with '/'"),
        ({"path": "/trajectories"}, "already 'trajectories'"),
        ({"label": ""}, "needs a label"),
        ({"applies": "yes"}, "applies must be a function"),
    ],
    ids=["relative", "taken", "label", "applies"],
)
def test_bad_page_declarations_are_refused(fresh_pages, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        page_registry.add_page("mine", "my_page", **{"label": "Mine", **kwargs})
    page_registry.add_page("two", "two_page", label="Two")
    with pytest.raises(ConfigError, match="already served by two_page"):
        page_registry.add_page("two", "other_page", label="Two")


# the URL's words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "view"),
    [
        (
            {"method": "umap", "n_neighbors": "5", "random_state": "2"},
            View(spec=MapSpec("umap", 5, 2)),
        ),
        ({"map": "umap", "neighbors": "5", "map_seed": "2"}, View(spec=MapSpec("umap", 5, 2))),
        (
            {"map": "pca", "method": "rbm"},
            View(spec=MapSpec("pca"), filters=(("method", ("rbm",)),)),
        ),
        ({"method": "rbm,dae"}, View(filters=(("method", ("rbm", "dae")),))),
        ({"pretraining": "dae"}, View(filters=(("method", ("dae",)),))),
        ({"distance": "hellinger"}, View(spec=MapSpec(distance="hellinger"))),
    ],
    ids=["today", "older-link", "older-filter", "older-filter-alone", "filter", "distance"],
)
def test_url_words_today_and_of_older_links(query, view):
    parsed, notes = parse_view(query)
    assert parsed == view and notes == []
    written = dict(p.split("=") for p in view_query(parsed)[1:].split("&") if p)
    assert not {"map", "map_seed", "neighbors"} & set(written)
    assert parse_view(written)[0] == view


def test_url_writes_one_word_per_idea():
    view = View(
        exp="e",
        spec=MapSpec("umap", 5, 2, distance="hellinger"),
        filters=(("method", ("rbm",)),),
    )
    assert view_query(view) == (
        "?exp=e&method=umap&n_neighbors=5&random_state=2&distance=hellinger&pretraining=rbm"
    )


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"method": "pca", "perplexity": "50"}, "perplexity is a parameter of t-SNE, not PCA"),
        ({"distance": "nope"}, "unknown distance 'nope'"),
        ({"random_state": "x"}, "random_state='x' (map seed) is not a number"),
        ({"method": "umap", "min_dist": "2"}, "min_dist must be a number in [0, 1]"),
    ],
    ids=["other-method", "distance", "seed", "range"],
)
def test_bad_url_words_are_named(query, fragment):
    _, notes = parse_view(query)
    assert any(fragment in n for n in notes), notes


# the map controls and labels -----------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "kind", "props"),
    [
        (
            Param("k", int, 15, "neighbours", low=2),
            "Input",
            {"type": "number", "step": 1, "min": 2},
        ),
        (Param("d", float, 0.1, "", low=0.0, high=1.0), "Input", {"max": 1.0, "step": "any"}),
        (Param("n", int, None, "threads", low=1), "Input", {"placeholder": "auto", "value": None}),
        (Param("init", str, "pca", "", choices=("pca", "random")), "Dropdown", {"value": "pca"}),
        (Param("swap", bool, False), "RadioItems", {"value": False}),
        (Param("metric", str, "euclidean"), "Input", {"type": "text", "value": "euclidean"}),
    ],
    ids=["int", "float-range", "auto", "choices", "bool", "text"],
)
def test_parameter_controls_follow_the_declared_type(param, kind, props):
    row = param_row("m", param)
    field = row.children[1]
    assert type(field).__name__ == kind
    assert field.id == {"type": "map-param", "method": "m", "name": param.name}
    for key, value in props.items():
        assert getattr(field, key) == value, key
    assert row.children[0].children == param.name


def test_the_status_names_the_parameters_actually_used():
    entry = MapEntry(SimpleNamespace(), MapSpec("tsne", 30.0, 1), 1)
    assert used_label(entry) == "t-SNE (seed 1)"  # before the fit: what was asked
    entry.embedding = SimpleNamespace(params={"perplexity": 9.66, "n_iter": 500})
    assert used_label(entry) == "t-SNE (perplexity 9.66 instead of 30, seed 1)"
    entry.embedding.params["perplexity"] = 30.0
    assert used_label(entry) == "t-SNE (perplexity 30, seed 1)"


def test_the_distance_menu_offers_what_the_method_maps():
    from fspace.app.controls import distance_options

    enabled = {o["value"] for o in distance_options("pca") if not o["disabled"]}
    assert enabled == {"euclidean"}
    everything = {o["value"] for o in distance_options("tsne")}
    assert {o["value"] for o in distance_options("tsne") if not o["disabled"]} == everything
    assert {"euclidean", "hellinger"} <= everything
