"""Small experiments that are not the pre-training experiment, recorded for the results
page's tests: a convolutional net on 8x8 images and a depth sweep of MLPs on 8x8 images."""

from __future__ import annotations

import numpy as np
import torch

from fspace import ProbeSuite, Recorder
from fspace.models.conv import make_convnet
from fspace.models.mlp import make_mlp

SIDE = 8
CLASSES = 3


def image_suite(n: int = 24, seed: int = 0) -> tuple[ProbeSuite, torch.Tensor, torch.Tensor]:
    """A probe suite of ``n`` flat 8x8 images, and the images and labels trained on."""
    gen = np.random.default_rng(seed)
    x = gen.normal(size=(n, SIDE * SIDE)).astype(np.float32)
    y = gen.integers(0, CLASSES, size=n)
    suite = ProbeSuite.from_array(x, name="images")
    return suite, torch.tensor(x), torch.tensor(y)


def _train(model, rec, x, y, lr: float, epochs: int) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(epochs + 1):
        for _ in range(3 if epoch else 0):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        with torch.no_grad():
            out = model(x)
        metrics = {
            "test_error": float((out.argmax(1) != y).float().mean()),
            "train_loss": float(torch.nn.functional.cross_entropy(out, y)),
        }
        rec.record(model, epoch=epoch, metrics=metrics)


def record_cnn(path, *, groups=("baseline", "ours"), seeds=(0, 1), epochs=3):
    """Convolutional nets, ``groups`` x ``seeds``; group i trains at learning rate
    0.05 * (i + 1), recorded as the run setting ``lr``."""
    suite, x, y = image_suite()
    for g, group in enumerate(groups):
        for seed in seeds:
            # 16 channels of 2x2 after pooling: the output layer reads 64 = 8x8 values,
            # as many as the image has pixels, and must still not be drawn as fields.
            kwargs = {"image_shape": [SIDE, SIDE], "channels": [3, 16], "n_classes": CLASSES}
            kwargs["seed"] = seed
            lr = 0.05 * (g + 1)
            with Recorder(
                path,
                run=f"{group}-s{seed}",
                group=group,
                seed=seed,
                config={"lr": lr, "arch": "cnn"},
                probes=suite,
                model_factory="fspace.models.conv:make_convnet",
                model_kwargs=kwargs,
            ) as rec:
                _train(make_convnet(**kwargs), rec, x, y, lr, epochs)
    return path


def record_depths(path, *, groups=("pretrained", "random"), depths=(1, 2), seeds=(0, 1)):
    """fspace MLPs of each depth reading 8x8 images, ``groups`` x ``depths`` x ``seeds``."""
    suite, x, y = image_suite()
    for group in groups:
        for depth in depths:
            for seed in seeds:
                kwargs = {"n_in": SIDE * SIDE, "hidden": [6] * depth, "n_classes": CLASSES}
                kwargs["seed"] = seed
                with Recorder(
                    path,
                    run=f"{group}-d{depth}-s{seed}",
                    group=group,
                    seed=seed,
                    config={"depth": depth},
                    probes=suite,
                    model_factory="fspace.models.mlp:make_mlp",
                    model_kwargs=kwargs,
                ) as rec:
                    _train(make_mlp(**kwargs), rec, x, y, 0.1, 2)
    return path
