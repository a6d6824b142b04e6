"""A small CNN trained by PyTorch Lightning on scikit-learn's 8x8 digits, recorded at
every epoch by fspace's Lightning callback."""

import lightning.pytorch as pl
import torch
from torch import nn

import fspace
from fspace.data import load_dataset, split_heldout
from fspace.integrations.lightning import FspaceCallback


class DigitCNN(pl.LightningModule):
    def __init__(self, channels: int = 8, lr: float = 0.1) -> None:
        super().__init__()
        self.lr = lr
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(channels * 16, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def make_cnn(channels: int = 8) -> DigitCNN:
    return DigitCNN(channels)


def main() -> None:
    train, test = split_heldout(load_dataset("digits"), 100, seed=0)
    images = torch.tensor(train.images[:500]).reshape(-1, 1, 8, 8)
    data = torch.utils.data.TensorDataset(images, torch.tensor(train.labels[:500]))
    probes = fspace.ProbeSuite.from_array(
        test.images.reshape(-1, 1, 8, 8), targets=test.labels, name="test"
    )
    for channels in (4, 8):
        pl.seed_everything(0)
        callback = FspaceCallback(
            "checkpoints/cnn",
            run=f"cnn-c{channels}",
            group=f"channels-{channels}",
            seed=0,
            probes=probes,
            model_factory="lightning_cnn:make_cnn",
            model_kwargs={"channels": channels},
        )
        trainer = pl.Trainer(
            max_epochs=3, callbacks=[callback], logger=False, enable_checkpointing=False
        )
        trainer.fit(
            make_cnn(channels), torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
        )


if __name__ == "__main__":
    main()
