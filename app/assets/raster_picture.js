/*
 * Zoom and pan on a large map (a picture rendered on the server), re-rendered without
 * Dash's callback pipeline: see fspace.app.raster_picture (app/raster_picture.py).
 *
 * A graph takes part when its figure says what its picture shows (layout.meta
 * .fspace_picture: the map's token, the filters and epoch window, and the view the
 * picture was rendered for). After every relayout (zoom, pan, axes reset, resize) and
 * every new figure, the view shown (axis ranges, plot area in pixels) is compared with
 * the picture's; where they differ, the picture of the view shown is asked for, one
 * request per graph at a time, the latest view waiting while one is out, and only the
 * layout image is replaced (Plotly.relayout): nothing else of the figure is sent or
 * drawn again. An answer is drawn only while the figure still shows the map, filters
 * and window it was asked for (a newer figure from Dash wins).
 *
 * The graph's element counts the requests and the pictures drawn (data-picture-asked,
 * data-picture-drawn), for tests and benchmarks.
 */
(function () {
    "use strict";
    const KEY = "fspace_picture";
    const ROUTE = "_fspace/picture";
    const records = new WeakMap();  // per graph: {busy, waiting, drawn: {source, view}}

    // What the figure's picture shows, if it is one this script may render again.
    function meta(gd) {
        const layout = gd.layout || {};
        const images = layout.images;
        const m = layout.meta && layout.meta[KEY];
        return m && m.token && images && images.length ? m : null;
    }

    // Which checkpoints a picture shows (Dash may drop an empty filters object).
    function what(m) { return JSON.stringify([m.token, m.filters || {}, m.epochs || null]); }

    function record(gd) {
        let r = records.get(gd);
        if (!r) { r = {busy: false, waiting: false, drawn: null}; records.set(gd, r); }
        return r;
    }

    // The view the graph shows now: axis ranges and the plot area's pixels.
    function shown(gd) {
        const L = gd._fullLayout;
        if (!L || !L._size || !L.xaxis || !L.yaxis || !L.xaxis.range || !L.yaxis.range) {
            return null;
        }
        return {
            x: L.xaxis.range.slice(), y: L.yaxis.range.slice(),
            w: Math.round(L._size.w), h: Math.round(L._size.h),
        };
    }

    // The view the picture shown was rendered for: the one this script drew while its
    // picture is shown, else the figure's own.
    function pictured(gd, m) {
        const drawn = record(gd).drawn;
        return drawn && gd.layout.images[0].source === drawn.source ? drawn.view : m.view;
    }

    function same(a, b) {
        return Boolean(a && b) && a.w === b.w && a.h === b.h
            && a.x[0] === b.x[0] && a.x[1] === b.x[1] && a.y[0] === b.y[0] && a.y[1] === b.y[1];
    }

    function check(gd) {
        const m = meta(gd), view = shown(gd);
        if (!m || !view || same(view, pictured(gd, m))) { return; }
        const r = record(gd);
        if (r.busy) { r.waiting = true; return; }
        ask(gd, m, view);
    }

    function count(gd, name) {
        gd.dataset[name] = String(Number(gd.dataset[name] || 0) + 1);
    }

    function ask(gd, m, view) {
        const r = record(gd);
        r.busy = true;
        count(gd, "pictureAsked");
        const body = {
            token: m.token, filters: m.filters || {}, epochs: m.epochs || null, view: view,
            area: m.area === true,
        };
        fetch(window.fspaceRaster.endpoint(ROUTE), {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify(body),
            credentials: "same-origin",
        }).then(res => (res.ok ? res.json() : null)).catch(() => null).then(got => {
            const now = meta(gd);
            const done = () => {
                r.busy = false;
                if (r.waiting) { r.waiting = false; check(gd); }
            };
            if (!got || !got.source || !now || what(now) !== what(m)) { done(); return; }
            r.drawn = {source: got.source, view: view};
            return swap(gd, {
                "images[0].source": got.source,
                "images[0].x": got.x[0],
                "images[0].y": got.y[1],
                "images[0].sizex": got.x[1] - got.x[0],
                "images[0].sizey": got.y[1] - got.y[0],
            }).then(() => { count(gd, "pictureDrawn"); done(); }, done);
        }).catch(() => { r.busy = false; });  // a graph gone meanwhile: nothing to draw
    }

    // Replace the layout image. Plotly announces the relayout (plotly_relayout), and
    // dcc.Graph answers by copying the image into its figure and plotting the whole
    // figure again, 40-110 ms before the new picture could be painted: the announcement
    // is held back until the frame after, so that the picture is painted first.
    function swap(gd, update) {
        const emit = gd.emit;
        let held = null;
        gd.emit = function (name, data) {
            if (name === "plotly_relayout") { held = data; return undefined; }
            return emit.apply(this, arguments);
        };
        const release = () => {
            gd.emit = emit;
            requestAnimationFrame(() => setTimeout(() => {
                if (held) { gd.emit("plotly_relayout", held); }
            }, 0));
        };
        let drawing;
        try {
            drawing = Promise.resolve(window.Plotly.relayout(gd, update));
        } catch (err) {
            drawing = Promise.reject(err);
        }
        return drawing.then(() => { release(); }, err => { release(); throw err; });
    }

    function bind(gd) {
        if (gd._fsPictureBound || !gd.on) { return; }
        gd._fsPictureBound = true;
        // Asked at once, while Dash's own handling of the event waits its turn.
        gd.on("plotly_relayout", () => check(gd));
        gd.on("plotly_afterplot", () => check(gd));
        check(gd);
    }

    new MutationObserver(() => {
        document.querySelectorAll(".js-plotly-plot").forEach(bind);
    }).observe(document.documentElement, {childList: true, subtree: true});
}());
