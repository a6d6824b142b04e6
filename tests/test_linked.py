"""Filters from the runs' own settings, and the linked views' builders: the selection,
the runs drawn on both maps, and the distance between two runs over epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _models import make_mlp
from conftest import train_step

from fspace import Experiment, Recorder
from fspace.app import linked
from fspace.app.controls import chosen_filters, setting_columns
from fspace.app.frames import MAX_FILTER_VALUES, PlotFrame, filter_columns
from fspace.app.views import parse_view, view_query
from fspace.errors import ConfigError
from fspace.store import RunInfo


def sweep_frame(settings: dict[str, list], epochs: int = 3) -> pd.DataFrame:
    """An embedding-like frame of one run per entry of the settings' lists."""
    n_runs = len(next(iter(settings.values())))
    rows = []
    for r in range(n_runs):
        for epoch in range(epochs):
            row = {"run": f"r{r}", "group": "all", "seed": r, "epoch": epoch, "step": epoch}
            row.update({k: v[r] for k, v in settings.items()})
            row.update(checkpoint=f"r{r}/e{epoch}", test_error=1.0 / (r + epoch + 1))
            rows.append(row)
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.assign(x=np.arange(len(frame), dtype=float), y=0.0)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        pytest.param({"optimizer": ["adam", "sgd"] * 3}, ("group", "seed", "optimizer"), id="key"),
        pytest.param({"lr": [0.1] * 6}, ("group", "seed"), id="one-value"),
        pytest.param(
            {"depth": [1, 2] * 3, "method": ["rbm"] * 3 + ["dae"] * 3, "act": ["relu"] * 6},
            ("group", "depth", "method", "seed"),
            id="known-first",
        ),
        pytest.param({"bs": [8, None] * 3}, ("group", "seed", "bs"), id="missing-is-a-value"),
    ],
)
def test_filters_are_the_run_settings_with_a_few_values(settings, expected):
    frame = sweep_frame(settings)
    assert filter_columns(frame) == expected
    plot = PlotFrame.build(frame)
    assert plot.columns == expected and tuple(plot.options()) == expected
    # a metric changes with the epoch: never a filter, whatever its number of values
    assert "test_error" not in plot.columns


