"""Bad input at every door: the command line and the Python API.

A command given bad input exits with code 2 and one line ``fspace CMD: error: ...``
that names the input, never a traceback; the API raises an FspaceError subclass whose
message names the argument; and no bad input writes anything, least of all outside
the directory it was aimed at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _models import make_mlp
from conftest import record_experiment

import fspace
from fspace import Experiment, ProbeSuite, Recorder
from fspace.cli import main
from fspace.errors import (
    ConfigError,
    EmptyExperimentError,
    FspaceError,
    ModelOutputError,
    ProbeMismatchError,
    RunError,
)
from fspace.pipeline import embed_experiment


@pytest.fixture(scope="module")
def suite() -> ProbeSuite:
    inputs = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    return ProbeSuite.from_array(inputs, name="probe")


@pytest.fixture(scope="module")
def exp_path(tmp_path_factory, suite) -> Path:
    path = tmp_path_factory.mktemp("bad-input") / "exp"
    return record_experiment(path, suite, seeds=(0,), epochs=2)


@pytest.fixture(scope="module")
def empty_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("empty") / "empty"
    Experiment.create(path)
    return path


def snapshot(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its modification time."""
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


# command line -------------------------------------------------------------------------

CLI_CASES = {
    # id: (argv, text the error line must contain); EXP / EMPTY / TMP are filled in
    "missing-path": (["info", "TMP/nowhere"], "nowhere"),
    "plain-directory": (["info", "TMP"], "not an fspace experiment"),
    "folder-of-experiments": (["info", "EXP/.."], "a folder of experiments, not one"),
    "a-file": (["evaluate", "TMP/file.txt"], "file.txt"),
    "empty-evaluate": (["evaluate", "EMPTY"], "no checkpoints"),
    "empty-embed": (["embed", "EMPTY", "--method", "pca"], "no checkpoints"),
    "empty-export": (["export", "EMPTY", "-o", "TMP/x.html"], "no checkpoints"),
    "perplexity-negative": (["embed", "EXP", "--perplexity", "-1"], "--perplexity"),
    "perplexity-infinite": (["embed", "EXP", "--perplexity", "inf"], "--perplexity"),
    "perplexity-not-a-number": (["embed", "EXP", "--perplexity", "abc"], "'abc'"),
    "perplexity-for-pca": (["embed", "EXP", "--method", "pca", "--perplexity", "5"], "tsne only"),
    "neighbors-zero": (["embed", "EXP", "--n-neighbors", "0"], "--n-neighbors"),
    "random-state-negative": (["embed", "EXP", "--random-state", "-3"], "random_state"),
    "unknown-method": (["embed", "EXP", "--method", "sammon"], "'sammon'"),
    "unknown-output": (["evaluate", "EXP", "--output", "softmax"], "'softmax'"),
    "unknown-suffix": (["export", "EXP", "-o", "TMP/plot.exe"], "'.exe'"),
    "no-suffix": (["export", "EXP", "-o", "TMP/plot"], "unknown suffix"),
    "width-zero": (["export", "EXP", "-o", "TMP/x.html", "--width", "0"], "--width"),
    "csv-is-a-directory": (["embed", "EXP", "--method", "pca", "--csv", "TMP"], "cannot write"),
    "run-with-dotdot": (["evaluate", "EXP", "--runs", "../x"], "'../x'"),
    "unknown-run": (["evaluate", "EXP", "--runs", "nope"], "'nope'"),
    "unknown-probes": (["evaluate", "EXP", "--probes", "nope"], "'nope'"),
    "embed-unknown-group": (["embed", "EXP", "--method", "pca", "--groups", "nope"], "'nope'"),
    "export-unknown-run": (["export", "EXP", "-o", "TMP/x.html", "--runs", "nope"], "'nope'"),
    "embed-no-runs": (["embed", "EXP", "--runs", ","], "comma-separated"),
    "depths-not-ints": (["experiment", "pretraining", "--depths", "a,b"], "'a,b'"),
    "depths-zero": (["experiment", "pretraining", "--depths", "0", "-o", "TMP/pt"], "depths"),
    "seeds-zero": (["experiment", "pretraining", "--seeds", "0"], "--seeds"),
    "lr-negative": (["experiment", "pretraining", "--lr=-0.1"], "--lr"),
    "unknown-dataset": (
        ["experiment", "pretraining", "--dataset", "TMP/x", "-o", "TMP/pt"],
        "TMP/x",
    ),
    "unknown-command": (["frobnicate"], "'frobnicate'"),
    "no-command": ([], "COMMAND"),
}
_ERROR_LINE = re.compile(r"^fspace( [a-z]+)*: error: ")


