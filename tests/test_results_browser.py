"""The results page of experiments other than pre-training, in headless Chromium: once
loaded it shows no error or developer message, nothing stays on "computing", and every
panel holds a figure, a table or a plain note.

The server and browser fixtures are those of the dashboard's browser tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_dashboard_browser as browser
from _results_experiments import record_cnn
from conftest import record_experiment
from test_app_callbacks import probe_suite
from test_dashboard_browser import page_text, wait_for

# The dashboard's browser fixtures, served over this module's ``root``.
base_url = browser.base_url
driver = browser.driver

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
]

BAD_TEXT = ("needs column", "pass a points frame", "Traceback", "internal error", "computing")
PANELS = ("summary", "final", "curves", "separation", "axis", "fields", "change")
# What each panel holds: how many plots (with their trace roles), tables and notes.
PANEL_JS = """
const out = {};
for (const name of arguments[0]) {
  const el = document.getElementById('results-' + name);
  if (!el) { out[name] = null; continue; }
  const plots = [...el.querySelectorAll('.js-plotly-plot')];
  out[name] = {
    plots: plots.length,
    roles: plots.flatMap(p => (p._fullData || []).map(t => t.meta && t.meta.role)),
    kinds: plots.flatMap(p => (p._fullData || []).map(t => t.meta && t.meta.kind)),
    drawn: el.querySelectorAll('.dash-graph').length === plots.length
      && plots.every(p => p._fullData && p._fullData.length),
    tables: el.querySelectorAll('table tr').length,
    text: el.innerText,
  };
}
return out;
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results-browser")
    record_cnn(root / "cnn")
    record_experiment(root / "mlp", probe_suite(), groups=("baseline", "ours"), epochs=2)
    return root


def loaded(driver, base_url, exp: str) -> dict:
    """Open the results of ``exp`` and wait until every panel is computed."""
    driver.get(f"{base_url}/results?exp={exp}")

    def done(d):
        text = page_text(d)
        if "up to date" not in text or "computing" in text:
            return None
        panels = d.execute_script(PANEL_JS, list(PANELS))
        ready = all(p and p["drawn"] for p in panels.values())
        return panels if ready else None

    return wait_for(driver, done, timeout=90, what=f"the results of {exp}")


def assert_no_developer_text(driver):
    text = page_text(driver)
    assert not [bad for bad in BAD_TEXT if bad in text], text[:2000]
    assert not driver.find_elements("css selector", ".fs-message.fs-error")


def test_results_of_a_cnn(driver, base_url):
    panels = loaded(driver, base_url, "cnn")
    assert_no_developer_text(driver)
    assert "4 runs in 2 group(s)" in panels["summary"]["text"]
    assert panels["summary"]["tables"] == 3  # header, baseline, ours
    assert {"runs", "mean"} <= set(panels["final"]["roles"]), panels["final"]
    assert "band" in panels["curves"]["roles"]
    assert panels["separation"]["tables"] == 7 and "1-NN accuracy" in panels["separation"]["text"]
    assert "no depth" in panels["axis"]["text"] and panels["axis"]["plots"] == 0
    assert panels["fields"]["kinds"] == ["conv", "conv"]  # first and last checkpoint
    assert "conv1.weight" in panels["fields"]["text"]
    assert panels["change"]["plots"] == 1
    links = [a.text for a in driver.find_elements("css selector", ".fs-nav a")]
    assert "Results" in links


def test_results_of_models_without_images(driver, base_url):
    panels = loaded(driver, base_url, "mlp")
    assert_no_developer_text(driver)
    assert "the probe inputs are not images (each is 4 values)" in panels["fields"]["text"]
    assert panels["fields"]["plots"] == 0
    assert {"runs", "mean"} <= set(panels["final"]["roles"]), panels["final"]
    assert "1-NN accuracy" in panels["separation"]["text"]