def test_settings_with_too_many_values_are_no_filter():
    runs = MAX_FILTER_VALUES + 1
    frame = sweep_frame(
        {"lr": [10.0**-k for k in range(runs)], "opt": ["a", "b"] * (runs // 2) + ["a"]}
    )
    assert filter_columns(frame) == ("group", "opt")  # seed has 31 values too


def test_settings_that_follow_the_group_are_no_filter():
    frame = sweep_frame({"opt": ["a", "b", "a", "b"], "pretrain_lr": [0.05, 0.05, None, None]})
    frame["group"] = frame["run"].map({"r0": "pre", "r1": "pre", "r2": "rand", "r3": "rand"})
    # pretrain_lr only says which group a run is in; opt varies within the groups
    assert filter_columns(frame) == ("group", "seed", "opt")
    frame["group"] = "all"
    assert filter_columns(frame) == ("group", "seed", "opt", "pretrain_lr")


def test_a_config_key_filters_the_map():
    plot = PlotFrame.build(sweep_frame({"optimizer": ["adam", "sgd", "sgd"]}))
    keep = plot.mask({"optimizer": ["sgd"]})
    assert set(plot.frame.loc[keep, "run"]) == {"r1", "r2"}
    values = [["all"], [], ["sgd"]]
    keys = [{"type": "filter", "column": c} for c in ("group", "seed", "optimizer")]
    assert chosen_filters(values, keys) == {"group": ["all"], "seed": [], "optimizer": ["sgd"]}


def test_config_keys_in_the_url():
    columns = setting_columns([RunInfo("r", "g", 0, config={"optimizer": "adam", "epochs": 3})])
    assert {"group", "seed", "optimizer", "epochs"} <= columns
    query = {"exp": "e", "optimizer": "adam,sgd", "config.epochs": "3", "zoom": "2"}
    view, notes = parse_view(query, columns)
    assert dict(view.filters) == {"optimizer": ("adam", "sgd"), "epochs": ("3",)}
    assert notes == ["unknown URL parameter 'zoom' ignored"]
    # "epochs" is the epoch window's word: the config key is written config.epochs
    assert view_query(view) == "?exp=e&config.epochs=3&optimizer=adam,sgd"
    # without the experiment's settings a config key is an unknown word
    assert parse_view({"optimizer": "adam"})[1] == ["unknown URL parameter 'optimizer' ignored"]


def test_selection_helpers():
    selected = {"points": [{"text": "b"}, {"text": "a"}, {"text": "b"}, {"x": 1}, "junk"]}
    assert linked.runs_of_selection(selected) == ["b", "a"]
    assert linked.runs_of_selection(None) == []
    assert linked.toggle(["a", "b"], ["c"], add=False) == ["c"]
    assert linked.toggle(["a", "b"], ["c"], add=True) == ["a", "b", "c"]
    assert linked.toggle(["a", "b"], ["a"], add=True) == ["b"]
    many = [f"r{i}" for i in range(2 * linked.MAX_RUNS)]
    assert len(linked.toggle([], many, add=False)) == linked.MAX_RUNS


def test_linked_map_draws_the_selected_runs_on_top():
    plot = PlotFrame.build(sweep_frame({"optimizer": ["adam", "sgd", "sgd"]}))
    figure = linked.linked_map(plot, ["r2", "nope", "r0"])
    on_top = [t for t in figure["data"] if t["meta"]["role"] == "linked"]
    assert [t["meta"]["run"] for t in on_top] == ["r2", "r0"]
    # one colour per run, by its place in the selection (as in the curves)
    assert on_top[1]["line"]["color"] == linked.run_color(2)
    rows = plot.rows_of_run("r0")
    np.testing.assert_array_equal(decode(on_top[1]["x"]), plot.x[rows])
    plain = linked.linked_map(plot, [])
    assert not any(t["meta"]["role"] == "linked" for t in plain["data"])
    for before, after in zip(plain["data"], figure["data"], strict=False):
        if before["meta"]["role"] in ("checkpoints", "lines"):
            assert after["opacity"] == pytest.approx(before.get("opacity", 1) * linked.DIMMED)


def decode(spec) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])


def test_quality_rows():
    quality = {"trustworthiness": 0.91, "continuity": 0.8, "k": 7, "explained_stress": 0.5}
    rows = linked.quality_rows(quality)
    assert [r[:2] for r in rows] == [
        ("trustworthiness (k=7)", "0.910"),
        ("continuity (k=7)", "0.800"),
        ("explained stress", "0.500"),
    ]
    assert linked.quality_rows({}) == []


@pytest.fixture
def two_runs(tmp_path, suite):
    """Two runs recorded as logits: A has epochs 0-3, with two steps in epoch 1; B has
    epochs 1-4, so they share epochs 1-3."""
    path = tmp_path / "logits"
    plan = {
        "a": [(0, 0), (1, 10), (1, 15), (2, 20), (3, 30)],
        "b": [(e, 10 * e) for e in (1, 2, 3, 4)],
    }
    for k, (run, points) in enumerate(plan.items()):
        model = make_mlp(seed=k)
        with Recorder(
            path, run=run, group="g", seed=k, probes=suite, output="logits",
            model_factory="_models:make_mlp", model_kwargs={"seed": k},
        ) as rec:  # fmt: skip
            for epoch, step in points:
                train_step(model, seed=100 * k + step)
                rec.record(model, epoch=epoch, step=step, metrics={"loss": float(step)})
    return Experiment(path)


def reference_hellinger(exp: Experiment, a, b, suite) -> float:
    """sqrt(mean over probes of 1/2 sum (sqrt p - sqrt q)^2), from the weights."""
    probs = []
    for ckpt in (a, b):
        model = make_mlp()
        model.load_state_dict(exp.load_weights(ckpt))
        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(suite.inputs))).double()
        probs.append(torch.softmax(out, dim=-1).numpy())
    p, q = probs
    return float(np.sqrt(np.mean(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=1))))


