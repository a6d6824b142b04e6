"""Live updates of a map drawn as a server-rendered picture, in headless Chromium.

A 20,000-checkpoint map (above the raster threshold; synthetic, tests/_bigmap.py) holds
the five checkpoints of one recorded run. While the page is open, a new checkpoint of
that run and a new run are recorded into the store: the page shows them without a
reload, placed among their neighbours without re-fitting, so every checkpoint already
on the map keeps its place and the view stays where it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from _bigmap import PLACE_JS, real_points, serving, synthetic_embedding, with_real_runs
from _models import make_mlp
from conftest import record_experiment, train_step
from test_app_callbacks import probe_suite
from test_dashboard_browser import driver, page_text, wait_for  # noqa: F401 (fixture)

from fspace import Recorder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
]

RUNS, EPOCHS = 1000, 19  # 20,000 checkpoints
LIVE_TIMEOUT = 60  # generous: the page polls every 0.5 s; placing takes well under that
# The recorded run's five checkpoints, in steps of the layout below: x by epoch, y
# scrambled, so the median of all five (where a new checkpoint among them is placed)
# is (2, 2), a place no checkpoint holds yet.
OFFSETS = np.array([[0, 0], [1, 3], [2, 1], [3, 4], [4, 2]], dtype=float)
MEDIAN = np.array([2.0, 2.0])
STEP_PX = 20  # between neighbouring places, about: well beyond a hover's tolerance
VIEW_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const L = gd && gd._fullLayout;
if (!L || !gd.layout.images || !gd.layout.images.length) return null;
return [L.xaxis.range.slice(), L.yaxis.range.slice(), gd.layout.images[0].source];
"""


def record_more(path, run: str, epoch: int, seed: int) -> None:
    """One checkpoint of ``run`` (group "pretrained"), as conftest.record_experiment
    records them; ``run`` may be new or one of those recorded."""
    model = make_mlp(seed=seed)
    for e in range(1, epoch + 1):
        train_step(model, seed=1000 * seed + e)
    with Recorder(
        path,
        run=run,
        group="pretrained",
        seed=seed,
        config={"depth": 1},
        probes=probe_suite(),
        model_factory="_models:make_mlp",
        model_kwargs={"seed": seed},
    ) as rec:
        rec.record(model, epoch=epoch, metrics={"test_error": 0.2})


@pytest.fixture(scope="module")
def live_map(tmp_path_factory):
    """A server showing a 20,000-checkpoint map of experiment "exp"; yields the URL,
    the store's path, the server's state and the map's first embedding."""
    from fspace.app.maps import MapSpec
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    root = tmp_path_factory.mktemp("live-raster")
    record_experiment(root / "exp", probe_suite(), groups=("pretrained",), seeds=(0,))
    app = create_app(root, poll_ms=500)
    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("exp")
    embedding = synthetic_embedding(RUNS, EPOCHS)
    (x0, y0), (x1, y1) = embedding.coords.min(axis=0), embedding.coords.max(axis=0)
    embedding = with_real_runs(embedding, real_points(handle), (x0, y0 - 4.0))
    # about STEP_PX on a 1000 x 580 pixel plot area showing the whole map
    step = np.array([(x1 - x0) * STEP_PX / 1000, (y1 - y0 + 4.0) * STEP_PX / 580])
    coords = embedding.coords.copy()
    coords[:5] = (x0, y0 - 4.0) + OFFSETS * step
    embedding = type(embedding)(coords, embedding.points, "pca", {}, "synthetic", "prob", 2)
    state.maps.adopt(handle, MapSpec.make("pca"), embedding)
    with serving(app) as url:
        yield url, root / "exp", state, embedding, step


def hover_tip(driver, x: float, y: float) -> str:  # noqa: F811
    """The tooltip of the map place ``(x, y)``."""
    from selenium.webdriver.common.action_chains import ActionChains

    px, py = driver.execute_script(PLACE_JS, x, y)
    # away first, so that the hover is a new one
    ActionChains(driver).move_by_offset(0, 0).perform()
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(5, 5).pause(0.2)
    actions.w3c_actions.pointer_action.move_to_location(round(px), round(py)).pause(0.3)
    actions.perform()
    return wait_for(
        driver,
        lambda d: [e.text for e in d.find_elements("css selector", ".fs-hover-tip") if e.text],
        what="the hover tooltip",
    )[0]


def map_of(state):
    """The embedding the server shows now."""
    entry = next(iter(state.maps.ready(state.registry.get("exp"))))
    return entry.embedding


def test_new_checkpoints_appear_on_a_large_map_without_refit(driver, live_map):  # noqa: F811
    url, path, state, first, step = live_map
    driver.get(f"{url}/trajectories?exp=exp&method=pca")
    before = wait_for(driver, lambda d: d.execute_script(VIEW_JS), what="the map's picture")
    assert "20,000 checkpoints of 1,001 runs" in page_text(driver)
    driver.execute_script("window.fspaceMarker = 1")  # gone if the page reloads

    record_more(path, "pretrained-s0", epoch=5, seed=0)  # a recorded run goes on
    wait_for(
        driver,
        lambda d: "20,001 checkpoints of 1,001 runs" in page_text(d),
        timeout=LIVE_TIMEOUT,
        what="the new checkpoint of the recorded run",
    )
    after = map_of(state)
    np.testing.assert_array_equal(after.coords[: len(first)], first.coords)  # no re-fit
    placed = after.coords[len(first)]
    np.testing.assert_allclose(placed, first.coords[0] + MEDIAN * step)
    now = wait_for(
        driver,
        lambda d: (v := d.execute_script(VIEW_JS)) and v[2] != before[2] and v,
        what="a new picture",
    )
    assert now[:2] == before[:2]  # the view stays where it was
    tip = hover_tip(driver, *placed)
    assert "run: pretrained-s0" in tip and "epoch: 5" in tip

    record_more(path, "pretrained-s7", epoch=0, seed=7)  # a new run
    wait_for(
        driver,
        lambda d: "20,002 checkpoints of 1,002 runs" in page_text(d),
        timeout=LIVE_TIMEOUT,
        what="the new run",
    )
    latest = map_of(state)
    np.testing.assert_array_equal(latest.coords[: len(after)], after.coords)
    assert latest.points["run"].iloc[-1] == "pretrained-s7"
    # the checkpoints already shown answer a hover as before, in the same view
    tip = hover_tip(driver, *first.coords[0])
    assert "run: pretrained-s0" in tip and "epoch: 0" in tip
    assert driver.execute_script(VIEW_JS)[:2] == before[:2]
    assert driver.execute_script("return window.fspaceMarker") == 1
