/*
 * Hover and click on a large map (a picture rendered on the server), answered without
 * Dash's callback pipeline: see fspace.app.raster_hover (app/raster_hover.py).
 *
 * The pointer's position becomes map coordinates (the graph's own axes); one request
 * at a time goes to the server's nearest-checkpoint endpoint, the latest position
 * waiting while one is out. The answer is drawn here: the tooltip (#map-answer, whose
 * data- attributes name the graph, the layer, the selection store and the endpoint)
 * and the hovered run's path on an SVG layer above the figure, so that nothing of the
 * figure is drawn again. A click (a press and release without moving) selects the
 * checkpoint: the tooltip says so at once (from the hover answer of that very place, if
 * it is shown, else from the server), and the selection store is set, which opens the
 * details and draws the run as any selection does.
 *
 * The tooltip carries what it shows as data- attributes (checkpoint, state "hover" or
 * "selected"), for tests and benchmarks.
 */
(function () {
    "use strict";
    const SVG = "http://www.w3.org/2000/svg";
    const CLICK_SLOP_PX = 4;  // a press and release this close together is a click
    const state = {
        query: null,     // what the page shows: map token, filters, epoch window
        busy: false,     // a hover request is out
        waiting: null,   // the latest hover position, sent when the request returns
        sent: 0,         // numbers the requests, so that a late answer never wins
        shown: 0,
        answer: null,    // the answer drawn (map coordinates), redrawn on zoom and pan
        press: null,     // where the main button went down
    };

    function parts() {
        const tip = document.getElementById("map-answer");
        if (!tip) { return null; }
        const box = document.getElementById(tip.dataset.graph);
        const gd = box && box.querySelector(".js-plotly-plot");
        const layer = document.getElementById(tip.dataset.layer);
        if (!gd || !layer || !gd._fullLayout || !gd._fullLayout._size) { return null; }
        const images = gd.layout && gd.layout.images;
        if (!images || !images.length) { return null; }  // not a picture: plotly answers
        return {tip: tip, gd: gd, layer: layer};
    }

    function ask(p, where) {
        const q = state.query;
        if (!q || !q.token) { return Promise.resolve(null); }
        const body = Object.assign({token: q.token, filters: q.filters, epochs: q.epochs}, where);
        return fetch(p.tip.dataset.endpoint, {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify(body),
            credentials: "same-origin",
        }).then(r => (r.ok ? r.json() : null)).catch(() => null);
    }

    function hover(p, where) {
        if (state.busy) { state.waiting = where; return; }
        state.busy = true;
        const number = ++state.sent;
        ask(p, where).then(got => {
            state.busy = false;
            if (number > state.shown) {
                state.shown = number;
                if (got && got.found) { show(got, "hover", where); } else { hide(); }
            }
            const next = state.waiting;
            state.waiting = null;
            if (next) { const now = parts(); if (now) { hover(now, next); } }
        });
    }

    // A click where the shown hover answer was asked for (the pointer has not moved, no
    // newer hover is on its way) is answered by it at once; elsewhere the server is asked.
    function select(p, where) {
        const shown = state.answer;
        if (shown && shown.where && !state.busy && !state.waiting && same(shown.where, where)) {
            choose(p, shown.got);
            return;
        }
        ask(p, where).then(got => { if (got && got.found) { choose(p, got); } });
    }

    function same(a, b) {
        return a.x === b.x && a.y === b.y && a.dx === b.dx && a.dy === b.dy;
    }

    function choose(p, got) {
        state.shown = ++state.sent;  // an older hover answer must not replace it
        show(got, "selected");
        // Once the answer is painted (the frame after it has begun): the selection's
        // callbacks redraw the figure, which may take a while.
        const store = p.tip.dataset.selected;
        requestAnimationFrame(() => requestAnimationFrame(() => {
            window.dash_clientside.set_props(store, {data: got.key});
        }));
    }

    function text(got, how) {
        const lines = [];
        if (how === "selected") { lines.push("selected: its details follow below"); }
        lines.push("run: " + got.run, "group: " + got.group, "epoch: " + got.epoch);
        if (got.error !== null && got.error !== undefined) {
            lines.push("test error: " + Number(got.error.toPrecision(4)));
        }
        return lines;
    }

    function show(got, how, where) {
        state.answer = {got: got, how: how, where: where || null};
        draw();
    }

    function hide() {
        state.answer = null;
        draw();
    }

    // The pointer left: no answer still on its way may be drawn.
    function leave() {
        state.waiting = null;
        state.shown = ++state.sent;
        if (state.answer) { hide(); }
    }

    // Draw the answer (or nothing) for the axes the graph has now.
    function draw() {
        const p = parts();
        if (!p) { return; }
        const answer = state.answer;
        if (!answer) {
            p.tip.hidden = true;
            p.tip.dataset.checkpoint = "";
            p.tip.dataset.state = "";
            p.layer.replaceChildren();
            return;
        }
        const got = answer.got, L = p.gd._fullLayout, size = L._size;
        const x = v => L.xaxis.l2p(v), y = v => L.yaxis.l2p(v);
        const svg = document.createElementNS(SVG, "svg");
        const frame = p.gd.getBoundingClientRect(), outer = p.layer.parentNode.getBoundingClientRect();
        const left = frame.left - outer.left + size.l, top = frame.top - outer.top + size.t;
        svg.setAttribute("width", size.w);
        svg.setAttribute("height", size.h);
        svg.style.left = left + "px";
        svg.style.top = top + "px";
        const path = got.path, points = path.x.map((v, i) => x(v) + "," + y(path.y[i]));
        const line = document.createElementNS(SVG, "polyline");
        line.setAttribute("points", points.join(" "));
        line.setAttribute("class", "fs-answer-path");
        svg.appendChild(line);
        path.x.forEach((v, i) => {
            const dot = document.createElementNS(SVG, "circle");
            dot.setAttribute("cx", x(v));
            dot.setAttribute("cy", y(path.y[i]));
            dot.setAttribute("r", 3.5);
            dot.setAttribute("fill", path.color[i]);
            dot.setAttribute("class", "fs-answer-dot");
            svg.appendChild(dot);
        });
        const ring = document.createElementNS(SVG, "circle");
        ring.setAttribute("cx", x(got.x));
        ring.setAttribute("cy", y(got.y));
        ring.setAttribute("r", 7);
        ring.setAttribute("class", "fs-answer-ring");
        svg.appendChild(ring);
        p.layer.replaceChildren(svg);
        p.tip.replaceChildren(...text(got, answer.how).map(t => {
            const div = document.createElement("div");
            div.textContent = t;
            return div;
        }));
        p.tip.dataset.checkpoint = got.key;
        p.tip.dataset.state = answer.how;
        p.tip.hidden = false;
        // Right of the point, or left of it where the tooltip would leave the graph.
        const px = left + x(got.x), py = top + y(got.y);
        const right = px + 12 + p.tip.offsetWidth <= outer.width;
        p.tip.style.left = (right ? px + 12 : px - 12 - p.tip.offsetWidth) + "px";
        p.tip.style.top = Math.max(0, py - p.tip.offsetHeight / 2) + "px";
    }

    function onMove(event) {
        const p = parts();
        if (!p || !p.gd.contains(event.target)) {
            if (state.answer || state.busy) { leave(); }
            return;
        }
        if (event.buttons) { return; }  // dragging: panning or zooming
        const where = window.fspaceRaster.place(p.gd, event);
        if (where) { hover(p, where); } else { leave(); }
    }

    function onDown(event) {
        state.press = event.button === 0 ? [event.clientX, event.clientY] : null;
    }

    function onUp(event) {
        const press = state.press;
        state.press = null;
        if (!press || event.button !== 0) { return; }
        const moved = Math.hypot(event.clientX - press[0], event.clientY - press[1]);
        const p = parts();
        if (!p || moved > CLICK_SLOP_PX || !p.gd.contains(event.target)) { return; }
        const where = window.fspaceRaster.place(p.gd, event);
        if (where) { select(p, where); }
    }

    document.addEventListener("mousemove", onMove, {passive: true, capture: true});
    document.addEventListener("mousedown", onDown, {passive: true, capture: true});
    document.addEventListener("mouseup", onUp, {passive: true, capture: true});
    document.addEventListener("wheel", leave, {passive: true});

    // Redraw the answer when the graph's axes change (zoom, pan, a new picture).
    new MutationObserver(() => {
        const p = parts();
        if (p && !p.gd._fsAnswerBound && p.gd.on) {
            p.gd._fsAnswerBound = true;
            p.gd.on("plotly_afterplot", draw);
            p.gd.on("plotly_relayout", draw);
        }
    }).observe(document.documentElement, {childList: true, subtree: true});

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        fspace_raster: {
            // What the page shows, for the requests (the RASTER_QUERY store's data).
            shown: function (token, values, keys, epochs) {
                const filters = {};
                (keys || []).forEach((key, i) => {
                    const v = (values || [])[i];
                    filters[key.column] = v === null || v === undefined ? [] : [].concat(v);
                });
                state.query = {token: token, filters: filters, epochs: epochs || null};
                leave();
                return state.query;
            },
            // Whether hovers can be answered: the page has said which map it shows.
            ready: function () { return Boolean(state.query && state.query.token && parts()); },
        },
    });
}());
