"""A 1,000,000-checkpoint map in headless Chromium: drawn as a server-rendered picture,
hover and click answered by the server (the page's script asks it, outside Dash), a
hover showing that checkpoint's run and epoch, a click opening the right checkpoint.

The map is synthetic (tests/_bigmap.py) and given to the server as a computed map
(:meth:`MapStore.adopt`); the checkpoints of one recorded run lie on a line below the
synthetic ones, so a click on one of them must open exactly that checkpoint.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from _bigmap import (
    ANSWER_JS,
    PLACE_JS,
    real_points,
    serving,
    synthetic_embedding,
    with_real_runs,
)
from conftest import record_experiment
from test_app_callbacks import probe_suite
from test_dashboard_browser import driver, page_text, wait_for  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
]

SIZE = 1_000_000
# Between the recorded run's checkpoints, as a share of the map's width: about 6 pixels,
# so that several lie within a click's tolerance and only the nearest is right.
SPACING = 6 / 1000
IMAGE_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
return Boolean(gd && gd._fullLayout && gd.layout.images && gd.layout.images.length
    && document.querySelector('#trajectory-graph image'));
"""
GL_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
return gd._fullData.filter(t => t.type === 'scattergl').length;
"""


@pytest.fixture(scope="module")
def big_map(tmp_path_factory):
    """A server whose map of experiment "exp" holds 1,000,000 checkpoints, one recorded
    run's among them; yields (url, the recorded run's checkpoints as (key, x, y))."""
    from fspace.app.maps import MapSpec
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    root = tmp_path_factory.mktemp("raster")
    record_experiment(root / "exp", probe_suite(), groups=("pretrained",), seeds=(0,))
    app = create_app(root, poll_ms=500)
    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("exp")
    embedding = synthetic_embedding(SIZE // 20, 19)
    x0, y0 = embedding.coords.min(axis=0)
    real = real_points(handle)
    width = float(np.ptp(embedding.coords[:, 0]))
    embedding = with_real_runs(embedding, real, (x0, y0 - 2.0), SPACING * width)
    state.maps.adopt(handle, MapSpec.make("pca"), embedding)
    placed = [
        (key, float(x), float(y))
        for key, (x, y) in zip(real["checkpoint"], embedding.coords[: len(real)], strict=True)
    ]
    with serving(app) as url:
        yield url, placed


def point_at(browser, x, y, dx=0, dy=0, *, click: bool = False, away: bool = True) -> None:
    """Move the pointer off the map (if ``away``), then onto the map place ``(x, y)``
    (``dx``, ``dy`` pixels off it), and click there if ``click``."""
    from selenium.webdriver.common.action_chains import ActionChains

    px, py = browser.execute_script(PLACE_JS, x, y)
    actions = ActionChains(browser, duration=0)
    if away:
        actions.w3c_actions.pointer_action.move_to_location(1, 1).pause(0.1)
    actions.w3c_actions.pointer_action.move_to_location(round(px) + dx, round(py) + dy)
    if click:
        actions.w3c_actions.pointer_action.pause(0.2).click()
    actions.perform()


def answer(browser, state: str, what: str):
    """The answer shown once it is a ``state`` ("hover" or "selected") one."""
    return wait_for(
        browser,
        lambda d: (got := d.execute_script(ANSWER_JS)) and got[1] == state and got,
        what=what,
    )


def open_page(browser, url: str, query: str = "") -> None:
    """Open the map (``query`` added to the URL) and wait until hovers are answered."""
    browser.get(f"{url}/trajectories?exp=exp&method=pca{query}")
    wait_for(browser, lambda d: d.execute_script(IMAGE_JS), what="the map's picture")
    wait_for(browser, lambda d: d.execute_script(READY_JS), what="the hover script")


READY_JS = "return window.dash_clientside.fspace_raster.ready()"


def test_million_checkpoints_click_opens_the_right_checkpoint(driver, big_map):  # noqa: F811
    url, placed = big_map
    open_page(driver, url)
    assert "1,000,000 checkpoints" in page_text(driver)
    assert driver.execute_script(GL_JS) == 0  # nothing drawn point by point
    key, x, y = placed[3]
    px = driver.execute_script(PLACE_JS, x, y)[0]
    after = driver.execute_script(PLACE_JS, *placed[4][1:])[0]
    assert 4 <= after - px <= 10  # its neighbours lie within the click's tolerance
    # a little off the point: the server picks the nearest within its tolerance
    point_at(driver, x, y, 1, -1, click=True)
    selected = answer(driver, "selected", "the click's answer")
    assert selected[0] == key
    details = wait_for(
        driver,
        lambda d: d.find_elements("css selector", "#checkpoint-details [data-checkpoint]"),
        what="the details",
    )
    assert details[0].get_attribute("data-checkpoint") == key
    run = key.split("/")[0]
    wait_for(
        driver,
        lambda d: d.execute_script(
            "return document.querySelector('#trajectory-graph .js-plotly-plot')._fullData"
            ".some(t => t.meta && t.meta.role === 'highlight' && t.meta.run === arguments[0])",
            run,
        ),
        what="the clicked run's path on top",
    )


def test_hover_shows_the_checkpoint_under_the_pointer(driver, big_map):  # noqa: F811
    url, placed = big_map
    open_page(driver, url)
    key, x, y = placed[1]
    point_at(driver, x, y)
    got = answer(driver, "hover", "the hover's answer")
    run = key.split("/")[0]
    assert got[0] == key
    assert f"run: {run}" in got[2] and "epoch: 1\n" in got[2] + "\n"
    assert got[3] == sum(k.startswith(f"{run}/") for k, _, _ in placed)  # the run's path
    point_at(driver, *placed[2][1:])  # the next checkpoint answers for itself
    assert answer(driver, "hover", "the next answer")[0] == placed[2][0]
    assert not driver.find_elements("css selector", "#checkpoint-details [data-checkpoint]")


def test_hover_answers_among_the_checkpoints_shown(driver, big_map):  # noqa: F811
    url, placed = big_map
    open_page(driver, url, "&epochs=3-19")
    point_at(driver, *placed[3][1:])
    assert answer(driver, "hover", "the hover's answer")[0] == placed[3][0]
    # epoch 1 is outside the window, and the checkpoints shown lie beyond the tolerance:
    # the answer for epoch 3 goes (straight there, so the answer that hides it is this one)
    point_at(driver, *placed[1][1:], away=False)
    wait_for(driver, lambda d: d.execute_script(ANSWER_JS) is None, what="no answer")
    assert driver.execute_script("return document.getElementById('map-answer').hidden")


# Record the outputs of Dash's callback requests (window.fsDashOutputs).
DASH_REQUESTS_JS = """
window.fsDashOutputs = [];
window.fsPictureViews = [];
if (!window.fsFetchHooked) {
    window.fsFetchHooked = true;
    const fetch0 = window.fetch;
    window.fetch = function (url, options) {
        const body = options && typeof options.body === 'string' ? options.body : '';
        if (String(url).includes('_dash-update-component')) {
            window.fsDashOutputs.push((body.match(/"output":"([^"]*)"/) || [])[1]);
        }
        if (String(url).includes('_fspace/picture')) {
            window.fsPictureViews.push(JSON.parse(body).view);
        }
        return fetch0.apply(this, arguments);
    };
}
"""
# Zoom or pan the map to [x0, x1] x [y0, y1] by relayout, as a drag does.
ZOOM_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
Plotly.relayout(gd, {'xaxis.range': [arguments[0], arguments[1]],
                     'yaxis.range': [arguments[2], arguments[3]]});
"""
# Where the picture lies, its source, and the page script's picture requests and drawings.
PICTURE_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const i = gd.layout.images[0];
return [[i.x, i.x + i.sizex, i.y - i.sizey, i.y], i.source,
        Number(gd.dataset.pictureAsked || 0), Number(gd.dataset.pictureDrawn || 0)];
"""


def test_zoom_renders_the_view_through_the_picture_endpoint(driver, big_map):  # noqa: F811
    url, placed = big_map
    open_page(driver, url)
    driver.execute_script(DASH_REQUESTS_JS)
    box, source, asked, drawn = driver.execute_script(PICTURE_JS)
    key, x, y = placed[3]
    half = [(box[1] - box[0]) / 20, (box[3] - box[2]) / 20]  # a tenth of the map
    view = [x - half[0], x + half[0], y - half[1], y + half[1]]
    driver.execute_script(ZOOM_JS, *view)
    # the picture of the new view, placed on it (a first picture sized to the page's plot
    # area may be drawn before it, on a slow machine)
    got = wait_for(
        driver,
        lambda d: (p := d.execute_script(PICTURE_JS))[3] > drawn and np.allclose(p[0], view) and p,
        what="zoom",
    )
    assert got[1] != source and got[1].startswith("data:image/png;base64,")
    assert got[2] > asked
    # the new view asked for once per plot-area size (a page still settling, its scroll bar
    # appearing, may resize the plot area once more, which asks for that size)
    views = driver.execute_script("return window.fsPictureViews")
    asked_for = [(v["w"], v["h"]) for v in views if np.allclose(v["x"] + v["y"], view)]
    assert asked_for and len(set(asked_for)) == len(asked_for), views
    assert "trajectory-graph.figure" not in driver.execute_script("return window.fsDashOutputs")
    # the recorded run's checkpoints, 6 pixels apart on the whole map, are 60 apart now
    px = driver.execute_script(PLACE_JS, x, y)[0]
    assert 50 <= driver.execute_script(PLACE_JS, *placed[4][1:])[0] - px <= 70
    # a click in the zoomed view opens its checkpoint; the picture and view stay
    point_at(driver, x, y, 3, -3, click=True)
    assert answer(driver, "selected", "the click's answer")[0] == key
    wait_for(
        driver,
        lambda d: d.find_elements("css selector", f"#checkpoint-details [data-checkpoint='{key}']"),
        what="the details",
    )
    wait_for(
        driver,
        lambda d: "trajectory-graph.figure" in d.execute_script("return window.fsDashOutputs"),
        what="the selection drawn",
    )
    time.sleep(0.5)  # the selection's patch has been drawn
    after = driver.execute_script(PICTURE_JS)
    np.testing.assert_allclose(after[0], view)
    # no picture asked again: the click changed neither the view nor the plot area (the
    # page keeps its scroll bar's room, so the details panel below does not narrow it)
    again = driver.execute_script("return window.fsPictureViews")[len(views) :]
    assert after[1] == got[1] and after[2] == got[2] and not again, again
    # a pan back to the view of the first picture asks for it again
    driver.execute_script(ZOOM_JS, *box)
    back = wait_for(
        driver, lambda d: (p := d.execute_script(PICTURE_JS)) and p[3] > after[3] and p, what="pan"
    )
    np.testing.assert_allclose(back[0], box)
