"""The dashboard's data layer without a browser: plot frames, figure dicts, URLs,
export names, placement of new checkpoints."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from fspace.app.controls import marks, window
from fspace.app.exports import export_path, export_table, safe_name
from fspace.app.figures import clicked_key, message_dict, trajectory_dict, typed
from fspace.app.frames import PlotFrame
from fspace.app.maps import MapSpec
from fspace.app.placement import neighbour_positions
from fspace.app.views import View, parse_view, view_query
from fspace.errors import ConfigError, EmbeddingError, ExportError
from fspace.plot import trajectory_figure


def make_frame(runs_per_group: int = 3, epochs: int = 4, seed: int = 0) -> pd.DataFrame:
    """An embedding-like frame: groups x runs x epochs, shuffled rows."""
    gen = np.random.default_rng(seed)
    rows = []
    for group in ("random", "pretrained", "other"):
        for s in range(runs_per_group):
            for epoch in range(epochs + 1):
                rows.append(
                    {
                        "run": f"{group}-s{s}",
                        "group": group,
                        "seed": s,
                        "epoch": epoch,
                        "step": 10 * epoch,
                        "checkpoint": f"{group}-s{s}/e{epoch}",
                        "depth": 1 + s % 2,
                        "test_error": 1.0 / (epoch + 1),
                    }
                )
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["x"] = gen.normal(size=len(frame))
    frame["y"] = gen.normal(size=len(frame))
    return frame


def decode(spec) -> np.ndarray:
    """A typed array (or plain list) from a figure dict, as float64."""
    if isinstance(spec, dict):
        values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
        if "shape" in spec:
            values = values.reshape([int(n) for n in spec["shape"].split(",")])
        return values.astype(np.float64)
    return np.asarray(spec, dtype=np.float64)


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def plot(frame) -> PlotFrame:
    return PlotFrame.build(frame)


def test_plot_frame_sorts_by_group_run_epoch(plot, frame):
    assert plot.groups == ("pretrained", "random", "other")
    order = plot.frame[["group", "run", "epoch"]]
    assert order["group"].tolist()[:15] == ["pretrained"] * 15
    for _, part in order.groupby("run"):
        assert part["epoch"].is_monotonic_increasing
    # "row" points back at the embedding's row of the same checkpoint
    back = frame.loc[plot.frame["row"], "checkpoint"].tolist()
    assert back == plot.frame["checkpoint"].tolist()


@pytest.mark.parametrize(
    ("filters", "epochs"),
    [
        ({}, None),
        ({"group": ["random"]}, None),
        ({"depth": ["2"], "seed": ["1", "2"]}, None),
        ({}, (1, 3)),
        ({"group": ["pretrained", "other"]}, (0, 0)),
        ({"group": ["no-such-group"]}, None),
        ({"method": ["rbm"]}, None),  # a column the map lacks filters nothing
    ],
    ids=["all", "group", "depth+seed", "window", "groups+window", "unknown-value", "absent"],
)
def test_mask_matches_pandas_query(plot, filters, epochs):
    labels = plot.labels()
    expected = np.ones(len(labels), dtype=bool)
    for column, chosen in filters.items():
        if column in labels:
            expected &= labels[column].astype(str).isin(chosen).to_numpy()
    if epochs is not None:
        expected &= labels["epoch"].between(*epochs).to_numpy()
    np.testing.assert_array_equal(plot.mask(filters, epochs), expected)


def test_options_sort_numbers_naturally():
    frame = make_frame()
    frame["depth"] = frame["seed"].map({0: 10, 1: 2, 2: 1})
    assert PlotFrame.build(frame).options()["depth"] == ("1", "2", "10")


def test_whole_float_column_reads_as_ints():
    frame = make_frame()
    frame["depth"] = frame["depth"].astype(float)
    frame.loc[frame["run"] == frame.loc[0, "run"], "depth"] = np.nan  # a run without depth
    assert PlotFrame.build(frame).options()["depth"] == ("1", "2", "(none)")


def test_typed_round_trip():
    values = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    spec = typed(values)
    assert spec["dtype"] == "f4" and spec["shape"] == "4,3"
    np.testing.assert_allclose(decode(spec), values, rtol=1e-6)


def test_trajectory_dict_draws_what_trajectory_figure_draws(plot, frame):
    fast = trajectory_dict(plot, plot.mask())
    reference = trajectory_figure(frame).to_plotly_json()
    assert [t["name"] for t in fast["data"]] == [t["name"] for t in reference["data"]]
    for mine, theirs in zip(fast["data"], reference["data"], strict=True):
        assert mine["mode"] == theirs["mode"] and mine["legendgroup"] == theirs["legendgroup"]
        np.testing.assert_allclose(decode(mine["x"]), decode(theirs["x"]), rtol=1e-6)
        np.testing.assert_allclose(decode(mine["y"]), decode(theirs["y"]), rtol=1e-6)
        if mine["mode"] == "markers":
            assert mine["marker"]["symbol"] == theirs["marker"]["symbol"]
            assert mine["marker"].get("line") == theirs["marker"].get("line")
            if isinstance(mine["marker"]["color"], str):
                assert mine["marker"]["color"] == theirs["marker"]["color"]
            else:
                np.testing.assert_array_equal(
                    decode(mine["marker"]["color"]), decode(theirs["marker"]["color"])
                )
        else:
            assert mine["line"] == theirs["line"]
    assert fast["layout"]["legend"] == reference["layout"]["legend"]
    for axis in ("coloraxis", "coloraxis2", "coloraxis3"):
        assert fast["layout"][axis]["colorscale"] == reference["layout"][axis]["colorscale"]


def test_trajectory_dict_hover_and_click_fields(plot):
    fig = trajectory_dict(plot, plot.mask({"group": ["random"]}))
    markers = [t for t in fig["data"] if t["meta"]["role"] == "checkpoints"]
    random = next(t for t in markers if t["name"] == "random")
    custom = decode(random["customdata"])
    assert custom.shape == (15, 4)
    rows = custom[:, 0].astype(int)
    keys = [plot.key_of(r) for r in rows]
    assert all(k.startswith("random-") for k in keys)
    assert random["text"] == [k.split("/")[0] for k in keys]
    np.testing.assert_allclose(custom[:, 3], 1 / (custom[:, 2] + 1), rtol=1e-6)
    for field in ("run", "group: random", "seed", "epoch", "test error"):
        assert field in random["hovertemplate"]
    # every group keeps its (now empty) traces, so legend toggles keep their place
    assert [len(decode(t["x"])) for t in markers] == [0, 15, 0]


def test_trajectory_dict_highlight_within_window(plot):
    mask = plot.mask(epochs=(1, 2))
    fig = trajectory_dict(plot, mask, highlight="other-s1", selected=0)
    highlight = next(t for t in fig["data"] if t["meta"]["role"] == "highlight")
    assert highlight["text"] == ["other-s1"] * 2
    np.testing.assert_array_equal(decode(highlight["marker"]["color"]), [1, 2])
    selected = next(t for t in fig["data"] if t["meta"]["role"] == "selected")
    assert selected["x"] == [pytest.approx(float(plot.x[0]))]
    # axes and colours span the whole map, not the window
    assert fig["layout"]["coloraxis"]["cmax"] == 4
    assert fig["layout"]["xaxis"]["range"][0] < plot.x.min()


def test_gaps_separate_runs(plot):
    fig = trajectory_dict(plot, plot.mask())
    lines = [t for t in fig["data"] if t["meta"]["role"] == "lines"]
    for trace in lines:
        assert np.isnan(decode(trace["x"])).sum() == 3 - 1  # 3 runs per group


def click_on(figure, trace: int, point: int) -> dict:
    """The ``clickData`` Dash sends for a point: primitive fields only."""
    t = figure["data"][trace]
    return {
        "points": [
            {
                "curveNumber": trace,
                "pointNumber": point,
                "x": float(decode(t["x"])[point]),
                "y": float(decode(t["y"])[point]),
                "text": t["text"][point],
                "marker.color": float(decode(t["marker"]["color"])[point]),
            }
        ]
    }


def test_clicked_key_finds_the_checkpoint(plot):
    fig = trajectory_dict(plot, plot.mask(epochs=(1, 3)), highlight="random-s1")
    roles = [t["meta"]["role"] for t in fig["data"]]
    markers = [i for i, role in enumerate(roles) if role == "checkpoints"]
    top = roles.index("highlight")
    for trace, point in [
        (markers[0], 0),
        (markers[0], 8),
        (markers[1], 4),
        (markers[2], 2),
        (top, 1),
    ]:
        row = int(decode(fig["data"][trace]["customdata"])[point, 0])
        assert clicked_key(plot, click_on(fig, trace, point)) == plot.key_of(row)


@pytest.mark.parametrize(
    "click",
    [None, {"points": []}, {"points": [{"x": 1, "y": 2}]}, {"points": [{"text": "nope"}]}],
    ids=["none", "no-points", "no-run", "unknown-run"],
)
def test_clicked_key_of_nothing(plot, click):
    assert clicked_key(plot, click) is None


def test_message_dict_says_it():
    fig = message_dict("nothing here")
    assert fig["data"] == [] and fig["layout"]["annotations"][0]["text"] == "nothing here"


@pytest.mark.parametrize(
    ("query", "view"),
    [
        ({}, View()),
        ({"exp": "a"}, View(exp="a")),
        ({"exp": "a", "map": "pca"}, View(exp="a", spec=MapSpec("pca"))),
        ({"map": "tsne", "perplexity": "50"}, View(spec=MapSpec("tsne", 50.0))),
        ({"map": "umap", "neighbors": "5", "map_seed": "2"}, View(spec=MapSpec("umap", 5, 2))),
        (
            {"group": "pretrained,random", "depth": "2", "epochs": "1-3"},
            View(filters=(("group", ("pretrained", "random")), ("depth", ("2",))), epochs=(1, 3)),
        ),
        ({"checkpoint": "r-s0/e000001-s0000000010"}, View(checkpoint="r-s0/e000001-s0000000010")),
    ],
    ids=["empty", "exp", "pca", "perplexity", "umap", "filters", "checkpoint"],
)
def test_parse_view_and_back(query, view):
    parsed, notes = parse_view(query)
    assert parsed == view and notes == []
    again, _ = parse_view(dict(p.split("=") for p in view_query(view)[1:].split("&") if p))
    assert again == view


def test_default_perplexity_is_left_out_of_url_and_cache_key():
    view, _ = parse_view({"exp": "a", "perplexity": "30"})
    assert view.spec == MapSpec() and view_query(view) == "?exp=a"


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"map": "no-such-method"}, "unknown embedding method 'no-such-method'"),
        ({"perplexity": "abc"}, "perplexity='abc' is not a number"),
        ({"perplexity": "-3"}, "perplexity must be a number > 0"),
        ({"map": "umap", "neighbors": "1"}, "n_neighbors must be an integer >= 2"),
        ({"epochs": "5-2"}, "epochs='5-2' is not a range"),
        ({"epochs": "x"}, "epochs='x' is not a range"),
        ({"zoom": "3"}, "unknown URL parameter 'zoom'"),
    ],
    ids=["method", "nan-param", "negative", "neighbours", "reversed", "text", "unknown"],
)
def test_bad_url_values_are_reported_and_defaulted(query, fragment):
    view, notes = parse_view(query)
    assert any(fragment in n for n in notes), notes
    assert view.epochs is None


def test_map_spec_rejects_bad_values():
    with pytest.raises(ConfigError, match="map seed"):
        MapSpec.make("pca", None, -1)
    with pytest.raises(ConfigError, match="unknown embedding method"):
        MapSpec.make("no-such-method")
    assert MapSpec.make("tsne", 30.0) == MapSpec("tsne")
    assert MapSpec.make("umap", 15).params == {}
    assert MapSpec.make("tsne", 50, 3).label == "t-SNE (perplexity 50, seed 3)"


@pytest.mark.parametrize(
    "text",
    ["../../etc/passwd", "a/b\\c", "..", "...hidden", "/abs/path", "x" * 500, "", "é ü 雪", "a..b"],
    ids=[
        "traversal",
        "separators",
        "dotdot",
        "dots",
        "absolute",
        "long",
        "empty",
        "unicode",
        "mid",
    ],
)
def test_safe_name_never_leaves_the_folder(text, tmp_path):
    name = safe_name(text, "png")
    assert "/" not in name and "\\" not in name and ".." not in name
    assert not name.startswith(".") and name.endswith(".png") and len(name) <= 130
    assert export_path(tmp_path, name).parent == tmp_path.resolve()


def test_export_path_refuses_escapes(tmp_path):
    for name in ("../x.csv", "sub/x.csv", "..", "/etc/x.csv"):
        with pytest.raises(ExportError):
            export_path(tmp_path, name)
    with pytest.raises(ExportError, match="cannot export as 'exe'"):
        safe_name("x", "exe")


def test_export_table_writes_inside_the_folder(tmp_path, plot):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = export_table(plot.labels(), folder, "../evil/name")
    assert path.parent == folder.resolve() and path.name == "evil-name.csv"
    back = pd.read_csv(path)
    assert len(back) == len(plot) and {"run", "x", "y", "checkpoint"} <= set(back.columns)
    assert list(tmp_path.iterdir()) == [folder]


def test_neighbour_positions_match_brute_force():
    gen = np.random.default_rng(3)
    old, new = gen.normal(size=(50, 6)), gen.normal(size=(7, 6))
    coords = gen.normal(size=(50, 2))
    distances = ((new[:, None, :] - old[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(distances, axis=1)[:, :5]
    expected = np.median(coords[nearest], axis=1)
    np.testing.assert_allclose(neighbour_positions(coords, old, new), expected, rtol=1e-5)
    with pytest.raises(EmbeddingError, match="empty map"):
        neighbour_positions(coords[:0], old[:0], new)


@pytest.mark.parametrize(
    ("value", "old_max", "expected"),
    [
        (None, 4, [0, 6]),
        ([1, 4], 4, [1, 6]),  # at the last epoch: follows new epochs
        ([1, 3], 4, [1, 3]),
        ([2, 9], None, [2, 6]),  # asked for in the URL: clamped, never follows
        ([8, 9], 4, [6, 6]),
    ],
    ids=["unset", "follows", "stays", "asked", "clamped"],
)
def test_epoch_window(value, old_max, expected):
    plot = PlotFrame.build(make_frame(epochs=6))
    assert window(plot, value, old_max) == (0, 6, expected)


def test_marks_stay_few():
    assert list(marks(0, 4)) == ["0", "1", "2", "3", "4"]
    ticks = marks(0, 99)
    assert len(ticks) <= 12 and "0" in ticks and "99" in ticks
