"""The dashboard in headless Chromium: the map renders, legend, filter and slider change
what is shown, a click opens the details, a new checkpoint appears without a reload.

One server and one browser serve the whole module (starting Chromium is the slow part).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import record_experiment
from test_app_callbacks import probe_suite, record_one

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--enable-unsafe-swiftshader",  # software WebGL for the scattergl traces
    "--window-size=1400,1000",
)
TIMEOUT = 30

# What the map shows: visible checkpoint markers and the runs they belong to.
COUNT_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
if (!gd || !gd._fullData) return null;
let points = 0; const runs = new Set();
for (const t of gd._fullData) {
  if (!t.meta || t.meta.role !== 'checkpoints' || t.visible !== true) continue;
  points += t.x.length;
  for (const r of t.text) runs.add(r);
}
return [points, runs.size];
"""
# Page coordinates of the first checkpoint of the first group with points.
POINT_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const t = gd._fullData.find(t => t.meta && t.meta.role === 'checkpoints' && t.x.length);
const L = gd._fullLayout, box = gd.getBoundingClientRect();
return [box.left + L._size.l + L.xaxis.l2p(t.x[0]), box.top + L._size.t + L.yaxis.l2p(t.y[0])];
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    record_experiment(root / "exp", probe_suite())
    shutil.copytree(root / "exp", root / "live", ignore=shutil.ignore_patterns("cache"))
    return root


@pytest.fixture(scope="module")
def base_url(root):
    from waitress.server import create_server

    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    app = create_app(root, poll_ms=500)
    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    server.close()
    app.server.extensions[EXTENSION].close()


@pytest.fixture(scope="module")
def driver():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Chromium and chromedriver (scripts/install-system.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


def wait_for(driver, condition, timeout=TIMEOUT, what="condition"):
    """Poll ``condition(driver)`` until it is truthy; return its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; page says: {page_text(driver)[:500]}")


def page_text(driver) -> str:
    return driver.execute_script("return document.body.innerText")


def counts(driver):
    return driver.execute_script(COUNT_JS)


def shows(expected):
    return lambda d: counts(d) == expected and expected


def open_map(driver, base_url, query="exp=exp&map=pca"):
    driver.get(f"{base_url}/trajectories?{query}")
    wait_for(driver, lambda d: counts(d) and counts(d)[0] > 0, what="the map")


def test_map_shows_every_checkpoint_and_run(driver, base_url):
    open_map(driver, base_url)
    assert counts(driver) == [30, 6]
    assert "PCA: 30 checkpoints of 6 runs" in page_text(driver)
    colorbar = driver.execute_script(
        "return document.querySelector('#trajectory-graph .colorbar') !== null"
    )
    assert colorbar


def test_legend_toggle_hides_a_group(driver, base_url):
    open_map(driver, base_url)
    toggles = driver.find_elements("css selector", "#trajectory-graph .legend .traces")
    random = next(t for t in toggles if t.text.strip() == "random")
    random.find_element("css selector", ".legendtoggle").click()
    wait_for(driver, shows([15, 3]), what="the random group to hide")
    random.find_element("css selector", ".legendtoggle").click()
    wait_for(driver, shows([30, 6]), what="the random group to come back")


def test_filter_changes_what_is_shown_and_the_url(driver, base_url):
    open_map(driver, base_url)
    # Pattern-matching ids are JSON, which CSS selectors cannot name.
    driver.execute_script(
        "document.getElementById(arguments[0]).click()", '{"column":"group","type":"filter"}'
    )
    options = wait_for(
        driver, lambda d: d.find_elements("css selector", ".dash-dropdown-option"), what="options"
    )
    next(o for o in options if o.text.strip() == "pretrained").click()
    wait_for(driver, shows([15, 3]), what="the filter")
    wait_for(driver, lambda d: "group=pretrained" in d.current_url, what="the URL")
    # the URL reproduces the view
    driver.get(driver.current_url)
    wait_for(driver, shows([15, 3]), what="the shared view")


def test_slider_moves_the_epoch_window(driver, base_url):
    from selenium.webdriver.common.keys import Keys

    open_map(driver, base_url)
    thumb = driver.find_element("css selector", "#epoch-window .dash-slider-thumb-2")
    thumb.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    wait_for(driver, shows([18, 6]), what="epochs 0-2")  # 6 runs x 3 epochs
    wait_for(driver, lambda d: "epochs=0-2" in d.current_url, what="the URL")


def test_click_opens_the_details(driver, base_url):
    from selenium.webdriver.common.action_chains import ActionChains

    open_map(driver, base_url)
    x, y = driver.execute_script(POINT_JS)
    actions = ActionChains(driver)
    # plotly picks the clicked point of a WebGL trace from the hover, so hover first.
    actions.w3c_actions.pointer_action.move_to_location(int(x), int(y)).pause(0.5).click()
    actions.perform()
    details = wait_for(
        driver,
        lambda d: d.find_elements("css selector", "#checkpoint-details [data-checkpoint]"),
        what="the details",
    )
    key = details[0].get_attribute("data-checkpoint")
    assert f"{key.split('/')[0]} · epoch" in page_text(driver)
    assert "metrics of the run" in page_text(driver).lower()
    highlighted = driver.execute_script(
        "return document.querySelector('#trajectory-graph .js-plotly-plot')._fullData"
        ".some(t => t.meta && t.meta.role === 'highlight')"
    )
    assert highlighted
    wait_for(driver, lambda d: "checkpoint=" in d.current_url, what="the URL")


def test_new_checkpoint_appears_without_reload(driver, base_url, root):
    open_map(driver, base_url, "exp=live&map=pca")
    assert counts(driver) == [30, 6]
    driver.execute_script("window.fspaceMarker = 1")  # gone if the page reloads
    record_one(root / "live", probe_suite())
    wait_for(driver, shows([31, 7]), timeout=15, what="the new checkpoint")
    assert driver.execute_script("return window.fspaceMarker") == 1


def test_unknown_experiment_says_so(driver, base_url):
    driver.get(f"{base_url}/trajectories?exp=nope")
    text = wait_for(driver, lambda d: "no experiment" in page_text(d) and page_text(d))
    assert "no experiment 'nope'" in text and "Traceback" not in text


# Every Content-Security-Policy violation of a page, recorded from its first script on.
CSP_JS = """
window.fspaceBlocked = [];
document.addEventListener('securitypolicyviolation',
  e => window.fspaceBlocked.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_security_policy_blocks_nothing_the_page_needs(driver, base_url):
    # plotly.js compiles its WebGL drawing code at run time: without 'unsafe-eval' in the
    # policy the map says "WebGL is not supported" instead of drawing.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_JS})
    open_map(driver, base_url)
    wait_for(driver, lambda d: d.find_elements("css selector", "#trajectory-graph canvas"))
    time.sleep(0.5)
    assert driver.execute_script("return window.fspaceBlocked") == []
    assert "WebGL is not supported" not in page_text(driver)
