"""Large synthetic maps (up to millions of checkpoints) built in seconds, for the raster
view's tests and benchmarks/dashboard.py.

:func:`synthetic_embedding` lays out ``runs x (epochs + 1)`` checkpoints as trajectories:
each group's runs start in one region and drift along their group's arm, each run its own
jittered path, so the picture has the structure of a real sweep. :func:`with_real_runs`
moves the checkpoints of runs recorded in a real store to a quiet corner of the map, so a
test can click one of them and open its details.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd

from fspace.embedding import Embedding

GROUPS = ("pretrained", "random")
SETTINGS = 3

# Page coordinates of the map point (x, y) in the dashboard's trajectory graph, for a
# browser test or benchmark to point at (arguments: x, y).
PLACE_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
const L = gd._fullLayout, box = gd.getBoundingClientRect();
return [box.left + L._size.l + L.xaxis.l2p(arguments[0]),
        box.top + L._size.t + L.yaxis.l2p(arguments[1])];
"""
# The answer the page's script shows for a hover or click on a large map
# (app/assets/raster_answer.js): [checkpoint, "hover" or "selected", its text, dots of the
# run's path drawn]; null while none is shown.
ANSWER_JS = """
const t = document.getElementById('map-answer');
if (!t || t.hidden) return null;
return [t.dataset.checkpoint, t.dataset.state, t.innerText,
        document.querySelectorAll('#map-answer-layer circle.fs-answer-dot').length];
"""


def synthetic_points(runs: int, epochs: int, *, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Coordinates and labels of ``runs`` runs of ``epochs + 1`` checkpoints each."""
    rng = np.random.default_rng(seed)
    steps = epochs + 1
    run = np.repeat(np.arange(runs), steps)
    epoch = np.tile(np.arange(steps), runs)
    group = run % len(GROUPS)
    setting = (run // len(GROUPS)) % SETTINGS  # e.g. depth: each its own arm
    t = epoch / max(epochs, 1)
    # Runs leave a common start along their group's side, fan out by setting and curl.
    angle = (
        np.pi * group
        + 0.55 * (setting - (SETTINGS - 1) / 2)
        + 0.9 * t
        + rng.normal(0, 0.05, runs)[run]
    )
    radius = (1.0 + 7.0 * np.sqrt(t)) * rng.normal(1.0, 0.07, runs)[run]
    jitter = rng.normal(0, 0.06 + 0.1 * t[:, None], (run.size, 2))
    coords = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]) + jitter
    names = np.array([f"sweep-r{i:07d}" for i in range(runs)], dtype=object)
    keys = [f"{names[r]}/e{e:06d}-s{0:010d}" for r, e in zip(run, epoch, strict=True)]
    points = pd.DataFrame(
        {
            "run": names[run],
            "group": np.asarray(GROUPS, dtype=object)[group],
            "seed": run // (len(GROUPS) * SETTINGS),
            "depth": setting + 1,
            "epoch": epoch,
            "step": np.zeros(run.size, np.int64),
            "checkpoint": keys,
            "test_error": (0.9 * np.exp(-3 * t) + rng.uniform(0, 0.05, run.size)).astype(float),
        }
    )
    return coords.astype(np.float64), points


def synthetic_embedding(runs: int, epochs: int, *, seed: int = 0) -> Embedding:
    """An embedding of :func:`synthetic_points` (method "pca", as if fitted)."""
    coords, points = synthetic_points(runs, epochs, seed=seed)
    return Embedding(coords, points, "pca", {}, "synthetic", "prob", 2)


def real_points(handle) -> pd.DataFrame:
    """The labels of every checkpoint of a recorded experiment (an ExperimentHandle), as
    an embedding's points."""
    scan = handle.scan()
    rows = []
    for ckpt in scan.checkpoints:
        run = scan.runs[ckpt.run]
        rows.append(
            {
                "run": ckpt.run,
                "group": run.group,
                "seed": run.seed,
                "epoch": ckpt.epoch,
                "step": ckpt.step,
                "checkpoint": ckpt.key,
            }
        )
    return pd.DataFrame(rows)


def with_real_runs(
    embedding: Embedding, real: pd.DataFrame, corner: tuple[float, float], spacing: float = 1.0
) -> Embedding:
    """``embedding`` with its first ``len(real)`` rows replaced by the checkpoints of
    ``real`` (see :func:`real_points`), laid out on a line from ``corner``, ``spacing``
    apart, away from the synthetic ones."""
    n = len(real)
    points = embedding.points.copy()
    for column in ("run", "group", "seed", "epoch", "step", "checkpoint"):
        points.loc[: n - 1, column] = real[column].to_numpy()
    coords = embedding.coords.copy()
    coords[:n, 0] = corner[0] + spacing * np.arange(n)
    coords[:n, 1] = corner[1]
    return Embedding(coords, points, embedding.method, {}, "synthetic", "prob", 2)


def drifting_rows(runs: int, per: int, d: int, seed: int = 0) -> np.ndarray:
    """Probability-like float16 rows, ``per`` for each of ``runs`` runs: each run moves
    from its own start towards one of two targets along a random walk, so that the top
    components mix the runs up."""
    gen = np.random.default_rng(seed)
    targets = gen.normal(size=(2, d)) * 3
    rows = []
    for r in range(runs):
        walk = np.cumsum(gen.normal(size=(per, d)) * 0.3, axis=0)
        a = (1 - np.exp(-np.arange(per) / 15))[:, None]
        rows.append((1 - a) * gen.normal(size=d) * 3 + a * targets[r % 2] + walk)
    return (1 / (1 + np.exp(-np.concatenate(rows)))).astype(np.float16)


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve the Dash ``app`` on a free port of 127.0.0.1 in a background thread;
    yields its URL, and closes the server and the app's state afterwards."""
    from waitress.server import create_server

    from fspace.app.state import EXTENSION

    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        app.server.extensions[EXTENSION].close()


@contextlib.contextmanager
def raster_client(root, monkeypatch) -> Iterator[tuple]:
    """A dashboard over ``root`` whose map of "exp" (PCA, 20 synthetic runs of 9 epochs) is
    drawn as a picture, the threshold lowered; yields (Flask test client, map token, the
    plot)."""
    from fspace.app import raster
    from fspace.app.maps import MapSpec
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    monkeypatch.setattr(raster, "VECTOR_LIMIT", 100)
    app = create_app(root)
    state = app.server.extensions[EXTENSION]
    entry = state.maps.adopt(
        state.registry.get("exp"), MapSpec.make("pca"), synthetic_embedding(20, 9, seed=4)
    )
    try:
        yield app.server.test_client(), entry.token, entry.plot
    finally:
        state.close()
