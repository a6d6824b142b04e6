"""The results page of any experiment: which panels apply to which recorded data, the
numbers they show (against pandas and numpy), and the receptive fields of the first
layer only (never the output layer)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from _results_experiments import SIDE, record_cnn, record_depths
from conftest import record_experiment
from test_app_callbacks import probe_suite, wait_for

from fspace.analysis.outcomes import (
    curves,
    describe,
    factors_of,
    final_values,
    metric_summary,
    separation_by,
)
from fspace.analysis.weights import (
    NoImageLayerError,
    first_layer_fields,
    image_layer,
    image_shape,
    weight_changes,
)
from fspace.app.server import create_app
from fspace.app.state import EXTENSION
from fspace.models.conv import make_convnet
from fspace.models.mlp import make_mlp
from fspace.plot.common import mosaic
from fspace.store import Experiment

DEVELOPER_TEXT = ("needs column", "pass a points frame", "Traceback", "internal error")


def text_of(component) -> str:
    """Every string of a rendered component tree, figures included."""
    from plotly.utils import PlotlyJSONEncoder

    return json.dumps(component, cls=PlotlyJSONEncoder, ensure_ascii=False)


def runs_frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"run": [f"r{i}" for i in range(n)], **columns})


@pytest.mark.parametrize(
    ("columns", "keys", "expected"),
    [
        ({"group": ["a", "a", "b", "b"]}, [], ["group"]),
        ({"group": ["a", "b", "a", "b"], "depth": [1, 1, 2, 2]}, ["depth"], ["group", "depth"]),
        # lr only restates the group: one factor
        ({"group": ["a", "a", "b", "b"], "lr": [0.1, 0.1, 0.2, 0.2]}, ["lr"], ["group"]),
        ({"group": ["g"] * 4, "lr": [0.1, 0.1, 0.2, 0.2]}, ["lr"], ["lr"]),
        # a name of its own per run is no group
        ({"group": ["a", "a", "b", "b"], "name": ["w", "x", "y", "z"]}, ["name"], ["group"]),
        ({"group": ["g"] * 3, "width": [8, 8, 8]}, ["width"], []),
        ({"group": ["a", "b"], "lr": [0.1, 0.2], "seed": [0, 1]}, ["lr", "seed"], ["group"]),
    ],
    ids=["group", "group-depth", "redundant", "setting-only", "per-run", "none", "seed"],
)
def test_factors_are_the_settings_that_split_the_runs(columns, keys, expected):
    assert factors_of(runs_frame(**columns), keys) == expected


def points(groups, depths=None, epochs=3, metrics=("test_error", "train_loss")) -> pd.DataFrame:
    """A points frame: one run per entry of ``groups``, ``epochs`` checkpoints each."""
    rows = []
    gen = np.random.default_rng(0)
    for i, group in enumerate(groups):
        for epoch in range(epochs):
            row = {"run": f"r{i}", "group": group, "seed": i, "epoch": epoch, "step": epoch}
            row |= {"checkpoint": f"r{i}/{epoch}"}
            if depths is not None:
                row["depth"] = depths[i]
            row |= {m: float(gen.random()) for m in metrics}
            rows.append(row)
    return pd.DataFrame(rows)


def test_design_of_two_groups_without_depth():
    design = describe(points(["baseline", "ours"] * 2, metrics=("accuracy", "test_error")))
    assert design.factors == ["group"]
    assert design.metrics == ["test_error", "accuracy"]  # errors first
    assert design.axis is None and "no depth" in design.notes["axis"]
    assert design.x == "epoch" and set(design.labels) == {"baseline", "ours"}
    assert separation_by(design) == ("group", "")


def test_design_of_a_depth_sweep():
    frame = points(["p", "p", "r", "r"] * 2, depths=[1, 2, 1, 2, 1, 2, 1, 2])
    design = describe(frame, ["depth"])
    assert design.factors == ["group", "depth"] and design.axis == "depth"
    assert "p · depth=2" in design.labels and "axis" not in design.notes


@pytest.mark.parametrize(
    ("groups", "why"),
    [(["a", "a"], "one group"), (["a", "b"], "single run")],
    ids=["one-group", "one-run-each"],
)
def test_separation_says_why_it_does_not_apply(groups, why):
    by, text = separation_by(describe(points(groups)))
    assert by is None and why in text


def test_final_values_and_curves_match_pandas():
    frame = points(["a", "a", "b"], epochs=4)
    design = describe(frame)
    final = final_values(design)
    expected = frame[frame["epoch"] == 3].set_index("run")["test_error"]
    assert final.set_index("run")["test_error"].to_dict() == expected.to_dict()
    stats = metric_summary(final, "test_error").set_index("label")
    assert stats.loc["a", "mean"] == pytest.approx(expected[["r0", "r1"]].mean())
    assert stats.loc["a", "std"] == pytest.approx(expected[["r0", "r1"]].std(ddof=1))
    assert stats.loc["b", "n"] == 1 and np.isnan(stats.loc["b", "std"])
    c = curves(design, "train_loss").set_index(["label", "epoch"])
    at = frame[(frame["group"] == "a") & (frame["epoch"] == 2)]["train_loss"]
    assert c.loc[("a", 2), "mean"] == pytest.approx(at.mean())
    assert c.loc[("a", 2), "min"] == at.min() and c.loc[("a", 2), "max"] == at.max()


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_cnn_fields_are_its_kernels_never_the_output_layer():
    # 16 channels x 7 x 7 = 784: the output layer has one weight per pixel of a 28x28
    # image, and must still not be drawn as one.
    model = make_convnet(image_shape=(28, 28), channels=(8, 16))
    assert shapes(model)["output.weight"][1] == 784
    layer = image_layer(shapes(model), (784,))
    assert (layer.name, layer.kind, layer.field_shape) == ("conv1.weight", "conv", (5, 5))


@pytest.mark.parametrize(
    ("model", "input_shape", "expected"),
    [
        (make_mlp(784, [20, 20]), (784,), ("hidden_layers.0.weight", "dense", (28, 28))),
        (make_mlp(64, [6]), (1, 8, 8), ("hidden_layers.0.weight", "dense", (8, 8))),
        (
            torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(11)]),
            (8, 8),
            ("0.weight", "dense", (8, 8)),
        ),
    ],
    ids=["mlp-784", "mlp-channels", "natural-order"],
)
def test_dense_fields_are_the_first_layer(model, input_shape, expected):
    layer = image_layer(shapes(model), input_shape)
    assert (layer.name, layer.kind, layer.field_shape) == expected


@pytest.mark.parametrize(
    ("model", "input_shape", "why"),
    [
        (torch.nn.Linear(784, 10), (784,), "output layer"),
        (make_mlp(4, [8]), (4,), r"not images \(each is 4 values\)"),
        (torch.nn.Embedding(100, 16), (64,), "no layer"),
        (make_mlp(784, [8]), None, "shape is unknown"),
    ],
    ids=["only-output-layer", "small-inputs", "tokens", "no-probe-shape"],
)
def test_no_fields_say_why(model, input_shape, why):
    with pytest.raises(NoImageLayerError, match=why):
        image_layer(shapes(model), input_shape)


def test_image_shape_of_flat_square_inputs():
    assert image_shape((784,)) == (1, 28, 28) and image_shape((3, 32, 32)) == (3, 32, 32)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    return record_cnn(tmp_path_factory.mktemp("cnn") / "cnn")


def test_fields_of_a_recorded_cnn_are_its_first_kernels(cnn):
    exp = Experiment(cnn)
    layer, before, after = first_layer_fields(exp, "ours-s1", (SIDE * SIDE,), n=2)
    ckpts = exp.checkpoints("ours-s1")
    w0 = exp.load_weights(ckpts[0])["conv1.weight"].numpy().mean(axis=1)
    w1 = exp.load_weights(ckpts[-1])["conv1.weight"].numpy().mean(axis=1)
    units = np.argsort(-np.linalg.norm(w0.reshape(len(w0), -1), axis=1))[:2]
    assert layer.kind == "conv" and before.shape == (2, 5, 5)
    np.testing.assert_allclose(before, w0[units])
    np.testing.assert_allclose(after, w1[units])


def test_weight_changes_match_numpy(cnn):
    exp = Experiment(cnn)
    changes = weight_changes(exp, ["baseline-s0"]).set_index("layer")
    assert list(changes.index) == ["conv1.weight", "conv2.weight", "output.weight"]
    ckpts = exp.checkpoints("baseline-s0")
    w0 = exp.load_weights(ckpts[0])["conv2.weight"].double().numpy()
    w1 = exp.load_weights(ckpts[-1])["conv2.weight"].double().numpy()
    expected = np.linalg.norm(w1 - w0) / np.linalg.norm(w0)
    assert changes.loc["conv2.weight", "relative_change"] == pytest.approx(expected)


@pytest.fixture(scope="module")
def app(tmp_path_factory, cnn):
    root = tmp_path_factory.mktemp("results-root")
    shutil.copytree(cnn, root / "cnn")
    record_depths(root / "depths")
    record_experiment(root / "mlp", probe_suite(), groups=("baseline", "ours"), epochs=2)
    record_experiment(root / "single", probe_suite(), groups=("only",), seeds=(0,), epochs=1)
    app = create_app(root, poll_ms=200)
    with app.server.app_context():
        yield app
    app.server.extensions[EXTENSION].close()


def shown(app, name: str):
    """The page's panels once the results of ``name`` are complete."""
    from fspace.app.pages import results

    state = app.server.extensions[EXTENSION]
    handle = state.registry.get(name)
    status = wait_for(lambda: (s := state.results.status(handle)) and not s.busy and s)
    summary, separation, change, _, metric, _, run = results.render(status.token, None, None)
    final, over, axis = results.draw(metric, status.token)
    fields = results.fields(run, status.token, name)
    panels = dict(summary=summary, separation=separation, change=change, final=final)
    panels |= dict(curves=over, axis=axis, fields=fields)
    return {k: text_of(v) for k, v in panels.items()}, metric, status


