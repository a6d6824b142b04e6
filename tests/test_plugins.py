"""A third-party package extends fspace through entry points alone.

The package below is written into a temporary folder together with the
``*.dist-info/entry_points.txt`` that ``pip install`` would leave. It registers an
embedding method (``fspace.embeddings``), a distance (``fspace.distances``), an
experiment (``fspace.experiments``) and the experiment's model factory
(``fspace.model_factories``). No fspace file is edited: each appears in
``fspace embed --help``, ``fspace experiment --help`` and the dashboard's controls,
and runs from there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

METHOD = '''
"""Each checkpoint placed by its distances to the first two (a toy map of distances)."""
from fspace.embedding import EmbeddingMethod, Param, register


@register(
    "mine",
    label="First two",
    help="distances to the first two checkpoints, scaled",
    params=[
        Param("scale", float, 1.0, "factor on both axes", low=0.5, high=10.0),
        Param("swap", bool, False, "exchange the axes"),
    ],
    distances="any",
)
class FirstTwo(EmbeddingMethod):
    needs_distances = True

    def fit(self, matrix, params, *, progress):
        return self.transform(None, matrix, params), None

    def transform(self, state, matrix, params):
        coords = params["scale"] * matrix[:, :2]
        return coords[:, ::-1] if params["swap"] else coords
'''

DISTANCE = '''
"""The city-block (L1) distance between function vectors as stored."""
import numpy as np

from fspace.distances import DISTANCES, Distance


@DISTANCES.register(
    "cityblock",
    label="City block",
    help="sum of absolute differences of the stored function vectors",
    kinds=("classification", "sequence", "regression"),
    metric=True,
    squared=False,
)
class CityBlock(Distance):
    raw = True

    def prepare(self, vectors, params):
        return (np.asarray(vectors.matrix, dtype=np.float64),)

    def block(self, a, b, params):
        return np.abs(a[0][:, None, :] - b[0][None, :, :]).sum(axis=-1)
'''

EXPERIMENT = '''
"""A tiny experiment: a linear model fitted to noise, two epochs per seed."""
import torch

from fspace.experiments import EXPERIMENTS
from fspace.experiments.runner import RunPlan, Trainer, record
from fspace.factories import register_factory
from fspace.probes import ProbeSuite
from fspace.registry import Param


@register_factory
def make_net(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softmax(dim=-1))


class Tiny(Trainer):
    def __init__(self, seeds, epochs):
        self.seeds, self.epochs = seeds, epochs
        inputs = torch.rand(12, 3, generator=torch.Generator().manual_seed(0))
        self.suite = ProbeSuite.from_array(inputs)

    def plan(self):
        for seed in self.seeds:
            yield RunPlan(f"tiny-s{seed}", "tiny", seed, {}, self.epochs,
                          "fspace_mine.experiment:make_net", {"seed": seed})

    def build(self, run):
        return make_net(**run.model_kwargs)

    def start(self, run, exp):
        return self.build(run)

    def train_epoch(self, model, run, epoch):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(epoch)))
        return {"train_loss": 1.0 / epoch}, epoch


@EXPERIMENTS.register(
    "tiny",
    label="Tiny",
    help="a linear model nudged by noise, for testing plug-ins",
    params=(Param("epochs", int, 2, "training epochs", low=1),),
)
def run(out, settings, *, progress=True):
    return record(out, Tiny(settings["seeds"], settings["epochs"]), progress=progress)
'''

ENTRY_POINTS = """\
[fspace.embeddings]
mine = fspace_mine.method

[fspace.distances]
cityblock = fspace_mine.distance

[fspace.experiments]
tiny = fspace_mine.experiment

[fspace.model_factories]
tiny = fspace_mine.experiment
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder on which the package ``fspace_mine`` is installed, as pip would leave it."""
    site = tmp_path_factory.mktemp("site")
    package = site / "fspace_mine"
    package.mkdir()
    (package / "__init__.py").write_text('"""Plug-ins for fspace."""\n')
    for name, text in (("method", METHOD), ("distance", DISTANCE), ("experiment", EXPERIMENT)):
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    meta = site / "fspace_mine-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: fspace_mine\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def fspace(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``fspace ARGS`` in a new process that has ``site`` on its path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "fspace.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def recorded(site, tmp_path_factory) -> Path:
    """The plug-in experiment, recorded by ``fspace experiment tiny``."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    done = fspace(["experiment", "tiny", "-o", str(out), "--seeds", "2", "-q"], site, out.parent)
    assert done.returncode == 0, done.stderr
    assert "2 runs recorded" in done.stdout
    return out


