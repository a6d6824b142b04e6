"""The dashboard at 20,000 to 1,000,000 checkpoints (used by benchmarks/dashboard.py).

Each size is a synthetic map (tests/_bigmap.py: runs drifting along their group's arm)
given to the server as a computed map (:meth:`fspace.app.maps.MapStore.adopt`) of a
small recorded experiment, whose checkpoints lie among the synthetic ones, so clicks open
real details. Headless Chromium measures the time to a fully drawn page, a zoom and a pan
re-rendered, and the answers to hovers and clicks: in the page, from the event to the
answer drawn (_answers.py), and through webdriver's pointer actions, round trips
included; Flask's test client times the server's callbacks and the hover endpoint.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _answers import answer_times, quantiles
from _bigmap import ANSWER_JS, PLACE_JS, real_points, synthetic_embedding, with_real_runs
from _picture import picture_times

TARGETS = {"drawn_20k": 1000.0, "drawn_1m": 2000.0, "zoom": 500.0, "answer": 100.0}
EPOCHS = 19

IMAGE_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
if (!gd || !gd._fullLayout || !document.querySelector('#trajectory-graph image')) return null;
return [gd.layout.images[0].source.length, performance.now()];
"""
# Zoom (scale < 1) or pan the map by relayout, as a drag does; remember the picture,
# and note the frame after the picture shown changes (window.fsPainted).
MOVE_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const [x0, x1] = gd._fullLayout.xaxis.range, [y0, y1] = gd._fullLayout.yaxis.range;
const [scale, shift] = arguments, cx = (x0 + x1) / 2 + shift * (x1 - x0), cy = (y0 + y1) / 2;
const hx = (x1 - x0) * scale / 2, hy = (y1 - y0) * scale / 2;
const shown = i => [i.source, i.x, i.y, i.sizex, i.sizey].join(' ');
const href = () => (gd.querySelector('image') || {getAttribute: () => null}).getAttribute('href');
window.fsBefore = shown(gd.layout.images[0]);
window.fsPainted = null;
const first = href(), watch = new MutationObserver(() => {
    if (href() === first) return;
    watch.disconnect();
    requestAnimationFrame(() => setTimeout(() => {
        window.fsPainted = performance.now() - window.fsStart;
    }, 0));
});
watch.observe(gd, {attributes: true, childList: true, subtree: true});
window.fsStart = performance.now();
Plotly.relayout(gd, {'xaxis.range': [cx - hx, cx + hx], 'yaxis.range': [cy - hy, cy + hy]});
"""
MOVED_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const image = document.querySelector('#trajectory-graph image');
const i = gd.layout.images[0];
if ([i.source, i.x, i.y, i.sizex, i.sizey].join(' ') === window.fsBefore || !image) return null;
return performance.now() - window.fsStart;
"""
# After a move: [painted, picture request sent, its answer received, answer's bytes] in
# ms since the move (the last request of the picture endpoint; null if none was sent).
PARTS_JS = """
if (window.fsPainted === null) return null;
const asked = performance.getEntriesByType('resource')
    .filter(e => e.name.endsWith('/_fspace/picture') && e.startTime >= window.fsStart);
const last = asked[asked.length - 1];
return [window.fsPainted, last ? last.startTime - window.fsStart : null,
        last ? last.responseEnd - window.fsStart : null, last ? last.encodedBodySize : null];
"""
# The answer tooltip shows checkpoint arguments[0] as a hover ("hover") or a click
# ("selected") answer.
TIP_JS = (
    "const got = (function () {"
    + ANSWER_JS
    + "})();\nreturn got && got[0] === arguments[0] && got[1] === arguments[1] ? 1 : null;"
)
DETAILS_JS = """
const d = document.querySelector('#checkpoint-details [data-checkpoint]');
return d && d.getAttribute('data-checkpoint') === arguments[0] ? 1 : null;
"""


