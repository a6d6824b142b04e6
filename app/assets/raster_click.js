/*
 * Clicks on a map drawn as a picture, on pages that choose runs by clicking them (the
 * compare page; see fspace.app.linked): answered by the server's nearest-checkpoint
 * endpoint (fspace.app.raster_hover) instead of plotly's click events, which a picture
 * has none of.
 *
 * A click (a press and release without moving in between) on the plot area of a graph whose figure
 * names a click store (layout.meta.fspace_picture.clicks) becomes map coordinates; the
 * endpoint finds the checkpoint within a few pixels among those the figure shows, and
 * its run is written into the store ({run, key, at}), which selects it through the
 * page's callbacks. The trajectories page answers its own clicks (raster_answer.js).
 */
(function () {
    "use strict";
    const KEY = "fspace_picture";
    const ROUTE = "_fspace/nearest";
    const CLICK_SLOP_PX = 4;  // a press and release this close together is a click
    let press = null;

    // The graph under the event and what its picture shows, if its clicks are ours.
    function target(event) {
        const gd = event.target && event.target.closest && event.target.closest(".js-plotly-plot");
        const meta = gd && gd.layout && gd.layout.meta && gd.layout.meta[KEY];
        const ready = gd && gd._fullLayout && gd._fullLayout._size;
        return meta && meta.token && meta.clicks && ready ? {gd: gd, meta: meta} : null;
    }

    function pick(found, where) {
        const m = found.meta;
        const body = Object.assign({token: m.token, filters: m.filters || {}, epochs: m.epochs || null}, where);
        fetch(window.fspaceRaster.endpoint(ROUTE), {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify(body),
            credentials: "same-origin",
        }).then(r => (r.ok ? r.json() : null)).catch(() => null).then(got => {
            if (got && got.found) {
                window.dash_clientside.set_props(m.clicks, {
                    data: {run: got.run, key: got.key, at: Date.now()},
                });
            }
        });
    }

    document.addEventListener("mousedown", event => {
        press = event.button === 0 ? [event.clientX, event.clientY] : null;
    }, {passive: true, capture: true});

    // A press that moved away is a drag (a lasso may end where it began), not a click.
    document.addEventListener("mousemove", event => {
        if (press && Math.hypot(event.clientX - press[0], event.clientY - press[1]) > CLICK_SLOP_PX) {
            press = null;
        }
    }, {passive: true, capture: true});

    document.addEventListener("mouseup", event => {
        const from = press;
        press = null;
        if (!from || event.button !== 0) { return; }
        if (Math.hypot(event.clientX - from[0], event.clientY - from[1]) > CLICK_SLOP_PX) { return; }
        const found = target(event);
        const where = found && window.fspaceRaster.place(found.gd, event);
        if (where) { pick(found, where); }
    }, {passive: true, capture: true});
}());
