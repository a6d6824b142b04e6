"""The evaluation benchmark's phase profile: every phase is timed, results unchanged."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.models.mlp import make_mlp

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_evaluate.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_evaluate", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _experiment(path: Path) -> None:
    inputs = torch.rand(20, 12)
    inputs[:, :4] = 0  # dead input features: the first layer's columns are dropped
    Experiment.create(path).add_probes(ProbeSuite.from_array(inputs.numpy(), name="p"))
    kwargs = {"n_in": 12, "hidden": [8], "n_classes": 3, "seed": 0}
    model = make_mlp(**kwargs)
    with Recorder(
        path, run="r", model_factory="fspace.models.mlp:make_mlp", model_kwargs=kwargs
    ) as rec:
        for epoch in range(5):
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1)
            rec.record(model, epoch=epoch)


def test_timed_phases_cover_the_pipeline_and_change_nothing(tmp_path):
    bench = _bench()
    path = tmp_path / "exp"
    _experiment(path)
    reference = evaluate(path, progress=False).matrix
    bench.clear_vectors(path)
    timer = bench.PhaseTimer()
    with bench.timed_phases(timer):
        profiled = evaluate(path, progress=False).matrix
    np.testing.assert_array_equal(profiled, reference)
    assert timer.calls["read + checksum into the stack [threads]"] == 5
    assert timer.calls["write + fsync [threads]"] == 5
    assert timer.calls["gather live input columns [threads]"] == 5
    assert timer.calls["find dead inputs, narrow first layer (once)"] == 1
    assert timer.calls["forward: 8->8 product + bias"] == 1  # 12 inputs, 4 dead
    assert timer.calls["forward: 8->3 product + bias"] == 1
    assert timer.calls["forward: activation (in place)"] == 2
    for phase in (bench.TOTAL, "softmax + format"):
        assert timer.seconds[phase] > 0, phase
    assert timer.seconds[bench.TOTAL] >= timer.seconds["forward: 8->8 product + bias"]


def _cpu_module():
    spec = importlib.util.spec_from_file_location(
        "_evaluate_cpu", BENCH.with_name("_evaluate_cpu.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


SHAPE = {"n_in": 12, "hidden": [8], "n_classes": 3}


def test_weights_read_beforehand_give_the_same_vectors(tmp_path):
    from unittest import mock

    import fspace.batched as batched

    bench, cpu = _bench(), _cpu_module()
    path = tmp_path / "exp"
    _experiment(path)
    reference = evaluate(path, progress=False).matrix
    preloaded = cpu.Batches(path, SHAPE).preload()
    bench.clear_vectors(path)
    with mock.patch.object(batched._Stack, "read", cpu._from_memory(preloaded)):
        np.testing.assert_array_equal(evaluate(path, progress=False).matrix, reference)


def test_cpu_variants_measure_every_part_and_report(tmp_path, capsys):
    bench, cpu = _bench(), _cpu_module()
    path = tmp_path / "exp"
    _experiment(path)
    used, per_cpu = cpu.variants(path, SHAPE, bench.clear_vectors)
    assert len(used) == 11 and per_cpu > 0
    for name, use in used.items():
        assert use.wall > 0 and use.cpu >= 0, name
    cpu.report(used, 5, bench.FLOPS, 100.0, 2, per_cpu)
    out = capsys.readouterr().out
    assert "reading costs" in out and "SHA-256 is" in out and "of the budget" in out
    assert "of that budget, keeping the 2 cores" in out
    assert out.count("s per CPU-second") == 2
