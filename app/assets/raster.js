/*
 * What the large-map scripts share (raster_answer.js, raster_click.js, raster_picture.js;
 * Dash loads this file before them): the URL of one of the dashboard's JSON endpoints,
 * and a pointer event's place on a map's plot area.
 */
(function () {
    "use strict";
    window.fspaceRaster = {
        // The URL of `route` under Dash's requests prefix (from Dash's config in the page).
        endpoint: function (route) {
            let prefix = "/";
            const config = document.getElementById("_dash-config");
            try {
                prefix = JSON.parse(config.textContent).requests_pathname_prefix || "/";
            } catch (err) { /* Dash's default prefix */ }
            return prefix.replace(/\/?$/, "/") + route;
        },

        // The event's place on the graph's plot area in map coordinates, with the size of
        // one pixel in each (dx, dy); null outside the plot area.
        place: function (gd, event) {
            const L = gd._fullLayout, size = L._size, box = gd.getBoundingClientRect();
            const px = event.clientX - box.left - size.l, py = event.clientY - box.top - size.t;
            if (px < 0 || py < 0 || px > size.w || py > size.h) { return null; }
            const xr = L.xaxis.range, yr = L.yaxis.range;
            return {
                x: L.xaxis.p2l(px), y: L.yaxis.p2l(py),
                dx: Math.abs(xr[1] - xr[0]) / size.w, dy: Math.abs(yr[1] - yr[0]) / size.h,
            };
        },
    };
})();
