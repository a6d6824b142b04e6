"""A data frame as named arrays for a tensor file, and back, for frames of millions of rows.

:func:`frame_arrays` turns each column into arrays a safetensors file can hold, and
returns a small JSON-able layout describing them; :func:`frame_from` rebuilds the
exact frame. The header of the file grows with the number of columns, never with the
number of rows. A column is stored one of three ways:

- ``"array"``: a numpy numeric or boolean column, as it is (NaN and infinity included);
- ``"text"``: strings (missing values allowed), as codes into its distinct values, which
  are stored as UTF-8 bytes and offsets (``codes == -1`` is a missing value);
- ``"json"``: anything else (mixed types, lists, nullable extension dtypes, ...), the
  same way, each distinct value written as JSON (non-finite numbers become null).

Missing values of a non-numeric column come back as None (or the dtype's own missing
value once cast back to it); every column is cast back to the dtype it had.

Example::

    arrays, layout = frame_arrays(points, prefix="points")
    same = frame_from(arrays, layout)
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

LAYOUT_VERSION = 1


def frame_arrays(frame: pd.DataFrame, prefix: str) -> tuple[dict[str, np.ndarray], dict]:
    """The columns of ``frame`` as arrays named ``PREFIX.I.PART``, and their layout."""
    arrays: dict[str, np.ndarray] = {}
    columns = []
    for i, name in enumerate(frame.columns):
        series = frame[name]
        base = f"{prefix}.{i}"
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf" and dtype.itemsize <= 8:
            arrays[f"{base}.values"] = np.ascontiguousarray(series.to_numpy())
            encoding = "array"
        else:
            encoding = _encode_values(series, base, arrays)
        columns.append({"name": str(name), "dtype": str(dtype), "encoding": encoding})
    layout = {"version": LAYOUT_VERSION, "rows": len(frame), "prefix": prefix, "columns": columns}
    return arrays, layout


def frame_from(arrays: dict[str, np.ndarray], layout: dict[str, Any]) -> pd.DataFrame:
    """The frame :func:`frame_arrays` stored as ``arrays`` with ``layout``.

    Raises KeyError, TypeError or ValueError if they do not describe a frame."""
    import pandas as pd

    if layout.get("version") != LAYOUT_VERSION:
        raise ValueError(f"frame layout version {layout.get('version')!r} is not supported")
    rows, prefix = int(layout["rows"]), str(layout["prefix"])
    data = {}
    dtypes = {}
    for i, column in enumerate(layout["columns"]):
        name, encoding = str(column["name"]), column["encoding"]
        base = f"{prefix}.{i}"
        if encoding == "array":
            values = np.asarray(arrays[f"{base}.values"])
        elif encoding in ("text", "json"):
            values = _decode_values(arrays, base, encoding, rows)
        else:
            raise ValueError(f"column {name!r} has unknown encoding {encoding!r}")
        if values.shape != (rows,):
            raise ValueError(f"column {name!r} has shape {values.shape}, not ({rows},)")
        if name in data:
            raise ValueError(f"column {name!r} appears twice")
        # dtype given: pandas would infer "str" from objects that are strings or None
        data[name] = pd.Series(values, index=pd.RangeIndex(rows), dtype=values.dtype, copy=True)
        dtypes[name] = str(column["dtype"])
    frame = pd.DataFrame(data, index=pd.RangeIndex(rows), columns=list(data))
    changed = {k: v for k, v in dtypes.items() if str(frame[k].dtype) != v}
    return frame.astype(changed) if changed else frame


def _encode_values(series: pd.Series, base: str, arrays: dict[str, np.ndarray]) -> str:
    """Store ``series`` as codes into its distinct values; return the encoding used."""
    import pandas as pd

    values = series.astype(object).to_numpy()
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        encoding = "text"
    else:
        encoding = "json"
        # One JSON text per value: 1, 1.0 and True stay distinct values.
        values = np.array(
            [None if m else _json(v) for v, m in zip(values, missing, strict=True)], dtype=object
        )
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.where(missing, -1, codes)
    arrays[f"{base}.codes"] = codes.astype(np.int32 if len(uniques) < 2**31 else np.int64)
    data, offsets = _utf8(list(uniques))
    arrays[f"{base}.bytes"] = data
    arrays[f"{base}.offsets"] = offsets
    return encoding


def _decode_values(arrays: dict, base: str, encoding: str, rows: int) -> np.ndarray:
    codes = np.asarray(arrays[f"{base}.codes"])
    data = np.asarray(arrays[f"{base}.bytes"])
    offsets = np.asarray(arrays[f"{base}.offsets"])
    if codes.dtype.kind != "i" or data.dtype != np.uint8 or offsets.dtype != np.int64:
        raise ValueError(f"{base}: codes, bytes or offsets of the wrong dtype")
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(data):
        raise ValueError(f"{base}: offsets do not cover the bytes")
    if (np.diff(offsets) < 0).any():
        raise ValueError(f"{base}: offsets are not increasing")
    raw = data.tobytes()
    bounds = offsets.tolist()
    uniques = [raw[a:b].decode("utf-8") for a, b in itertools.pairwise(bounds)]
    if encoding == "json":
        uniques = [json.loads(u) for u in uniques]
    table = np.empty(len(uniques) + 1, dtype=object)  # the last slot is code -1: missing
    table[: len(uniques)] = uniques
    if codes.size and (codes.min() < -1 or codes.max() >= len(uniques)):
        raise ValueError(f"{base}: codes outside the {len(uniques)} distinct values")
    return table[codes]


def _utf8(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _json(value: Any) -> str:
    text = json.dumps(value, default=json_scalar)
    if "NaN" in text or "Infinity" in text:  # JSON has no non-finite numbers: null
        text = json.dumps(json.loads(text, parse_constant=lambda _: None))
    return text


def json_scalar(value: Any) -> Any:
    """``value`` as a JSON scalar: numpy scalars as Python ones, non-finite floats as None,
    anything else as its text (a ``default=`` for :func:`json.dumps`)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value if isinstance(value, (int, float, str, bool)) else str(value)
