"""Tests of figure export to HTML, PNG, SVG and PDF files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import pytest

from fspace import export
from fspace.errors import ExportError
from fspace.export import write_figure
from fspace.plot import trajectory_figure

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@pytest.fixture(scope="module")
def fig():
    gen = np.random.default_rng(0)
    rows = [
        {
            "run": f"{group}-s{seed}",
            "group": group,
            "seed": seed,
            "epoch": epoch,
            "step": epoch,
            "checkpoint": f"{group}-s{seed}/epoch-{epoch}",
            "test_error": 1 / (epoch + 1),
            "x": gen.normal(),
            "y": gen.normal(),
        }
        for group in ("pretrained", "random")
        for seed in range(2)
        for epoch in range(4)
    ]
    return trajectory_figure(pd.DataFrame(rows), title="export test")


def _png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"], ids=["png", "svg", "pdf"])
def test_static_formats_write_valid_files(tmp_path, monkeypatch, fig, suffix):
    monkeypatch.chdir(tmp_path)  # missing folders are created only inside the current one
    path = write_figure(fig, tmp_path / "nested" / f"map{suffix}", width=400, height=300, scale=1)
    data = path.read_bytes()
    assert path == tmp_path / "nested" / f"map{suffix}"
    if suffix == ".png":
        assert _png(data) == (400, 300)
    elif suffix == ".svg":
        text = data.decode("utf-8")
        assert text.startswith("<svg") or "<svg" in text[:200]
        assert "export test" in text
        assert "<image" not in text  # vector shapes, not a WebGL bitmap
    else:
        assert data.startswith(b"%PDF")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.slow
def test_png_scale_multiplies_pixels(tmp_path, fig):
    path = write_figure(fig, tmp_path / "map.PNG", width=300, height=200, scale=2)
    assert _png(path.read_bytes()) == (600, 400)


def test_html_is_self_contained(tmp_path, fig):
    path = write_figure(fig, tmp_path / "map.html")
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith(("<!doctype html>", "<html"))
    # The whole plotly.js bundle is inlined: the page needs no network.
    bundle = PLOTLY_JS.read_text(encoding="utf-8")
    assert bundle[-2000:] in text
    assert re.search(r"<script[^>]*\bsrc=", text) is None
    assert r"random-s1\u002fepoch-3" in text  # the figure data, "/" escaped in JSON
    assert "export test" in text


@pytest.mark.parametrize("name", ["map.jpg", "map", "map.html.bak"], ids=["jpg", "none", "bak"])
def test_unknown_suffix_lists_supported(tmp_path, fig, name):
    with pytest.raises(ExportError, match=r"\.html, \.png, \.svg, \.pdf"):
        write_figure(fig, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


class FailingScope:
    def transform(self, figure, **kwargs):
        raise ValueError("Transform failed with error code 525: renderer crashed")


def test_renderer_failure_names_the_path_and_keeps_old_file(tmp_path, fig, monkeypatch):
    monkeypatch.setattr(export, "_scope", lambda: FailingScope())
    target = tmp_path / "map.png"
    target.write_bytes(b"old")
    with pytest.raises(ExportError, match=r"map\.png.*renderer crashed"):
        write_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png"]


def test_failed_write_leaves_no_partial_file(tmp_path, fig, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ExportError, match=r"map\.html.*No space left"):
        write_figure(fig, tmp_path / "map.html")
    assert list(tmp_path.iterdir()) == []


def test_static_export_draws_webgl_traces_as_svg_shapes(fig):
    assert {t.type for t in fig.data} == {"scattergl"}
    converted = export._without_webgl(fig)
    assert {t.type for t in converted.data} == {"scatter"}
    assert {t.type for t in fig.data} == {"scattergl"}  # the input is untouched
    for before, after in zip(fig.data, converted.data, strict=True):
        np.testing.assert_array_equal(before.x, after.x)
        assert before.meta == after.meta
    assert converted.layout.coloraxis.colorbar.title.text.endswith("epoch")
    assert converted.layout.coloraxis == fig.layout.coloraxis


def test_renderer_is_started_once():
    assert export._scope() is export._scope()
