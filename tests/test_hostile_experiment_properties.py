"""Property-based test of whole experiments (hypothesis): random run.json, probe-suite
and cached-map files are dropped into an experiment, which is then listed, described,
evaluated and embedded from the command line. Never a traceback, never a write outside
the experiment, never a call of an unregistered model factory."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _hostile import TRAPPED, lenient_dumps, record_base
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fspace import Experiment
from fspace.cli import main

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RUN = "random-s0"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FACTORY = (
    st.sampled_from(
        [
            "_models:make_mlp",
            "_hostile:trap",
            "os:system",
            "fspace._atomic:write_text",
            "fspace.cli:main",
        ]
    )
    | JSON
)
KWARGS = st.fixed_dictionaries({}, optional={"path": st.just("OUTSIDE"), "seed": JSON}) | JSON
# Mostly well-formed descriptions, so that the model factory is really looked up.
WELL_FORMED = st.fixed_dictionaries(
    {"id": st.just(RUN), "group": st.just("random"), "model_factory": FACTORY},
    optional={
        "seed": st.integers(-2, 2**70) | JSON,
        "config": st.dictionaries(st.text(max_size=6), JSON, max_size=3) | JSON,
        "model_kwargs": KWARGS,
        "created": st.floats() | JSON,
    },
)
RUN_JSON = WELL_FORMED | st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from([RUN, "../../../ESCAPED", "other", "", "random-s0/.."]) | JSON,
        "group": st.sampled_from(["random", "a b", "../x"]) | JSON,
        "model_factory": FACTORY,
        "model_kwargs": KWARGS,
    },
)
PROBE_META = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["probes", "checkpoint"]) | JSON,
        "name": JSON,
        "fingerprint": st.text(max_size=16) | JSON,
        "structure": st.sampled_from(["tensor", "dict", "tuple"]) | JSON,
        "keys": st.lists(st.text(max_size=4), max_size=2) | JSON,
    },
)
CACHE_META = st.fixed_dictionaries(
    {},
    optional={
        "method": JSON,
        "params": JSON,
        "dtypes": st.dictionaries(st.text(max_size=6), st.sampled_from(["int64", "x"]) | JSON),
        "points": st.lists(st.dictionaries(st.text(max_size=4), JSON, max_size=2), max_size=3)
        | JSON,
        "dimension": JSON,
    },
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """An experiment inside an otherwise empty folder, with one cached PCA map."""
    box = tmp_path_factory.mktemp("hostile-experiment-properties")
    exp = record_base(box / "exp")
    assert main(["embed", str(exp), "--method", "pca", "--csv", str(box / "map.csv")]) == 0
    (box / "map.csv").unlink()
    return box


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if not p.is_symlink()}


@pytest.mark.slow
@EXAMPLES
@given(
    run_json=RUN_JSON | JSON,
    probe_meta=PROBE_META,
    probe_tensors=st.sampled_from(["inputs", "weights", "none"]),
    cache_meta=CACHE_META,
    cache_rows=st.integers(0, 20),
)
def test_random_experiment_files_never_break_a_command(
    sandbox, run_json, probe_meta, probe_tensors, cache_meta, cache_rows, capsys
):
    exp = sandbox / "exp"
    run_file = exp / "runs" / RUN / "run.json"
    original_run = run_file.read_bytes()
    (entry,) = Experiment(exp).cache.entries("map")
    original_map = entry.path.read_bytes()
    outside = {k: v for k, v in _snapshot(sandbox).items() if not k.startswith(str(exp))}
    try:
        run_file.write_text(json.dumps(run_json))
        tensors = {
            "inputs": {"inputs": torch.ones(3, 4)},
            "weights": {"w": torch.zeros(2)},
            "none": {},
        }[probe_tensors]
        (exp / "probes" / "random.safetensors").write_bytes(lenient_dumps(tensors, probe_meta))
        body = {"kind": "cache", "cache_kind": "map", "key": entry.key, "meta": cache_meta}
        coords = torch.from_numpy(np.ones((cache_rows, 2)))
        entry.path.write_bytes(lenient_dumps({"array": coords}, body))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for argv in (
                ["info", str(exp)],
                ["evaluate", str(exp), "--probes", "probe"],
                ["embed", str(exp), "--method", "pca", "--probes", "probe", "--csv", "-"],
            ):
                assert main(argv) in (0, 1, 2)  # anything else raised through main()
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert all(len(line) < 2000 for line in err.splitlines())
        after = {k: v for k, v in _snapshot(sandbox).items() if not k.startswith(str(exp))}
        assert after == outside, "a file outside the experiment was written"
        assert not list(sandbox.parent.glob("ESCAPED*")) and not (sandbox / "OUTSIDE").exists()
        assert TRAPPED == []
    finally:
        run_file.write_bytes(original_run)
        (exp / "probes" / "random.safetensors").unlink(missing_ok=True)
        entry.path.write_bytes(original_map)
        for made in Experiment(exp).cache.entries("map"):  # maps of the runs left readable
            if made.path != entry.path:
                made.path.unlink()
        shutil.rmtree(exp / "runs" / "other", ignore_errors=True)
        shutil.rmtree(exp / "runs" / RUN / "vectors", ignore_errors=True)  # build models again