@pytest.mark.parametrize("distance", ["hellinger", "euclidean"])
def test_distance_curve_of_two_runs(two_runs, suite, distance):
    histories = linked.by_run(two_runs.checkpoints(), ["a", "b"])
    curve = linked.distance_curve(two_runs, histories["a"], histories["b"], distance)
    assert curve["epoch"].tolist() == [1, 2, 3]
    pairs = linked.epoch_pairs(histories["a"], histories["b"])
    assert pairs[0][1].step == 15  # the last checkpoint of epoch 1
    for (_, ca, cb), value in zip(pairs, curve["distance"], strict=True):
        if distance == "hellinger":
            expected = reference_hellinger(two_runs, ca, cb, suite)
        else:  # Euclidean between the recorded logits
            va = two_runs.load_vector(ca, suite.fingerprint, "logits")
            vb = two_runs.load_vector(cb, suite.fingerprint, "logits")
            expected = float(np.linalg.norm(np.asarray(va, float) - np.asarray(vb, float)))
        assert value == pytest.approx(expected, rel=1e-5)
    figure = linked.distance_figure({"Hellinger": curve}, ["a", "b"])
    assert figure["data"][0]["y"] == curve["distance"].tolist()
    assert "between a and b" in figure["layout"]["title"]["text"]


def test_distance_curve_needs_a_common_epoch(two_runs):
    histories = linked.by_run(two_runs.checkpoints(), ["a", "b"])
    early = [c for c in histories["a"] if c.epoch == 0]
    with pytest.raises(ConfigError, match="no epoch in common"):
        linked.distance_curve(two_runs, early, histories["b"])


def test_curves_figure_one_line_per_run_and_metric(two_runs):
    histories = linked.by_run(two_runs.checkpoints(), ["b", "a"])
    figure = linked.curves_figure(histories, ["x", "b", "a"])
    lines = [(t["meta"]["run"], t["meta"]["metric"]) for t in figure["data"]]
    assert lines == [("b", "loss"), ("a", "loss")]
    assert figure["data"][1]["y"] == [0.0, 10.0, 15.0, 20.0, 30.0]
    # coloured by the place in the selection, as on the maps
    assert figure["data"][0]["line"]["color"] == linked.run_color(1)
    assert "select runs" in str(linked.curves_figure({}))


@pytest.fixture
def two_outputs(tmp_path, suite):
    """An experiment recorded as probabilities, then evaluated as logits too."""
    from conftest import record_experiment

    from fspace.evaluation import evaluate

    path = record_experiment(tmp_path / "two", suite, seeds=(0, 1), epochs=2)
    evaluate(path, output="logits", progress=False)
    return path


def wait_for_map(state, handle, spec):
    import time

    for _ in range(300):
        status = state.maps.status(handle, spec)
        if not status.busy and status.token is not None:
            return state.maps.find(status.token)
        assert not status.error, status.message
        time.sleep(0.05)
    raise AssertionError(f"no map of {spec}")


@pytest.mark.slow
def test_every_recorded_output_can_be_mapped(two_outputs):
    from fspace.app.server import create_app
    from fspace.app.specs import MapSpec, chosen_output, recorded_outputs
    from fspace.app.state import EXTENSION

    exp = Experiment(two_outputs)
    assert recorded_outputs(exp) == (
        ("prob", "probabilities (classification)"),
        ("logits", "logits (classification)"),
    )
    assert chosen_output(exp, "prob") is None and chosen_output(exp, "logits") == "logits"
    app = create_app(two_outputs)
    state = app.server.extensions[EXTENSION]
    try:
        handle = state.registry.get("two")
        maps = {
            o: wait_for_map(state, handle, MapSpec.make("pca", output=o)) for o in (None, "logits")
        }
        assert maps[None].embedding.output == "prob"
        assert maps["logits"].embedding.output == "logits"
        # the logits map is the PCA of the recorded logits
        ckpts = {c.key: c for c in exp.checkpoints()}
        rows = [
            np.asarray(exp.load_vector(ckpts[k], exp.probes().fingerprint, "logits"), float)
            for k in maps["logits"].embedding.points["checkpoint"]
        ]
        from sklearn.decomposition import PCA

        expected = PCA(2).fit_transform(np.stack(rows))
        got = maps["logits"].embedding.coords
        for axis in range(2):  # PCA's axes are defined up to their sign
            assert abs(np.corrcoef(got[:, axis], expected[:, axis])[0, 1]) == pytest.approx(
                1, abs=1e-4
            )
        from fspace.app.maps import used_label

        assert used_label(maps["logits"]) == "PCA · logits"
        assert used_label(maps[None]) == "PCA"
    finally:
        state.close()


