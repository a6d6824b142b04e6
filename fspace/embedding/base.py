"""The embedding step: 2-D coordinates of function vectors.

A method is a subclass of :class:`EmbeddingMethod` in its own module, registered in
:data:`METHODS` with :func:`register` (:mod:`fspace.embedding.registry`), which declares
its label and parameters; the command line, the dashboard and :func:`embed` all read them
from there. Packages outside fspace add methods through the entry-point group
``fspace.embeddings``.

Example::

    emb = embed(vectors, "tsne", perplexity=20, random_state=1)
    emb.frame  # the points with x and y columns
    emb = emb.transform(more_vectors)  # place new checkpoints without re-fitting

A new method::

    @register("first-two", label="First two", params=[Param("scale", float, 1.0, low=0)])
    class FirstTwo(EmbeddingMethod):
        \"\"\"The first two entries of each function vector.\"\"\"

        def fit(self, matrix, params, *, progress):
            return params["scale"] * matrix[:, :2], None

        def transform(self, state, matrix, params):
            return params["scale"] * matrix[:, :2]

The result, :class:`Embedding`, lives in :mod:`fspace.embedding.result`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from fspace.embedding.registry import (  # noqa: F401 - the registry's public names, here too
    METHODS,
    MethodRegistry,
    check_value,
    get_method,
    methods,
    register,
)
from fspace.embedding.result import Embedding, check_finite, fit_result
from fspace.errors import ConfigError, EmbeddingError
from fspace.registry import Param
from fspace.vectors import FunctionVectors


class EmbeddingMethod(ABC):
    """One way of mapping function vectors to 2-D; subclass it in a new module.

    ``params`` (set by :func:`register`) lists every parameter the method accepts; a
    default of ``None`` means "decided from the data" in :meth:`adapt`.
    """

    name: ClassVar[str] = ""
    min_points: ClassVar[int] = 2
    params: ClassVar[tuple[Param, ...]] = ()

    @property
    def defaults(self) -> dict[str, Any]:
        """Each parameter's default value, by name."""
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """The defaults overlaid with ``params``, every value checked (before any data).

        Raises :class:`ConfigError` naming the parameter at fault.
        """
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise ConfigError(
                f"embedding method {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"it accepts {', '.join(sorted(declared)) or 'none'}"
            )
        resolved = {**self.defaults, **params}
        self.check(resolved)
        return {key: check_value(declared[key], value) for key, value in resolved.items()}

    def resolve(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        """Merge ``params`` into the defaults, validate them, and adapt them to ``n_points``."""
        resolved = self.validate(params)
        if n_points < self.min_points:
            raise EmbeddingError(
                f"method {self.name!r} needs at least {self.min_points} checkpoints, "
                f"got {n_points}; use method='pca' for so few"
            )
        return self.adapt(resolved, n_points)

    def check(self, params: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Raise :class:`ConfigError` for values the declared ``params`` cannot rule out."""

    def adapt(self, params: dict[str, Any], n_points: int) -> dict[str, Any]:
        """Return ``params`` adjusted to a data set of ``n_points`` (warn about changes)."""
        return params

    @abstractmethod
    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        """Fit to ``matrix`` (n, d); return (n, 2) coordinates and the fitted state."""

    @abstractmethod
    def transform(self, state: Any, matrix: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Place the rows of ``matrix`` into the map held by ``state``; return (m, 2)."""

    needs_distances: ClassVar[bool] = False
    """True for methods fitted to a distance matrix only (InPCA, MDS, Isomap, PHATE);
    others are fitted to vectors, or to distances through ``metric="precomputed"``
    (see :mod:`fspace.embedding.inputs`)."""

    def fit_distances(
        self, distances: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        """Fit to an (n, n) distance matrix; by default :meth:`fit` does (precomputed metric)."""
        return self.fit(distances, params, progress=progress)

    def transform_distances(
        self, state: Any, distances: np.ndarray, params: dict[str, Any]
    ) -> np.ndarray:
        """Place new points given their (m, n) distances to the fitted ones; return (m, 2)."""
        return self.transform(state, distances, params)

    def quality(self, state: Any) -> dict[str, Any]:
        """Faithfulness measures only the fitted method knows (InPCA's explained stress)."""
        return {}


# Checks shared by the method modules; each names the argument it rejects.
def check_positive(name: str, value: Any) -> None:
    """Raise unless ``value`` is a real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")


def check_int(name: str, value: Any, minimum: int) -> None:
    """Raise unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


class DistanceMethod(EmbeddingMethod):
    """Base of the methods fitted to a distance matrix only (InPCA, MDS, Isomap, PHATE):
    given vectors, :meth:`fit` takes their Euclidean distances."""

    needs_distances = True

    def fit(
        self, matrix: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        from scipy.spatial.distance import cdist

        return self.fit_distances(cdist(matrix, matrix), params, progress=progress)

    @abstractmethod
    def fit_distances(
        self, distances: np.ndarray, params: dict[str, Any], *, progress: bool
    ) -> tuple[np.ndarray, Any]:
        """Fit to an (n, n) distance matrix; return (n, 2) coordinates and the state."""


def warn_lowered(name: str, old: Any, new: Any, n_points: int, method: str) -> None:
    """Warn that a parameter was lowered to fit only ``n_points`` checkpoints."""
    warnings.warn(
        f"{method}: {name}={old} is too large for {n_points} checkpoints; "
        f"using {name}={new} instead",
        UserWarning,
        stacklevel=5,
    )


def embed(
    vectors: FunctionVectors,
    method: str = "tsne",
    *,
    distance: str = "euclidean",
    random_state: int = 0,
    progress: bool = False,
    distance_params: dict[str, Any] | None = None,
    precomputed: np.ndarray | None = None,
    **params: Any,
) -> Embedding:
    """Embed function vectors in 2-D with a registered method, on any registered distance.

    ``params`` are the method's own parameters (e.g. ``perplexity`` for t-SNE,
    ``n_neighbors`` for UMAP); the same ``random_state`` gives the same coordinates.
    ``distance`` names an entry of :data:`fspace.distances.DISTANCES` (with its own
    ``distance_params``); ``precomputed`` may hold its (n, n) matrix for ``vectors``,
    e.g. from the experiment's cache. The map's faithfulness is measured as it is
    fitted and kept in ``Embedding.quality``.

    Example::

        emb = embed(vectors, "inpca", distance="bhattacharyya")
        emb.quality  # {'trustworthiness': ..., 'continuity': ..., 'explained_stress': ...}
    """
    from fspace.embedding import inputs
    from fspace.embedding.quality import measure_fit

    if not isinstance(vectors, FunctionVectors):
        raise ConfigError(
            f"embed() needs FunctionVectors (from fspace.evaluate), got {type(vectors).__name__}"
        )
    entry = METHODS.get(method)
    impl = entry.obj()
    check_int("random_state", random_state, 0)
    dist, dparams = inputs.distance_of(distance, vectors, distance_params)
    inputs.check_method_takes(METHODS, entry, dist.name)
    _check_points(vectors)
    mode = inputs.input_mode(impl, dist)
    params = inputs.with_precomputed_metric(mode, impl, params)
    n = len(vectors)
    resolved = {**impl.resolve(params, n), "random_state": int(random_state)}
    # A method that declares a device computes its distances there too
    device = resolved.get("device", "auto")
    matrix = inputs.fit_input(mode, vectors, dist, dparams, precomputed, device=device)
    what = (
        f"{method} failed on {n} function vectors of length {vectors.matrix.shape[1]} "
        f"({dist.name} distance)"
    )
    coords, state = _fit(impl, mode, matrix, resolved, progress=progress, what=what)
    coords = fit_result(coords, n, method)
    quality = measure_fit(impl, entry, state, coords, (mode, matrix, vectors, dist, dparams))
    return Embedding(
        coords,
        vectors.points.reset_index(drop=True),
        method,
        resolved,
        vectors.fingerprint,
        vectors.output,
        int(vectors.matrix.shape[1]),
        state,
        quality=quality,
        distance=dist.name,
        distance_params=dparams,
        _reference=vectors if mode == "distances" else None,
    )


def _fit(
    impl: EmbeddingMethod,
    mode: str,
    matrix: np.ndarray,
    params: dict[str, Any],
    *,
    progress: bool,
    what: str,
) -> tuple[np.ndarray, Any]:
    """Fit ``impl`` to ``matrix`` (vectors, or distances when ``mode`` says so); a
    ValueError of the method becomes an EmbeddingError starting with ``what``."""
    try:
        if mode == "distances":
            return impl.fit_distances(matrix, params, progress=progress)
        return impl.fit(matrix, params, progress=progress)
    except ValueError as err:
        raise EmbeddingError(f"{what} with {params}: {err}") from err


def _check_points(vectors: FunctionVectors) -> None:
    if len(vectors) == 0:
        raise EmbeddingError("no function vectors to embed; evaluate some checkpoints first")
    taken = sorted({"x", "y"} & set(vectors.points.columns))
    if taken:
        raise EmbeddingError(
            f"the points already have column(s) {', '.join(taken)}, which the embedding "
            f"adds; rename them before embedding"
        )
    check_finite(vectors)
