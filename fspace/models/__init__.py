"""Models: the MLP classifier and the layer estimators used to pre-train it."""

from fspace.models.dae import DenoisingAutoencoder
from fspace.models.mlp import MLP, make_mlp
from fspace.models.pretrain import METHODS, init_from_stack, pretrain_stack
from fspace.models.rbm import RBM

__all__ = [
    "METHODS",
    "MLP",
    "RBM",
    "DenoisingAutoencoder",
    "init_from_stack",
    "make_mlp",
    "pretrain_stack",
]
