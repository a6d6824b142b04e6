"""Record 2 groups x 3 seeds x 10 epochs from a plain PyTorch loop, then run
`fspace export checkpoints/quickstart -o quickstart.png`."""

import torch

import fspace
from fspace.data import load_dataset, split_heldout
from fspace.models.mlp import make_mlp

train, test = split_heldout(load_dataset("digits"), 300, seed=0)
x, y = torch.tensor(train.images), torch.tensor(train.labels)
probes = fspace.ProbeSuite.from_array(test.images, targets=test.labels, name="test")
for group, optimizer in [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)]:
    for seed in range(3):
        kwargs = dict(n_in=64, hidden=[64], n_classes=10, seed=seed)
        model, gen = make_mlp(**kwargs), torch.Generator().manual_seed(seed)
        opt = optimizer(model.parameters(), lr=0.05 if group == "sgd" else 0.002)
        with fspace.Recorder(
            "checkpoints/quickstart",
            run=f"{group}-s{seed}",
            group=group,
            seed=seed,
            probes=probes,
            model_factory="fspace.models.mlp:make_mlp",
            model_kwargs=kwargs,
        ) as rec:
            for epoch in range(11):
                for batch in torch.randperm(len(x), generator=gen).split(32) if epoch else []:
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                    opt.step()
                with torch.no_grad():
                    err = (model(probes.inputs).argmax(1) != probes.targets).float().mean()
                rec.record(model, epoch=epoch, metrics={"test_error": err})
