"""The Recorder in a plain training loop: background writes, guards and bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from _models import make_mlp
from conftest import train_step

from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.errors import ConfigError, ModelOutputError, ProbeMismatchError, RecorderError
from fspace.store import files


def test_plain_training_loop_records_every_epoch(tmp_path, suite):
    model = make_mlp(seed=1)
    with Recorder(tmp_path / "exp", run="r", group="g", seed=1, probes=suite) as rec:
        for epoch in range(5):
            train_step(model, seed=epoch)
            rec.record(model, epoch=epoch, step=10 * epoch, metrics={"loss": torch.tensor(0.5)})
    exp = Experiment(tmp_path / "exp")
    ckpts = exp.checkpoints()
    assert [(c.epoch, c.step) for c in ckpts] == [(e, 10 * e) for e in range(5)]
    assert all(c.metrics == {"loss": 0.5} for c in ckpts)
    assert all(exp.load_vector(c, suite.fingerprint, "prob") is not None for c in ckpts)


def test_record_copies_weights_before_training_goes_on(tmp_path):
    model = make_mlp(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with Recorder(tmp_path / "exp", run="r", group="g") as rec:
        rec.record(model, epoch=0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)  # training continues while the writer works
    exp = Experiment(tmp_path / "exp")
    stored = exp.load_weights(exp.checkpoints()[0])
    for k, v in before.items():
        torch.testing.assert_close(stored[k], v)


def test_same_epoch_is_never_saved_twice_and_resume_skips(tmp_path):
    model = make_mlp()
    with Recorder(tmp_path / "exp", run="r", group="g", seed=0) as rec:
        assert rec.record(model, epoch=0) is True
        assert rec.record(model, epoch=0) is False
        rec.record(model, epoch=1)
    with Recorder(tmp_path / "exp", run="r", group="g", seed=0) as rec:
        assert rec.record(model, epoch=1) is False
        assert rec.record(model, epoch=2) is True
    assert [c.epoch for c in Experiment(tmp_path / "exp").checkpoints()] == [0, 1, 2]


def test_close_reports_a_failed_write(tmp_path, monkeypatch):
    rec = Recorder(tmp_path / "exp", run="r", group="g")
    rec.record(make_mlp(), epoch=0)
    rec.flush()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "write", disk_full)
    rec.record(make_mlp(), epoch=1)
    with pytest.raises(RecorderError, match=r"r/e000001.*No space left"):
        rec.close()
    assert [c.epoch for c in Experiment(tmp_path / "exp").checkpoints()] == [0]


def test_record_after_close_is_an_error(tmp_path):
    rec = Recorder(tmp_path / "exp", run="r", group="g")
    rec.close()
    rec.close()  # twice is fine
    with pytest.raises(RecorderError, match="closed"):
        rec.record(make_mlp(), epoch=0)


def test_training_mode_is_restored(tmp_path, suite):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3))
    model.train()
    model[1].eval()  # mixed modes must come back exactly as they were
    with Recorder(tmp_path / "exp", run="r", group="g", probes=suite) as rec:
        rec.record(model, epoch=0)
    assert [m.training for m in model.modules()] == [True, True, False, True]


class _Constant(torch.nn.Module):
    def __init__(self, value: float, n_out: int = 3) -> None:
        super().__init__()
        self.value, self.n_out = value, n_out
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.full((x.shape[0], self.n_out), self.value) + self.w


def test_nan_outputs_keep_the_weights_and_are_left_out(tmp_path, suite):
    with Recorder(tmp_path / "exp", run="r", group="g", probes=suite) as rec:
        rec.record(_Constant(0.0), epoch=0)
        with pytest.warns(UserWarning, match="NaN"):
            rec.record(_Constant(float("nan")), epoch=1)
            rec.flush()  # found on the background thread, shown by flush() or close()
    exp = Experiment(tmp_path / "exp")
    assert [c.epoch for c in exp.checkpoints()] == [0, 1]
    with pytest.warns(UserWarning, match="r/e000001"):
        fv = evaluate(exp, model_factory=lambda: _Constant(float("nan")), progress=False)
    assert list(fv.points["epoch"]) == [0]


def test_output_size_differing_from_the_experiment(tmp_path, suite):
    with Recorder(tmp_path / "exp", run="a", group="g", probes=suite) as rec:
        rec.record(_Constant(0.0, n_out=3), epoch=0)
    with Recorder(tmp_path / "exp", run="b", group="g", probes=suite) as rec:
        with pytest.raises(ModelOutputError, match="100 values.*have 60"):
            rec.record(_Constant(0.0, n_out=5), epoch=0)
    assert len(Experiment(tmp_path / "exp").checkpoints()) == 1


def test_probe_suite_name_clash_is_refused(tmp_path, suite):
    Recorder(tmp_path / "exp", run="a", group="g", probes=suite).close()
    other = ProbeSuite.from_array(np.ones((20, 4)), name=suite.name)
    with pytest.raises(ProbeMismatchError, match="fingerprint"):
        Recorder(tmp_path / "exp", run="b", group="g", probes=other)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"epoch": -1}, "epoch", id="negative-epoch"),
        pytest.param({"epoch": 1.5}, "epoch", id="float-epoch"),
        pytest.param({"epoch": 0, "metrics": {"acc": "high"}}, "metric 'acc'", id="bad-metric"),
    ],
)
def test_bad_record_arguments(tmp_path, kwargs, match):
    with Recorder(tmp_path / "exp", run="r", group="g") as rec:
        with pytest.raises(ConfigError, match=match):
            rec.record(make_mlp(), **kwargs)


def test_not_a_model_is_refused(tmp_path):
    with Recorder(tmp_path / "exp", run="r", group="g") as rec:
        with pytest.raises(ConfigError, match="dict"):
            rec.record({"w": torch.zeros(2)}, epoch=0)


def test_unimportable_factory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="importable"):
        Recorder(tmp_path / "exp", run="r", group="g", model_factory=lambda: make_mlp())


def _stored(path, suite) -> np.ndarray:
    exp = Experiment(path)
    return np.stack(
        [exp.load_vector(c, suite.fingerprint, "prob").numpy() for c in exp.checkpoints()]
    )


def test_background_vectors_equal_the_ones_computed_in_record(tmp_path, suite):
    for background in (True, False):
        model = make_mlp(seed=3)
        with Recorder(
            tmp_path / str(background), run="r", probes=suite, background=background
        ) as rec:
            for epoch in range(4):
                rec.record(model, epoch=epoch)
                train_step(model, seed=epoch, lr=0.5)  # training goes on at once
    np.testing.assert_array_equal(
        _stored(tmp_path / "True", suite), _stored(tmp_path / "False", suite)
    )
    assert np.abs(np.diff(_stored(tmp_path / "True", suite), axis=0)).max() > 1e-3


class _Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = make_mlp()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def test_only_the_first_record_runs_the_forward_on_the_training_thread(tmp_path, suite):
    model = _Counting()
    with Recorder(tmp_path / "exp", run="r", probes=suite) as rec:
        rec.record(model, epoch=0)
        calls = model.calls
        for epoch in (1, 2):
            rec.record(model, epoch=epoch)
        assert model.calls == calls  # epochs 1 and 2 ran on the shadow copy
    assert len(_stored(tmp_path / "exp", suite)) == 3


def test_probe_outputs_from_the_loop_give_the_same_vectors(tmp_path, suite):
    model = make_mlp(seed=2)
    with Recorder(tmp_path / "a", run="r", probes=suite) as rec:
        for epoch in range(3):
            with torch.no_grad():
                rec.record(model, epoch=epoch, probe_outputs=model(suite.inputs))
            train_step(model, seed=epoch, lr=0.5)
    model = make_mlp(seed=2)
    with Recorder(tmp_path / "b", run="r", probes=suite) as rec:
        for epoch in range(3):
            rec.record(model, epoch=epoch)
            train_step(model, seed=epoch, lr=0.5)
    np.testing.assert_allclose(
        _stored(tmp_path / "a", suite), _stored(tmp_path / "b", suite), atol=1e-6
    )


def test_probe_outputs_of_another_size_are_refused(tmp_path, suite):
    with Recorder(tmp_path / "exp", run="r", probes=suite) as rec:
        with pytest.raises(ProbeMismatchError, match="20 probes"):
            rec.record(make_mlp(), epoch=0, probe_outputs=torch.zeros(7, 3))
    with Recorder(tmp_path / "exp2", run="r") as rec:
        with pytest.raises(ConfigError, match="probe suite"):
            rec.record(make_mlp(), epoch=0, probe_outputs=torch.zeros(20, 3))


def test_every_records_only_multiples_of_it(tmp_path, suite):
    model = make_mlp()
    with Recorder(tmp_path / "exp", run="r", probes=suite, every=5) as rec:
        done = [rec.record(model, epoch=0, step=s) for s in range(12)]
    assert [s for s, d in enumerate(done) if d] == [0, 5, 10]
    assert [c.step for c in Experiment(tmp_path / "exp").checkpoints()] == [0, 5, 10]
    with pytest.raises(ConfigError, match="every"):
        Recorder(tmp_path / "exp", run="q", every=0)


class _Breaks(torch.nn.Module):
    """Fails on the probes once its weight is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        if self.w.item() > 0:
            raise RuntimeError("broken by training")
        return x[:, :3] + self.w