def test_results_of_a_cnn(app):
    panels, metric, status = shown(app, "cnn")
    assert metric == "test_error" and not status.error
    for text in panels.values():
        assert not any(bad in text for bad in (*DEVELOPER_TEXT, "computing"))
    assert "4 runs in 2 group(s)" in panels["summary"] and "baseline" in panels["summary"]
    assert "1-NN accuracy" in panels["separation"] and "last checkpoints" in panels["separation"]
    assert "no depth" in panels["axis"]
    assert '"kind": "conv"' in panels["fields"] and "5x5" in panels["fields"]
    assert "conv2.weight" in panels["change"]
    assert '"role": "band"' in panels["curves"]


def test_results_of_a_depth_sweep(app):
    panels, _, _ = shown(app, "depths")
    assert "pretrained · depth=2" in panels["summary"]
    assert '"role": "mean"' in panels["axis"] and "mean test_error" in panels["axis"]
    assert '"kind": "dense"' in panels["fields"] and "8x8" in panels["fields"]


def test_results_of_models_that_read_no_images(app):
    panels, _, status = shown(app, "mlp")
    assert not status.error
    assert (
        "no receptive fields to draw: the probe inputs are not images (each is 4 values)"
        in (panels["fields"])
    )
    assert "1-NN accuracy" in panels["separation"]


