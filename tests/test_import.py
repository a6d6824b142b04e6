"""`fspace import`: state dicts, Lightning .ckpt, Trainer output and safetensors folders,
epoch and step from names or patterns, skipping on re-import, refusing pickled payloads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from _models import make_mlp
from conftest import train_step
from safetensors.torch import save_file

from fspace import Experiment, evaluate, function_vector
from fspace.cli import main
from fspace.errors import CheckpointError, ConfigError
from fspace.importing import import_checkpoints, name_position


def snapshots(n: int = 3, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """State dicts of one MLP after 0, 1, ... n-1 training steps."""
    model = make_mlp(seed=seed)
    out = []
    for i in range(n):
        if i:
            train_step(model, seed=i)
        out.append({k: v.clone() for k, v in model.state_dict().items()})
    return out


def stored(exp_path) -> dict[tuple[int, int], dict[str, torch.Tensor]]:
    exp = Experiment(exp_path)
    return {(c.epoch, c.step): exp.load_weights(c) for c in exp.checkpoints()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype
        assert torch.equal(a[k], b[k]), k


@pytest.fixture
def pt_folder(tmp_path) -> tuple[Path, list[dict[str, torch.Tensor]]]:
    src = tmp_path / "old"
    src.mkdir()
    states = snapshots(3)
    for epoch, state in enumerate(states):
        torch.save(state, src / f"model_epoch{epoch}.pt")
    (src / "notes.txt").write_text("not a checkpoint")
    return src, states


def test_folder_of_pt_files_round_trips_exactly_and_reimport_skips(pt_folder, tmp_path):
    src, states = pt_folder
    exp = tmp_path / "exp"
    first = import_checkpoints(src, exp, run="old-s0", group="sgd", seed=0)
    assert first.imported == [(0, 0), (1, 1), (2, 2)] and first.skipped == []
    got = stored(exp)
    for epoch, state in enumerate(states):
        assert_same(got[(epoch, epoch)], state)
    run = Experiment(exp).run("old-s0")
    assert (run.group, run.seed) == ("sgd", 0)
    mtimes = {p: p.stat().st_mtime_ns for p in (exp / "runs").rglob("*.safetensors")}

    second = import_checkpoints(src, exp, run="old-s0", group="sgd", seed=0)
    assert second.imported == [] and second.skipped == [(0, 0), (1, 1), (2, 2)]
    assert {p: p.stat().st_mtime_ns for p in (exp / "runs").rglob("*.safetensors")} == mtimes


def test_imported_weights_evaluate_like_the_original_model(pt_folder, tmp_path, suite):
    src, states = pt_folder
    exp = tmp_path / "exp"
    import_checkpoints(src, exp, run="r", model_factory="_models:make_mlp")
    Experiment(exp).add_probes(suite)
    vectors = evaluate(exp)
    model = make_mlp()
    for i, state in enumerate(states):
        model.load_state_dict(state)
        torch.testing.assert_close(
            torch.as_tensor(vectors.matrix[i]).float(),
            function_vector(model, suite).reshape(-1).float(),
            atol=1e-3,
            rtol=0,
        )


def test_cli_imports_a_folder_and_says_what_it_did(pt_folder, tmp_path, capsys):
    src, _ = pt_folder
    argv = ["import", str(src), str(tmp_path / "exp"), "--run", "r", "--group", "g", "-q"]
    assert main(argv) == 0
    assert "imported 3 checkpoints into run 'r'" in capsys.readouterr().out
    assert main(argv) == 0
    assert "imported 0 checkpoints" in capsys.readouterr().out
    assert len(Experiment(tmp_path / "exp").checkpoints()) == 3
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--model-kwargs", "[1]"])
    assert stop.value.code == 2 and "give a JSON object" in capsys.readouterr().err


def test_dict_checkpoint_with_epoch_and_optimizer_state(tmp_path):
    src = tmp_path / "old"
    src.mkdir()
    model = make_mlp()
    optimizer = torch.optim.Adam(model.parameters())
    payload = {
        "epoch": 7,
        "step": 700,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
    }
    torch.save(payload, src / "last.pth")
    import_checkpoints(src, tmp_path / "exp", run="r")
    assert_same(stored(tmp_path / "exp")[(7, 700)], model.state_dict())


@pytest.mark.slow
def test_lightning_ckpt_folder_gives_epoch_global_step_and_weights(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from test_lightning import TinyModule

    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(32, 4, generator=gen), torch.randint(0, 3, (32,), generator=gen)
    )
    ckpts = tmp_path / "ckpts"
    saver = pl.callbacks.ModelCheckpoint(dirpath=ckpts, save_top_k=-1, save_last=True)
    module = TinyModule()
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[saver],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8))
    assert sorted(os.listdir(ckpts)) == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt", "last.ckpt"]

    result = import_checkpoints(ckpts, tmp_path / "exp", run="lit", strip_prefix="layer.")
    # last.ckpt holds the same epoch and step as epoch=1-step=8.ckpt: skipped, not doubled
    assert result.imported == [(0, 4), (1, 8)] and result.skipped == [(1, 8)]
    final = stored(tmp_path / "exp")[(1, 8)]
    assert set(final) == {"weight", "bias"}
    torch.testing.assert_close(final["weight"], module.layer.weight.detach(), rtol=0, atol=0)


def write_trainer_checkpoint(folder: Path, state, *, step: int, epoch: float, bin_=False):
    folder.mkdir(parents=True)
    if bin_:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    torch.save({"lr": 0.1}, folder / "optimizer.pt")
    history = [
        {"loss": 1.5, "grad_norm": 0.3, "learning_rate": 0.1, "epoch": epoch, "step": step},
        {"eval_loss": 1.25, "eval_accuracy": 0.5, "epoch": epoch, "step": step},
        {"loss": 9.0, "epoch": epoch / 2, "step": step // 2},
    ]
    body = {"global_step": step, "epoch": epoch, "log_history": history}
    (folder / "trainer_state.json").write_text(json.dumps(body))


def test_trainer_output_directory_uses_steps_epochs_and_logged_metrics(tmp_path):
    out = tmp_path / "trainer-out"
    states = snapshots(3)
    write_trainer_checkpoint(out / "checkpoint-10", states[0], step=10, epoch=1.0)
    write_trainer_checkpoint(out / "checkpoint-5", states[1], step=5, epoch=0.5, bin_=True)
    write_trainer_checkpoint(out / "checkpoint-20", states[2], step=20, epoch=2.0)
    (out / "runs").mkdir()  # TensorBoard logs beside them are left alone
    torch.save({"args": 1}, out / "training_args.bin")

    result = import_checkpoints(out, tmp_path / "exp", run="hf")
    assert result.imported == [(0, 5), (1, 10), (2, 20)]
    ckpts = Experiment(tmp_path / "exp").checkpoints()
    assert ckpts[1].metrics == {
        "loss": 1.5,
        "grad_norm": 0.3,
        "learning_rate": 0.1,
        "eval_loss": 1.25,
        "eval_accuracy": 0.5,
    }
    got = stored(tmp_path / "exp")
    assert_same(got[(0, 5)], states[1])
    assert_same(got[(2, 20)], states[2])


def test_sharded_trainer_checkpoint_is_put_together(tmp_path):
    state = snapshots(1)[0]
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    names = sorted(state)
    save_file({k: state[k] for k in names[:2]}, folder / "model-00001-of-00002.safetensors")
    save_file({k: state[k] for k in names[2:]}, folder / "model-00002-of-00002.safetensors")
    weight_map = {k: f"model-0000{1 + (i >= 2)}-of-00002.safetensors" for i, k in enumerate(names)}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    result = import_checkpoints(folder, tmp_path / "exp", run="r", pattern=r"-(?P<epoch>\d+)")
    assert result.imported == [(3, 3)]
    assert_same(stored(tmp_path / "exp")[(3, 3)], state)


def test_safetensors_folder(tmp_path):
    src = tmp_path / "st"
    src.mkdir()
    states = snapshots(2)
    for i, state in enumerate(states):
        save_file(state, src / f"e{i}-s{100 * i}.safetensors")
    assert import_checkpoints(src, tmp_path / "exp", run="r").imported == [(0, 0), (1, 100)]
    assert_same(stored(tmp_path / "exp")[(1, 100)], states[1])


def test_a_folder_of_safetensors_named_like_a_trainer_file_is_still_a_folder(tmp_path):
    src = tmp_path / "st"
    src.mkdir()
    states = snapshots(2)
    save_file(states[0], src / "e0.safetensors")
    save_file(states[1], src / "model.safetensors")  # no config.json: not a model folder
    result = import_checkpoints(src, tmp_path / "exp", run="r", pattern=r"e(?P<epoch>\d+)")
    assert result.imported == [(0, 0)]
    assert [p.name for p in result.left_out] == ["model.safetensors"]


def test_fspace_checkpoints_of_another_experiment_keep_their_epoch_and_metrics(tmp_path, recorded):
    source = Experiment(recorded).checkpoints("random-s1")
    folder = source[0].path.parent
    import_checkpoints(folder, tmp_path / "copy", run="again", group="random", seed=1)
    copied = Experiment(tmp_path / "copy").checkpoints()
    assert [(c.epoch, c.step, c.metrics) for c in copied] == [
        (c.epoch, c.step, c.metrics) for c in source
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("epoch=3-step=120.ckpt", (3, 120)),
        ("e000003-s0000000120.safetensors", (3, 120)),
        ("model_epoch5.pt", (5, None)),
        ("resnet18_ep7.pth", (7, None)),
        ("checkpoint_step_900.bin", (None, 900)),
        ("10.pt", (10, None)),
        ("model_v2_10.pt", (None, None)),
        ("final.pt", (None, None)),
        ("time5.pt", (5, None)),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_epoch_and_step_from_file_names(name, expected):
    assert name_position(name) == expected


def test_pattern_reads_named_groups_and_leaves_out_other_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    states = snapshots(3)
    for i, state in enumerate(states):
        torch.save(state, src / f"run7_{i}_{50 * i}.pt")
    torch.save(states[0], src / "best.pt")
    result = import_checkpoints(
        src, tmp_path / "exp", run="r", pattern=r"run7_(?P<epoch>\d+)_(?P<step>\d+)"
    )
    assert result.imported == [(0, 0), (1, 50), (2, 100)]
    assert [p.name for p in result.left_out] == ["best.pt"]


def test_a_name_without_an_epoch_is_refused_with_advice(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    torch.save(snapshots(1)[0], src / "final.pt")
    with pytest.raises(ConfigError, match=r"final\.pt.*--pattern"):
        import_checkpoints(src, tmp_path / "exp", run="r")
    assert not (tmp_path / "exp" / "runs" / "r").exists()  # no empty run left behind


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("ep(\\d+)", "no named group"), ("(?P<epoch>", "not a regular expression")],
    ids=["unnamed", "invalid"],
)
def test_bad_patterns_are_refused(pt_folder, tmp_path, pattern, message):
    with pytest.raises(ConfigError, match=message):
        import_checkpoints(pt_folder[0], tmp_path / "exp", run="r", pattern=pattern)


def test_bad_sources_are_refused_naming_them(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoints in"):
        import_checkpoints(tmp_path / "empty", tmp_path / "exp", run="r")
    with pytest.raises(ConfigError, match="no such file"):
        import_checkpoints(tmp_path / "missing", tmp_path / "exp", run="r")
    (tmp_path / "w.npy").write_bytes(b"x")
    with pytest.raises(ConfigError, match="unknown suffix '.npy'"):
        import_checkpoints(tmp_path / "w.npy", tmp_path / "exp", run="r")
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"junk\.pt: not a readable PyTorch file"):
        import_checkpoints(tmp_path / "junk.pt", tmp_path / "exp", run="r")
    torch.save([torch.zeros(2)], tmp_path / "list_1.pt")
    with pytest.raises(CheckpointError, match=r"list_1\.pt: holds no state dict"):
        import_checkpoints(tmp_path / "list_1.pt", tmp_path / "exp", run="r")
    (tmp_path / "bad_2.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(CheckpointError, match=r"bad_2\.safetensors: not a readable"):
        import_checkpoints(tmp_path / "bad_2.safetensors", tmp_path / "exp", run="r")
    assert not (tmp_path / "exp").exists()


class WritesAFile:
    """Unpickling this calls ``func(*args)``: what a hostile checkpoint would do."""

    def __init__(self, func, args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("how", ["os.system", "open"])
def test_a_pickled_payload_is_refused_and_never_runs(tmp_path, capsys, how):
    marker = tmp_path / "PWNED"
    payload = (
        WritesAFile(os.system, (f"touch {marker}",))
        if how == "os.system"
        else WritesAFile(open, (str(marker), "w"))
    )
    src = tmp_path / "src"
    src.mkdir()
    state = snapshots(1)[0]
    torch.save({**state, "extra": payload}, src / "epoch_3.pt")
    # The payload really does run under a full unpickle: this is a live test file.
    with pytest.raises(CheckpointError, match=r"epoch_3\.pt: refused: it holds pickled"):
        import_checkpoints(src, tmp_path / "exp", run="r")
    assert not marker.exists()

    code = main(["import", str(src), str(tmp_path / "exp"), "--run", "r", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err.count("\n") == 1 and "refused" in err and "epoch_3.pt" in err
    assert not (tmp_path / "exp" / "runs" / "r").exists()
    torch.load(src / "epoch_3.pt", weights_only=False)  # the reference: it does write
    assert marker.exists()


def test_checkpoints_before_a_refused_file_stay_imported(pt_folder, tmp_path):
    src, _ = pt_folder
    marker = tmp_path / "PWNED"
    torch.save(WritesAFile(open, (str(marker), "w")), src / "model_epoch9.pt")
    with pytest.raises(CheckpointError, match="model_epoch9.pt: refused"):
        import_checkpoints(src, tmp_path / "exp", run="r")
    assert not marker.exists()
    assert sorted(stored(tmp_path / "exp")) == [(0, 0), (1, 1), (2, 2)]