def test_output_in_the_url():
    view, notes = parse_view({"exp": "e", "output": "logits"})
    assert view.spec.output == "logits" and not notes
    assert view_query(view) == "?exp=e&method=tsne&output=logits"
    view, notes = parse_view({"exp": "e", "output": "nope"})
    assert view.spec.output is None and "output='nope' is not a vector form" in notes[0]


def test_compare_url_round_trip():
    from fspace.app.compare_view import selected_runs, side_spec, spec_query, unknown_words
    from fspace.app.specs import MapSpec

    query = {"a": "tsne", "a.perplexity": "50", "b.distance": "hellinger", "b.output": "logits"}
    query["runs"] = "r1,r2,r3"
    notes: list[str] = []
    a, b = side_spec(query, "a", notes), side_spec(query, "b", notes)
    assert a == MapSpec("tsne", 50.0) and not notes
    assert b == MapSpec("inpca", distance="hellinger", output="logits")  # b's default method
    words = {**spec_query("a", a), **spec_query("b", b)}
    assert side_spec(words, "a", []) == a and side_spec(words, "b", []) == b
    assert words["b.output"] == "logits" and words["a.perplexity"] == "50"
    assert selected_runs(query, 2) == ["r1", "r2"]
    bad = side_spec({"a": "tsne", "a.perplexity": "-3"}, "a", notes)
    assert bad == MapSpec("tsne") and notes[0].startswith("map a: ")
    assert side_spec({"b": "nope"}, "b", []) == MapSpec("inpca", distance="bhattacharyya")
    # the default distance of map b applies to probabilities, not to regression outputs
    assert side_spec({}, "b", [], "regression") == MapSpec("inpca")
    assert unknown_words({"exp": "e", "a.perplexity": "5", "zoom": "2", "c": "x"}) == ["c", "zoom"]


@pytest.mark.slow  # datashader compiles its kernels on the first picture
def test_a_large_map_is_a_picture_with_the_selected_runs_on_top(monkeypatch):
    plot = PlotFrame.build(sweep_frame({"optimizer": ["adam", "sgd"] * 10}, epochs=5))
    assert linked.linked_map(plot, [])["layout"].get("images") is None  # 100 points: drawn
    monkeypatch.setattr("fspace.app.raster.VECTOR_LIMIT", 32)
    figure = linked.linked_map(plot, [], title="t-SNE", uirevision="compare-a-1")
    (image,) = figure["layout"]["images"]
    assert image["source"].startswith("data:image/png;base64,") and "opacity" not in image
    roles = [t["meta"]["role"] for t in figure["data"]]
    assert "checkpoints" not in roles and "grid" not in roles  # clicks go to the server
    picture = figure["layout"]["meta"]["fspace_picture"]
    assert picture["token"] is None and "clicks" not in picture  # none named here
    assert figure["layout"]["title"]["text"] == "t-SNE"
    figure = linked.linked_map(plot, ["r3", "r7"], uirevision="compare-a-1")
    assert figure["layout"]["images"][0]["opacity"] == linked.DIMMED
    drawn = [t for t in figure["data"] if t["meta"]["role"] == "linked"]
    assert [t["meta"]["run"] for t in drawn] == ["r3", "r7"]
    assert {t["type"] for t in drawn} == {"scatter"}  # nothing drawn with WebGL
    # the view the browser reported for this figure is rendered, another map's is not
    view = {"x": [0, 10], "y": [-1, 1], "w": 300, "h": 200, "rev": "compare-a-1"}
    zoomed = linked.linked_map(plot, [], uirevision="compare-a-1", view=view)["layout"]
    assert zoomed["xaxis"]["range"] == [0, 10]
    other = linked.linked_map(plot, [], uirevision="compare-a-2", view=view)["layout"]
    assert other["xaxis"]["range"] == list(plot.extent[:2])
    # what the page's script needs to render a zoom and answer a click
    named = linked.linked_map(
        plot, [], uirevision="compare-a-1", view=view, token="3.1", clicks="c"
    )
    assert named["layout"]["meta"]["fspace_picture"] == {
        "token": "3.1",
        "filters": {},
        "epochs": None,
        "view": {"x": [0, 10], "y": [-1, 1], "w": 300, "h": 200},
        "clicks": "c",
    }


