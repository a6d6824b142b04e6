"""Exports of the trajectories page for a map above the raster threshold: the figure is
the page's picture with the selected run's path on top, quick to write and small."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from _bigmap import real_points, synthetic_embedding, with_real_runs
from conftest import record_experiment
from test_app_callbacks import probe_suite

from fspace.app.maps import MapSpec
from fspace.app.server import create_app
from fspace.app.state import EXTENSION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A dashboard whose map of "exp" holds 20,000 checkpoints, one recorded run's among
    them; yields (the map's token, a checkpoint of that run)."""
    root = tmp_path_factory.mktemp("downloads")
    record_experiment(root / "exp", probe_suite(), groups=("pretrained",), seeds=(0,))
    app = create_app(root, export_dir=tmp_path_factory.mktemp("exports"))
    state = app.server.extensions[EXTENSION]
    handle = state.registry.get("exp")
    embedding = synthetic_embedding(1000, 19)
    x0, y0 = embedding.coords.min(axis=0)
    embedding = with_real_runs(embedding, real_points(handle), (x0, y0 - 2.0), 0.5)
    entry = state.maps.adopt(handle, MapSpec.make("pca"), embedding)
    key = str(embedding.points["checkpoint"].iloc[2])
    with app.server.app_context():
        yield entry.token, key
    state.close()


@pytest.mark.parametrize("fmt", ["pdf", "png"])
def test_export_of_a_large_map_is_its_picture(big, fmt):
    from fspace.app import downloads

    token, key = big
    sent, note = downloads.export(1, fmt, "exp", token, [], None, key, [])
    assert sent["filename"] == f"exp-pca-trajectories.{fmt}" and note.startswith("exported")
    data = base64.b64decode(sent["content"])
    assert len(data) < 3 * 2**20  # one picture, not 20,000 shapes
    if fmt == "pdf":
        assert data[:5] == b"%PDF-" and b"/Subtype /Image" in data
    else:
        import io

        from PIL import Image

        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        assert (np.ptp(image, axis=2) > 40).mean() > 0.03  # the density, in colour


def test_export_draws_the_selected_run_on_the_picture(big, monkeypatch):
    from fspace.app import downloads

    token, key = big
    figures = []
    monkeypatch.setattr(
        downloads.current().exports, "figure", lambda fig, stem, fmt: figures.append(fig)
    )
    monkeypatch.setattr(downloads.dcc, "send_file", lambda path: {"filename": "x"})
    downloads.export(1, "svg", "exp", token, [], None, key, [])
    (fig,) = figures
    assert len(fig.layout.images) == 1
    (path,) = [t for t in fig.data if t.meta["role"] == "highlight"]
    assert path.name == "run pretrained-s0" and len(path.x) == 5
    assert "checkpoints" not in {t.meta["role"] for t in fig.data}
    # below the page's threshold the figure is drawn point by point, as the page does
    monkeypatch.setattr("fspace.app.raster.VECTOR_LIMIT", 10**9)
    downloads.export(1, "svg", "exp", token, [], None, key, [])
    assert not figures[-1].layout.images
