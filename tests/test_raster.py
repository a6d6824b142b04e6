"""The raster view of large maps: the view logic, the aggregation against numpy, the
shading, the picture cache, the figure, and the nearest-checkpoint lookup against a
brute-force search."""

from __future__ import annotations

import numpy as np
import pytest
from _bigmap import synthetic_embedding

from fspace.app import raster, raster_view
from fspace.app.figures import raster_dict
from fspace.app.frames import PlotFrame
from fspace.app.raster import Viewport
from fspace.app.spatial import PointIndex
from fspace.errors import ConfigError
from fspace.plot.density import ALPHA_MIN, group_luts, shade


@pytest.fixture(scope="module")
def plot() -> PlotFrame:
    return PlotFrame.build(synthetic_embedding(60, 9, seed=1).frame)


def brute_nearest(points, x, y, dx, dy, mask, tolerance):
    pixels = np.hypot((points[:, 0] - x) / dx, (points[:, 1] - y) / dy)
    pixels[~mask] = np.inf
    best = int(np.argmin(pixels))
    return best if pixels[best] <= tolerance else None


@pytest.mark.parametrize(
    "dx, dy, keep",
    [(0.01, 0.01, 1.0), (0.002, 0.05, 1.0), (0.05, 0.004, 0.3), (0.02, 0.02, 0.05)],
    ids=["square", "tall-pixels", "wide-pixels-filtered", "sparse-mask"],
)
def test_nearest_matches_brute_force(dx, dy, keep):
    rng = np.random.default_rng(7)
    points = rng.normal(size=(5000, 2))
    mask = rng.random(len(points)) < keep
    index = PointIndex(points[:, 0], points[:, 1])
    hits = 0
    for x, y in rng.normal(size=(300, 2)) * 1.5:
        expected = brute_nearest(points, x, y, dx, dy, mask, 8.0)
        got = index.nearest(x, y, units_per_pixel=(dx, dy), mask=mask, tolerance_px=8.0)
        assert got == expected
        hits += got is not None
    assert 0 < hits < 300  # both answers (a point, none within the tolerance) occur


