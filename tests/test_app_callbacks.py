"""The dashboard's pages and callbacks without a browser, on small recorded experiments."""

from __future__ import annotations

import json
import shutil
import time
from types import SimpleNamespace

import numpy as np
import pytest
from _models import make_mlp
from conftest import record_experiment
from dash.exceptions import PreventUpdate
from test_app_data import click_on, decode

from fspace import Recorder
from fspace.app import animation, ids, trajectory_query
from fspace.app.maps import MapSpec
from fspace.app.server import create_app
from fspace.app.state import EXTENSION, ServerState
from fspace.plot.style import group_order

# Pages that open the default t-SNE map on 30 checkpoints warn that perplexity was lowered.
pytestmark = pytest.mark.filterwarnings("ignore:t-SNE. perplexity:UserWarning")
PCA = MapSpec("pca")
NO_FILTERS = [[], [], [], []]
TIMEOUT = 60


def wait_for(condition, timeout=TIMEOUT):
    """Poll ``condition()`` until it returns something truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def ready(state: ServerState, name: str = "exp", spec: MapSpec = PCA):
    """The status of a map once its job has finished."""
    handle = state.registry.get(name)
    return wait_for(lambda: (s := state.maps.status(handle, spec)) and not s.busy and s)


def record_one(path, suite, *, run="random-s9", epoch=0, seed=9):
    model = make_mlp(seed=seed)
    with Recorder(
        path,
        run=run,
        group="random",
        seed=seed,
        config={"depth": 1},
        probes=suite,
        model_factory="_models:make_mlp",
        model_kwargs={"seed": seed},
    ) as rec:
        rec.record(model, epoch=epoch, metrics={"test_error": 0.5})


def text_of(component) -> str:
    """Every string in a rendered component tree."""
    return json.dumps(
        component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False
    )


def markers(figure) -> list[dict]:
    return [t for t in figure["data"] if t.get("meta", {}).get("role") == "checkpoints"]


def points(figure) -> int:
    return sum(len(decode(t["x"])) for t in markers(figure))


def probe_suite():
    """The same probe suite as conftest's ``suite`` fixture, for module-scoped fixtures."""
    from fspace import ProbeSuite

    gen = np.random.default_rng(0)
    return ProbeSuite.from_array(gen.normal(size=(20, 4)).astype(np.float32), name="probe")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A root with one experiment, recorded once per module (recording is the slow part)."""
    root = tmp_path_factory.mktemp("template")
    record_experiment(root / "exp", probe_suite())
    return root


@pytest.fixture(scope="module")
def shared_app(template, tmp_path_factory):
    """One dashboard for the tests that only read the experiment."""
    app = create_app(template, export_dir=tmp_path_factory.mktemp("exports"), poll_ms=200)
    yield app
    app.server.extensions[EXTENSION].close()


@pytest.fixture
def dash_app(shared_app):
    with shared_app.server.app_context():
        yield shared_app


@pytest.fixture
def root(template, tmp_path):
    """A copy of the template root that a test may change (without cached maps)."""
    shutil.copytree(template, tmp_path / "root", ignore=shutil.ignore_patterns("cache"))
    return tmp_path / "root"


@pytest.fixture
def own_state(root):
    """A dashboard state of its own, on a copy of the experiment."""
    state = ServerState(root)
    yield state
    state.close()


@pytest.fixture
def state(dash_app) -> ServerState:
    return dash_app.server.extensions[EXTENSION]


@pytest.fixture
def pages(dash_app):
    from fspace.app import downloads
    from fspace.app.pages import results, trajectories

    return SimpleNamespace(trajectories=trajectories, results=results, downloads=downloads)


@pytest.fixture
def token(state):
    return ready(state).token


def test_layout_names_an_unknown_experiment(pages):
    page = text_of(pages.trajectories.layout(exp="nope"))
    assert "no experiment 'nope'" in page and "experiments there: exp" in page


def test_layout_of_an_empty_root(tmp_path):
    app = create_app(tmp_path)
    with app.server.app_context():
        from fspace.app.pages import home, trajectories

        assert "no experiments under" in text_of(trajectories.layout())
        assert "no experiments under" in text_of(home.layout())


def test_layout_reports_url_problems_and_keeps_going(pages, state):
    page = text_of(pages.trajectories.layout(exp="exp", map="pca", perplexity="x", zoom="2"))
    assert "unknown URL parameter 'zoom'" in page
    assert '"value": "pca"' in page


def test_poll_then_draw_every_checkpoint(pages, state):
    token = wait_for(
        lambda: pages.trajectories.poll(1, "pca", [], None, 0, None, [], "exp", None)[0]
    )
    ready(state)
    token, status, _ = pages.trajectories.poll(2, "pca", [], None, 0, None, [], "exp", None)
    assert "PCA: 30 checkpoints of 6 runs" in text_of(status)
    figure = pages.trajectories.draw(token, NO_FILTERS, None, None)
    assert points(figure) == 30
    runs = {r for t in markers(figure) for r in t["text"]}
    assert len(runs) == 6
    assert [t["name"] for t in markers(figure)] == group_order(["random", "pretrained"])
    # an unchanged map gives no new token, so the figure is not redrawn
    again = pages.trajectories.poll(3, "pca", [], None, 0, None, [], "exp", token)[0]
    assert again is pages.trajectories.no_update


@pytest.mark.parametrize(
    ("filters", "epochs", "expected"),
    [
        ([["pretrained"], [], [], []], None, 15),
        ([[], [], [], ["0", "2"]], None, 20),
        (NO_FILTERS, [0, 1], 12),
        ([["random"], ["1"], [], ["1"]], [4, 4], 1),
    ],
    ids=["group", "seed", "window", "all"],
)
def test_filters_and_epoch_window(pages, token, filters, epochs, expected):
    assert points(pages.trajectories.draw(token, filters, epochs, None)) == expected


def test_nothing_matching_says_so(pages, token):
    figure = pages.trajectories.draw(token, [["nope"], [], [], []], None, None)
    assert "no checkpoint matches" in figure["layout"]["annotations"][0]["text"]


def test_map_waits_for_the_controls_the_url_asked_for(pages, token):
    """A map that became ready after the page was built is drawn only once the controls
    show the URL's window and filters, never with the placeholder window first."""
    wanted = {"epochs": None, "filters": {}}
    with pytest.raises(PreventUpdate):
        pages.trajectories.draw(token, NO_FILTERS, [0, 1], None, True, None, None, wanted)
    figure = pages.trajectories.draw(token, NO_FILTERS, [0, 4], None, True, None, None, None)
    assert points(figure) == 30


