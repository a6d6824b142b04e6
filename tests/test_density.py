"""The trajectory figure of a large map for files: the checkpoints as one picture of
their density, chosen runs as vector paths on top; exports at scale stay fast and small."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from _bigmap import synthetic_embedding

from fspace.plot import density
from fspace.plot.density import aggregate, density_figure, group_luts, map_figure


def frame_of(runs: int, epochs: int, seed: int = 0) -> pd.DataFrame:
    return synthetic_embedding(runs, epochs, seed=seed).frame


def picture(fig) -> np.ndarray:
    """The RGBA pixels of the figure's layout image."""
    from PIL import Image

    source = fig.layout.images[0].source
    assert source.startswith("data:image/png;base64,")
    raw = base64.b64decode(source.partition(",")[2])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))


def roles(fig) -> list[str]:
    return [t.meta["role"] for t in fig.data]


def test_aggregate_matches_histogram2d():
    frame = frame_of(40, 9)
    paths, _ = density._paths(frame)
    box = density.extent(paths.x, paths.y)
    counts, sums = aggregate(paths, box[:2], box[2:], 60, 40)
    for code in range(len(paths.groups)):
        rows = paths.group_code == code
        ref, _, _ = np.histogram2d(
            paths.y[rows], paths.x[rows], bins=(40, 60), range=[box[2:], box[:2]]
        )
        np.testing.assert_array_equal(counts[code], ref[::-1])  # row 0 at the top
    ref, _, _ = np.histogram2d(
        paths.y, paths.x, bins=(40, 60), range=[box[2:], box[:2]], weights=paths.color
    )
    np.testing.assert_allclose(sums, ref[::-1])
    assert counts.sum() == len(frame)


def test_picture_holds_the_density_in_each_groups_colours():
    # two groups in two far apart blobs: each blob's pixels in its own colour family
    gen = np.random.default_rng(1)
    n = 4000
    frame = pd.DataFrame(
        {
            "run": np.repeat([f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)], n // 40),
            "group": np.repeat(["pretrained", "random"], n // 2),
            "seed": 0,
            "epoch": np.tile(np.arange(n // 40), 40),
            "step": 0,
            "checkpoint": [f"c{i}" for i in range(n)],
            "x": np.r_[gen.normal(-5, 0.5, n // 2), gen.normal(5, 0.5, n // 2)],
            "y": gen.normal(0, 0.5, n),
        }
    )
    fig = density_figure(frame, resolution=(200, 100))
    rgba = picture(fig)
    assert rgba.shape == (100, 200, 4)
    x0, x1 = fig.layout.xaxis.range
    left, right = rgba[:, :100], rgba[:, 100:]
    assert (left[..., 3] > 0).sum() > 50 and (right[..., 3] > 0).sum() > 50
    luts = group_luts(("pretrained", "random"))
    # every opaque pixel's colour is one of its group's scale
    for half, code in ((left, 0), (right, 1)):
        colours = half[half[..., 3] > 0][:, :3]
        dist = np.abs(colours[:, None, :].astype(int) - luts[code][None]).sum(-1).min(1)
        assert dist.max() <= 3
    # the middle, where no checkpoint lies, is transparent
    assert rgba[:, 95:105, 3].max() == 0
    assert fig.layout.images[0].sizex == pytest.approx(x1 - x0)


def test_large_maps_are_a_picture_small_ones_points(monkeypatch):
    small = frame_of(10, 9)  # 100 checkpoints
    big = frame_of(260, 19)  # 5,200 checkpoints
    assert "checkpoints" in roles(map_figure(small))  # point by point
    fig = map_figure(big, highlight_runs=["sweep-r0000007", "nope"])
    assert "checkpoints" not in roles(fig) and len(fig.layout.images) == 1
    drawn = sum(len(t.x) for t in fig.data if t.x is not None)
    assert drawn < 100  # the picture, not the points
    (path,) = [t for t in fig.data if t.meta["role"] == "highlight"]
    rows = big[big["run"] == "sweep-r0000007"].sort_values("epoch")
    np.testing.assert_allclose(path.x, rows["x"])
    np.testing.assert_allclose(path.y, rows["y"])
    assert roles(fig).count("span") == 2  # one colour bar per group
    monkeypatch.setattr(density, "RASTER_LIMIT", 50)
    assert len(map_figure(small).layout.images) == 1
    assert "checkpoints" in roles(map_figure(small, raster=False))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_a_large_map_exports_to_a_small_file(tmp_path, suffix):
    from fspace.export import write_figure

    frame = frame_of(10_000, 19)  # 200,000 checkpoints
    fig = map_figure(frame, title="sweep", highlight_runs=["sweep-r0000003"])
    path = write_figure(fig, tmp_path / f"map.{suffix}", width=1200, height=850)
    size = path.stat().st_size
    assert 10_000 < size < 4 * 2**20  # a few megabytes at most, not one shape per point
    if suffix == "png":
        from PIL import Image

        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape == (1700, 2400, 3)
        coloured = np.ptp(image.astype(int), axis=2) > 40  # not white, grey or black
        assert coloured.mean() > 0.05  # the density, drawn
    elif suffix == "svg":
        assert path.read_text().count("<image") == 1  # the picture, embedded once
    else:
        assert b"/Subtype /Image" in path.read_bytes()
