"""Distances between checkpoints: the registry, the base class and blockwise matrices.

A distance is a subclass of :class:`Distance` in its own module, registered in
:data:`DISTANCES` with its label, parameters and the output kinds it applies to. It
turns function vectors into per-row features once (:meth:`Distance.prepare`) and
computes the distances between two blocks of rows (:meth:`Distance.block`);
:func:`pairwise` runs it over the blocks of the matrix so that the temporaries stay
small whatever the number of checkpoints.

Every probability distance compares the predicted distributions of two checkpoints
probe by probe (position by position for sequence outputs) and averages over them;
each distribution is first renormalised to sum 1, which removes the rounding of the
stored vectors.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fspace.errors import ConfigError, ProbeMismatchError
from fspace.registry import Entry, Param, Registry
from fspace.vectors import FunctionVectors

if TYPE_CHECKING:
    import torch

DISTANCES: Registry[type[Distance]] = Registry("distance", "fspace.distances")
"""Every distance by name; tags ``kinds`` (output kinds it applies to), ``metric``
(satisfies the triangle inequality) and ``squared`` (behaves like a squared distance:
a divergence, quadratic in small differences, as InPCA expects)."""

PROBABILITY_KINDS = ("classification", "sequence")
ALL_KINDS = ("classification", "sequence", "regression")

PRECISION = Param(
    "precision",
    str,
    "float64",
    "arithmetic of the matrix products (float32: twice as fast, about 1e-6 relative error)",
    choices=("float64", "float32"),
)

BLOCK_ROWS = 1024
"""Rows per block: one block of the result (BLOCK_ROWS**2 float64 values) is 8 MiB."""

Prepared = tuple[np.ndarray, ...]
"""Per-row features of some checkpoints: arrays whose first axis is the row."""


class Distance(ABC):
    """One distance between checkpoints; subclass it in a new module and register it.

    ``raw`` distances work on the function vectors as stored (any output form); the
    others on the predicted distributions, so vectors of different stored forms on the
    same probe suite can be compared.
    """

    raw: ClassVar[bool] = False

    @abstractmethod
    def prepare(self, vectors: FunctionVectors, params: dict[str, Any]) -> Prepared:
        """Per-row features of ``vectors``, computed once for every block they meet."""

    @abstractmethod
    def block(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        """Distances (len(a), len(b)) between two blocks of prepared rows."""

    def rowwise(self, a: Prepared, b: Prepared, params: dict[str, Any]) -> np.ndarray:
        """Distances between row ``i`` of ``a`` and row ``i`` of ``b``, shape (n,)."""
        n = len(a[0])
        out = np.empty(n)
        for i in range(n):
            out[i] = self.block(_rows(a, slice(i, i + 1)), _rows(b, slice(i, i + 1)), params)[0, 0]
        return out

    def features(self, vectors: FunctionVectors, params: dict[str, Any]) -> np.ndarray | None:
        """Rows whose Euclidean distances equal this distance, or None if there are none.

        Maps that work on vectors (PCA, t-SNE, UMAP) then use them directly, exactly.
        """
        return None

    def device_block(
        self,
        a: tuple[torch.Tensor, ...],
        b: tuple[torch.Tensor, ...],
        params: dict[str, Any],
        budget: int,
    ) -> torch.Tensor:
        """:meth:`block` on torch tensors (the prepared rows, on a GPU): the distances as
        a (len(a), len(b)) tensor on the same device, whose temporaries stay within
        ``budget`` bytes. Distances without it are computed on the CPU."""
        raise NotImplementedError


def runs_on_device(impl: Distance) -> bool:
    """Whether the distance ``impl`` has a :meth:`Distance.device_block`."""
    return type(impl).device_block is not Distance.device_block


def distance_entry(name: str) -> Entry[type[Distance]]:
    """The registry entry of the distance ``name`` (ConfigError listing the known ones)."""
    if not isinstance(name, str):
        raise ConfigError(f"a distance is named by a string, got {name!r}")
    return DISTANCES.get(name)


def check_applies(entry: Entry[type[Distance]], vectors: FunctionVectors) -> None:
    """Raise unless the distance ``entry`` applies to the output kind of ``vectors``."""
    kinds = entry.tags.get("kinds", ALL_KINDS)
    if vectors.kind not in kinds:
        usable = [e.name for e in DISTANCES if vectors.kind in e.tags.get("kinds", ALL_KINDS)]
        raise ConfigError(
            f"distance {entry.name!r} applies to {', '.join(kinds)} outputs, but these "
            f"function vectors are {vectors.kind}; use {' or '.join(usable) or 'none'}"
        )


def _check_pair(entry: Entry[type[Distance]], a: FunctionVectors, b: FunctionVectors) -> None:
    if not isinstance(b, FunctionVectors):
        raise ConfigError(f"other must be FunctionVectors, got {type(b).__name__}")
    check_applies(entry, b)
    if entry.obj.raw:
        a.check_compatible(b)
        return
    if a.fingerprint != b.fingerprint:
        raise ProbeMismatchError(
            f"function vectors were computed on different probe suites ({a.fingerprint} vs "
            f"{b.fingerprint}); they cannot be compared"
        )
    if a.layout != b.layout:
        raise ProbeMismatchError(
            f"function vectors have different layouts ({a.layout} vs {b.layout}) on the "
            f"same probe suite: the models' output sizes differ"
        )


def parse_params(entry: Entry[type[Distance]], params: dict[str, Any]) -> dict[str, Any]:
    """The distance's parameters: defaults overlaid with ``params``, each checked."""
    return entry.parse(params)


