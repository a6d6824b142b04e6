"""PlotFrame.build at scale: filter codes and groups from factorised labels equal those
of the plain per-value computation, on every kind of column a run setting can be."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fspace.app.frames import MISSING, PlotFrame, _codes, _natural


def reference_codes(column: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every value as text, one at a time (what _codes computes)."""
    if column.dtype.kind == "f" and np.allclose(column.dropna() % 1, 0):
        column = column.astype("Int64")
    text = column.astype(str).where(column.notna(), MISSING)
    uniques = sorted(set(text), key=_natural)
    index = {v: i for i, v in enumerate(uniques)}
    return text.map(index).to_numpy(np.int32), tuple(uniques)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([3, 1, 2, 10, 1], id="int"),
        pytest.param([2.0, np.nan, 1.0, 2.0], id="whole-floats-missing"),
        pytest.param([0.1, 0.25, 0.1, np.nan], id="floats"),
        pytest.param(["b", None, "a", "b", "(none)"], id="text-missing"),
        pytest.param([1, "1", 2.5, None, True], id="mixed"),
        pytest.param([True, False, True], id="bool"),
        pytest.param(["x", "x"], id="one"),
    ],
)
def test_codes_match_the_per_value_text(values):
    column = pd.Series(values * 3)
    codes, uniques = _codes(column)
    expected_codes, expected = reference_codes(column)
    assert uniques == expected
    np.testing.assert_array_equal(codes, expected_codes)


def test_build_orders_and_codes_as_before():
    gen = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "run": [f"r{i % 37}" for i in range(n)],
            "group": [["random", "pretrained", "g10", "g2"][i % 37 % 4] for i in range(n)],
            "seed": [i % 37 % 5 for i in range(n)],
            "depth": [float(i % 37 % 3) if i % 37 != 5 else np.nan for i in range(n)],
            "epoch": gen.integers(0, 20, n),
            "step": 0,
            "checkpoint": [f"c{i}" for i in range(n)],
            "x": gen.normal(size=n),
            "y": gen.normal(size=n),
        }
    ).sample(frac=1.0, random_state=1)
    plot = PlotFrame.build(frame)
    assert plot.groups == ("pretrained", "random", "g2", "g10")
    np.testing.assert_array_equal(
        plot.group_code, [plot.groups.index(g) for g in plot.frame["group"]]
    )
    # drawing order: group (legend order), run, epoch, step
    keys = list(zip(plot.group_code, plot.frame["run"], plot.frame["epoch"], strict=True))
    assert keys == sorted(keys)
    for column in plot.columns:
        codes, values = reference_codes(plot.frame[column])
        assert plot.values[column] == values
        np.testing.assert_array_equal(plot.codes[column], codes)
    assert plot.values["depth"][-1] == MISSING
