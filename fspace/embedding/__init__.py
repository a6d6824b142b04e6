"""Embed function vectors in 2-D: ``embed(vectors, "tsne" | "pca" | "umap", ...)``.

A new method is a new module here with an :class:`EmbeddingMethod` subclass decorated
with ``@register("name", label=..., params=[Param(...)])``, imported below; a package
outside fspace names its module in the entry-point group ``fspace.embeddings``.
:data:`METHODS` is the registry the command line and the dashboard read. The method
modules import their libraries (openTSNE, scikit-learn, umap-learn) only when they fit.
"""

from fspace.embedding import (  # noqa: F401 - registers the built-in methods
    inpca,
    isomap,
    mds,
    pca,
    phate,
    tsne,
    umap,
)
from fspace.embedding.base import (
    METHODS,
    Embedding,
    EmbeddingMethod,
    embed,
    get_method,
    methods,
    register,
)
from fspace.registry import Param

__all__ = [
    "METHODS",
    "Embedding",
    "EmbeddingMethod",
    "Param",
    "embed",
    "get_method",
    "methods",
    "register",
]