@pytest.mark.parametrize(
    "picked, runs",
    [
        ({"run": "r3", "key": "r3/e000001-s0000000000", "at": 1}, ["r3"]),
        ({"run": ""}, []),
        ({"run": 7}, []),
        (["r3"], []),
        (None, []),
    ],
    ids=["picked", "empty", "number", "list", "none"],
)
def test_a_click_on_a_raster_map_picks_the_run_the_page_reports(picked, runs):
    assert linked.picked_runs(picked) == runs


def test_points_in_polygon_match_the_winding_number():
    gen = np.random.default_rng(4)
    x, y = gen.uniform(-2, 2, 5000), gen.uniform(-2, 2, 5000)
    angles = np.sort(gen.uniform(0, 2 * np.pi, 40))
    radius = gen.uniform(0.5, 1.8, 40)  # a star-shaped, non-convex lasso
    px, py = radius * np.cos(angles), radius * np.sin(angles)
    # reference: the angle the polygon's edges turn around each point sums to 2 pi inside
    a = np.arctan2(py[None, :] - y[:, None], px[None, :] - x[:, None])
    turn = np.diff(np.concatenate([a, a[:, :1]], axis=1), axis=1)
    turn = (turn + np.pi) % (2 * np.pi) - np.pi
    expected = np.abs(turn.sum(axis=1)) > np.pi
    got = linked.points_in_polygon(x, y, px, py)
    assert got.sum() > 500 and (got != expected).sum() <= 2  # points on an edge may differ


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        pytest.param(
            {"lassoPoints": {"x": [5.5, 9.5, 9.5, 5.5], "y": [-1, -1, 1, 1]}}, 4, id="lasso"
        ),
        pytest.param({"range": {"x": [9.5, 5.5], "y": [1, -1]}}, 4, id="box"),
        pytest.param({"points": []}, 0, id="no-region"),
        pytest.param({"lassoPoints": {"x": [1, 2], "y": [1, 2]}}, 0, id="two-vertices"),
        pytest.param({"lassoPoints": {"x": ["a", 2, 3], "y": [1, 2, 3]}}, 0, id="not-numbers"),
        pytest.param({"range": {"x": [0, float("nan")], "y": [0, 1]}}, 0, id="nan"),
        pytest.param("crafted", 0, id="not-a-dict"),
    ],
)
def test_runs_in_a_region_of_a_raster_map(selected, expected):
    plot = PlotFrame.build(sweep_frame({"optimizer": ["adam", "sgd"] * 3}, epochs=3))
    runs = linked.runs_in_region(plot, selected)
    inside = (plot.x > 5.5) & (plot.x < 9.5)  # the checkpoints at x = 6..9
    assert expected == (4 if runs else 0) and inside.sum() == 4
    if runs:  # their runs, those with the most checkpoints inside first
        assert set(runs) == {str(plot.runs[c]) for c in plot.run_code[inside]}
        counts = [int((plot.run_code[inside] == list(plot.runs).index(r)).sum()) for r in runs]
        assert counts == sorted(counts, reverse=True)
