"""Embed function vectors in 2-D: ``embed(vectors, "tsne" | "pca" | "umap", ...)``.

A new method is a new module here with an :class:`EmbeddingMethod` subclass decorated
with ``@register("name")``, imported below. The method modules import their libraries
(openTSNE, scikit-learn, umap-learn) only when they fit.
"""

from fspace.embedding import pca, tsne, umap  # noqa: F401 - registers the built-in methods
from fspace.embedding.base import Embedding, EmbeddingMethod, embed, methods, register

__all__ = ["Embedding", "EmbeddingMethod", "embed", "methods", "register"]