def _fill(argv: list[str], exp: Path, empty: Path, tmp: Path) -> list[str]:
    names = {"EXP": str(exp), "EMPTY": str(empty), "TMP": str(tmp)}
    return [re.sub("EXP|EMPTY|TMP", lambda m: names[m.group()], a) for a in argv]


def _written(before: dict[str, int], *roots: Path) -> set[str]:
    """Files created or changed under ``roots`` since ``before`` (embedding caches aside:
    writing them is the point of a successful embedding)."""
    after = {k: v for root in roots for k, v in snapshot(root).items()}
    changed = {k for k, v in after.items() if before.get(k) != v}
    return {k for k in changed if "/cache/" not in k}


@pytest.mark.parametrize("case", list(CLI_CASES), ids=list(CLI_CASES))
def test_cli_bad_input(case, exp_path, empty_path, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("not an experiment")
    argv, expected = CLI_CASES[case]
    argv, (expected,) = (
        _fill(argv, exp_path, empty_path, tmp_path),
        _fill([expected], exp_path, empty_path, tmp_path),
    )
    if argv and argv[0] not in ("info", "frobnicate"):
        argv.append("-q")  # progress bars would go to stderr too
    roots = (tmp_path, exp_path, empty_path)
    before = {k: v for root in roots for k, v in snapshot(root).items()}
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    # argparse prints its usage first; the error itself is the last line, and alone
    # when fspace raised it
    assert _ERROR_LINE.match(lines[-1]), err
    assert expected in lines[-1], lines[-1]
    assert len(lines) == 1 or lines[0].startswith("usage:"), err
    assert not _written(before, *roots), "bad input wrote files"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["info", "{tmp}/nowhere"], id="missing-path"),
        pytest.param(["embed", "{exp}", "--perplexity", "-1"], id="bad-perplexity"),
    ],
)
def test_cli_bad_input_in_a_real_process(argv, exp_path, tmp_path):
    argv = [a.format(tmp=tmp_path, exp=exp_path) for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "fspace.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"fspace {argv[0]}: error: ")
    assert argv[1] in last or "--perplexity" in last
    assert result.stdout == ""


def test_export_with_a_bad_suffix_computes_nothing(exp_path, tmp_path, capsys):
    assert main(["export", str(exp_path), "-o", str(tmp_path / "x.gif"), "--method", "tsne"]) == 2
    assert "'.gif'" in capsys.readouterr().err
    assert all(e.key["method"] != "tsne" for e in Experiment(exp_path).cache.entries("map"))


def test_export_writes_only_its_file(exp_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # missing directories are created only inside this one
    out = tmp_path / "figs" / "plot.html"
    before = snapshot(tmp_path)
    code = main(["export", str(exp_path), "-o", str(out), "--method", "pca", "-q"])
    assert code == 0, capsys.readouterr().err
    assert set(snapshot(tmp_path)) - set(before) == {str(out)}  # no temp file left beside it


# Python API ----------------------------------------------------------------------------


RECORDER_CASES = {
    "path-an-int": ({"path": 123}, "path"),
    "path-none": ({"path": None}, "path"),
    "run-an-int": ({"run": 123}, "run id 123"),
    "run-with-dotdot": ({"run": "../escape"}, "'../escape'"),
    "run-with-slash": ({"run": "a/b"}, "'a/b'"),
    "run-with-newline": ({"run": "r\n"}, "'r\\n'"),
    "group-none": ({"group": None}, "group None"),
    "group-with-dotdot": ({"group": "../g"}, "'../g'"),
    "seed-a-string": ({"seed": "abc"}, "seed"),
    "seed-a-float": ({"seed": 1.5}, "seed"),
    "seed-negative": ({"seed": -1}, "seed"),
    "config-a-list": ({"config": [1, 2]}, "config"),
    "config-not-json": ({"config": {"opt": object()}}, "config['opt']"),
    "config-a-tensor": ({"config": {"lr": torch.tensor(0.1)}}, "config['lr']"),
    "config-int-key": ({"config": {1: 2}}, "config keys"),
    "model-kwargs-a-list": ({"model_kwargs": [1]}, "model_kwargs"),
    "model-kwargs-not-json": ({"model_kwargs": {"act": torch.nn.Tanh}}, "model_kwargs['act']"),
    "probes-a-string": ({"probes": "abc"}, "probes"),
    "probes-empty": ({"probes": np.zeros((0, 4))}, "empty"),
    "probes-nan": ({"probes": np.full((3, 4), np.nan)}, "NaN"),
    "probes-bad-name": ({"probes": ProbeSuite.from_array(np.ones((2, 4)), name="../p")}, "../p"),
    "output-unknown": ({"output": "softmax"}, "'softmax'"),
    "max-pending-zero": ({"max_pending": 0}, "max_pending"),
    "max-pending-a-string": ({"max_pending": "4"}, "max_pending"),
    "factory-an-int": ({"model_factory": 123}, "model_factory"),
    "factory-no-colon": ({"model_factory": "mypkg.make_mlp"}, "'mypkg.make_mlp'"),
    "factory-a-lambda": ({"model_factory": lambda: make_mlp()}, "importable"),
}


@pytest.mark.parametrize("case", list(RECORDER_CASES), ids=list(RECORDER_CASES))
def test_recorder_bad_arguments(case, tmp_path):
    changes, expected = RECORDER_CASES[case]
    kwargs = {"path": tmp_path / "exp", "run": "r", "group": "g", **changes}
    with pytest.raises(ConfigError) as info:
        Recorder(**kwargs)
    assert expected in str(info.value)
    assert list(tmp_path.iterdir()) == [], "a refused Recorder wrote files"


RECORD_CASES = {
    "not-a-model": ({"model": {"w": torch.zeros(2)}}, "dict"),
    "epoch-negative": ({"epoch": -1}, "epoch"),
    "epoch-a-float": ({"epoch": 1.5}, "epoch"),
    "epoch-a-string": ({"epoch": "1"}, "epoch"),
    "epoch-a-bool": ({"epoch": True}, "epoch"),
    "step-a-string": ({"step": "abc"}, "step"),
    "step-negative": ({"step": -2}, "step"),
    "step-a-float": ({"step": 2.5}, "step"),
    "metrics-a-list": ({"metrics": [0.1]}, "metrics"),
    "metric-a-string": ({"metrics": {"acc": "high"}}, "'acc'"),
    "metric-a-vector": ({"metrics": {"acc": torch.ones(3)}}, "'acc'"),
}


@pytest.mark.parametrize("case", list(RECORD_CASES), ids=list(RECORD_CASES))
def test_record_bad_arguments(case, tmp_path):
    changes, expected = RECORD_CASES[case]
    kwargs = {"model": make_mlp(), "epoch": 0, **changes}
    with Recorder(tmp_path / "exp", run="r", group="g") as rec:
        with pytest.raises(ConfigError) as info:
            rec.record(**kwargs)
    assert expected in str(info.value)
    assert Experiment(tmp_path / "exp").checkpoints() == []


def test_record_accepts_numpy_integers(tmp_path):
    with Recorder(tmp_path / "exp", run="r", group="g", seed=np.int64(3)) as rec:
        rec.record(make_mlp(), epoch=np.int64(2), step=np.int32(7))
    (ckpt,) = Experiment(tmp_path / "exp").checkpoints()
    assert (ckpt.epoch, ckpt.step) == (2, 7)


class _Returns(torch.nn.Module):
    """A model whose forward returns ``make(logits)``."""

    def __init__(self, make) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.make = make

    def forward(self, x):
        return self.make(self.linear(x))


MODEL_CASES = {
    "a-dict-without-logits": (lambda y: {"scores": y}, ModelOutputError, "keys: 'scores'"),
    "a-tuple-of-strings": (lambda y: ("logits",), ModelOutputError, "str"),
    "a-list": (lambda y: y.tolist(), ModelOutputError, "list"),
    "a-numpy-array": (lambda y: y.numpy(), ModelOutputError, "ndarray"),
    "one-dimensional": (lambda y: y.sum(dim=1), ModelOutputError, "shape"),
    "wrong-batch": (lambda y: y[:1], ModelOutputError, "shape"),
    "raises-on-the-probes": (lambda y: y @ torch.ones(5, 2), ProbeMismatchError, "'probe'"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES), ids=list(MODEL_CASES))
def test_model_with_unusable_output(case, tmp_path, suite):
    make, error, expected = MODEL_CASES[case]
    with Recorder(tmp_path / "exp", run="r", group="g", probes=suite) as rec:
        with pytest.raises(error) as info:
            rec.record(_Returns(make), epoch=3)
    assert expected in str(info.value) and "epoch 3" in str(info.value)
    assert Experiment(tmp_path / "exp").checkpoints() == []


def test_nan_outputs_everywhere_leave_nothing_to_evaluate(tmp_path, suite):
    nan = _Returns(lambda y: y * float("nan"))
    with Recorder(tmp_path / "exp", run="r", group="g", probes=suite) as rec:
        with pytest.warns(UserWarning, match="NaN"):
            rec.record(nan, epoch=0)
    with pytest.warns(UserWarning, match="r/e000000"):
        with pytest.raises(EmptyExperimentError, match="finite"):
            fspace.evaluate(tmp_path / "exp", model_factory=lambda: nan, progress=False)


def _not_a_module(seed: int = 0):
    return "a string"


EVALUATE_CASES = {
    "output-unknown": ({"output": "softmax"}, ConfigError, "'softmax'"),
    "probes-unknown": ({"probes": "nope"}, ProbeMismatchError, "'nope'"),
    "runs-unknown": ({"runs": ["nope"]}, RunError, "'nope'"),
    "runs-with-dotdot": ({"runs": ["../x"]}, ConfigError, "'../x'"),
    "factory-an-int": ({"model_factory": 123}, ConfigError, "123"),
    "factory-unimportable": ({"model_factory": "no_such_mod:fn"}, ConfigError, "no_such_mod"),
    "factory-not-a-module": ({"model_factory": _not_a_module}, ConfigError, "str"),
}


@pytest.mark.parametrize("case", list(EVALUATE_CASES), ids=list(EVALUATE_CASES))
def test_evaluate_bad_arguments(case, tmp_path, suite):
    changes, error, expected = EVALUATE_CASES[case]
    path = record_experiment(tmp_path / "exp", suite, seeds=(0,), epochs=1, online=False)
    Experiment(path).add_probes(suite)
    with pytest.raises(error) as info:
        fspace.evaluate(path, progress=False, **changes)
    assert expected in str(info.value)


def test_evaluate_an_empty_experiment(empty_path):
    with pytest.raises(EmptyExperimentError, match="no checkpoints"):
        fspace.evaluate(empty_path, progress=False)


@pytest.mark.parametrize("experiment", [123, None], ids=["an-int", "none"])
def test_evaluate_something_that_is_not_a_path(experiment):
    with pytest.raises(FspaceError, match="experiment"):
        fspace.evaluate(experiment, progress=False)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: fspace.function_vector(make_mlp(), "probes"), id="fv-probes"),
    ],
)
def test_wrong_types_to_embed_and_function_vector(call, suite):
    with pytest.raises(FspaceError):
        call(suite)


