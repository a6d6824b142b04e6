"""How each training regime of the generative experiment builds its model, where the
model starts and how one epoch trains it. A new regime is one more entry in
:data:`~fspace.experiments.generative.config.REGIMES` plus, if it starts or trains
differently, a branch below."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fspace.errors import RunError
from fspace.experiments.digits import sgd_epoch
from fspace.experiments.generative.config import GenerativeConfig, Regime

if TYPE_CHECKING:
    from fspace.experiments.digits import Data, EpochData
    from fspace.store import Experiment
    from fspace.training.rbm import RBM

FACTORIES = {
    "mlp": "fspace.models.mlp:make_mlp",
    "dbn": "fspace.models.dbn:make_dbn",
    "conv": "fspace.models.conv:make_convnet",
}


class SeedState:
    """What the runs of one seed share: minibatches and the pre-trained stacks, each
    trained once, on first use."""

    def __init__(self, cfg: GenerativeConfig, data: Data, seed: int, batches: EpochData):
        self.cfg, self.data, self.seed, self.batches = cfg, data, seed, batches
        self._logistic: list[RBM] = []
        self._relu: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def logistic_stack(self, depth: int) -> list[RBM]:
        """The first ``depth`` binary RBMs of the seed's stack ``hidden + [n_top]``."""
        from fspace.training.pretrain import pretrain_stack

        have, cfg = self._logistic, self.cfg
        sizes = [*cfg.hidden, cfg.n_top]
        if len(have) < depth:
            below = self.data.train_x
            for layer in have:
                below = layer.transform(below)
            have += pretrain_stack(
                below,
                sizes[len(have) : depth],
                epochs=cfg.pretrain_epochs,
                learning_rate=cfg.pretrain_lr,
                batch_size=cfg.pretrain_batch_size,
                random_state=self.seed * 100 + len(have),
            )
        return have[:depth]

    def greedy_dbn(self) -> nn.Module:
        """The joint model: the seed's lower RBMs, then a top RBM fitted with the labels."""
        from fspace.training.wakesleep import dbn_from_stack, fit_top

        cfg = self.cfg
        stack = self.logistic_stack(len(cfg.hidden))
        model = dbn_from_stack(stack, cfg.n_top, self.data.n_classes, seed=self.seed)
        fit_top(
            model.top,
            model.penultimate(self.data.train_x),
            self.data.train_y,
            epochs=cfg.pretrain_epochs,
            learning_rate=cfg.pretrain_lr,
            batch_size=cfg.pretrain_batch_size,
            random_state=self.seed * 100 + 50,
        )
        return model

    def relu_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The seed's Gaussian-NReLU stack ``hidden + [n_top]``, as raw-input weights."""
        if self._relu is None:
            cfg = self.cfg
            self._relu = relu_stack(
                self.data.train_x,
                [*cfg.hidden, cfg.n_top],
                epochs=cfg.pretrain_epochs,
                learning_rate=cfg.relu_pretrain_lr,
                batch_size=cfg.pretrain_batch_size,
                random_state=self.seed * 100 + 70,
            )
        return self._relu


