"""The picture of a new view of a large map (fspace.app.raster_picture): what a figure
says its picture shows, the request's validation, and the JSON endpoint that renders
the view behind the dashboard's security checks."""

from __future__ import annotations

import numpy as np
import pytest
from _bigmap import raster_client, synthetic_embedding

from fspace.app import raster, raster_picture, raster_view
from fspace.app.raster import Viewport, render
from fspace.app.raster_picture import ENDPOINT, KEY, meta, parse_request, parse_view
from fspace.errors import ConfigError

VIEW = {"x": [-1.0, 2.5], "y": [-3.0, 0.5], "w": 300, "h": 200}
GOOD = {"token": "1.1", "view": VIEW}


def test_meta_names_the_map_the_checkpoints_and_the_view():
    view = Viewport(-1.0, 2.5, -3.0, 0.5, 300, 200)
    got = meta("4.2", view, {"group": ["pretrained"], "depth": [], "seed": [0]}, (2, 7))
    assert got == {
        KEY: {
            "token": "4.2",
            "filters": {"group": ["pretrained"], "seed": ["0"]},  # none chosen: left out
            "epochs": [2.0, 7.0],
            "view": VIEW,
        }
    }
    assert meta(None, view)[KEY]["filters"] == {} and meta(None, view)[KEY]["epochs"] is None


def test_view_parsed_and_pixels_clipped():
    assert parse_view(VIEW) == Viewport(-1.0, 2.5, -3.0, 0.5, 300, 200)
    huge = parse_view({**VIEW, "w": 10**9, "h": 1})
    assert (huge.width, huge.height) == (raster.MAX_PX, raster.MIN_PX)


@pytest.mark.parametrize(
    "body, match",
    [
        ([1], "JSON object"),
        ({**GOOD, "token": ""}, "token"),
        ({"token": "1.1"}, "view must be an object"),
        ({**GOOD, "view": {**VIEW, "x": [0]}}, "view.x must be"),
        ({**GOOD, "view": {**VIEW, "y": [0, float("inf")]}}, "view.y must be"),
        ({**GOOD, "view": {**VIEW, "x": [2, 1]}}, "view.x must grow"),
        ({**GOOD, "view": {**VIEW, "x": [True, 1]}}, "view.x must be"),
        ({**GOOD, "view": {**VIEW, "w": "wide"}}, "view.w"),
        ({**GOOD, "filters": {"group": "a"}}, "filter 'group'"),
        ({**GOOD, "epochs": [0, None]}, "epochs"),
    ],
    ids=[
        "not-object",
        "token",
        "no-view",
        "x-one",
        "y-inf",
        "x-backwards",
        "x-bool",
        "w-text",
        "filter-text",
        "epochs",
    ],
)
def test_bad_requests_name_the_field(body, match):
    with pytest.raises(ConfigError, match=match):
        parse_request(body)


@pytest.fixture
def served(recorded, monkeypatch):
    """(Flask test client, map token, the plot) of a dashboard whose map of "exp" is drawn
    as a picture."""
    with raster_client(recorded.parent, monkeypatch) as answer:
        yield answer


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_endpoint_renders_the_view_behind_the_security_checks(served, monkeypatch):
    client, token, plot = served
    x0, x1, y0, y1 = plot.extent
    view = {"x": [x0, (x0 + x1) / 2], "y": [y0, (y0 + y1) / 2], "w": 120, "h": 80}
    body = {"token": token, "view": view}
    got = client.post(ENDPOINT, json=body)
    assert got.status_code == 200 and "Content-Security-Policy" in got.headers
    answer = got.get_json()
    wanted = Viewport(x0, (x0 + x1) / 2, y0, (y0 + y1) / 2, 120, 80)
    assert answer["source"] == render(plot, None, wanted)  # as a figure of that view shows it
    assert {k: answer[k] for k in ("x", "y", "w", "h")} == view
    # the filters and epoch window of the page choose the checkpoints drawn
    chosen = {"filters": {"group": ["pretrained"]}, "epochs": [2, 5]}
    some = client.post(ENDPOINT, json={**body, **chosen}).get_json()
    mask = plot.mask({"group": ["pretrained"]}, (2, 5))
    assert some["source"] == render(plot, mask, wanted) != answer["source"]

    # the trajectories page's plot area is remembered for the next page, another's not
    monkeypatch.setattr(raster_picture, "AREA", {"w": 1000, "h": 580, "l": 20, "t": 50})
    client.post(ENDPOINT, json={**body, "view": {**view, "w": 300, "h": 200}})
    assert raster_picture.AREA["w"] == 1000
    client.post(ENDPOINT, json={**body, "view": {**view, "w": 300, "h": 200}, "area": True})
    assert (raster_picture.AREA["w"], raster_picture.AREA["h"]) == (300, 200)

    assert client.post(ENDPOINT, json={**body, "view": {}}).status_code == 400
    assert client.post(ENDPOINT, data="not json").status_code == 400
    assert client.post(ENDPOINT, json={**body, "token": "999.1"}).status_code == 404
    cross = client.post(ENDPOINT, json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post(ENDPOINT, json=body, headers={"Host": "evil.example"}).status_code == 400


def test_endpoint_refuses_a_map_drawn_point_by_point(served, monkeypatch):
    client, token, _ = served
    monkeypatch.setattr(raster, "VECTOR_LIMIT", 10**9)
    assert client.post(ENDPOINT, json={"token": token, "view": VIEW}).status_code == 404


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_raster_figure_says_what_its_picture_shows():
    from fspace.app.frames import PlotFrame

    plot = PlotFrame.build(synthetic_embedding(30, 9, seed=2).frame)
    mask = plot.mask({"group": ["random"]}, (1, 8))
    reported = {"x": [0.0, 1.0], "y": [-1.0, 0.0], "w": 90, "h": 60, "rev": "map-1"}
    fig = raster_view.figure(
        plot, mask, reported, "map-1", token="7.1", filters={"group": ["random"]}, epochs=[1, 8]
    )
    assert fig["layout"]["meta"] == meta(
        "7.1", Viewport(0.0, 1.0, -1.0, 0.0, 90, 60), {"group": ["random"]}, [1, 8], area=True
    )
    assert fig["layout"]["images"][0]["source"] == render(
        plot, mask, Viewport(0.0, 1.0, -1.0, 0.0, 90, 60)
    )
    np.testing.assert_allclose(fig["layout"]["xaxis"]["range"], [0.0, 1.0])
    assert raster_picture.view_words(Viewport(0.0, 1.0, -1.0, 0.0, 90, 60)) == {
        "x": [0.0, 1.0],
        "y": [-1.0, 0.0],
        "w": 90,
        "h": 60,
    }