def pairwise(
    vectors: FunctionVectors,
    distance: str = "euclidean",
    other: FunctionVectors | None = None,
    *,
    out: np.ndarray | None = None,
    device: Any = "auto",
    **params: Any,
) -> np.ndarray:
    """The matrix of distances between the checkpoints of ``vectors`` (and ``other``).

    Returns ``(len(vectors), len(other or vectors))`` float64 distances, computed block
    by block (``out``, e.g. a memory map, receives them if given). Without ``other`` the
    matrix is exactly symmetric with a zero diagonal. ``params`` are the distance's own
    (see ``DISTANCES.get(name).params``). ``device`` is where the blocks are computed
    (:mod:`fspace.device`: ``"auto"``, the GPU if torch sees one; ``"cpu"``; ``"cuda"``);
    the result is on the host either way.

    Example::

        d = pairwise(vectors, "bhattacharyya")          # (n, n)
        d_new = pairwise(new, "hellinger", other=vectors)  # (len(new), n)
    """
    from fspace.device import resolve_device

    if not isinstance(vectors, FunctionVectors):
        raise ConfigError(f"pairwise() needs FunctionVectors, got {type(vectors).__name__}")
    entry = distance_entry(distance)
    check_applies(entry, vectors)
    where = resolve_device(device)
    if other is not None:
        _check_pair(entry, vectors, other)
    parsed = parse_params(entry, params)
    impl = entry.obj()
    gpu = _use_device(entry.name, impl, where, device)
    shape = (len(vectors), len(vectors) if other is None else len(other))
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape:
        raise ConfigError(f"out must have shape {shape}, got {out.shape}")
    a = impl.prepare(vectors, parsed)
    b = a if other is None else impl.prepare(other, parsed)
    if gpu:
        from fspace.device import memory_budget
        from fspace.distances._device import fill_on_device

        budget = memory_budget(where)
        fill_on_device(
            impl, a, b, parsed, out, symmetric=other is None, device=where, budget=budget
        )
    else:
        _fill(impl, a, b, parsed, out, symmetric=other is None)
    return out


def _use_device(name: str, impl: Distance, where: Any, asked: Any) -> bool:
    """Whether the blocks go to the torch device ``where``: a GPU and a distance that
    runs there; a GPU asked for by name for one that does not is an error."""
    from fspace.device import DeviceError, on_gpu

    if not on_gpu(where):
        return False
    if runs_on_device(impl):
        return True
    if asked is None or str(asked).strip().lower() == "auto":
        return False  # its CPU blocks, as without a GPU
    raise DeviceError(
        f"device={asked!r}: distance {name!r} has no GPU blocks (device_block); "
        f"use device=cpu or auto"
    )


