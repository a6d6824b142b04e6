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
from fspace.plot.style import FIXED

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


def test_two_traces_per_group(fig):
    assert len(fig.data) == 2 * len(GROUPS)
    assert [t.meta["group"] for t in traces(fig, "lines")] == list(GROUPS)
    assert [t.meta["group"] for t in traces(fig, "checkpoints")] == list(GROUPS)


def test_one_legend_entry_per_group(fig):
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown == list(GROUPS)
    for trace in fig.data:
        assert trace.legendgroup == trace.meta["group"]


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
        assert markers.marker.coloraxis == "coloraxis"
        # The markers sit where the frame puts their checkpoints.
        where = frame.set_index("checkpoint").loc[keys]
        np.testing.assert_array_equal(markers.x, where["x"].to_numpy())
        np.testing.assert_array_equal(markers.y, where["y"].to_numpy())


def test_one_colour_bar_titled_epoch(fig):
    axis = fig.layout.coloraxis
    assert axis.colorbar.title.text == "epoch"
    assert (axis.cmin, axis.cmax) == (0, 5)
    assert axis.colorscale[0][1] == "#440154"  # Viridis


def test_colour_by_a_metric(frame):
    fig = trajectory_figure(frame, color="test_error", colorscale="Plasma")
    assert fig.layout.coloraxis.colorbar.title.text == "test_error"
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


def test_fixed_group_styles():
    assert group_style("pretrained") == FIXED["pretrained"]
    assert group_style("random") == FIXED["random"]
    assert group_style("pretrained").symbol != group_style("random").symbol
    assert group_style("pretrained").dash != group_style("random").dash


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
    assert group_style("adversarial") not in FIXED.values()


def test_20000_points_in_1000_runs_make_one_trace_per_layer():
    # How long this takes is measured by benchmarks/bench_plot.py, not asserted here.
    frame = make_frame(groups=("pretrained", "random"), runs=500, epochs=20)
    fig = trajectory_figure(frame, highlight_run="random-s7")
    assert len(fig.data) == 5
    assert sum(len(t.x) for t in traces(fig, "checkpoints")) == 20_000