def serve_map(root: Path, size: int):
    """A dashboard of the recorded experiment under ``root`` whose "pca" map holds
    ``size`` checkpoints; returns (app, seconds to adopt it, the recorded checkpoints as
    (key, x, y))."""
    from fspace.app.maps import MapSpec
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    app = create_app(root, poll_ms=1000)
    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("bench")
    embedding = synthetic_embedding(size // (EPOCHS + 1), EPOCHS)
    real = real_points(handle)
    x0, y0 = embedding.coords.min(axis=0)
    embedding = with_real_runs(embedding, real, (x0, y0 - 1.0), 0.15)
    start = time.perf_counter()
    state.maps.adopt(handle, MapSpec.make("pca"), embedding)
    took = time.perf_counter() - start
    placed = [
        (str(k), float(x), float(y))
        for k, (x, y) in zip(real["checkpoint"], embedding.coords[: len(real)], strict=True)
    ]
    return app, took, placed


def cache_times(root: Path, size: int) -> tuple[float, float, int]:
    """Seconds to write a synthetic map of ``size`` checkpoints into the recorded
    experiment's map cache and to read it back (checked equal), and the entry's header
    bytes; the entry is removed afterwards."""
    import numpy as np
    import pandas as pd

    from fspace import Experiment
    from fspace.pipeline import cache_map, cached_map, map_key
    from fspace.store import files

    experiment = Experiment(root / "bench")
    embedding = synthetic_embedding(size // (EPOCHS + 1), EPOCHS)
    key = map_key("pca", {"benchmark": size}, "synthetic", "prob", embedding.points["checkpoint"])
    start = time.perf_counter()
    cache_map(experiment, key, embedding)
    put = time.perf_counter() - start
    start = time.perf_counter()
    back = cached_map(experiment, key)
    get = time.perf_counter() - start
    np.testing.assert_array_equal(back.coords, embedding.coords)
    pd.testing.assert_frame_equal(back.points, embedding.points)
    (path,) = [e.path for e in experiment.cache.entries("map") if e.key == key]
    with open(path, "rb") as f:
        header = files.header_length(path, f.read(8), path.stat().st_size)
    path.unlink()
    return put, get, header


def _until(driver, script, *args, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = driver.execute_script(script, *args)
        if got:
            return got
        time.sleep(0.01)
    raise RuntimeError(f"timed out after {timeout} s")


def browser_times(driver, url: str, placed, loads: int = 4) -> dict[str, list[float]]:
    """Milliseconds: page fully drawn (each load; the first with the server's and the
    browser's caches cold), zoom and pan re-rendered, hover and click answered in the
    page (:func:`_answers.answer_times`, 24 points) and through webdriver's pointer
    actions (``wd_*``: action sent to the answer seen by polling, round trips included)."""
    from selenium.webdriver.common.action_chains import ActionChains

    out: dict[str, list] = {"drawn": [], "zoom": [], "pan": [], "parts": [], "polled": []}
    out.update({"wd_hover": [], "wd_click": [], "wd_details": []})
    for _ in range(loads):
        driver.get(url)
        out["drawn"].append(_until(driver, IMAGE_JS)[1])
    time.sleep(1.0)
    for scale, shift, name in ((0.5, 0.0, "zoom"), (0.5, 0.0, "zoom"), (1.0, 0.2, "pan")) * 2:
        driver.execute_script(MOVE_JS, scale, shift)
        out["polled"].append((name, _until(driver, MOVED_JS)))
        parts = _until(driver, PARTS_JS)
        out[name].append(parts[0])  # in the page: the frame after the picture changed
        out["parts"].append(parts)
        time.sleep(0.3)
    driver.get(url)
    _until(driver, IMAGE_JS)
    time.sleep(1.0)
    points = [(*driver.execute_script(PLACE_JS, x, y), key) for key, x, y in placed[1::3][:24]]
    out.update(answer_times(driver, points))
    for px, py, key in points[:3]:
        # duration 0: selenium's pointer moves otherwise glide for 250 ms
        away = ActionChains(driver, duration=0)
        away.w3c_actions.pointer_action.move_to_location(1, 1)
        away.perform()
        start = time.perf_counter()
        actions = ActionChains(driver, duration=0)
        actions.w3c_actions.pointer_action.move_to_location(round(px), round(py))
        actions.perform()
        _until(driver, TIP_JS, key, "hover", timeout=10)
        out["wd_hover"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        actions = ActionChains(driver, duration=0)
        actions.w3c_actions.pointer_action.click()
        actions.perform()
        _until(driver, TIP_JS, key, "selected", timeout=10)
        out["wd_click"].append((time.perf_counter() - start) * 1000)
        _until(driver, DETAILS_JS, key, timeout=20)
        out["wd_details"].append((time.perf_counter() - start) * 1000)
        time.sleep(0.5)
    return out


def vector_drawn(driver, url: str, expected: int, loads: int = 2) -> list[float]:
    """Milliseconds to a page with all ``expected`` points drawn with WebGL."""
    from dashboard import COUNT_JS

    times = []
    for _ in range(loads):
        driver.get(url)
        end = time.monotonic() + 90
        while time.monotonic() < end:
            got = driver.execute_script(COUNT_JS)
            if got and got[0] == expected:
                times.append(got[1])
                break
            time.sleep(0.02)
    return times


def server_times(app, placed, repeat: int) -> list[tuple[str, float, float]]:
    """(name, median ms, max ms) of the raster view's requests through Flask's test
    client: the picture of a new view (the zoom and pan endpoint) and its parts, a Dash
    draw for a new view (new filters) and with the picture kept, the nearest checkpoint
    (the hover and click endpoint) and the details a click opens."""
    from dashboard import _key, post

    from fspace.app.state import EXTENSION

    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("bench")
    entry = state.maps.ready(handle)[0]
    plot = entry.plot
    columns = list(plot.columns)
    x0, x1, y0, y1 = plot.extent
    _, x, y = placed[2]
    lo, hi = plot.epoch_range
    values = {
        ("map-token", "data"): entry.token,
        ("filter", "columns"): columns,
        ("filter", "value"): [None] * len(columns),
        ("filter", "id"): [{"type": "filter", "column": c} for c in columns],
        ("epoch-window", "value"): [lo, hi],
        ("selected-checkpoint", "data"): None,
        ("graph-ready", "data"): True,
    }
    view = {"w": 1000, "h": 580, "l": 20, "t": 50, "rev": f"map-{entry.uid}"}
    client = app.server.test_client()
    client.get("/")
    draw = _key(app, "trajectory-graph.figure")
    rows = picture_times(client, entry, repeat)  # what a zoom or pan asks for
    for name, shift in (("Dash draw: new view", 1e-3), ("Dash draw: same view, kept", 0.0)):
        times = []
        for i in range(repeat):
            dx = (x1 - x0) * shift * (i + 1)
            values[("raster-view", "data")] = {**view, "x": [x0 + dx, x1 + dx], "y": [y0, y1]}
            times.append(post(client, app, draw, values, "raster-view.data")[0] * 1000)
        rows.append((name, statistics.median(times), max(times)))
    values[("raster-view", "data")] = {**view, "x": [x0, x1], "y": [y0, y1]}
    rows.append(("hover/click -> nearest (JSON)", *_endpoint_times(client, entry, x, y, repeat)))
    values[("trajectories-experiment", "data")] = "bench"
    values[("selected-checkpoint", "data")] = placed[2][0]
    details = _key(app, "checkpoint-details.children")
    times = [
        post(client, app, details, values, "selected-checkpoint.data")[0] * 1000
        for _ in range(repeat)
    ]
    rows.append(("click -> checkpoint details", statistics.median(times), max(times)))
    return rows


def _endpoint_times(client, entry, x: float, y: float, repeat: int) -> tuple[float, float]:
    """Median and max ms of the nearest-checkpoint endpoint at ``(x, y)`` (the whole map
    on 1,000 x 580 pixels, every checkpoint shown), checked to answer."""
    from fspace.app.raster_hover import ENDPOINT

    x0, x1, y0, y1 = entry.plot.extent
    body = {"token": entry.token, "x": x, "y": y, "dx": (x1 - x0) / 1000, "dy": (y1 - y0) / 580}
    body["filters"], body["epochs"] = {}, list(entry.plot.epoch_range)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.post(ENDPOINT, json=body)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200 or not response.get_json().get("found"):
            raise RuntimeError(f"{ENDPOINT}: HTTP {response.status_code}: {response.data[:200]!r}")
    return statistics.median(times), max(times)


def _print_answers(got: dict[str, list[float]]) -> None:
    """Print the hover and click answer times (in the page and through webdriver)."""
    count = len(got["hover"])
    retried = sum(got["retried"])
    print(f"  answers in the page, {count} points ({retried} retried), median / p90 / max:")
    for name, label in (
        ("hover", "hover"),
        ("click", "click, hover answered"),
        ("asked", "click, server asked"),
    ):
        dom, painted = quantiles(got[f"{name}_dom"]), quantiles(got[name])
        print(
            f"    {label:<22} in the DOM {dom[0]:4.0f} / {dom[1]:4.0f} ms, painted "
            f"{painted[0]:4.0f} / {painted[1]:4.0f} / {max(got[name]):4.0f} ms; "
            f"p90 {_verdict(painted[1], TARGETS['answer'])}"
        )
    details = got["details"]
    if details:
        median, p90 = quantiles(details)
        shown = f"{len(details)} of {count}"
        print(f"    click -> details shown {median:5.0f} / {p90:5.0f} ms ({shown})")
    print("  through webdriver pointer actions (round trips included):")
    for name, label in (("wd_hover", "hover"), ("wd_click", "click -> answer")):
        print(f"    {label:<22} {_summary(got[name])}")
    print(f"    {'click -> details':<22} {_summary(got['wd_details'])}")


def _print_moves(parts: list[list], polled: list[tuple[str, float]]) -> None:
    """Print where the zoom and pan re-renders' time went, median over the moves, and
    the moves as webdriver's polling saw the picture change (round trips included)."""
    painted = [p[0] for p in parts]
    sent = [p for p in parts if p[1] is not None]
    seen = ", ".join(f"{name} {ms:,.0f}" for name, ms in polled)
    print(f"    picture changed, as polled through webdriver: {seen} ms")
    if not sent:
        print("    no picture request was sent")
        return
    median = statistics.median
    print(
        f"    picture endpoint ({len(sent)} of {len(parts)} moves), median: asked at "
        f"{median(p[1] for p in sent):.0f} ms, answered at {median(p[2] for p in sent):.0f} ms "
        f"({median(p[2] - p[1] for p in sent):.0f} ms round trip, "
        f"{median(p[3] for p in sent) / 1e3:,.0f} kB), painted at {median(painted):.0f} ms"
    )


def _verdict(value: float, target: float) -> str:
    return f"{'met' if value <= target else 'MISSED'} (target <= {target:,.0f} ms)"


def _summary(times: list[float]) -> str:
    return ", ".join(f"{t:,.0f}" for t in times) + " ms"


def run(root: Path, sizes: list[int], vector: list[int], repeat: int, browser: bool) -> int:
    """Measure and print every size; the vector sizes drawn point by point."""
    from dashboard import EXPERIMENT, _record_runs, chromium, serve_in_thread

    from fspace.app import raster

    if not (root / EXPERIMENT).is_dir():
        _record_runs(str(root), list(range(4)), EPOCHS)
    driver = chromium() if browser else None
    try:
        for size in vector:
            limit, raster.VECTOR_LIMIT = raster.VECTOR_LIMIT, 10**12  # draw every point
            try:
                app, _, _ = serve_map(root, size)
                server = serve_in_thread(app)
                url = f"http://127.0.0.1:{server.effective_port}/trajectories?exp=bench&method=pca"
                times = vector_drawn(driver, url, size) if driver else []
                print(f"{size:>9,} checkpoints, WebGL points: fully drawn {_summary(times)}")
                server.close()
            finally:
                raster.VECTOR_LIMIT = limit
        for size in sizes:
            _measure(root, size, repeat, driver)
    finally:
        if driver is not None:
            driver.quit()
    return 0


def _measure(root: Path, size: int, repeat: int, driver) -> None:
    from dashboard import serve_in_thread

    from fspace.app import raster

    app, took, placed = serve_map(root, size)
    mode = "raster" if size > raster.VECTOR_LIMIT else "WebGL points"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\n{size:,} checkpoints ({mode}); map prepared on the server in {took:.1f} s")
    print(f"  load average {load}")
    put, get, header = cache_times(root, size)
    print(f"  map cache: written in {put:.2f} s, read back in {get:.2f} s, header {header:,} bytes")
    if driver is not None:
        server = serve_in_thread(app)
        url = f"http://127.0.0.1:{server.effective_port}/trajectories?exp=bench&method=pca"
        got = browser_times(driver, url, placed)
        driver.get("about:blank")  # no page polls the server while it closes
        server.close()
        target = TARGETS["drawn_1m"] if size >= 1_000_000 else TARGETS["drawn_20k"]
        cold, warm = got["drawn"][0], got["drawn"][1:]
        drawn = statistics.median(warm)
        print(f"  fully drawn:   first {cold:,.0f} ms, then {_summary(warm)}; ", end="")
        print(f"median {_verdict(drawn, target)}")
        for name in ("zoom", "pan"):
            print(
                f"  {name} re-render, painted: {_summary(got[name])}; "
                f"worst {_verdict(max(got[name]), TARGETS['zoom'])}"
            )
        _print_moves(got["parts"], got["polled"])
        _print_answers(got)
    print(f"  server callbacks, {repeat} requests each (median / max):")
    for name, median, worst in server_times(app, placed, repeat):
        unit = "kB" if name.endswith("(kB)") else "ms"
        print(f"    {name:<30} {median:6.1f} / {worst:6.1f} {unit}")
