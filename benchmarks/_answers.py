"""Hover and click answer times of a large map, measured in the page (used by _scale.py).

One ``execute_async_script`` goes through the given map points: for each it moves the
pointer off the graph (and waits until no answer is shown), dispatches a mouse move onto
the point and takes ``performance.now()`` just before; a MutationObserver notes when the
answer tooltip (``#map-answer``, see ``fspace/app/assets/raster_answer.js``) names that
checkpoint, and the next frame after it counts as painted (``requestAnimationFrame``,
then a task). A click (a press, and :data:`PRESS_MS` later a release at the same place)
is timed the same way from the release, to the tooltip's "selected" answer, and then to
the checkpoint's details panel (which follows through Dash); every second click is a
pixel off the hovered place, so that its answer comes from the server, not from the
hover's answer. A point is tried again if
its answer does not come within :data:`TIMEOUT_MS`; a point that never answers, or
answers another checkpoint, makes :func:`answer_times` raise, so no number is ever a
wrong one.
"""

from __future__ import annotations

import statistics

TIMEOUT_MS = 3000
TRIES = 3
PRESS_MS = 80  # between a click's press and release, as a quick hand does

READY_JS = """
const f = window.dash_clientside && window.dash_clientside.fspace_raster;
return Boolean(f && f.ready());
"""

MEASURE_JS = r"""
const [points, timeout, tries, PRESS_MS, done] = arguments;
const tip = document.getElementById('map-answer');
const details = document.getElementById('checkpoint-details');
const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
const sleep = ms => new Promise(r => setTimeout(r, ms));
function fire(type, px, py) {
    const target = document.elementFromPoint(px, py) || document.body;
    target.dispatchEvent(new MouseEvent(type, {
        clientX: px, clientY: py, bubbles: true, cancelable: true, view: window,
        button: 0, buttons: type === 'mousedown' ? 1 : 0,
    }));
}
// Resolve with [ms to the DOM, ms to the painted frame] once check() holds, timing
// from t0; null after the timeout.
function until(root, check, t0) {
    return new Promise(resolve => {
        let over = false;
        const hit = () => {
            if (over || !check()) { return; }
            over = true;
            const dom = performance.now() - t0;
            observer.disconnect();
            frame().then(() => resolve([dom, performance.now() - t0]));
        };
        const observer = new MutationObserver(hit);
        observer.observe(root, {attributes: true, childList: true, subtree: true,
                                characterData: true});
        hit();
        setTimeout(() => { if (!over) { over = true; observer.disconnect(); resolve(null); } },
                   timeout);
    });
}
const shows = (key, how) => () => tip.dataset.checkpoint === key && tip.dataset.state === how;
const opened = key => () => {
    const d = details.querySelector('[data-checkpoint]');
    return Boolean(d && d.getAttribute('data-checkpoint') === key);
};
async function away() {
    fire('mousemove', 1, 1);
    const gone = await until(tip, () => !tip.dataset.checkpoint, performance.now());
    await frame();
    return gone !== null;
}
async function measure(px, py, key, asked) {
    for (let attempt = 1; attempt <= tries; attempt++) {
        if (!await away()) { continue; }
        let t0 = performance.now();
        fire('mousemove', px, py);
        const hover = await until(tip, shows(key, 'hover'), t0);
        if (!hover) { continue; }
        // a click: press, and release a moment later (timed from the release, when
        // the browser reports the click)
        // "asked": a pixel off the hovered place, so that the page asks the server again
        // (as when a click comes before the hover's answer); else the hover's answer
        // of that very place is shown at once
        const cx = asked ? px + 1 : px;
        await sleep(50);
        fire('mousedown', cx, py);
        await sleep(PRESS_MS);
        t0 = performance.now();
        fire('mouseup', cx, py);
        const click = await until(tip, shows(key, 'selected'), t0);
        if (!click) { continue; }
        const shown = await until(details, opened(key), t0);
        // let the selection's redraw end, and plotly's double-click window pass
        await sleep(400);
        return {key, hover, click, details: shown && shown[1], attempt, asked};
    }
    return {key, failed: true, answered: tip.dataset.checkpoint || null,
            state: tip.dataset.state || null};
}
(async () => {
    const out = [];
    for (const [i, [px, py, key]] of points.entries()) {
        out.push(await measure(px, py, key, i % 2 === 1));
    }
    fire('mousemove', 1, 1);
    return out;
})().then(done, err => done({error: String(err)}));
"""


def answer_times(driver, points: list[tuple[float, float, str]]) -> dict[str, list[float]]:
    """Milliseconds in the page for each ``(page x, page y, checkpoint key)``: ``hover``
    and ``click`` to the answer in the DOM (``*_dom``) and painted, and click to the
    details shown (``details``, those that came within the timeout). Every second click
    is a pixel off the hovered place, so that the page asks the server (``asked``);
    the others are answered by the hover's answer of that place (``click``)."""
    import time

    end = time.monotonic() + 30
    while not driver.execute_script(READY_JS):
        if time.monotonic() > end:
            raise RuntimeError("the page's hover script never became ready")
        time.sleep(0.05)
    driver.set_script_timeout(len(points) * TRIES * 4 * TIMEOUT_MS / 1000 + 30)
    got = driver.execute_async_script(
        MEASURE_JS, [list(p) for p in points], TIMEOUT_MS, TRIES, PRESS_MS
    )
    if isinstance(got, dict):
        raise RuntimeError(f"the in-page measurement failed: {got.get('error')}")
    failed = [g for g in got if g.get("failed")]
    if failed:
        first = failed[0]
        raise RuntimeError(
            f"{len(failed)} of {len(got)} points never answered right in {TRIES} tries; "
            f"e.g. {first['key']} (shown: {first['answered']}, {first['state']})"
        )
    reused, asked = [g for g in got if not g["asked"]], [g for g in got if g["asked"]]
    return {
        "hover_dom": [g["hover"][0] for g in got],
        "hover": [g["hover"][1] for g in got],
        "click_dom": [g["click"][0] for g in reused],
        "click": [g["click"][1] for g in reused],
        "asked_dom": [g["click"][0] for g in asked],
        "asked": [g["click"][1] for g in asked],
        "details": [g["details"] for g in got if g["details"] is not None],
        "retried": [g["attempt"] - 1 for g in got],
    }


def quantiles(values: list[float]) -> tuple[float, float]:
    """Median and 90th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(0.9 * len(ordered) + 0.5) - 1))
    return statistics.median(ordered), ordered[rank]