EMBED_CASES = {
    "unknown-method": ({"method": "sammon"}, "'sammon'"),
    "method-with-dotdot": ({"method": "../../escape"}, "'../../escape'"),
    "unknown-parameter": ({"method": "pca", "params": {"perplexity": 5}}, "perplexity"),
    "perplexity-negative": ({"params": {"perplexity": -1.0}}, "perplexity"),
    "random-state-a-string": ({"random_state": "x"}, "random_state"),
}


@pytest.mark.parametrize("case", list(EMBED_CASES), ids=list(EMBED_CASES))
def test_embed_bad_arguments(case, exp_path, tmp_path):
    changes, expected = EMBED_CASES[case]
    before = snapshot(exp_path.parent)  # "../../escape" would land right here
    with pytest.raises(ConfigError) as info:
        embed_experiment(exp_path, progress=False, **changes)
    assert expected in str(info.value)
    assert snapshot(exp_path.parent) == before


# nothing outside the target ------------------------------------------------------------


def test_hostile_names_write_nothing_outside_the_experiment(tmp_path, suite):
    """Names with '..' or '/' are refused before any file is written, and what is
    written for valid names stays inside the experiment directory."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "exp"
    hostile = ["..", "../..", "../escape", "a/../../x", "/tmp/escape", ".hidden", "a\0b", "a\n"]
    for name in hostile:
        for kwargs in ({"run": name}, {"group": name}):
            with pytest.raises(ConfigError):
                Recorder(path, **{"run": "r", "group": "g", **kwargs})
        with pytest.raises(ConfigError):
            Recorder(
                path, run="r", group="g", probes=ProbeSuite.from_array(np.ones((2, 4)), name=name)
            )
    assert snapshot(tmp_path) == {}
    record_experiment(path, suite, seeds=(0,), epochs=1)
    with pytest.raises(ConfigError):
        fspace.evaluate(path, runs=["../outside"], progress=False)
    embed_experiment(path, method="pca", progress=False)
    assert all(Path(p).is_relative_to(path) for p in snapshot(tmp_path)), snapshot(tmp_path)
    assert not os.path.exists("/tmp/escape")


@pytest.mark.parametrize("name", ["x" * 250 + ".csv", "é" * 120 + ".csv"], ids=["ascii", "utf8"])
def test_longest_file_names_are_written(tmp_path, name):
    """A target name near the 255-byte limit still gets its hidden temporary file."""
    from fspace._atomic import write_text

    path = write_text(tmp_path / name, "run,x,y\n")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert path.read_text() == "run,x,y\n"
