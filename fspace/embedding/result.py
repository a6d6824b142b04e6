"""The result of :func:`~fspace.embedding.embed`: 2-D coordinates of checkpoints that
remember how they were made, place new checkpoints without re-fitting
(:meth:`Embedding.transform`), and go to and from a safetensors file.

Example::

    emb = embed(vectors, "tsne", random_state=1)
    emb.save("map.safetensors")
    Embedding.load("map.safetensors").frame  # the points with x and y columns
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fspace._atomic import write_bytes
from fspace.embedding.registry import get_method
from fspace.errors import EmbeddingError, ProbeMismatchError
from fspace.vectors import FunctionVectors

if TYPE_CHECKING:
    import pandas as pd

_FORMAT = "fspace.embedding"
_FORMAT_VERSION = 1


def check_finite(vectors: FunctionVectors) -> None:
    """Raise :class:`EmbeddingError` naming the checkpoints whose vectors hold NaN or inf."""
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


def fit_result(coords: Any, n: int, method: str) -> np.ndarray:
    """``coords`` as a read-only (n, 2) float64 array; EmbeddingError unless all finite."""
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
        check_finite(new)
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
        placed = fit_result(placed, len(new), self.method)
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
            fit_result(coords, len(points), meta["method"]),
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
