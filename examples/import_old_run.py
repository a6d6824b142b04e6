"""Bring checkpoints that an earlier script saved with torch.save(model.state_dict(), ...)
into an experiment without re-training, then compute their function vectors."""

from pathlib import Path

import torch
from torch import nn

import fspace
from fspace.importing import import_checkpoints


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def old_training_script(folder: str) -> torch.Tensor:
    """What was run long ago: plain state dicts in old_run/epoch_0.pt ... epoch_5.pt."""
    torch.manual_seed(0)
    x = torch.randn(300, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    Path(folder).mkdir(exist_ok=True)
    model = make_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(6):
        for batch in torch.randperm(250).split(25) if epoch else []:
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        torch.save(model.state_dict(), f"{folder}/epoch_{epoch}.pt")
    return x[250:]  # held-out inputs


def main() -> None:
    heldout = old_training_script("old_run")
    # the same as: fspace import old_run checkpoints/imported --run old-s0 --group sgd
    result = import_checkpoints("old_run", "checkpoints/imported", run="old-s0", group="sgd")
    print(f"imported {len(result.imported)}, skipped {len(result.skipped)}")
    exp = fspace.Experiment("checkpoints/imported")
    exp.add_probes(fspace.ProbeSuite.from_array(heldout, name="heldout"))
    vectors = fspace.evaluate(exp, model_factory=make_net)  # the weights, run on the probes
    print(vectors.matrix.shape)


if __name__ == "__main__":
    main()
