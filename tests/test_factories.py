"""Model factories are code the user chose: a name read from a run.json is never called
unless it is registered; what a factory returns is used only if it is a Module."""

from __future__ import annotations

import json

import pytest
from _models import make_mlp
from conftest import record_experiment

from fspace import Experiment, Recorder, evaluate
from fspace.cli import main
from fspace.errors import ConfigError, RunError
from fspace.factories import (
    FACTORIES,
    UntrustedFactoryError,
    build_model,
    register_factory,
    resolve,
    spec_of,
)
from fspace.registry import Entry
from fspace.store import RunInfo


@pytest.fixture
def exp_path(tmp_path, suite):
    path = record_experiment(tmp_path / "exp", suite, seeds=(0,), epochs=1, online=False)
    Experiment(path).add_probes(suite)
    return path


def _edit_run(path, run, **fields):
    run_json = path / "runs" / run / "run.json"
    body = json.loads(run_json.read_text())
    body.update(fields)
    run_json.write_text(json.dumps(body))


ATTACKS = {
    "atomic-write-text": lambda m: ("fspace._atomic:write_text", {"path": str(m), "text": "x"}),
    "cli-main-shell": lambda m: (
        "fspace.cli:main",
        {"argv": ["evaluate", str(m.parent), "--model-factory", "os:system", "--runs", "x"]},
    ),
    "os-mkdir": lambda m: ("os:mkdir", {"path": str(m)}),
    "os-system": lambda m: ("os:system", {"command": f"touch {m}"}),
}


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_factory_named_by_a_run_json_is_never_called(exp_path, tmp_path, attack, capsys):
    marker = tmp_path / "pwned"
    factory, kwargs = ATTACKS[attack](marker)
    _edit_run(exp_path, "pretrained-s0", model_factory=factory, model_kwargs=kwargs)
    with pytest.raises(UntrustedFactoryError, match="not registered.*--model-factory"):
        evaluate(exp_path, runs=["pretrained-s0"], progress=False)
    # The command line says the same in one line, for evaluate and export alike.
    assert main(["evaluate", str(exp_path)]) == 2
    assert main(["export", str(exp_path), "-o", str(tmp_path / "m.html"), "--method", "pca"]) == 2
    err = [s for s in capsys.readouterr().err.splitlines() if s.startswith("fspace ")]
    assert len(err) == 2 and all("is not registered" in line for line in err)
    assert not marker.exists()


def test_user_passed_factory_is_allowed(exp_path, tmp_path):
    marker = tmp_path / "made"
    _edit_run(
        exp_path, "pretrained-s0", model_factory="os:mkdir", model_kwargs={"path": str(marker)}
    )
    # The user's explicit choice is called, but a non-Module result is refused.
    with pytest.raises(ConfigError, match="returned NoneType, not a torch.nn.Module"):
        evaluate(exp_path, runs=["pretrained-s0"], model_factory="os:mkdir", progress=False)
    assert marker.exists()
    _edit_run(exp_path, "pretrained-s0", model_factory="nowhere:fn", model_kwargs={"seed": 0})
    fv = evaluate(exp_path, runs=["pretrained-s0"], model_factory=make_mlp, progress=False)
    assert len(fv) == 2
    fv = evaluate(
        exp_path, runs=["pretrained-s0"], model_factory="_models:make_mlp", progress=False
    )
    assert len(fv) == 2


def test_registered_factories_resolve_by_name_or_entry_point():
    assert resolve("_models:make_mlp", False) is make_mlp
    assert resolve("fspace.models.mlp:make_mlp", False).__name__ == "make_mlp"

    def made_here():
        return make_mlp()

    made_here.__qualname__ = "made_here"
    FACTORIES.add(Entry("plugin-name", made_here, "plugin"))  # as an entry point adds it
    assert resolve(spec_of(made_here), False) is made_here


def not_a_model(n: int = 1):
    return [n]


def test_registered_factory_returning_no_module_is_refused():
    register_factory(not_a_model)
    with pytest.raises(ConfigError, match="module-level function"):
        register_factory(lambda: None)
    run = RunInfo(id="r", group="g", seed=0, model_factory=spec_of(not_a_model))
    with pytest.raises(ConfigError, match="returned list, not a torch.nn.Module"):
        build_model(run)
    bad_kwargs = RunInfo(
        id="r", group="g", seed=0, model_factory=spec_of(not_a_model), model_kwargs={"x": 1}
    )
    with pytest.raises(ConfigError, match="does not accept"):
        build_model(bad_kwargs)


def test_unregistered_and_malformed_names(tmp_path):
    with pytest.raises(UntrustedFactoryError, match="'json:loads'"):
        resolve("json:loads", False)
    with pytest.raises(ConfigError, match="must be named"):
        resolve(make_mlp, False)
    for bad in ["no-colon", "a:b:c", ":x", 12]:
        with pytest.raises(ConfigError, match="package.module:function"):
            resolve(bad, True)
    with pytest.raises(ConfigError, match="cannot import"):
        resolve("no_such_module_xyz:fn", True)
    with pytest.raises(RunError, match="recorded no model factory"):
        build_model(RunInfo(id="r", group="g", seed=0))


def test_generative_regimes_build_only_their_registered_architectures():
    from fspace.experiments.generative import regimes

    with pytest.raises(RunError, match="not one of the regimes"):
        regimes.build("fspace._atomic:write_text", {"path": "x", "text": "y"})
    model = regimes.build(
        "fspace.models.mlp:make_mlp", {"n_in": 4, "hidden": [3], "n_classes": 2, "seed": 0}
    )
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_regimes_page_model_is_built_only_from_a_registered_factory(tmp_path):
    """The dashboard's Regimes page rebuilds the joint model from the run's run.json."""
    from fspace.experiments.generative.analysis import JOINT_REGIME, joint_model

    path = tmp_path / "exp"
    with Recorder(path, run="joint-s0", group=JOINT_REGIME, seed=0) as rec:
        rec.record(make_mlp(), epoch=0)
    marker = tmp_path / "pwned"
    _edit_run(
        path,
        "joint-s0",
        model_factory="fspace._atomic:write_text",
        model_kwargs={"path": str(marker), "text": "x"},
    )
    with pytest.raises(UntrustedFactoryError, match="not registered"):
        joint_model(path)
    assert not marker.exists()
