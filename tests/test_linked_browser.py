"""The dashboard in headless Chromium beyond the pre-training experiment: two linked
maps, filters on a config key of the runs, an experiment recorded as logits, and the
generative page's link and older address.

Uses the server and browser fixtures of :mod:`test_dashboard_browser` on a root of its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _models import make_mlp
from conftest import record_experiment, train_step
from test_app_callbacks import probe_suite
from test_dashboard_browser import base_url, driver, page_text, wait_for  # noqa: F401

from fspace import Recorder

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
    pytest.mark.filterwarnings("ignore:t-SNE. perplexity:UserWarning"),
]

# Traces of a graph, by role: [[role, run, n points], ...].
TRACES_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) return null;
return gd._fullData.filter(t => t.meta && t.meta.role).map(
  t => [t.meta.role, t.meta.run || null, t.x ? t.x.length : 0, t.visible === true]);
"""
# Page coordinates and run of every checkpoint marker of a graph.
POINTS_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const L = gd._fullLayout, box = gd.getBoundingClientRect(), out = [];
for (const t of gd._fullData) {
  if (!t.meta || t.meta.role !== 'checkpoints') continue;
  for (let i = 0; i < t.x.length; i++) {
    out.push([box.left + L._size.l + L.xaxis.l2p(t.x[i]),
              box.top + L._size.t + L.yaxis.l2p(t.y[i]), t.text[i]]);
  }
}
return out;
"""
SWEEP = {"adam-s0": "adam", "adam-s1": "adam", "sgd-s0": "sgd", "sgd-s1": "sgd"}


def record_sweep(path: Path) -> Path:
    """Four runs that differ by a config key the pre-training experiment lacks
    (``optimizer``), recorded as logits rather than probabilities."""
    suite = probe_suite()
    for k, (run, optimizer) in enumerate(SWEEP.items()):
        model = make_mlp(seed=k)
        with Recorder(
            path,
            run=run,
            group="sweep",
            seed=k % 2,
            config={"optimizer": optimizer},
            probes=suite,
            output="logits",
            model_factory="_models:make_mlp",
            model_kwargs={"seed": k},
        ) as rec:
            for epoch in range(4):
                if epoch:
                    train_step(model, seed=100 * k + epoch, lr=0.05 if optimizer == "sgd" else 0.2)
                rec.record(model, epoch=epoch, metrics={"loss": 1.0 / (epoch + 1 + k)})
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The root the module's server shows (``base_url`` of test_dashboard_browser)."""
    root = tmp_path_factory.mktemp("linked")
    record_experiment(root / "exp", probe_suite())
    record_sweep(root / "sweep")
    return root


def traces(browser, graph: str) -> list:
    return browser.execute_script(TRACES_JS, graph) or []


def linked_runs(browser, graph: str) -> list[str]:
    """The runs drawn on top of a map, in drawing order."""
    return [t[1] for t in traces(browser, graph) if t[0] == "linked"]


def curve_runs(browser) -> set[str]:
    return {t[1] for t in traces(browser, "compare-curves") if t[0] == "curve"}