def test_refresh_controls_fit_the_map(pages, token):
    boxes, lo, hi, ticks, value, pending = pages.trajectories.refresh_controls(
        token, None, None, {"epochs": [1, 9], "filters": {"group": ["random"], "depth": ["1"]}}
    )
    # group, and seed (3 values); depth has one value here, so it is no filter
    dropdowns = {b.id["column"]: b.children[1] for b in boxes}
    assert list(dropdowns) == ["group", "seed"]
    assert [o["value"] for o in dropdowns["group"].options] == ["pretrained", "random"]
    assert [o["value"] for o in dropdowns["seed"].options] == ["0", "1", "2"]
    assert dropdowns["group"].value == ["random"] and dropdowns["seed"].value == []
    assert (lo, hi, value) == (0, 4, [1, 4]) and pending is None
    assert list(ticks) == ["0", "1", "2", "3", "4"]
    # a later version with the same filters leaves the dropdowns (and their values) alone
    keys = [ids.filter_id("group"), ids.filter_id("seed")]
    options = [dropdowns["group"].options, dropdowns["seed"].options]
    again = pages.trajectories.refresh_controls(token, [0, 4], 4, None, [[], []], keys, options)
    assert again[0] is pages.trajectories.no_update


def test_click_opens_details(pages, state, token):
    plot = state.maps.find(token).plot
    figure = pages.trajectories.draw(token, NO_FILTERS, None, None)
    second = [i for i, t in enumerate(figure["data"]) if t["meta"]["role"] == "checkpoints"][1]
    key = pages.trajectories.select(click_on(figure, second, 2), token)
    assert key == plot.key_of(int(decode(figure["data"][second]["customdata"])[2, 0]))
    panel = text_of(pages.trajectories.details(key, "exp"))
    run = key.split("/")[0]
    assert f"{run} · epoch" in panel and "Metrics of the run" in panel
    assert "the probe inputs are not images" in panel
    figure = pages.trajectories.draw(token, NO_FILTERS, None, key)
    highlight = next(t for t in figure["data"] if t["meta"]["role"] == "highlight")
    assert set(highlight["text"]) == {run} and len(highlight["text"]) == 5


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("nope-s0/e000001-s0000000001", "no run 'nope-s0'"),
        ("random-s0/e000099-s0000000099", "has no checkpoint 'e000099-s0000000099'"),
    ],
    ids=["run", "checkpoint"],
)
def test_details_of_unknown_checkpoint_say_so(pages, key, fragment):
    assert fragment in text_of(pages.trajectories.details(key, "exp"))