def test_results_of_a_single_run(app):
    panels, _, _ = shown(app, "single")
    assert "nothing to separate" in panels["separation"]
    assert "all 1 runs are in one group" in panels["summary"]
    for text in panels.values():
        assert not any(bad in text for bad in (*DEVELOPER_TEXT, "computing"))


def test_results_of_unknown_experiment(app):
    from fspace.app.pages import results

    assert "no experiment 'nope'" in text_of(results.layout(exp="nope"))


def test_every_experiment_links_its_results(app, cnn):
    from fspace.app.navigation import nav_pages

    assert "results" in [page.name for page in nav_pages(Experiment(cnn))]


def test_checkpoint_details_draw_a_cnns_kernels(app, cnn):
    from test_app_data import decode

    from fspace.app.details import fields_figure, find_checkpoint

    handle = app.server.extensions[EXTENSION].registry.get("cnn")
    details = find_checkpoint(handle, "baseline-s1")
    fig = fields_figure(handle, details)
    assert fig["data"][0]["z"]["shape"] == "11,11"  # 3 kernels of 5x5 in 2 columns
    kernels = handle.experiment.load_weights(details.checkpoint)["conv1.weight"].numpy()
    kernels = kernels.mean(axis=1)
    first = handle.experiment.load_weights(details.history[0])["conv1.weight"].numpy()
    norms = np.linalg.norm(first.mean(axis=1).reshape(3, -1), axis=1)
    expected = mosaic(kernels[np.argsort(-norms, kind="stable")])
    np.testing.assert_allclose(decode(fig["data"][1]["z"]), expected, rtol=1e-5)


