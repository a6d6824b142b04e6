"""Server time of a large map's picture for a new view (used by _scale.py).

The page's script asks the picture endpoint (fspace.app.raster_picture) for every new
view after a zoom, pan or resize; :func:`picture_times` times that request through
Flask's test client and its parts: datashader's aggregation, the shading, the PNG
(with its base64), and the rest (the mask, the JSON answer, Flask).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator

PARTS = (("aggregate", "aggregate"), ("shade", "shade"), ("png_uri", "PNG + base64"))


@contextlib.contextmanager
def timed_parts() -> Iterator[dict[str, list[float]]]:
    """Milliseconds of each call of the picture's parts while the block runs."""
    from fspace.app import raster

    times: dict[str, list[float]] = defaultdict(list)
    kept = {name: getattr(raster, name) for name, _ in PARTS}

    def wrap(name, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                times[name].append((time.perf_counter() - start) * 1000)

        return timed

    for name, function in kept.items():
        setattr(raster, name, wrap(name, function))
    try:
        yield times
    finally:
        for name, function in kept.items():
            setattr(raster, name, function)


def picture_times(client, entry, repeat: int) -> list[tuple[str, float, float]]:
    """(name, median ms, max ms) of the picture endpoint for ``repeat`` new views (the
    whole map on 1,000 x 580 pixels, zoomed in by half and moved a little each time),
    then of its parts, and the answer's size in kB (median, max)."""
    from fspace.app.raster_picture import ENDPOINT

    x0, x1, y0, y1 = entry.plot.extent
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    totals, sizes = [], []
    with timed_parts() as parts:
        for i in range(repeat):
            dx = (x1 - x0) * 1e-3 * (i + 1)
            view = {"x": [cx - hx + dx, cx + hx + dx], "y": [cy - hy, cy + hy], "w": 1000, "h": 580}
            start = time.perf_counter()
            response = client.post(ENDPOINT, json={"token": entry.token, "view": view})
            totals.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise RuntimeError(
                    f"{ENDPOINT}: HTTP {response.status_code}: {response.data[:200]!r}"
                )
            sizes.append(len(response.data) / 1e3)
    rows = [("picture endpoint: new view", statistics.median(totals), max(totals))]
    for name, label in PARTS:
        rows.append((f"  of which {label}", statistics.median(parts[name]), max(parts[name])))
    rows.append(("  answer size (kB)", statistics.median(sizes), max(sizes)))
    return rows