def test_receptive_fields_for_image_probes(tmp_path):
    from fspace import ProbeSuite

    gen = np.random.default_rng(0)
    suite = ProbeSuite.from_array(gen.normal(size=(10, 64)).astype(np.float32), name="img")
    model = make_mlp(n_in=64, hidden=20, seed=1)
    with Recorder(
        tmp_path / "img",
        run="r",
        group="random",
        seed=0,
        probes=suite,
        model_factory="_models:make_mlp",
        model_kwargs={"n_in": 64, "hidden": 20, "seed": 1},
    ) as rec:
        rec.record(model, epoch=0)
        rec.record(model, epoch=1)
    app = create_app(tmp_path / "img")
    with app.server.app_context():
        from fspace.app.details import fields_figure, find_checkpoint

        handle = app.server.extensions[EXTENSION].registry.get("img")
        fig = fields_figure(handle, find_checkpoint(handle, "r"))
        assert fig["layout"]["annotations"][1]["text"] == "epoch 1 (this checkpoint)"
        assert fig["data"][0]["z"]["shape"] == "35,35"  # 16 tiles of 8x8, 1-pixel gaps
        from fspace.plot.common import mosaic

        weights = handle.experiment.load_weights(find_checkpoint(handle, "r").checkpoint)
        first = weights["0.weight"].numpy()  # nn.Sequential's first Linear
        units = np.argsort(-np.linalg.norm(first.astype(np.float64), axis=1), kind="stable")
        expected = mosaic(first[units[:16]].reshape(-1, 8, 8))
        np.testing.assert_allclose(decode(fig["data"][1]["z"]), expected, rtol=1e-6)


def test_play_and_step(pages):
    assert animation.play(1, True, [0, 4], 4) == (False, "❚❚ pause", [0, 0])
    assert animation.play(1, True, [1, 2], 4)[2] is animation.no_update
    assert animation.play(2, False, [1, 2], 4)[:2] == (True, "▶ play")
    assert animation.step(1, [1, 2], 4)[:2] == ([1, 3], False)
    assert animation.step(2, [1, 3], 4) == ([1, 4], True, "▶ play")


def test_query_describes_the_view(pages):
    keys = [ids.param_id("tsne", "perplexity"), ids.param_id("umap", "n_neighbors")]
    query = trajectory_query.query(
        "tsne",
        [50, 15],
        None,
        1,
        [["random"], [], [], []],
        [0, 2],
        "random-s0/e1",
        keys,
        "exp",
        0,
        4,
        None,
    )
    assert query == (
        "?exp=exp&method=tsne&perplexity=50&random_state=1&group=random&epochs=0-2"
        "&checkpoint=random-s0/e1"
    )
    assert (
        trajectory_query.query(
            "pca", [30, 15], "euclidean", 0, NO_FILTERS, [0, 4], None, keys, "exp", 0, 4, None
        )
        == "?exp=exp&method=pca"
    )