def test_a_background_failure_names_its_checkpoint(tmp_path, suite):
    model = _Breaks()
    rec = Recorder(tmp_path / "exp", run="r", probes=suite)
    rec.record(model, epoch=0)
    with torch.no_grad():
        model.w.fill_(1.0)
    assert rec.record(model, epoch=1) is True  # the forward runs on the background thread
    with pytest.raises(RecorderError, match=r"r/e000001.*broken by training"):
        rec.close()
    assert [c.epoch for c in Experiment(tmp_path / "exp").checkpoints()] == [0]


@pytest.mark.parametrize(
    "tensor",
    [
        torch.rand(3, 4),
        torch.tensor(5.0),
        torch.arange(6).reshape(2, 3),
        torch.rand(4, 3).t(),
        torch.zeros(0, 3),
        torch.rand(5, dtype=torch.bfloat16),
        torch.tensor([True, False]),
        torch.rand(2, 2, dtype=torch.complex64),
    ],
    ids=["float", "scalar", "int64", "transposed", "empty", "bfloat16", "bool", "complex"],
)
def test_record_copies_tensors_of_every_kind_exactly(tensor):
    from fspace.record import _cpu_copy

    copy = _cpu_copy(tensor)
    assert (copy.dtype, copy.shape) == (tensor.dtype, tensor.shape)
    assert torch.equal(copy, tensor)
    expected = tensor.clone()
    tensor.zero_()  # the copy does not follow the original
    assert torch.equal(copy, expected)


def test_the_worker_thread_count_leaves_the_others(tmp_path, suite, monkeypatch):
    import fspace.record as record_mod

    monkeypatch.setattr(record_mod, "WORKER_THREADS", 1)
    threads = torch.get_num_threads()
    with Recorder(tmp_path / "exp", run="r", probes=suite) as rec:
        rec.record(make_mlp(), epoch=0)
        assert rec._pool.submit(torch.get_num_threads).result() == 1
    assert torch.get_num_threads() == threads
    seen = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert seen == [threads]  # threads started later keep torch's count
