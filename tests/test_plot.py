"""Tests of the trajectory figure builder and group styles, without a browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fspace.errors import ConfigError
from fspace.plot import clicked_checkpoint, group_style, trajectory_figure
from fspace.plot.style import group_styles

GROUPS = ("pretrained", "random")
ROOT = str(Path(__file__).resolve().parents[1])


def make_frame(groups=GROUPS, runs=3, epochs=6, seed=0, shuffle=True) -> pd.DataFrame:
    """An embedding frame of random-walk paths, rows shuffled so order must be restored."""
    gen = np.random.default_rng(seed)
    rows = []
    for group in groups:
        for r in range(runs):
            position = gen.normal(size=2)
            for epoch in range(epochs):
                position = position + gen.normal(size=2)
                rows.append(
                    {
                        "run": f"{group}-s{r}",
                        "group": group,
                        "seed": r,
                        "epoch": epoch,
                        "step": 100 * epoch,
                        "checkpoint": f"{group}-s{r}/epoch-{epoch}",
                        "test_error": 0.9 / (epoch + 1),
                        "x": position[0],
                        "y": position[1],
                    }
                )
    frame = pd.DataFrame(rows)
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame


def traces(fig, role):
    return [t for t in fig.data if t.meta and t.meta["role"] == role]


def segments(values) -> list[list[float]]:
    """Split a gap-separated line coordinate array into one list per run."""
    out, current = [], []
    for v in np.asarray(values, dtype=float):
        if np.isnan(v):
            out.append(current)
            current = []
        else:
            current.append(v)
    return [*out, current]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def fig(frame):
    return trajectory_figure(frame)


ROLES = ["legend", "lines", "jumps", "checkpoints", "start", "end"]


def test_six_layers_per_group(fig):
    assert [t.meta["role"] for t in fig.data] == ROLES * len(GROUPS)
    assert [t.meta["group"] for t in traces(fig, "lines")] == list(GROUPS)
    assert [t.meta["group"] for t in traces(fig, "checkpoints")] == list(GROUPS)


def test_one_legend_entry_per_group(fig):
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown == list(GROUPS)
    for trace in fig.data:
        assert trace.legendgroup == trace.meta["group"]
    samples = {t.name: t.marker.color for t in traces(fig, "legend")}
    assert samples == {g: s.color for g, s in group_styles(GROUPS).items()}


@pytest.mark.parametrize("webgl", [True, False], ids=["webgl", "svg"])
def test_trace_type_follows_webgl(frame, webgl):
    types = {t.type for t in trajectory_figure(frame, webgl=webgl).data}
    assert types == ({"scattergl"} if webgl else {"scatter"})


def test_lines_follow_epoch_order(fig, frame):
    for lines in traces(fig, "lines"):
        group = lines.meta["group"]
        part = frame[frame["group"] == group].sort_values(["run", "epoch", "step"])
        expected_x = [g["x"].tolist() for _, g in part.groupby("run", sort=True)]
        expected_y = [g["y"].tolist() for _, g in part.groupby("run", sort=True)]
        assert segments(lines.x) == expected_x
        assert segments(lines.y) == expected_y


def test_marker_colours_are_the_epochs(fig, frame):
    epochs = frame.set_index("checkpoint")["epoch"]
    for markers in traces(fig, "checkpoints"):
        keys = [row[0] for row in markers.customdata]
        np.testing.assert_array_equal(markers.marker.color, epochs.loc[keys].to_numpy())
        assert markers.marker.coloraxis == (
            "coloraxis" if markers.name == GROUPS[0] else "coloraxis2"
        )
        # The markers sit where the frame puts their checkpoints.
        where = frame.set_index("checkpoint").loc[keys]
        np.testing.assert_array_equal(markers.x, where["x"].to_numpy())
        np.testing.assert_array_equal(markers.y, where["y"].to_numpy())


def test_one_integer_colour_bar_per_group_in_its_colour_family(fig):
    styles = group_styles(GROUPS)
    for axis, group in zip((fig.layout.coloraxis, fig.layout.coloraxis2), GROUPS, strict=True):
        assert axis.colorbar.title.text == f"{group}<br>epoch"
        assert (axis.cmin, axis.cmax) == (0, 5)
        assert (axis.colorbar.tickformat, axis.colorbar.dtick) == ("d", 1)
        assert axis.colorscale[1][1] == styles[group].color  # light -> the group's colour -> dark


def test_many_groups_share_one_neutral_colour_bar():
    names = [f"g{i}" for i in range(6)]
    fig = trajectory_figure(make_frame(groups=names, runs=1, epochs=3))
    axes = [fig.layout[f"coloraxis{i + 1}" if i else "coloraxis"] for i in range(7)]
    assert [a.showscale for a in axes[:6]] == [False] * 6
    assert axes[6].colorbar.title.text == "epoch"
    assert traces(fig, "scale")[0].marker.coloraxis == "coloraxis7"


def test_colour_by_a_metric(frame):
    fig = trajectory_figure(frame, color="test_error")
    assert fig.layout.coloraxis.colorbar.title.text == "pretrained<br>test_error"
    assert fig.layout.coloraxis.colorbar.tickformat is None  # not whole numbers
    errors = frame.set_index("checkpoint")["test_error"]
    for markers in traces(fig, "checkpoints"):
        keys = [row[0] for row in markers.customdata]
        np.testing.assert_allclose(markers.marker.color, errors.loc[keys].to_numpy())


def test_hover_shows_run_group_seed_epoch_and_test_error(fig):
    markers = traces(fig, "checkpoints")[0]
    fields = markers.meta["customdata"]
    template = markers.hovertemplate
    for name in ("run", "group", "seed", "epoch", "test_error"):
        assert f"customdata[{fields.index(name)}]" in template
    assert "test error" in template
    row = markers.customdata[0]
    assert row[fields.index("run")] == row[0].split("/")[0]


def test_hover_without_test_error(frame):
    fig = trajectory_figure(frame.drop(columns="test_error"))
    markers = traces(fig, "checkpoints")[0]
    assert "test_error" not in markers.meta["customdata"]
    assert "test error" not in markers.hovertemplate


def test_click_recovers_the_checkpoint_key(fig, frame):
    markers = traces(fig, "checkpoints")[1]
    assert markers.meta["customdata"][0] == "checkpoint"
    point = {"curveNumber": 3, "pointNumber": 4, "customdata": list(markers.customdata[4])}
    key = clicked_checkpoint({"points": [point]})
    assert key in set(frame["checkpoint"])
    assert frame.set_index("checkpoint").loc[key, "x"] == markers.x[4]
    assert clicked_checkpoint(None) is None
    assert clicked_checkpoint({"points": [{"curveNumber": 0, "pointNumber": 2}]}) is None


def test_highlighted_run_is_drawn_on_top(frame):
    fig = trajectory_figure(frame, highlight_run="random-s1")
    top = fig.data[-1]
    assert top.meta == {
        "role": "highlight",
        "run": "random-s1",
        "customdata": top.meta["customdata"],
    }
    path = frame[frame["run"] == "random-s1"].sort_values("epoch")
    np.testing.assert_array_equal(top.x, path["x"].to_numpy())
    assert top.line.width > traces(fig, "lines")[0].line.width
    assert [row[0] for row in top.customdata] == path["checkpoint"].tolist()


def test_axes_have_no_tick_labels_on_white(fig):
    assert fig.layout.xaxis.showticklabels is False
    assert fig.layout.yaxis.showticklabels is False
    assert fig.layout.template.layout.paper_bgcolor == "white"


@pytest.mark.parametrize(
    "frame_", [make_frame().iloc[:0], pd.DataFrame()], ids=["no-rows", "no-columns"]
)
def test_empty_frame_shows_a_note(frame_):
    fig = trajectory_figure(frame_, title="nothing yet")
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == ["no checkpoints"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"color": "depth"}, "cannot colour by 'depth'.*epoch"),
        ({"color": "run"}, "not numeric"),
        ({"highlight_run": "nope"}, "cannot highlight run 'nope'"),
    ],
    ids=["unknown-colour", "text-colour", "unknown-run"],
)
def test_bad_arguments_name_the_value(frame, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        trajectory_figure(frame, **kwargs)


def test_missing_columns_are_named(frame):
    with pytest.raises(ConfigError, match="lacks column.*x, y"):
        trajectory_figure(frame.drop(columns=["x", "y"]))


def test_other_groups_get_their_own_legend_entry():
    frame = make_frame(groups=("pretrained", "random", "zeta", "alpha"), runs=2, epochs=3)
    fig = trajectory_figure(frame)
    assert [t.name for t in fig.data if t.showlegend is not False] == [
        "pretrained",
        "random",
        "alpha",
        "zeta",
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["baseline", "ours"],
        ["lr0.001", "lr0.01"],
        ["pretrained", "random"],
        [f"run-{i}" for i in range(10)],
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    ],
    ids=["baseline-ours", "learning-rates", "built-in", "ten-numbered", "ten-letters"],
)
def test_any_distinct_groups_differ_in_colour_and_marker(names):
    styles = group_styles(names)
    assert len({s.color for s in styles.values()}) == len(names)
    assert len({s.symbol for s in styles.values()}) == len(names)
    assert len({(s.color, s.symbol) for s in group_styles(map(str, range(60))).values()}) == 60


def test_styles_follow_legend_order_not_hashes():
    assert group_styles(["ours", "baseline"])["baseline"] == group_styles(["a", "b"])["a"]
    assert group_style("pretrained") == group_styles(["pretrained", "random"])["pretrained"]


def test_start_and_end_of_every_run_are_marked(fig, frame):
    for role, pick in (("start", "first"), ("end", "last")):
        for trace in traces(fig, role):
            part = frame[frame["group"] == trace.meta["group"]].sort_values(["run", "epoch"])
            ends = getattr(part.groupby("run", sort=True), pick)()
            np.testing.assert_array_equal(trace.x, ends["x"].to_numpy())
    start, end = traces(fig, "start")[0], traces(fig, "end")[0]
    assert start.marker.symbol.endswith("-open") and end.marker.line.color == "black"


def test_long_jumps_are_drawn_faintly_apart_from_the_path():
    frame = make_frame(runs=2, epochs=5, shuffle=False)
    far = frame["epoch"] >= 1
    frame.loc[far, "x"] += 100.0  # every run leaps between epochs 0 and 1
    fig = trajectory_figure(frame)
    for lines, jumps in zip(traces(fig, "lines"), traces(fig, "jumps"), strict=True):
        assert [len(s) for s in segments(lines.x)] == [1, 4, 1, 4]  # split at each leap
        assert len(segments(jumps.x)) - 1 == 2 and jumps.line.dash == "dot"
        assert jumps.opacity < lines.opacity


def test_arrows_point_along_each_step():
    frame = make_frame(runs=1, epochs=4, shuffle=False)
    fig = trajectory_figure(frame, arrows=True)
    arrows = traces(fig, "arrows")
    assert [len(a.x) for a in arrows] == [3, 3]
    part = frame[frame["group"] == GROUPS[0]]
    dx, dy = np.diff(part["x"].to_numpy()), np.diff(part["y"].to_numpy())
    expected = 90 - np.degrees(np.arctan2(dy, dx))  # plotly keeps angles in [-180, 180]
    np.testing.assert_allclose(np.mod(arrows[0].marker.angle, 360), np.mod(expected, 360))


def test_other_group_styles_are_stable_across_processes():
    code = "from fspace.plot import group_style; print(group_style('adversarial'))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": ROOT},
        ).stdout
        for seed in ("1", "2")
    }
    assert outs == {f"{group_style('adversarial')}\n"}


def test_20000_points_in_1000_runs_make_one_trace_per_layer():
    # How long this takes is measured by benchmarks/bench_plot.py, not asserted here.
    frame = make_frame(groups=("pretrained", "random"), runs=500, epochs=20)
    fig = trajectory_figure(frame, highlight_run="random-s7")
    assert len(fig.data) == 6 * 2 + 1
    assert sum(len(t.x) for t in traces(fig, "checkpoints")) == 20_000