def test_export_html_and_csv_into_the_export_folder(pages, state, token):
    sent, note = pages.downloads.export(1, "html", "exp", token, NO_FILTERS, [0, 2], None)
    assert sent["filename"] == "exp-pca-trajectories.html" and "exported" in note
    assert (state.export_dir / sent["filename"]).is_file()
    sent, note = pages.downloads.export_csv(1, "exp", token, [["random"], [], [], []], None)
    assert sent["filename"] == "exp-pca-coordinates.csv" and "15 checkpoints" in note
    import base64

    body = base64.b64decode(sent["content"]).decode() if sent["base64"] else sent["content"]
    assert body.splitlines()[0].startswith("run,group,seed,epoch,step,checkpoint")
    assert len(body.splitlines()) == 16


def test_export_without_map_says_so(pages):
    _, note = pages.downloads.export(1, "png", "exp", None, NO_FILTERS, None, None)
    assert "no map to export yet" in text_of(note)


@pytest.mark.slow
def test_export_png(pages, state, token):
    sent, _ = pages.downloads.export(1, "png", "exp", token, NO_FILTERS, None, None)
    assert sent["filename"].endswith(".png")
    assert (state.export_dir / sent["filename"]).read_bytes()[:4] == b"\x89PNG"


def test_new_checkpoint_is_placed_with_transform(own_state, root, suite):
    from fspace.app.vectors import checkpoint_vectors

    state = own_state
    token = ready(state).token
    before = state.maps.find(token).embedding
    assert before._state is not None  # fitted in this process
    record_one(root / "exp", suite)
    status = wait_for(lambda: (s := ready(state)).token != token and s)
    after = state.maps.find(status.token).embedding
    assert len(after) == 31
    assert after.points["checkpoint"].iloc[-1] == "random-s9/e000000-s0000000000"
    np.testing.assert_array_equal(after.coords[:30], before.coords)
    handle = state.registry.get("exp")
    added = [c for c in handle.scan().checkpoints if c.run == "random-s9"]
    new, _ = checkpoint_vectors(handle.experiment, added)
    np.testing.assert_allclose(after.coords[30:], before.transform(new).coords[30:])
    plot = state.maps.find(status.token).plot
    assert len(plot) == 31 and "random-s9" in set(plot.runs)


def test_cached_map_places_new_checkpoints_by_neighbours(root, suite, tmp_path):
    first = ServerState(root)
    ready(first)  # fits and writes the on-disk cache
    first.close()
    second = ServerState(root)
    status = ready(second)
    assert second.maps.find(status.token).embedding._state is None  # read from the cache
    record_one(root / "exp", suite)
    status = wait_for(lambda: (s := ready(second)).token != status.token and s)
    assert "placed next to their nearest neighbours" in status.message
    assert len(second.maps.find(status.token).plot) == 31
    second.close()


def test_empty_experiment_waits_for_checkpoints(tmp_path, suite):
    path = tmp_path / "root" / "live"
    rec = Recorder(
        path,
        run="random-s0",
        group="random",
        seed=0,
        probes=suite,
        model_factory="_models:make_mlp",
        model_kwargs={"seed": 0},
    )
    state = ServerState(tmp_path / "root")
    status = ready(state, "live")
    assert status.error and "has no checkpoints yet; 1 runs are starting" in status.message
    model = make_mlp(seed=0)
    for epoch in range(3):
        rec.record(model, epoch=epoch)
    rec.close()
    status = wait_for(lambda: (s := ready(state, "live")).token and s)
    assert "PCA: 3 checkpoints of 1 runs" in status.message
    state.close()


