"""The transformers callback, driven by a real Trainer on a tiny model (no download)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fspace import Experiment, evaluate, function_vector
from fspace.errors import ConfigError

transformers = pytest.importorskip("transformers")

from fspace.integrations.transformers import FspaceCallback  # noqa: E402

pytestmark = pytest.mark.slow  # a Trainer takes a few seconds to start


class Classifier(torch.nn.Module):
    """Logits for plain calls; the loss dict the Trainer wants when given labels."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.layer = torch.nn.Linear(4, 3)
        with torch.no_grad():
            self.layer.weight.copy_(torch.randn(3, 4, generator=gen))

    def forward(self, x, labels=None):
        logits = self.layer(x)
        if labels is None:
            return logits
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def make_classifier(seed: int = 0) -> Classifier:
    return Classifier(seed)


def dataset(n: int = 24) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    return [{"x": x[i], "labels": y[i]} for i in range(n)]


def train(tmp_path, callback, *, model=None, resume=None, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "trainer"),
        num_train_epochs=2,
        per_device_train_batch_size=6,
        learning_rate=0.1,
        report_to="none",
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="epoch",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    settings.update(overrides)
    model = model or Classifier()
    trainer = transformers.Trainer(
        model=model,
        args=transformers.TrainingArguments(**settings),
        train_dataset=dataset(),
        eval_dataset=dataset(12),
        callbacks=[callback],
    )
    trainer.train(resume_from_checkpoint=resume)
    return model, trainer


def test_records_start_and_every_epoch_with_the_evaluation_metrics(tmp_path, suite):
    callback = FspaceCallback(
        tmp_path / "exp",
        run="cls-s0",
        group="linear",
        seed=0,
        probes=suite,
        model_factory="test_transformers:make_classifier",
    )
    model, _ = train(tmp_path, callback)
    exp = Experiment(tmp_path / "exp")
    ckpts = exp.checkpoints()
    assert [(c.epoch, c.step) for c in ckpts] == [(0, 0), (1, 4), (2, 8)]
    assert ckpts[0].metrics == {}
    for c in ckpts[1:]:
        assert {"loss", "learning_rate", "grad_norm", "eval_loss"} <= set(c.metrics)
    # the weights are the trainer's own at that step: compare with its checkpoint files
    for c in ckpts[1:]:
        saved = load_file(tmp_path / "trainer" / f"checkpoint-{c.step}" / "model.safetensors")
        stored = exp.load_weights(c)
        for k, v in saved.items():
            torch.testing.assert_close(stored[k], v, rtol=0, atol=0)
    vectors = evaluate(exp)  # online vectors, cached while training
    last = function_vector(model, suite).reshape(-1).numpy()
    np.testing.assert_allclose(vectors.matrix[-1], last, atol=1e-3)


def test_eval_metrics_equal_the_trainer_log(tmp_path):
    callback = FspaceCallback(tmp_path / "exp", run="r", record_start=False)
    _, trainer = train(tmp_path, callback)
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    ckpts = Experiment(tmp_path / "exp").checkpoints()
    assert [c.metrics["eval_loss"] for c in ckpts] == pytest.approx([h["eval_loss"] for h in evals])
    assert [c.step for c in ckpts] == [h["step"] for h in evals]


def test_on_save_records_every_saved_step_once(tmp_path):
    callback = FspaceCallback(tmp_path / "exp", run="r", on=("save", "epoch", "evaluate"))
    train(tmp_path, callback, save_strategy="steps", save_steps=3, eval_strategy="no")
    steps = [(c.epoch, c.step) for c in Experiment(tmp_path / "exp").checkpoints()]
    # saves at steps 3 and 6 (epoch 0.75 and 1.5), epoch ends at 4 and 8, and the start
    assert steps == [(0, 0), (0, 3), (1, 4), (1, 6), (2, 8)]
    assert sorted(p.name for p in (tmp_path / "trainer").iterdir()) == [
        "checkpoint-3",
        "checkpoint-6",
        "checkpoint-8",
    ]


def test_evaluate_after_training_records_nothing_more(tmp_path):
    callback = FspaceCallback(tmp_path / "exp", run="r", on="evaluate")
    _, trainer = train(tmp_path, callback)
    trainer.evaluate()
    assert len(Experiment(tmp_path / "exp").checkpoints()) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run": "r", "on": "step"}, "unknown: step"),
        ({"run": "r", "on": ()}, "record on one or more of"),
        ({}, "needs run="),
    ],
    ids=["unknown-event", "no-event", "no-run"],
)
def test_bad_settings_are_refused_at_construction(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        FspaceCallback(tmp_path / "exp", **kwargs)
    assert not (tmp_path / "exp").exists()


def test_a_resumed_trainer_goes_on_recording_the_same_run(tmp_path):
    train(tmp_path, FspaceCallback(tmp_path / "exp", run="r", seed=0), num_train_epochs=1)
    callback = FspaceCallback(tmp_path / "exp", run="r", seed=0)
    resume = str(tmp_path / "trainer" / "checkpoint-4")
    # the trainer loads the saved weights into this model before going on
    model, _ = train(tmp_path, callback, model=Classifier(seed=5), resume=resume)
    exp = Experiment(tmp_path / "exp")
    ckpts = exp.checkpoints()
    assert [(c.epoch, c.step) for c in ckpts] == [(0, 0), (1, 4), (2, 8)]
    final = exp.load_weights(ckpts[-1])
    torch.testing.assert_close(final["layer.weight"], model.layer.weight.detach(), rtol=0, atol=0)


def test_importing_the_trainer_output_gives_what_the_callback_recorded(tmp_path):
    from fspace.importing import import_checkpoints

    train(tmp_path, FspaceCallback(tmp_path / "exp", run="live", record_start=False))
    result = import_checkpoints(tmp_path / "trainer", tmp_path / "exp", run="imported")
    assert result.imported == [(1, 4), (2, 8)]
    exp = Experiment(tmp_path / "exp")
    live, imported = exp.checkpoints("live"), exp.checkpoints("imported")
    assert [(c.epoch, c.step) for c in imported] == [(c.epoch, c.step) for c in live]
    for a, b in zip(live, imported, strict=True):
        assert a.metrics == pytest.approx(b.metrics)  # the same log history, read back
        wa, wb = exp.load_weights(a), exp.load_weights(b)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