@torch.no_grad()
def relu_stack(
    X: torch.Tensor,
    sizes: list[int],
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    random_state: int,
    min_scale: float = 0.1,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Greedily train RBMs with Gaussian visible and NReLU hidden units (Nair & Hinton
    2010), each on the standardised activations of the layer below.

    Each layer's standardisation ``(x - mean) / scale`` (``scale`` = the feature's
    standard deviation, at least ``min_scale`` so that near-constant border pixels
    are not blown up) is folded into its weights, so layer ``i`` is returned as
    ``(W (n_in, n_out), b)`` with ``relu(x W + b)`` on the raw activations below.
    """
    from fspace.training.rbm import RBM

    seeds = np.random.SeedSequence(random_state).generate_state(len(sizes))
    layers = []
    below = X
    for size, seed in zip(sizes, seeds, strict=True):
        mean, scale = below.mean(0), below.std(0).clamp_min(min_scale)
        rbm = RBM(
            size,
            visible="gaussian",
            hidden="nrelu",
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            random_state=int(seed),
        ).fit((below - mean) / scale)
        weight = rbm.weight_ / scale[:, None]
        bias = rbm.hbias_ - (mean / scale) @ rbm.weight_
        layers.append((weight, bias))
        below = torch.relu(below @ weight + bias)
    return layers


def factory(
    cfg: GenerativeConfig, data: Data, spec: Regime, seed: int
) -> tuple[str, dict[str, Any]]:
    """The model factory and its keyword arguments for a run of ``spec``."""
    n_in, n_classes = int(data.train_x.shape[1]), int(data.n_classes)
    if spec.architecture == "dbn":
        kwargs = {"n_in": n_in, "hidden": list(cfg.hidden), "n_top": cfg.n_top}
    elif spec.architecture == "conv":
        kwargs = {"image_shape": list(data.image_shape), "channels": list(cfg.conv_channels)}
    else:
        activation = "relu" if spec.units == "relu" else "sigmoid"
        kwargs = {"n_in": n_in, "hidden": [*cfg.hidden, cfg.n_top], "activation": activation}
    return FACTORIES[spec.architecture], {**kwargs, "n_classes": n_classes, "seed": seed}


def build(factory_name: str, kwargs: dict[str, Any]) -> nn.Module:
    """A fresh model from one of :data:`FACTORIES` and its keyword arguments."""
    from fspace import factories

    if factory_name not in FACTORIES.values():
        raise RunError(f"model factory {factory_name!r} is not one of the regimes' architectures")
    fn = factories.resolve(factory_name, False, what="a generative run")
    return factories.call(fn, kwargs, f"model factory {factory_name!r}")


@torch.no_grad()
def start_model(
    cfg: GenerativeConfig,
    data: Data,
    spec: Regime,
    seed: int,
    state: SeedState,
    exp: Experiment,
) -> nn.Module:
    """The model of a run at epoch 0."""
    if spec.architecture == "dbn":
        return (
            state.greedy_dbn() if spec.init == "pretrained" else _after_wake_sleep(cfg, seed, exp)
        )
    model = build(*factory(cfg, data, spec, seed))
    if spec.init != "pretrained":
        return model
    if spec.units == "relu":
        for (weight, bias), layer in zip(state.relu_layers(), model.hidden_layers, strict=True):
            layer.weight.copy_(weight.T)
            layer.bias.copy_(bias)
        return model
    from fspace.training.pretrain import init_from_stack

    return init_from_stack(model, state.logistic_stack(len(cfg.hidden) + 1))


def _after_wake_sleep(cfg: GenerativeConfig, seed: int, exp: Experiment) -> nn.Module:
    source = cfg.run_id("pretrained+wake-sleep", seed)
    done = (
        [c for c in exp.checkpoints(source) if c.epoch == cfg.epochs]
        if source in exp.run_ids()
        else []
    )
    if not done:
        raise RunError(
            f"run {cfg.run_id('wake-sleep+backprop', seed)!r} starts from the last epoch "
            f"({cfg.epochs}) of run {source!r}, which {exp.path} does not hold; record it first"
        )
    info = exp.run(source)
    model = build(info.model_factory, info.model_kwargs)
    model.load_state_dict(exp.load_weights(done[-1]))
    return model


def train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: GenerativeConfig,
    spec: Regime,
    seed: int,
    epoch: int,
) -> dict[str, float]:
    """Train ``model`` for one epoch on ``x, y`` as ``spec`` says; return its metrics."""
    if spec.fine_tuning == "wake-sleep":
        from fspace.training.wakesleep import up_down_epoch

        # Seeded by (seed, epoch): a resumed run draws the same samples.
        entropy = np.random.SeedSequence([seed, epoch]).generate_state(1)[0]
        error = up_down_epoch(
            model,
            x,
            y,
            learning_rate=cfg.wake_sleep_lr,
            cd_k=cfg.wake_sleep_cd_k,
            batch_size=cfg.wake_sleep_batch_size,
            generator=torch.Generator().manual_seed(int(entropy)),
        )
        return {"train_generative_error": error}
    rates = {"dbn": cfg.dbn_lr, "conv": cfg.conv_lr}
    lr = rates.get(spec.architecture, cfg.relu_lr if spec.units == "relu" else cfg.lr)
    return {"train_loss": sgd_epoch(model, x, y, lr, cfg.batch_size)}
