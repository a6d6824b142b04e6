"""Training algorithms for the architectures of :mod:`fspace.models`: greedy layer-wise
pre-training with RBMs or denoising autoencoders, contrastive wake-sleep fine-tuning of
a deep belief net, and denoising with it."""

from fspace.training.dae import DenoisingAutoencoder
from fspace.training.pretrain import METHODS, init_from_stack, pretrain_stack
from fspace.training.rbm import RBM

__all__ = ["METHODS", "RBM", "DenoisingAutoencoder", "init_from_stack", "pretrain_stack"]