@pytest.mark.filterwarnings("ignore:skipping unreadable file")
def test_corrupt_checkpoint_is_shown_and_skipped(root):
    bad = root / "exp" / "runs" / "random-s1" / "checkpoints" / "e000009-s0000000009.safetensors"
    bad.write_bytes(b"not a checkpoint")
    (root / "exp" / "runs" / "random-s1" / "checkpoints" / ".e9.tmp").write_bytes(b"partial")
    app = create_app(root)
    with app.server.app_context():
        from fspace.app.pages import trajectories

        token = ready(app.server.extensions[EXTENSION]).token
        _, _, problems = trajectories.poll(1, "pca", [], None, 0, None, [], "exp", None)
        assert "1 file(s) could not be read" in text_of(problems[0])
        assert "e000009-s0000000009.safetensors" in text_of(problems[0])
        assert points(trajectories.draw(token, NO_FILTERS, None, None)) == 30
    app.server.extensions[EXTENSION].close()


def test_bad_map_parameter_is_a_message(pages):
    keys = [ids.param_id("tsne", "perplexity")]
    _, status, _ = pages.trajectories.poll(1, "tsne", [-5], None, 0, None, keys, "exp", None)
    assert "perplexity must be a number > 0" in text_of(status)


def test_unexpected_error_is_logged_not_shown(pages, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pages.trajectories, "details_panel", broken)
    shown = text_of(pages.trajectories.details("random-s0", "exp"))
    assert "internal error (RuntimeError)" in shown and "secret" not in shown
    assert "secret internals" in caplog.text


def dash_post(client, outputs, inputs, state=()):
    """What the browser posts to run a callback."""
    body = {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{inputs[0][0]}.{inputs[0][1]}"],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    return client.post("/_dash-update-component", json=body)


def test_router_over_http_never_sends_a_traceback(dash_app):
    client = dash_app.server.test_client()
    assert client.get("/").status_code == 200
    outputs = [("_pages_content", "children"), ("_pages_store", "data")]
    for search in ("?exp=nope", "?exp=exp&epochs=9-1&map=x", "?exp=../../etc"):
        inputs = [
            ("_pages_location", "pathname", "/trajectories"),
            ("_pages_location", "search", search),
        ]
        response = dash_post(client, outputs, inputs)
        assert response.status_code == 200
        assert "Traceback" not in response.get_data(as_text=True)
    inputs = [("_pages_location", "pathname", "/results"), ("_pages_location", "search", "")]
    assert dash_post(client, outputs, inputs).status_code == 200


def test_choose_experiment_navigates(dash_app):
    from fspace.app.server import choose_experiment

    assert choose_experiment("other", "/results", "?exp=exp") == "/results?exp=other"
    assert choose_experiment("other", "/", "") == "/trajectories?exp=other"
    from dash.exceptions import PreventUpdate

    with pytest.raises(PreventUpdate):
        choose_experiment("exp", "/trajectories", "?exp=exp")  # the page's own value


def test_single_experiment_root(root):
    state = ServerState(root / "exp")
    assert state.registry.single and state.registry.names() == ["exp"]
    assert state.registry.get("exp").path == root / "exp"
    state.close()


def test_signature_moves_with_new_checkpoints(root, suite, own_state):
    handle = own_state.registry.get("exp")
    before = handle.signature()
    assert handle.signature() == before
    record_one(root / "exp", suite)
    assert handle.signature() != before
    assert handle.scan().waiting == ()


def test_cli_serve(monkeypatch, capsys, root):
    import fspace.app.server
    from fspace.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0 and "--port" in capsys.readouterr().out
    calls = []
    monkeypatch.setattr(fspace.app.server, "_run", lambda *a: calls.append(a))
    assert main(["serve", str(root), "--host", "0.0.0.0", "--port", "8123"]) == 0
    out = capsys.readouterr()
    assert "no authentication" in out.err and "http://0.0.0.0:8123/trajectories?exp=exp" in out.out
    assert calls[0][2:4] == ("0.0.0.0", 8123)
    assert main(["serve", str(root), "--open", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err
    assert main(["serve", str(root / "missing")]) == 2
    assert fspace.app.server.is_loopback("127.0.0.1") and fspace.app.server.is_loopback("::1")
    assert not fspace.app.server.is_loopback("0.0.0.0")
