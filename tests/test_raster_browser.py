"""A 1,000,000-checkpoint map in headless Chromium: drawn as a server-rendered picture,
hover and click answered by the server, a click opening the right checkpoint's details.

The map is synthetic (tests/_bigmap.py) and given to the server as a computed map
(:meth:`MapStore.adopt`); the checkpoints of one recorded run lie on a line below the
synthetic ones, so a click on one of them must open exactly that checkpoint.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from _bigmap import PLACE_JS, real_points, synthetic_embedding, with_real_runs
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
    from waitress.server import create_server

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
    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}", placed
    server.close()
    state.close()


def test_million_checkpoints_click_opens_the_right_checkpoint(driver, big_map):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    url, placed = big_map
    driver.get(f"{url}/trajectories?exp=exp&method=pca")
    wait_for(driver, lambda d: d.execute_script(IMAGE_JS), what="the map's picture")
    assert "1,000,000 checkpoints" in page_text(driver)
    assert driver.execute_script(GL_JS) == 0  # nothing drawn point by point
    key, x, y = placed[3]
    px, py = driver.execute_script(PLACE_JS, x, y)
    after = driver.execute_script(PLACE_JS, *placed[4][1:])[0]
    assert 4 <= after - px <= 10  # its neighbours lie within the click's tolerance
    actions = ActionChains(driver)
    # a little off the point: the server picks the nearest within its tolerance
    actions.w3c_actions.pointer_action.move_to_location(round(px) + 1, round(py) - 1)
    actions.w3c_actions.pointer_action.pause(0.3).click()
    actions.perform()
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
    from selenium.webdriver.common.action_chains import ActionChains

    url, placed = big_map
    driver.get(f"{url}/trajectories?exp=exp&method=pca")
    wait_for(driver, lambda d: d.execute_script(IMAGE_JS), what="the map's picture")
    key, x, y = placed[1]
    px, py = driver.execute_script(PLACE_JS, x, y)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(px), int(py)).pause(0.3)
    actions.perform()
    run = key.split("/")[0]
    tip = wait_for(
        driver,
        lambda d: [e.text for e in d.find_elements("css selector", ".fs-hover-tip") if e.text],
        what="the hover tooltip",
    )
    assert f"run: {run}" in tip[0]
    assert "epoch: 1" in tip[0]
