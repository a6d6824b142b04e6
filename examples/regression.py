"""A regression MLP: its function vector holds its raw outputs on the probe inputs
(a softmax of one real-valued output would be constant, so fspace refuses it)."""

import torch
from torch import nn

import fspace


def make_regressor(width: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(256, 2, generator=gen) * 4 - 2
    y = torch.sin(2 * x[:, :1]) * x[:, 1:]  # (n, 1) targets
    probes = fspace.ProbeSuite.from_array(x[:64], targets=y[:64], name="heldout")
    for width in (8, 32):
        for seed in range(2):
            torch.manual_seed(seed)
            model = make_regressor(width)
            opt = torch.optim.Adam(model.parameters(), lr=0.01)
            with fspace.Recorder(
                "checkpoints/regression",
                run=f"w{width}-s{seed}",
                group=f"width-{width}",
                seed=seed,
                probes=probes,
                kind="regression",  # raw outputs as the vector; never guessed from the shape
                model_factory="regression:make_regressor",
                model_kwargs={"width": width},
            ) as rec:
                for epoch in range(8):
                    for batch in torch.randperm(192).split(32) if epoch else []:
                        loss = nn.functional.mse_loss(model(x[64:][batch]), y[64:][batch])
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                    with torch.no_grad():
                        mse = nn.functional.mse_loss(model(x[:64]), y[:64])
                    rec.record(model, epoch=epoch, metrics={"test_mse": mse})


if __name__ == "__main__":
    main()