def test_separation_of_many_checkpoints_reads_only_the_last(cnn, tmp_path, monkeypatch):
    from fspace.app import results as store
    from fspace.app.state import ServerState
    from fspace.app.vectors import checkpoint_vectors
    from fspace.distances import pairwise
    from fspace.stats import group_tests

    monkeypatch.setattr(store, "MAX_CHECKPOINTS", 5)
    state = ServerState(shutil.copytree(cnn, tmp_path / "cnn"))
    try:
        handle = state.registry.get(state.default_name())
        status = wait_for(lambda: (s := state.results.status(handle)) and not s.busy and s)
        res = state.results.find(status.token).results
    finally:
        state.close()
    assert set(res.separation["checkpoints_used"]) == {"last checkpoints"}
    assert "these runs have 16" in res.notes["separation_scope"]
    exp = Experiment(cnn)
    vectors, _ = checkpoint_vectors(exp, exp.checkpoints())
    full = group_tests(
        pairwise(vectors, "euclidean"), vectors.points, epoch="last", **store.RESAMPLING
    )
    np.testing.assert_allclose(res.separation["value"], full["value"], rtol=1e-5)


def results_of(root, name=None):
    """The finished results of one experiment under ``root``, from a state of its own."""
    from fspace.app.state import ServerState

    state = ServerState(root)
    try:
        handle = state.registry.get(name or state.default_name())
        status = wait_for(lambda: (s := state.results.status(handle)) and not s.busy and s)
        return status, state.results.find(status.token).results
    finally:
        state.close()


def test_an_experiment_without_checkpoints_says_so_in_every_panel(tmp_path):
    from fspace import Recorder

    with Recorder(tmp_path / "empty", run="r", group="g", probes=probe_suite()):
        pass
    status, res = results_of(tmp_path / "empty")
    assert status.error and "no checkpoints yet" in status.message
    assert set(res.notes) >= {"summary", "separation", "fields"}
    assert all("no checkpoints yet" in text for text in res.notes.values())


def test_a_failing_part_leaves_the_others(cnn, tmp_path, monkeypatch, caplog):
    import fspace.analysis.weights as weights

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(weights, "weight_changes", broken)
    _, res = results_of(shutil.copytree(cnn, tmp_path / "cnn"))
    assert res.notes["change"].startswith("internal error (RuntimeError)")
    assert "secret" not in res.notes["change"] and "secret internals" in caplog.text
    assert res.separation is not None and res.field_runs


def test_many_settings_fall_back_to_the_group():
    frame = points(["a", "b"] * 10)
    frame["lr"] = frame["seed"] // 2  # 10 learning rates x 2 groups: 20 labels
    design = describe(frame, ["lr"])
    assert design.factors == ["group"] and set(design.labels) == {"a", "b"}


def test_a_boolean_setting_is_no_axis():
    frame = points(["a", "a", "b", "b"] * 2)
    frame["augment"] = frame["seed"] % 2 == 0
    design = describe(frame, ["augment"])
    assert design.factors == ["group", "augment"] and design.axis is None
