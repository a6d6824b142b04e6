"""Result figures of the pre-training experiment: panels, traces and the data they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fspace.errors import ConfigError
from fspace.experiments.pretraining.analysis import error_summary
from fspace.experiments.pretraining.figures import (
    error_depth_figure,
    error_histogram_figure,
    error_table_figure,
    mosaic,
    receptive_fields_figure,
    weight_change_figure,
)
from fspace.plot.style import group_style

GROUPS = ("pretrained", "random")


def final_frame(depths=(1, 2, 3), seeds=(0, 1, 2)) -> pd.DataFrame:
    """Final errors as final_errors() returns them, with distinct values per run."""
    gen = np.random.default_rng(0)
    rows = [
        {
            "run": f"rbm-d{d}-s{s}-{g}",
            "group": g,
            "depth": d,
            "seed": s,
            "epoch": 5,
            "test_error": 0.02 * d + (0.03 if g == "random" else 0) + 0.01 * gen.random(),
        }
        for g in GROUPS
        for d in depths
        for s in seeds
    ]
    return pd.DataFrame(rows)


def change_frame(depths=(1, 3), seeds=(0, 1)) -> pd.DataFrame:
    gen = np.random.default_rng(1)
    rows = []
    for g in GROUPS:
        for d in depths:
            for s in seeds:
                layers = [f"hidden {i}" for i in range(1, d + 1)] + ["output"]
                for layer in layers:
                    rows.append(
                        {
                            "run": f"rbm-d{d}-s{s}-{g}",
                            "group": g,
                            "depth": d,
                            "seed": s,
                            "layer": layer,
                            "relative_change": gen.random(),
                            "change": 1.0,
                        }
                    )
    return pd.DataFrame(rows)


def n_panels(fig) -> int:
    return sum(1 for key in fig.layout.to_plotly_json() if key.startswith("xaxis"))


def is_message(fig, text: str) -> bool:
    return len(fig.data) == 0 and any(text in a.text for a in fig.layout.annotations)


EMPTY_CASES = [
    (error_histogram_figure, final_frame().iloc[:0], "no finished runs"),
    (error_depth_figure, final_frame().iloc[:0], "no finished runs"),
    (weight_change_figure, change_frame().iloc[:0], "no weight changes"),
    (error_table_figure, error_summary(final_frame().iloc[:0]), "no finished runs"),
]


@pytest.mark.parametrize(
    ("builder", "frame", "text"), EMPTY_CASES, ids=["histogram", "depth", "weights", "table"]
)
def test_empty_input_gives_a_message(builder, frame, text):
    assert is_message(builder(frame), text)


def test_empty_filters_give_a_message():
    empty = np.zeros((0, 4, 4))
    assert is_message(receptive_fields_figure(empty, empty), "no filters")


# error histogram ---------------------------------------------------------------------


def test_histogram_has_a_panel_per_depth_and_draws_the_final_errors():
    final = final_frame()
    fig = error_histogram_figure(final, title="final")
    assert n_panels(fig) == 3
    assert len(fig.data) == 3 * len(GROUPS)
    for trace in fig.data:
        part = final[(final["depth"] == trace.meta["depth"]) & (final["group"] == trace.name)]
        np.testing.assert_array_equal(np.asarray(trace.x), part["test_error"].to_numpy())
        assert trace.marker.color == group_style(trace.name).color
    assert [t.name for t in fig.data if t.showlegend] == list(GROUPS)
    assert len({(t.xbins.start, t.xbins.size) for t in fig.data}) == 1  # shared bins
    assert fig.layout.barmode == "overlay"


def test_histogram_bins_cover_every_error():
    final = final_frame()
    bins = error_histogram_figure(final, bins=4).data[0].xbins
    assert bins.start < final["test_error"].min() and bins.end > final["test_error"].max()
    assert bins.size == pytest.approx(np.ptp(final["test_error"]) / 4)


def test_histogram_of_a_single_run():
    fig = error_histogram_figure(final_frame().iloc[:1])
    assert n_panels(fig) == 1 and len(fig.data) == 1 and fig.data[0].xbins.size > 0


# error against depth -----------------------------------------------------------------


def test_depth_figure_draws_means_with_std_and_every_seed():
    final = final_frame()
    fig = error_depth_figure(final)
    means = [t for t in fig.data if t.meta["role"] == "mean"]
    seeds = [t for t in fig.data if t.meta["role"] == "seeds"]
    assert [t.name for t in means] == list(GROUPS) and len(seeds) == len(GROUPS)
    for trace in means:
        part = final[final["group"] == trace.name]
        by_depth = part.groupby("depth")["test_error"]
        np.testing.assert_allclose(trace.y, by_depth.mean().to_numpy())
        np.testing.assert_allclose(trace.error_y.array, by_depth.std(ddof=1).to_numpy())
    assert sum(len(t.y) for t in seeds) == len(final)


def test_depth_figure_of_a_single_run_has_no_spread():
    fig = error_depth_figure(final_frame().iloc[:1])
    assert list(fig.data[0].error_y.array) == [0.0]


def test_depth_figure_names_missing_columns():
    with pytest.raises(ConfigError, match="depth"):
        error_depth_figure(final_frame().drop(columns=["depth"]))


# receptive fields --------------------------------------------------------------------


def test_mosaic_tiles_normalised_filters_row_by_row():
    filters = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3) - 7
    tiled = mosaic(filters, gap=1)
    assert tiled.shape == (2 * 2 + 1, 3 * 3 + 2)  # 5 filters fill 2 rows of 3
    for i, f in enumerate(filters):
        r, c = divmod(i, 3)
        tile = tiled[r * 3 : r * 3 + 2, c * 4 : c * 4 + 3]
        np.testing.assert_allclose(tile, f / np.abs(f).max())
    assert np.isnan(tiled[2]).all() and np.isnan(tiled[:, 3]).all()  # gaps
    assert np.isnan(tiled[3:, 8:]).all()  # the unused sixth tile


def test_mosaic_of_a_zero_filter_is_zero():
    np.testing.assert_array_equal(mosaic(np.zeros((1, 2, 2))), np.zeros((2, 2)))


def test_receptive_fields_figure_shows_before_and_after():
    gen = np.random.default_rng(2)
    before = gen.normal(size=(16, 4, 4))
    after = before + 0.1 * gen.normal(size=before.shape)
    fig = receptive_fields_figure(before, after, title="filters")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    for trace, filters in zip(fig.data, (before, after), strict=True):
        np.testing.assert_allclose(np.asarray(trace.z, dtype=float), mosaic(filters))
        assert np.asarray(trace.z, dtype=float).shape == (4 * 4 + 3, 4 * 4 + 3)
        assert (trace.zmin, trace.zmax) == (-1, 1)
    assert fig.layout.xaxis.scaleanchor == "y" and fig.layout.xaxis2.scaleanchor == "y2"
    assert fig.layout.xaxis.showticklabels is False


def test_receptive_fields_figure_refuses_mismatched_shapes():
    with pytest.raises(ConfigError, match="differ in shape"):
        receptive_fields_figure(np.zeros((2, 3, 3)), np.zeros((3, 3, 3)))


# weight changes ----------------------------------------------------------------------


def test_weight_change_figure_has_a_panel_per_depth_and_the_mean_per_layer():
    changes = change_frame()
    fig = weight_change_figure(changes)
    assert n_panels(fig) == 2
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 2 * len(GROUPS)
    for bar in bars:
        part = changes[(changes["depth"] == bar.meta["depth"]) & (changes["group"] == bar.name)]
        stats = part.groupby("layer")["relative_change"]
        assert list(bar.x) == list(stats.mean().index)  # "hidden 1", ..., "output"
        assert list(bar.x)[-1] == "output"
        np.testing.assert_allclose(bar.y, stats.mean().to_numpy())
        np.testing.assert_allclose(bar.error_y.array, stats.std().to_numpy())
        assert bar.marker.color == group_style(bar.name).color
    points = [t for t in fig.data if t.type == "scatter"]
    assert sum(len(t.y) for t in points) == len(changes)


def test_weight_change_figure_of_a_single_run():
    changes = change_frame()
    one = changes[changes["run"] == changes["run"].iloc[0]]
    fig = weight_change_figure(one)
    assert n_panels(fig) == 1 and list(fig.data[0].error_y.array) == [0.0, 0.0]


def test_error_table_lists_every_group_and_depth():
    stats = error_summary(final_frame())
    table = error_table_figure(stats).data[0]
    assert list(table.cells.values[0]) == stats["group"].tolist()
    assert list(table.cells.values[5]) == stats["n"].tolist()
