"""Hover and click answers of a large map (fspace.app.raster_hover): the answer against a
brute-force search, the run's path and its colours, the request's validation, and the
JSON endpoint behind the dashboard's security checks."""

from __future__ import annotations

import numpy as np
import pytest
from _bigmap import raster_client, synthetic_embedding
from test_raster import brute_nearest

from fspace.app import raster, raster_hover, raster_view
from fspace.app.frames import PlotFrame
from fspace.app.raster_hover import ENDPOINT, answer, parse_request
from fspace.app.spatial import TOLERANCE_PX
from fspace.errors import ConfigError


@pytest.fixture(scope="module")
def plot() -> PlotFrame:
    return PlotFrame.build(synthetic_embedding(60, 9, seed=2).frame)


def _step(plot: PlotFrame, width: int = 900, height: int = 600) -> tuple[float, float]:
    x0, x1, y0, y1 = plot.extent
    return (x1 - x0) / width, (y1 - y0) / height


def test_answer_is_the_nearest_shown_checkpoint_with_its_run(plot):
    dx, dy = _step(plot)
    points = np.column_stack([plot.x, plot.y])
    mask = plot.mask(None, (2, 7))
    rng = np.random.default_rng(3)
    found = 0
    for row in rng.choice(len(plot), 40, replace=False):
        x, y = plot.x[row] + 3 * dx, plot.y[row] - 2 * dy  # a few pixels off the point
        expected = brute_nearest(points, x, y, dx, dy, mask, TOLERANCE_PX)
        got = answer(plot, x, y, (dx, dy), mask)
        assert got["found"] is (expected is not None)
        if expected is None:
            continue
        found += 1
        labels = plot.frame.iloc[expected]
        assert got["key"] == labels["checkpoint"]
        assert (got["run"], got["epoch"]) == (labels["run"], int(labels["epoch"]))
        assert got["group"] == labels["group"]
        assert got["error"] == pytest.approx(float(plot.error[expected]))
        rows = plot.rows_of_run(got["run"])
        assert got["path"]["x"] == plot.x[rows].tolist()
        assert got["path"]["y"] == plot.y[rows].tolist()
        assert len(got["path"]["color"]) == rows.size
    assert found >= 10


def test_path_colours_follow_the_group_scale_at_each_epoch(plot):
    from fspace.plot.style import group_styles

    rows = plot.rows_of_run(str(plot.runs[1]))
    colors = raster_hover.path_colors(plot, rows)
    group = plot.groups[plot.group_code[rows[0]]]
    scale = group_styles(plot.groups)[group].colorscale
    # the first and last epochs take the ends of the group's scale
    assert colors[0] == scale[0][1].lower() and colors[-1] == scale[-1][1].lower()
    assert len(set(colors)) > 3  # the epochs between take colours between


def test_nothing_near_is_no_answer(plot):
    _, x1, _, y1 = plot.extent
    assert answer(plot, x1 + 10.0, y1 + 10.0, _step(plot)) == {"found": False}
    none_shown = np.zeros(len(plot), bool)
    assert answer(plot, float(plot.x[0]), float(plot.y[0]), _step(plot), none_shown) == {
        "found": False
    }


def test_shown_mask_is_kept_per_filter_and_window(plot):
    first = raster.shown_mask(plot, {"group": ["pretrained"]}, [0, 5])
    np.testing.assert_array_equal(first, plot.mask({"group": ["pretrained"]}, (0, 5)))
    assert raster.shown_mask(plot, {"group": ["pretrained"]}, [0, 5]) is first
    other = raster.shown_mask(plot, {}, [0, 5])
    assert other is not first and other.sum() > first.sum()


GOOD = {"token": "1.1", "x": 0.5, "y": -1, "dx": 0.01, "dy": 0.02}