def click(browser, x: float, y: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(browser)
    # plotly picks the clicked point of a WebGL trace from the hover, so hover first.
    actions.w3c_actions.pointer_action.move_to_location(int(x), int(y)).pause(0.5).click()
    actions.perform()


def lasso(browser, x: float, y: float, r: float = 12) -> None:
    """Draw a lasso (the maps' drag mode) around the page point ``(x, y)``."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(browser)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(int(x - r), int(y - r)).pointer_down()
    for dx, dy in ((r, -r), (r, r), (-r, r), (-r, -r)):
        pointer.move_to_location(int(x + dx), int(y + dy)).pause(0.05)
    pointer.pointer_up()
    actions.perform()


def open_compare(driver, base_url, query: str) -> None:  # noqa: F811
    driver.get(f"{base_url}/compare?{query}")
    for graph in ("compare-a-graph", "compare-b-graph"):
        wait_for(
            driver,
            lambda d, g=graph: any(t[0] == "checkpoints" and t[2] for t in traces(d, g)),
            what=f"the map {graph}",
        )


def test_a_click_selects_a_run_on_both_maps(driver, base_url):  # noqa: F811
    open_compare(driver, base_url, "exp=exp&a=pca&b=inpca&b.distance=hellinger")
    text = page_text(driver)
    # each map's faithfulness beside it; InPCA is metric, so it has an explained stress
    assert text.count("trustworthiness (k=") == 2 and "explained stress" in text
    points = driver.execute_script(POINTS_JS, "compare-a-graph")
    x, y, _ = points[len(points) // 2]
    click(driver, x, y)
    (run,) = wait_for(driver, lambda d: linked_runs(d, "compare-a-graph"), what="a selected run")
    # highlighted on the other map too, and its metric curves shown below
    wait_for(driver, lambda d: linked_runs(d, "compare-b-graph") == [run], what="map B")
    wait_for(driver, lambda d: curve_runs(d) == {run}, what="the run's curves")
    wait_for(driver, lambda d: f"runs={run}" in d.current_url, what="the URL")
    # a second run, clicked on the other map: both maps, and their distance over epochs
    other = [p for p in driver.execute_script(POINTS_JS, "compare-b-graph") if p[2] != run]
    far = max(other, key=lambda p: min((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 for q in points))
    click(driver, far[0], far[1])
    both = wait_for(
        driver, lambda d: len(linked_runs(d, "compare-a-graph")) == 2, what="a second run"
    )
    assert both
    pair = linked_runs(driver, "compare-b-graph")
    assert pair[0] == run and set(pair) == set(linked_runs(driver, "compare-a-graph"))
    distances = wait_for(
        driver,
        lambda d: [t for t in traces(d, "compare-distance") if t[0] == "pair-distance"],
        what="the distance between the two runs",
    )
    # one curve per distinct distance of the two maps (Euclidean and Hellinger), 5 epochs
    assert len(distances) == 2 and all(t[2] == 5 for t in distances)
    driver.find_element("id", "compare-clear").click()
    wait_for(driver, lambda d: not linked_runs(d, "compare-a-graph"), what="the cleared selection")


def test_a_lasso_selects_runs_on_both_maps(driver, base_url):  # noqa: F811
    open_compare(driver, base_url, "exp=exp&a=pca&b=mds")
    x, y, run = driver.execute_script(POINTS_JS, "compare-b-graph")[0]
    lasso(driver, x, y)
    selected = wait_for(driver, lambda d: linked_runs(d, "compare-a-graph"), what="the lasso")
    assert run in selected
    assert linked_runs(driver, "compare-b-graph") == selected
    wait_for(driver, lambda d: curve_runs(d) == set(selected), what="the runs' curves")


def open_map(driver, base_url, query: str) -> None:  # noqa: F811
    from test_dashboard_browser import counts

    driver.get(f"{base_url}/trajectories?{query}")
    wait_for(driver, lambda d: counts(d) and counts(d)[0] > 0, what="the map")


def choose(browser, column: str, value: str) -> None:
    """Pick ``value`` in the filter of ``column`` (pattern ids are JSON: no CSS selector)."""
    browser.execute_script(
        "document.getElementById(arguments[0]).click()",
        f'{{"column":"{column}","type":"filter"}}',
    )
    options = wait_for(
        browser, lambda d: d.find_elements("css selector", ".dash-dropdown-option"), what="options"
    )
    next(o for o in options if o.text.strip() == value).click()


def test_filter_on_a_config_key(driver, base_url):  # noqa: F811
    from test_dashboard_browser import shows

    open_map(driver, base_url, "exp=sweep&method=pca")
    wait_for(driver, shows([16, 4]), what="every checkpoint")  # once the slider fits it
    # group, then the runs' own settings, each labelled by its key
    expected = ["group", "seed", "optimizer"]
    wait_for(
        driver,
        lambda d: (
            [e.text for e in d.find_elements("css selector", "#filter-boxes label")] == expected
        ),
        what="the filters",
    )
    choose(driver, "optimizer", "adam")
    wait_for(driver, shows([8, 2]), what="the optimizer filter")
    wait_for(driver, lambda d: "optimizer=adam" in d.current_url, what="the URL")
    driver.get(driver.current_url)  # the link reproduces the view
    wait_for(driver, shows([8, 2]), what="the shared view")


def test_an_experiment_recorded_as_logits(driver, base_url):  # noqa: F811
    open_map(driver, base_url, "exp=sweep&method=tsne")
    text = wait_for(driver, lambda d: "checkpoints of 4 runs" in page_text(d) and page_text(d))
    # the status names the form mapped and the perplexity used, not the one asked for
    assert "t-SNE (perplexity 5 instead of 30) · logits: 16 checkpoints" in text
    assert "logits (classification)" in text  # the output menu


def test_the_generative_link_and_its_older_address(driver, base_url):  # noqa: F811
    open_map(driver, base_url, "exp=exp&method=pca")
    link = driver.find_element("css selector", ".fs-nav a[href^='/generative']")
    label = link.text
    link.click()
    wait_for(driver, lambda d: "/generative?exp=exp" in d.current_url, what="the page")
    text = wait_for(driver, lambda d: "generative experiment" in page_text(d) and page_text(d))
    assert "no such page" not in text
    driver.get(f"{base_url}/regimes?exp=exp")
    wait_for(driver, lambda d: "/generative?exp=exp" in d.current_url, what="the redirect")
    time.sleep(0.5)
    assert "no such page" not in page_text(driver)
    active = driver.find_element("css selector", ".fs-nav a.fs-active")
    assert active.text == label


# -- both maps above the raster threshold ------------------------------------------------

RASTER_QUERY = "exp=exp&a=pca&a.distance=euclidean&b=mds&b.distance=euclidean"
IMAGE_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return Boolean(gd && gd._fullLayout && gd.layout.images && gd.layout.images.length
    && document.querySelector('#' + arguments[0] + ' image'));
"""
# Page coordinates of the map point (x, y) of a graph, once it is scrolled into view.
PLACE_JS = """
const el = document.getElementById(arguments[0]);
el.scrollIntoView({block: 'center'});
const gd = el.querySelector('.js-plotly-plot');
const L = gd._fullLayout, box = gd.getBoundingClientRect();
return [box.left + L._size.l + L.xaxis.l2p(arguments[1]),
        box.top + L._size.t + L.yaxis.l2p(arguments[2])];
"""
GL_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
return gd._fullData.filter(t => t.type === 'scattergl').length;
"""
# Zoom a graph in on the middle quarter of what it shows, as a drag does; the picture's
# placement and source before the zoom.
ZOOM_JS = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const [x0, x1] = gd._fullLayout.xaxis.range, [y0, y1] = gd._fullLayout.yaxis.range;
const dx = (x1 - x0) / 4, dy = (y1 - y0) / 4, image = gd.layout.images[0];
Plotly.relayout(gd, {'xaxis.range': [x0 + dx, x1 - dx], 'yaxis.range': [y0 + dy, y1 - dy]});
return [image.x, image.sizex, image.source.length, x0 + dx];
"""
# How many pictures the page's script asked for and drew (assets/raster_picture.js).
DRAWN_JS = """
const d = document.querySelector('#' + arguments[0] + ' .js-plotly-plot').dataset;
return [Number(d.pictureAsked || 0), Number(d.pictureDrawn || 0)];
"""
PICTURE_JS = """
const image = document.querySelector('#' + arguments[0] + ' .js-plotly-plot').layout.images[0];
return [image.x, image.sizex, image.source.length];
"""


@pytest.fixture(scope="module")
def big_maps(tmp_path_factory):
    """A server whose two compare maps of "exp" (PCA and MDS) hold 20,000 checkpoints
    each, the 30 recorded checkpoints among them on a line apart from the rest; yields
    the URL and, per side, each recorded checkpoint's run and place."""
    import numpy as np
    from _bigmap import real_points, serving, synthetic_embedding, with_real_runs

    from fspace.app.compare_view import side_spec
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    root = tmp_path_factory.mktemp("linked-raster")
    record_experiment(root / "exp", probe_suite())
    app = create_app(root, poll_ms=500)
    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("exp")
    real = real_points(handle)
    query = dict(w.split("=") for w in RASTER_QUERY.split("&"))
    placed = {}
    for side, seed in (("a", 0), ("b", 1)):
        embedding = synthetic_embedding(1000, 19, seed=seed)
        x0, y0 = embedding.coords.min(axis=0)
        spacing = float(np.ptp(embedding.coords[:, 0])) / 50  # about 12 pixels
        embedding = with_real_runs(embedding, real, (x0, y0 - 2.0 * (seed + 1)), spacing)
        state.maps.adopt(handle, side_spec(query, side, []), embedding)
        placed[side] = [
            (key.split("/")[0], float(x), float(y))
            for key, (x, y) in zip(real["checkpoint"], embedding.coords[: len(real)], strict=True)
        ]
    with serving(app) as url:
        yield url, placed


def click_place(browser, graph: str, x: float, y: float) -> None:
    """Click the map point ``(x, y)`` of ``graph``, a pixel off."""
    px, py = browser.execute_script(PLACE_JS, graph, x, y)
    click(browser, px + 1, py - 1)


@pytest.mark.slow
def test_linked_selection_on_maps_above_the_raster_threshold(driver, big_maps):  # noqa: F811
    url, placed = big_maps
    driver.get(f"{url}/compare?{RASTER_QUERY}")
    for graph in ("compare-a-graph", "compare-b-graph"):
        wait_for(driver, lambda d, g=graph: d.execute_script(IMAGE_JS, g), what=f"{graph}")
        assert driver.execute_script(GL_JS, graph) == 0  # no point drawn one by one
    assert page_text(driver).count("20,000 checkpoints") == 2
    # a click on map A selects the run of the checkpoint under it, on both maps
    run, x, y = placed["a"][7]
    click_place(driver, "compare-a-graph", x, y)
    wait_for(driver, lambda d: linked_runs(d, "compare-a-graph") == [run], what="the run on A")
    wait_for(driver, lambda d: linked_runs(d, "compare-b-graph") == [run], what="the run on B")
    wait_for(driver, lambda d: curve_runs(d) == {run}, what="the run's curves")
    # a click on map B adds another run to both, and their distance over epochs is shown
    other, x, y = next(p for p in placed["b"] if p[0] != run)
    click_place(driver, "compare-b-graph", x, y)
    wait_for(
        driver, lambda d: linked_runs(d, "compare-a-graph") == [run, other], what="a second run"
    )
    assert linked_runs(driver, "compare-b-graph") == [run, other]
    wait_for(
        driver,
        lambda d: [t for t in traces(d, "compare-distance") if t[0] == "pair-distance"],
        what="the distance between the two runs",
    )
    # a lasso around one recorded checkpoint on map B selects its run alone
    third, x, y = next(p for p in placed["b"] if p[0] not in (run, other))
    px, py = driver.execute_script(PLACE_JS, "compare-b-graph", x, y)
    lasso(driver, px, py, r=5)
    wait_for(driver, lambda d: linked_runs(d, "compare-a-graph") == [third], what="the lasso")
    assert driver.execute_script(GL_JS, "compare-a-graph") == 0
    # a zoom renders the picture again for the part shown, the selection kept
    before = [driver.execute_script(DRAWN_JS, g) for g in ("compare-a-graph", "compare-b-graph")]
    _, width, _, left = driver.execute_script(ZOOM_JS, "compare-a-graph")
    wait_for(
        driver,
        lambda d: abs(d.execute_script(PICTURE_JS, "compare-a-graph")[0] - left) < 1e-6 * width,
        what="the zoomed picture",
    )
    assert driver.execute_script(PICTURE_JS, "compare-a-graph")[1] < 0.6 * width
    assert linked_runs(driver, "compare-a-graph") == [third]
    # by the page's script, from the picture endpoint: one picture, for map A only
    asked, drawn = before[0]
    assert driver.execute_script(DRAWN_JS, "compare-a-graph") == [asked + 1, drawn + 1]
    assert driver.execute_script(DRAWN_JS, "compare-b-graph") == before[1]
