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
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fspace._atomic import write_bytes
from fspace.embedding.registry import (  # noqa: F401 - the registry's public names, here too
    METHODS,
    MethodRegistry,
    check_value,
    get_method,
    methods,
    register,
)
from fspace.errors import ConfigError, EmbeddingError, ProbeMismatchError
from fspace.registry import Param
from fspace.vectors import FunctionVectors

if TYPE_CHECKING:
    import pandas as pd

_FORMAT = "fspace.embedding"
_FORMAT_VERSION = 1


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


def _check_finite(vectors: FunctionVectors) -> None:
    matrix = vectors.matrix
    # In row blocks: no (n, d) array of flags beside a large (memory-mapped) matrix.
    rows = max(1, 2**26 // max(1, matrix.shape[1]))
    bad = np.concatenate(
        [~np.isfinite(matrix[a : a + rows]).all(axis=1) for a in range(0, len(matrix), rows)]
    )
    if bad.any():
        keys = vectors.points["checkpoint"].to_numpy()[bad].tolist()
        shown = ", ".join(map(str, keys[:10])) + (" ..." if len(keys) > 10 else "")
        raise EmbeddingError(
            f"{len(keys)} function vector(s) contain NaN or infinite values: {shown}; "
            f"re-evaluate or drop these checkpoints"
        )


def _fit_result(coords: Any, n: int, method: str) -> np.ndarray:
    coords = np.array(coords, dtype=np.float64).reshape(n, 2)
    if not np.isfinite(coords).all():
        raise EmbeddingError(f"{method} produced non-finite coordinates; try other parameters")
    coords.setflags(write=False)
    return coords


@dataclass(frozen=True, eq=False, repr=False)
class Embedding:
    """2-D coordinates of checkpoints, with how they were made.

    ``coords[i]`` places the checkpoint in row ``i`` of ``points``. ``params`` holds the
    parameters actually used (defaults and small-data adjustments included);
    ``distance`` and ``distance_params`` the function-space distance that was mapped;
    ``quality`` how faithful the map is (:mod:`fspace.embedding.quality`:
    trustworthiness, continuity, explained stress for metric maps, and what the method
    adds, e.g. InPCA's ``axis_signs``).
    """

    coords: np.ndarray
    points: pd.DataFrame
    method: str
    params: dict[str, Any]
    fingerprint: str
    output: str
    dimension: int
    _state: Any = field(default=None, repr=False)
    quality: dict[str, Any] = field(default_factory=dict)
    distance: str = "euclidean"
    distance_params: dict[str, Any] = field(default_factory=dict)
    _reference: FunctionVectors | None = field(default=None, repr=False)
    """The fitted checkpoints' vectors, kept where placing new ones needs distances."""

    @property
    def frame(self) -> pd.DataFrame:
        """The points with the coordinates as columns ``x`` and ``y``."""
        frame = self.points.copy()
        frame["x"] = self.coords[:, 0]
        frame["y"] = self.coords[:, 1]
        return frame

    def __len__(self) -> int:
        return len(self.coords)

    def __repr__(self) -> str:
        return (
            f"Embedding(method={self.method!r}, checkpoints={len(self)}, "
            f"fingerprint={self.fingerprint!r}, output={self.output!r}, "
            f"distance={self.distance!r}, params={self.params})"
        )

    def transform(self, new: FunctionVectors) -> Embedding:
        """Place ``new`` checkpoints into this map without re-fitting it.

        Returns an embedding of the old points (coordinates unchanged) followed by the
        new ones.
        """
        import pandas as pd

        self._check_compatible(new)
        if self._state is None:
            raise EmbeddingError(
                f"this {self.method} embedding was loaded from a file and has no fitted "
                f"state; re-fit it with embed(vectors, {self.method!r}) to add checkpoints"
            )
        _check_finite(new)
        clash = sorted(set(new.points["checkpoint"]) & set(self.points["checkpoint"]))
        if clash:
            raise EmbeddingError(
                f"checkpoints already in the embedding: {', '.join(map(str, clash[:10]))}; "
                f"pass only new checkpoints to transform"
            )
        try:
            placed = self._place(new)
        except ValueError as err:
            raise EmbeddingError(
                f"{self.method} could not place {len(new)} new checkpoints: {err}"
            ) from err
        placed = _fit_result(placed, len(new), self.method)
        coords = np.concatenate([self.coords, placed])
        coords.setflags(write=False)
        points = pd.concat([self.points, new.points], ignore_index=True)
        return dataclasses.replace(self, coords=coords, points=points, params=dict(self.params))

    def _place(self, new: FunctionVectors) -> np.ndarray:
        from fspace.embedding import inputs

        impl = get_method(self.method)
        distance, dparams = inputs.distance_of(self.distance, new, self.distance_params)
        mode = inputs.input_mode(impl, distance)
        device = self.params.get("device", "auto")
        matrix = inputs.place_input(mode, new, self._reference, distance, dparams, device=device)
        if mode == "distances":
            return impl.transform_distances(self._state, matrix, self.params)
        return impl.transform(self._state, matrix, self.params)

    def _check_compatible(self, new: FunctionVectors) -> None:
        if new.fingerprint != self.fingerprint or new.output != self.output:
            raise ProbeMismatchError(
                f"cannot add function vectors of probe suite {new.fingerprint} "
                f"(output {new.output!r}) to an embedding of probe suite {self.fingerprint} "
                f"(output {self.output!r}); evaluate them on the same probe suite"
            )
        if new.matrix.shape[1] != self.dimension:
            raise ProbeMismatchError(
                f"function vectors of length {new.matrix.shape[1]} cannot be added to an "
                f"embedding of length-{self.dimension} vectors (probe suite "
                f"{self.fingerprint}); the models' output sizes differ"
            )

    def save(self, path: str | Path) -> Path:
        """Write the coordinates and provenance to a safetensors file, atomically."""
        from safetensors.numpy import save

        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "method": self.method,
            "params": self.params,
            "fingerprint": self.fingerprint,
            "output": self.output,
            "dimension": self.dimension,
            "dtypes": self.points.dtypes.astype(str).to_dict(),
            "points": _records(self.points),
            "distance": self.distance,
            "distance_params": self.distance_params,
            "quality": self.quality,
        }
        try:
            text = json.dumps(meta, default=_json_scalar, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise EmbeddingError(f"cannot save embedding to {path}: {err}") from err
        data = save({"coords": np.ascontiguousarray(self.coords)}, metadata={_FORMAT: text})
        return write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path) -> Embedding:
        """Read an embedding written by :meth:`save` (without its fitted state)."""
        import pandas as pd
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as f:
                text = (f.metadata() or {}).get(_FORMAT)
                coords = f.get_tensor("coords") if text is not None else None
        except (OSError, SafetensorError) as err:
            raise EmbeddingError(f"cannot read embedding file {path}: {err}") from err
        if text is None:
            raise EmbeddingError(f"{path} is a safetensors file but not an fspace embedding")
        meta = json.loads(text)
        if meta.get("version") != _FORMAT_VERSION:
            raise EmbeddingError(
                f"{path} has embedding format version {meta.get('version')}; this fspace "
                f"reads version {_FORMAT_VERSION}"
            )
        dtypes = meta["dtypes"]
        points = pd.DataFrame.from_records(meta["points"], columns=list(dtypes))
        points = points.astype(dtypes)
        return cls(
            _fit_result(coords, len(points), meta["method"]),
            points,
            meta["method"],
            meta["params"],
            meta["fingerprint"],
            meta["output"],
            meta["dimension"],
            quality=dict(meta.get("quality") or {}),
            distance=meta.get("distance", "euclidean"),
            distance_params=dict(meta.get("distance_params") or {}),
        )


def _records(points: pd.DataFrame) -> list[dict[str, Any]]:
    # NaN is not JSON; store missing values as null, restored by the saved dtypes.
    return points.astype(object).where(points.notna(), None).to_dict(orient="records")


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serialisable")


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
    try:
        if mode == "distances":
            coords, state = impl.fit_distances(matrix, resolved, progress=progress)
        else:
            coords, state = impl.fit(matrix, resolved, progress=progress)
    except ValueError as err:
        raise EmbeddingError(
            f"{method} failed on {n} function vectors of length {vectors.matrix.shape[1]} "
            f"({dist.name} distance) with {resolved}: {err}"
        ) from err
    coords = _fit_result(coords, n, method)
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


def _check_points(vectors: FunctionVectors) -> None:
    if len(vectors) == 0:
        raise EmbeddingError("no function vectors to embed; evaluate some checkpoints first")
    taken = sorted({"x", "y"} & set(vectors.points.columns))
    if taken:
        raise EmbeddingError(
            f"the points already have column(s) {', '.join(taken)}, which the embedding "
            f"adds; rename them before embedding"
        )
    _check_finite(vectors)
