"""Architectures: the MLP classifier, the convolutional net and the deep belief net.

How they are trained (RBM and autoencoder pre-training, wake-sleep, denoising) lives
in :mod:`fspace.training`.
"""

from fspace.models.conv import ConvNet, make_convnet
from fspace.models.dbn import DBN, make_dbn
from fspace.models.mlp import MLP, make_mlp

__all__ = ["DBN", "MLP", "ConvNet", "make_convnet", "make_dbn", "make_mlp"]