@pytest.mark.slow
def test_the_plugins_appear_in_the_command_line_help(site, tmp_path):
    embed = fspace(["embed", "--help"], site, tmp_path)
    assert embed.returncode == 0, embed.stderr
    text = " ".join(embed.stdout.split())  # argparse wraps the lines
    assert "mine: First two - distances to the first two checkpoints, scaled" in text
    assert "--scale X factor on both axes First two: float in [0.5, 10], default 1.0" in text
    assert "--swap, --no-swap" in text
    assert "cityblock: City block - sum of absolute differences" in text
    assert "tsne: t-SNE" in text and "euclidean: Euclidean" in text  # the built-ins stay
    experiment = fspace(["experiment", "--help"], site, tmp_path)
    assert experiment.returncode == 0, experiment.stderr
    assert "tiny" in experiment.stdout and "for testing plug-ins" in experiment.stdout
    tiny = fspace(["experiment", "tiny", "--help"], site, tmp_path)
    assert "--epochs N" in tiny.stdout


@pytest.mark.slow
def test_the_plugin_experiment_method_and_distance_run(site, recorded, tmp_path):
    from fspace import Experiment, evaluate

    exp = Experiment(recorded)
    assert sorted(r.id for r in exp.runs()) == ["tiny-s0", "tiny-s1"]
    assert [c.epoch for c in exp.checkpoints("tiny-s1")] == [0, 1, 2]
    csv = tmp_path / "map.csv"
    argv = ["embed", str(recorded), "--method", "mine", "--scale", "2", "--swap"]
    argv += ["--distance", "cityblock", "--csv", str(csv), "-q"]
    done = fspace(argv, site, tmp_path)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(csv)
    # The reference: L1 distances of the stored function vectors, computed here.
    vectors = evaluate(exp, progress=False)
    order = [list(vectors.points["checkpoint"]).index(k) for k in frame["checkpoint"]]
    matrix = np.asarray(vectors.matrix, dtype=np.float64)
    l1 = np.abs(matrix[:, None, :] - matrix[None, :, :]).sum(axis=-1)
    np.testing.assert_allclose(frame["x"], 2 * l1[order, 1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(frame["y"], 2 * l1[order, 0], rtol=1e-6, atol=1e-9)
    # A parameter of another method is refused by name, on one line.
    wrong = fspace(
        ["embed", str(recorded), "--method", "mine", "--perplexity", "5"], site, tmp_path
    )
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1] == (
        "fspace embed: error: --perplexity applies to --method tsne only; "
        "--method mine takes --scale, --swap"
    )


@pytest.fixture
def with_plugins(site, monkeypatch):
    """This process sees the plug-ins (the registries load their entry points again);
    afterwards the registries are as they were."""
    from fspace.distances import DISTANCES
    from fspace.embedding import METHODS
    from fspace.experiments import EXPERIMENTS

    monkeypatch.syspath_prepend(str(site))
    for registry in (METHODS, DISTANCES, EXPERIMENTS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_loaded", False)
    yield
    for name in [m for m in sys.modules if m == "fspace_mine" or m.startswith("fspace_mine.")]:
        del sys.modules[name]


@pytest.mark.slow
def test_the_plugins_appear_in_the_dashboard_and_its_map_runs(with_plugins, recorded):
    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION
    from fspace.app.views import parse_view, view_query

    app = create_app(recorded.parent)
    state = app.server.extensions[EXTENSION]
    try:
        with app.server.app_context():
            from fspace.app.pages import trajectories

            view = "?method=mine&scale=3&distance=cityblock&exp=tiny"
            query = dict(p.split("=") for p in view[1:].split("&"))
            parsed, notes = parse_view(query)
            assert (
                notes == []
                and view_query(parsed) == "?exp=tiny&method=mine&scale=3&distance=cityblock"
            )
            page = trajectories.layout(**query)
            menu = _find(page, "map-method")
            assert {"label": "First two", "value": "mine"} in [
                {k: o[k] for k in ("label", "value")} for o in menu.options
            ]
            assert menu.value == "mine"
            scale = _find(page, {"type": "map-param", "method": "mine", "name": "scale"})
            assert (scale.type, scale.min, scale.max, scale.value) == ("number", 0.5, 10.0, 3.0)
            swap = _find(page, {"type": "map-param", "method": "mine", "name": "swap"})
            assert swap.value is False
            distance = _find(page, "map-distance")
            assert "cityblock" in [o["value"] for o in distance.options]
            assert distance.value == "cityblock"
            keys = [scale.id, swap.id]
            args = (1, "mine", [3.0, True], "cityblock", 0, None, keys, "tiny", None)
            status = _wait(lambda: trajectories.poll(*args)[1])
            text = str(status)
            assert "First two (scale 3, swap True) of City block distances: 6 checkpoints" in text
    finally:
        state.close()


def _wait(poll, seconds: float = 120):
    """The status ``poll()`` returns once the map is ready or failed."""
    end = time.monotonic() + seconds
    while True:
        status = poll()
        if "busy" not in status.className or time.monotonic() > end:
            return status
        time.sleep(0.2)


def _find(component, ident):
    """The component with id ``ident`` inside ``component``."""
    if getattr(component, "id", None) == ident:
        return component
    children = getattr(component, "children", None)
    if children is None:
        return None
    for child in children if isinstance(children, list | tuple) else [children]:
        found = _find(child, ident)
        if found is not None:
            return found
    return None
