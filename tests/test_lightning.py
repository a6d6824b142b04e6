"""The Lightning callback, driven by a real Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fspace import Experiment, evaluate
from fspace.factories import register_factory

pl = pytest.importorskip("lightning.pytorch")

from fspace.integrations.lightning import FspaceCallback  # noqa: E402


class TinyModule(pl.LightningModule):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)  # Lightning modules seed their own layers; test-only
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@register_factory
def make_tiny(seed: int = 0) -> TinyModule:
    return TinyModule(seed)


def test_trainer_records_every_epoch(tmp_path, suite):
    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(
        torch.randn(64, 4, generator=gen), torch.randint(0, 3, (64,), generator=gen)
    )
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    callback = FspaceCallback(
        tmp_path / "exp",
        run="lit-s0",
        group="random",
        seed=0,
        probes=suite,
        model_factory="test_lightning:make_tiny",
    )
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(TinyModule(), loader)

    exp = Experiment(tmp_path / "exp")
    ckpts = exp.checkpoints()
    assert [(c.epoch, c.step) for c in ckpts] == [(0, 0), (1, 4), (2, 8), (3, 12)]
    assert "train_loss" in ckpts[-1].metrics
    online = evaluate(exp, progress=False)
    import shutil

    shutil.rmtree(exp.path / "runs" / "lit-s0" / "vectors")
    offline = evaluate(exp, progress=False)
    np.testing.assert_allclose(online.matrix, offline.matrix, atol=1e-6)
    assert not np.allclose(online.matrix[0], online.matrix[-1])  # training moved the function


class TinyLanguageModule(pl.LightningModule):
    """A language model over token ids, trained on dict batches like a Hugging Face one."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(11, 8)
        self.head = torch.nn.Linear(8, 11)

    def forward(self, input_ids, attention_mask):
        return {"logits": self.head(torch.cumsum(self.embed(input_ids), 1))}

    def training_step(self, batch, batch_idx):
        logits = self(**batch)["logits"][:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, 11), batch["input_ids"][:, 1:].reshape(-1)
        )
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


@register_factory
def make_tiny_lm(seed: int = 0) -> TinyLanguageModule:
    return TinyLanguageModule(seed)


def test_trainer_records_a_sequence_model_on_dict_probes(tmp_path):
    from fspace import ProbeSuite

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 11, (32, 6), generator=gen)
    mask = torch.ones_like(ids)
    mask[::2, 4:] = 0  # half the probes are padded
    suite = ProbeSuite({"input_ids": ids[:8], "attention_mask": mask[:8]}, name="tokens")
    data = [{"input_ids": ids[i : i + 8], "attention_mask": mask[i : i + 8]} for i in (0, 8, 16)]
    callback = FspaceCallback(
        tmp_path / "exp", run="lm", probes=suite, model_factory="test_lightning:make_tiny_lm"
    )
    trainer = pl.Trainer(
        max_epochs=2,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(TinyLanguageModule(), torch.utils.data.DataLoader(data, batch_size=None))
    fv = evaluate(tmp_path / "exp", progress=False)
    assert fv.kind == "sequence" and len(fv) == 3
    assert fv.layout == (int(mask[:8].sum()), 11)
    # float16 storage: each of the 11 probabilities within 2.5e-4
    np.testing.assert_allclose(fv.distributions().sum(-1), 1, atol=11 * 2.5e-4)
    assert not np.allclose(fv.matrix[0], fv.matrix[-1])