def rowwise(
    vectors: FunctionVectors, other: FunctionVectors, distance: str = "euclidean", **params: Any
) -> np.ndarray:
    """Distances between row ``i`` of ``vectors`` and row ``i`` of ``other``, shape (n,).

    Example: the length of each step of a trajectory, ``rowwise(v[:-1], v[1:], "hellinger")``
    with ``v`` the checkpoints of one run in order.
    """
    if not isinstance(vectors, FunctionVectors):
        raise ConfigError(f"rowwise() needs FunctionVectors, got {type(vectors).__name__}")
    entry = distance_entry(distance)
    check_applies(entry, vectors)
    _check_pair(entry, vectors, other)
    if len(vectors) != len(other):
        raise ConfigError(
            f"rowwise() pairs rows: got {len(vectors)} and {len(other)} function vectors"
        )
    parsed = parse_params(entry, params)
    impl = entry.obj()
    out = impl.rowwise(impl.prepare(vectors, parsed), impl.prepare(other, parsed), parsed)
    return np.asarray(out, dtype=np.float64)


def _fill(
    impl: Distance,
    a: Prepared,
    b: Prepared,
    params: dict[str, Any],
    out: np.ndarray,
    *,
    symmetric: bool,
) -> None:
    na, nb = out.shape
    for i0 in range(0, na, BLOCK_ROWS):
        rows = slice(i0, min(i0 + BLOCK_ROWS, na))
        part_a = _rows(a, rows)
        for j0 in range(i0 if symmetric else 0, nb, BLOCK_ROWS):
            cols = slice(j0, min(j0 + BLOCK_ROWS, nb))
            d = impl.block(part_a, _rows(b, cols), params)
            if symmetric and i0 == j0:
                d = (d + d.T) / 2  # exact symmetry despite rounding in the products
                np.fill_diagonal(d, 0.0)
            out[rows, cols] = d
            if symmetric and i0 != j0:
                out[cols, rows] = d.T


def _rows(prepared: Prepared, rows: slice) -> Prepared:
    return tuple(x[rows] for x in prepared)


def dtype_of(params: dict[str, Any]) -> np.dtype:
    """The float dtype the ``precision`` parameter asks for (float64 when absent)."""
    return np.dtype(params.get("precision", "float64"))


def probabilities(vectors: FunctionVectors, dtype: Any = np.float64) -> np.ndarray:
    """The predicted distributions (n, distributions, outcomes), each summing to 1.

    Raises :class:`ConfigError` if a distribution has a negative value or sums to 0: the
    vectors then hold no probabilities (record them with a softmax, or use euclidean).
    """
    n = len(vectors)
    if n == 0:
        outcomes = vectors.layout[-1] if vectors.layout else 1
        return np.empty((0, vectors.matrix.shape[1] // outcomes, outcomes), dtype=dtype)
    out: np.ndarray | None = None
    # ~2 MiB of float64 at a time: the temporaries stay in cache and are not page-faulted anew
    step = max(1, 2**18 // max(1, vectors.matrix.shape[1]))
    for i0 in range(0, n, step):
        rows = slice(i0, min(i0 + step, n))
        part = dataclasses.replace(
            vectors, matrix=vectors.matrix[rows], points=vectors.points.iloc[rows]
        )
        p = part.distributions()
        if (p < 0).any():
            raise ConfigError(
                f"function vectors of output {vectors.output!r} hold negative probabilities; "
                f"record softmax outputs (or use the euclidean distance)"
            )
        total = (p @ np.ones(p.shape[-1]))[..., None]  # sum(axis=-1) is slow on short axes
        if (total <= 0).any():
            raise ConfigError(
                "a predicted distribution sums to 0; record softmax outputs "
                "(or use the euclidean distance)"
            )
        p = p / total
        if out is None:
            out = np.empty((n, *p.shape[1:]), dtype=dtype)
        out[rows] = p
    assert out is not None
    return out