@pytest.mark.parametrize(
    "body, match",
    [
        ([1, 2], "JSON object"),
        ({**GOOD, "token": 7}, "token"),
        ({**GOOD, "x": "0.5"}, "x must be a number"),
        ({**GOOD, "y": float("nan")}, "y must be finite"),
        ({**GOOD, "dx": True}, "dx must be a number"),
        ({**GOOD, "dy": 0}, "positive"),
        ({**GOOD, "filters": ["group"]}, "filters must be an object"),
        ({**GOOD, "filters": {"group": "pretrained"}}, "filter 'group'"),
        ({**GOOD, "epochs": [0]}, "epochs"),
        ({**GOOD, "epochs": [0, "9"]}, "epochs"),
    ],
    ids=[
        "not-object",
        "token",
        "x-text",
        "y-nan",
        "dx-bool",
        "dy-zero",
        "filters-list",
        "filter-text",
        "epochs-one",
        "epochs-text",
    ],
)
def test_bad_requests_name_the_field(body, match):
    with pytest.raises(ConfigError, match=match):
        parse_request(body)


def test_request_parsed():
    body = {**GOOD, "filters": {"group": ["a"], "seed": [0, 1], "depth": None}, "epochs": [1, 4]}
    token, x, y, step, filters, epochs = parse_request(body)
    assert (token, x, y, step) == ("1.1", 0.5, -1.0, (0.01, 0.02))
    assert filters == {"group": ["a"], "seed": ["0", "1"]}
    assert epochs == (1.0, 4.0)


@pytest.fixture
def served(recorded, monkeypatch):
    """(Flask test client, map token, the plot) of a dashboard whose map of "exp" is drawn
    as a picture."""
    with raster_client(recorded.parent, monkeypatch) as answer:
        yield answer


def test_endpoint_answers_behind_the_security_checks(served):
    client, token, plot = served
    dx, dy = _step(plot)
    row = 37
    body = {"token": token, "x": float(plot.x[row]), "y": float(plot.y[row]), "dx": dx, "dy": dy}
    got = client.post(ENDPOINT, json=body)
    assert got.status_code == 200 and "Content-Security-Policy" in got.headers
    assert got.get_json()["key"] == plot.frame["checkpoint"].iloc[row]
    # the page's filters and epoch window: the checkpoint is hidden, nothing else is near
    epoch = int(plot.epoch[row])
    hidden = client.post(ENDPOINT, json={**body, "epochs": [epoch + 1, epoch + 5]})
    assert hidden.get_json() == {"found": False}
    group = str(plot.groups[plot.group_code[row]])
    other = [g for g in plot.groups if g != group]
    assert client.post(ENDPOINT, json={**body, "filters": {"group": other}}).get_json() == {
        "found": False
    }
    assert client.post(ENDPOINT, json={**body, "filters": {"group": [group]}}).json["found"]

    bad = client.post(ENDPOINT, json={**body, "dx": -1})
    assert bad.status_code == 400 and "positive" in bad.get_json()["error"]
    assert client.post(ENDPOINT, data="not json").status_code == 400
    assert client.post(ENDPOINT, json={**body, "token": "999.1"}).status_code == 404
    cross = client.post(ENDPOINT, json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post(ENDPOINT, json=body, headers={"Host": "evil.example"}).status_code == 400


def test_endpoint_refuses_a_map_drawn_point_by_point(served, monkeypatch):
    client, token, plot = served
    monkeypatch.setattr(raster, "VECTOR_LIMIT", 10**9)
    body = {"token": token, "x": float(plot.x[0]), "y": float(plot.y[0]), "dx": 0.1, "dy": 0.1}
    assert client.post(ENDPOINT, json=body).status_code == 404


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_raster_figure_leaves_hover_to_the_page(plot):
    mask = np.ones(len(plot), bool)
    reported = {"x": list(plot.extent[:2]), "y": list(plot.extent[2:]), "w": 90, "h": 60}
    fig = raster_view.figure(plot, mask, {**reported, "rev": "map-1"}, "map-1")
    assert fig["layout"]["hovermode"] is False
    roles = [t["meta"]["role"] for t in fig["data"]]
    assert roles == [*["span"] * len(plot.groups), "highlight", "selected"]  # no hover grid
    assert roles[raster_view.marks_slot(plot)] == "highlight"
    patch = raster_view.selection_patch(plot, mask, str(plot.runs[2]), 7).to_plotly_json()
    changed = {op["location"][-1] for op in patch["operations"]}
    assert changed == {raster_view.marks_slot(plot), raster_view.marks_slot(plot) + 1}