def test_nearest_without_mask_and_bad_input():
    index = PointIndex(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    assert index.nearest(0.9, 0.0, units_per_pixel=(0.1, 0.1)) == 1
    assert index.nearest(5.0, 0.0, units_per_pixel=(0.1, 0.1)) is None  # 40 px away
    assert index.nearest(float("nan"), 0.0, units_per_pixel=(0.1, 0.1)) is None
    assert index.nearest(0.0, 0.0, units_per_pixel=(0.0, 0.1)) is None
    empty = PointIndex(np.zeros(0), np.zeros(0))
    assert empty.nearest(0.0, 0.0, units_per_pixel=(1, 1)) is None
    with pytest.raises(ConfigError, match="one length"):
        PointIndex(np.zeros(3), np.zeros(2))


FALLBACK = Viewport(-1.0, 1.0, -2.0, 2.0, 900, 600)


@pytest.mark.parametrize(
    "reported, expected",
    [
        ({"x": [0, 2], "y": [1, 3], "w": 500, "h": 400}, Viewport(0, 2, 1, 3, 500, 400)),
        ({"x": [2, 0], "y": [3, 1], "w": 500, "h": 400}, Viewport(0, 2, 1, 3, 500, 400)),
        ({"w": 500, "h": 400}, Viewport(-1, 1, -2, 2, 500, 400)),
        ({"x": [0, 0], "y": [1, 3], "w": 500, "h": 400}, Viewport(-1, 1, -2, 2, 500, 400)),
        ({"x": ["a", 1], "y": [1, 3], "w": 500, "h": 400}, Viewport(-1, 1, -2, 2, 500, 400)),
        ({"x": [0, 2], "y": [1, 3], "w": 1e9, "h": -5}, Viewport(0, 2, 1, 3, 4096, 16)),
        ({"x": [0, 2], "y": [1, 3]}, FALLBACK),
        ("crafted", FALLBACK),
        (None, FALLBACK),
    ],
    ids=[
        "view",
        "reversed",
        "size-only",
        "empty-range",
        "text",
        "clamped",
        "no-size",
        "str",
        "none",
    ],
)
def test_viewport_parse(reported, expected):
    assert Viewport.parse(reported, FALLBACK) == expected


def test_viewport_of_another_map_is_the_whole_map(plot):
    reported = {"x": [0, 1], "y": [0, 1], "w": 400, "h": 300, "rev": "map-1"}
    assert raster_view.viewport(plot, reported, "map-1") == Viewport(0, 1, 0, 1, 400, 300)
    whole = raster_view.viewport(plot, reported, "map-2")
    assert (whole.x0, whole.x1, whole.y0, whole.y1) == plot.extent
    assert (whole.width, whole.height) == (400, 300)


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_aggregate_matches_numpy_histogram(plot):
    view = Viewport(-4.0, 5.0, -6.0, 3.0, 37, 23)  # cuts through the map
    counts, sums = raster.aggregate(raster.layers(plot).frame, view, len(plot.groups))
    assert counts.shape == (len(plot.groups), 23, 37) and sums.shape == (23, 37)
    edges = (np.linspace(view.y0, view.y1, 24), np.linspace(view.x0, view.x1, 38))
    for code in range(len(plot.groups)):
        rows = plot.group_code == code
        expected, _, _ = np.histogram2d(plot.y[rows], plot.x[rows], bins=edges)
        np.testing.assert_array_equal(counts[code], expected[::-1])  # row 0 on top
    epochs, _, _ = np.histogram2d(plot.y, plot.x, bins=edges, weights=plot.epoch)
    np.testing.assert_allclose(sums, epochs[::-1], rtol=1e-6)
    inside = (plot.x >= view.x0) & (plot.x < view.x1) & (plot.y >= view.y0) & (plot.y < view.y1)
    assert 0 < counts.sum() == inside.sum() < len(plot)  # points outside the view left out


def test_shade_colours_by_dominant_group_and_epoch():
    luts = group_luts(("pretrained", "random"))
    counts = np.zeros((2, 4, 40), np.float32)  # wide enough that nothing is spread
    counts[:, :, 1:] = 1e-9  # no spreading: many pixels hold something
    counts[0, 0, 0], counts[1, 0, 0] = 3, 1  # group 0 dominates, 4 checkpoints
    counts[1, 1, 0] = 1  # one checkpoint of group 1
    sums = np.zeros((4, 40), np.float32)
    sums[0, 0], sums[1, 0] = 4 * 9.0, 0.0  # mean epochs 9 (latest) and 0 (first)
    rgba = shade(counts, sums, luts, (0, 9))
    np.testing.assert_array_equal(rgba[0, 0, :3], luts[0, -1])
    np.testing.assert_array_equal(rgba[1, 0, :3], luts[1, 0])
    assert rgba[0, 0, 3] == 255  # the densest pixel is opaque
    assert rgba[1, 0, 3] == round(
        ALPHA_MIN * 255 + (1 - ALPHA_MIN) * 255 * (np.log1p(1) / np.log1p(4))
    )
    assert rgba[2, 0, 3] == 0 and rgba[3, 0, 3] == 0  # empty pixels are transparent


def test_shade_spreads_lone_checkpoints():
    luts = group_luts(("a",))
    counts = np.zeros((1, 50, 50), np.float32)
    counts[0, 25, 25] = 1
    sums = np.zeros((50, 50), np.float32)
    alpha = shade(counts, sums, luts, (0, 1))[..., 3]
    assert np.count_nonzero(alpha) == 25  # a 5 x 5 square in an almost empty picture


@pytest.mark.parametrize("radius", [0, 1, 2], ids=["dense", "spread-1", "spread-2"])
def test_shade_matches_a_reference_of_every_pixel(radius):
    rng = np.random.default_rng(radius)
    groups = ("pretrained", "random", "third")
    luts = group_luts(groups)
    fill = {0: 0.3, 1: 0.05, 2: 0.005}[radius]  # how full the picture is picks the spread
    counts = (rng.random((3, 60, 90)) < fill / 3) * rng.integers(1, 5, (3, 60, 90))
    counts = counts.astype(np.float32)
    sums = (counts.sum(0) * rng.uniform(0, 9, (60, 90))).astype(np.float32)
    if radius:  # the reference sums each pixel's square from a zero-padded copy
        size = 2 * radius + 1

        def box(v):
            padded = np.pad(v.astype(np.float64), radius)
            return sum(padded[i : i + 60, j : j + 90] for i in range(size) for j in range(size))

        spread = np.stack([box(c) for c in counts]), box(sums)
    else:
        spread = counts, sums
    total = spread[0].sum(0)
    hit = total > 0.5
    level = np.clip(np.divide(spread[1], total, where=hit, out=np.zeros_like(total)) / 9, 0, 1)
    rgb = luts[spread[0].argmax(0), (level * 255 + 0.5).astype(int)]
    alpha = ALPHA_MIN + (1 - ALPHA_MIN) * np.log1p(total) / np.log1p(total.max())
    rgba = shade(counts, sums, luts, (0, 9))
    assert (rgba[..., 3] > 0).tolist() == hit.tolist()
    assert not rgba[~hit].any()  # empty pixels: transparent black
    np.testing.assert_allclose(rgba[hit][:, :3], rgb[hit], atol=1)  # float rounding
    np.testing.assert_allclose(rgba[hit][:, 3], (alpha * 255 + 0.5).astype(int)[hit], atol=1)


def test_png_bytes_decode_to_the_pixels():
    import io

    from PIL import Image

    from fspace.plot.density import png_bytes

    rgba = np.random.default_rng(0).integers(0, 256, (7, 13, 4), dtype=np.uint8)
    rgba[2:4] = 0
    got = Image.open(io.BytesIO(png_bytes(rgba)))
    assert got.mode == "RGBA" and got.size == (13, 7)
    np.testing.assert_array_equal(np.asarray(got), rgba)


def test_threshold():
    small = PlotFrame.build(synthetic_embedding(2, 4).frame)
    assert not raster.is_raster(small)
    assert raster.VECTOR_LIMIT >= 1000


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_raster_figure_and_picture_cache(plot):
    view = Viewport(*plot.extent, 120, 80)
    mask = np.ones(len(plot), bool)
    run = str(plot.runs[3])
    fig = raster_dict(plot, mask, view, highlight=run, selected=5, uirevision="map-9")
    image = fig["layout"]["images"][0]
    assert image["source"].startswith("data:image/png;base64,")
    assert (image["x"], image["y"], image["sizex"]) == (view.x0, view.y1, view.x1 - view.x0)
    assert fig["layout"]["xaxis"]["range"] == [view.x0, view.x1]
    assert not any(t["type"] in ("scattergl", "heatmap") for t in fig["data"])
    roles = [t["meta"]["role"] for t in fig["data"]]
    assert roles == [*["span"] * len(plot.groups), "highlight", "selected"]
    assert fig["data"][-2]["meta"]["run"] == run
    assert fig["data"][-1]["x"] == [float(plot.x[5])]
    plain = raster_dict(plot, mask, view)  # the same places, empty
    assert [t["meta"]["role"] for t in plain["data"]] == roles
    assert plain["data"][-1]["x"] == [] and plain["data"][-2]["x"]["bdata"] == ""
    assert raster.render(plot, mask, view) is image["source"]  # kept, not rendered again
    window = plot.mask(None, (0, 3))
    assert raster.render(plot, window, view) != image["source"]


def _alpha(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    data = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)))[..., 3]


@pytest.mark.slow  # datashader compiles its kernels on first use
def test_a_new_map_version_shows_and_answers_for_new_checkpoints(recorded):
    import pandas as pd

    from fspace.app.handles import ExperimentHandle
    from fspace.app.maps import MapSpec, MapStore
    from fspace.embedding import Embedding

    store = MapStore(workers=1)
    spec = MapSpec.make("pca")
    handle = ExperimentHandle("exp", recorded)
    first = synthetic_embedding(300, 19)  # 6,000 checkpoints: drawn as a picture
    entry = store.adopt(handle, spec, first)
    old = entry.plot
    assert raster.is_raster(old)
    # a checkpoint recorded later, placed far from the others (as MapStore._update does)
    key = "sweep-new/e000000-s0000000000"
    points = pd.concat(
        [first.points, first.points.iloc[[0]].assign(run="sweep-new", checkpoint=key)],
        ignore_index=True,
    )
    coords = np.vstack([first.coords, [[40.0, 40.0]]])
    store.adopt(handle, spec, Embedding(coords, points, "pca", {}, "synthetic", "prob", 2))
    try:
        assert entry.version == 2 and entry.plot is not old
        view = Viewport(39.0, 41.0, 39.0, 41.0, 20, 20)
        assert _alpha(raster.render(entry.plot, None, view)).any()
        assert not _alpha(raster.render(old, None, view)).any()
        row = raster.layers(entry.plot).index.nearest(40.01, 40.0, units_per_pixel=(0.01, 0.01))
        assert entry.plot.frame["checkpoint"].iloc[row] == key
    finally:
        store.close()
