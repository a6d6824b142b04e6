"""Precomputed plotting arrays of one map, so that every redraw is a few numpy masks.

:class:`PlotFrame` sorts an embedding's frame once (group, run, epoch, step) and keeps
each column the trajectory figure needs as a numpy array, the filter columns as integer
codes. Filtering and the epoch window are boolean masks over those arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fspace.plot.style import group_order

# Columns a page filters by come from the runs themselves (filter_columns): the group
# and every run setting with a few distinct values; these come first, in this order.
FILTERS = ("group", "depth", "method", "seed")
MAX_FILTER_VALUES = 30
"""A run setting with more distinct values than this is no filter (a dropdown of
hundreds of learning rates helps nobody)."""
NOT_FILTERS = frozenset({"run", "checkpoint", "epoch", "step", "x", "y", "row"})
ERROR = "test_error"
MISSING = "(none)"  # filter value of runs that lack the column


@dataclass(frozen=True, eq=False)
class PlotFrame:
    """The rows of one map in drawing order, as arrays.

    ``frame`` keeps every label column plus ``row``, the row of the checkpoint in the
    embedding; ``codes[c][i]`` indexes ``values[c]`` for each filter column ``c``.
    """

    frame: pd.DataFrame
    groups: tuple[str, ...]
    group_code: np.ndarray
    runs: np.ndarray
    run_code: np.ndarray
    x: np.ndarray
    y: np.ndarray
    epoch: np.ndarray
    seed: np.ndarray
    error: np.ndarray | None
    codes: dict[str, np.ndarray]
    values: dict[str, tuple[str, ...]]
    columns: tuple[str, ...] = ()
    """The filter columns (:func:`filter_columns`), in the order the page lists them."""

    @classmethod
    def build(cls, frame: pd.DataFrame) -> PlotFrame:
        """Sort ``frame`` (an embedding's frame) and extract its arrays."""
        if "pretraining" in frame.columns and "method" not in frame.columns:
            # The pre-training scheme: "method" in runs of older versions, "pretraining"
            # today; one filter column for both (its URL word is "pretraining").
            frame = frame.rename(columns={"pretraining": "method"})
        # Labels are factorised first: a million become text once per distinct value.
        raw, distinct = pd.factorize(_text_safe(frame["group"]), use_na_sentinel=False)
        names = [str(g) for g in distinct]
        groups = tuple(group_order(names))
        rank = {g: i for i, g in enumerate(groups)}
        group_of = np.array([rank[n] for n in names], dtype=np.int16)[raw]
        frame = frame.assign(row=np.arange(len(frame)), _g=group_of)
        frame = frame.sort_values(["_g", "run", "epoch", "step"], kind="stable")
        group_code = frame["_g"].to_numpy(np.int16)
        frame = frame.drop(columns="_g").reset_index(drop=True)
        run_code, runs = pd.factorize(frame["run"].astype(str))
        codes, values = {}, {}
        for column in filter_columns(frame, run_code):
            codes[column], values[column] = _codes(frame[column])
        error = frame[ERROR].to_numpy(np.float32) if ERROR in frame.columns else None
        return cls(
            frame=frame,
            groups=groups,
            group_code=group_code,
            runs=np.asarray(runs, dtype=object),
            run_code=run_code.astype(np.int32),
            x=frame["x"].to_numpy(np.float32),
            y=frame["y"].to_numpy(np.float32),
            epoch=frame["epoch"].to_numpy(np.int64),
            seed=frame["seed"].to_numpy(np.float32),
            error=error,
            codes=codes,
            values=values,
            columns=tuple(codes),
        )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def epoch_range(self) -> tuple[int, int]:
        """Smallest and largest epoch (0, 0 when empty)."""
        if not len(self):
            return 0, 0
        return int(self.epoch.min()), int(self.epoch.max())

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """x and y ranges of every point, padded by 5%, so the axes stay put while the
        epoch window moves."""
        if not len(self):
            return -1.0, 1.0, -1.0, 1.0
        out = []
        for values in (self.x, self.y):
            lo, hi = float(values.min()), float(values.max())
            pad = (hi - lo) * 0.05 or 1.0
            out += [lo - pad, hi + pad]
        return tuple(out)

    def options(self) -> dict[str, tuple[str, ...]]:
        """Values each present filter column can take, in display order."""
        return dict(self.values)

    def mask(
        self,
        filters: Mapping[str, Sequence[str]] | None = None,
        epochs: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Rows to draw: every filter's chosen values (none chosen: all), epochs in
        ``[lo, hi]``. Filter values a column does not have select nothing."""
        keep = np.ones(len(self), dtype=bool)
        for column, chosen in (filters or {}).items():
            if not chosen or column not in self.codes:
                continue
            index = {v: i for i, v in enumerate(self.values[column])}
            wanted = [index[str(v)] for v in chosen if str(v) in index]
            keep &= np.isin(self.codes[column], wanted)
        if epochs is not None:
            lo, hi = epochs
            keep &= (self.epoch >= lo) & (self.epoch <= hi)
        return keep

    def rows_of_run(self, run: str) -> np.ndarray:
        """Indices (in drawing order) of ``run``'s checkpoints; empty if it is absent."""
        hit = np.flatnonzero(self.runs == run)
        if not hit.size:
            return hit
        return np.flatnonzero(self.run_code == hit[0])

    def key_of(self, row: int) -> str | None:
        """Checkpoint key of embedding row ``row``; None if out of range."""
        if not 0 <= row < len(self):
            return None
        position = np.flatnonzero(self.frame["row"].to_numpy() == row)
        return str(self.frame["checkpoint"].iloc[position[0]]) if position.size else None

    def position_of(self, key: str) -> int | None:
        """Drawing-order index of checkpoint ``key``; None if it is not in the map."""
        hit = np.flatnonzero(self.frame["checkpoint"].to_numpy() == key)
        return int(hit[0]) if hit.size else None

    def labels(self) -> pd.DataFrame:
        """The rows as a table of labels and coordinates, in drawing order."""
        return self.frame.drop(columns="row")


def filter_columns(frame: pd.DataFrame, run_code: np.ndarray | None = None) -> tuple[str, ...]:
    """The columns of ``frame`` (an embedding's frame) a page can filter the runs by.

    ``group``, then every other column that holds one value per run (a run setting:
    its seed or a config key, not a metric that changes with the epoch) and takes
    2 to :data:`MAX_FILTER_VALUES` distinct values, a missing value counting as one.
    A setting that follows from the group (each group has one value of it, such as a
    pre-training rate that only pre-trained runs have) filters nothing the group filter
    does not, and is left out. :data:`FILTERS` come first, the others in alphabetical
    order. ``run_code`` are the
    rows' run codes from :func:`pandas.factorize`, if already computed.
    """
    if run_code is None:
        run_code = pd.factorize(frame["run"].astype(str))[0]
    # factorize numbers the runs in order of appearance: run k first shows up where the
    # running maximum of the codes reaches k.
    seen = np.maximum.accumulate(np.concatenate([[-1], run_code[:-1]])) if len(run_code) else []
    first = np.flatnonzero(run_code > seen)
    out = ["group"] if "group" in frame.columns else []
    rank = {c: i for i, c in enumerate(FILTERS)}
    candidates = sorted(
        (c for c in frame.columns if c not in NOT_FILTERS and c != "group"),
        key=lambda c: (rank.get(c, len(rank)), str(c)),
    )
    runs = frame.iloc[first]
    for column in candidates:
        # One row per run first: a column with too many values is dropped cheaply.
        if not 2 <= runs[column].nunique(dropna=False) <= MAX_FILTER_VALUES:
            continue
        if out and _follows_group(runs, column):
            continue
        codes = pd.factorize(frame[column], use_na_sentinel=False)[0]
        if np.array_equal(codes, codes[first[run_code]]):  # constant within every run
            out.append(str(column))
    return tuple(out)


def _follows_group(runs: pd.DataFrame, column: str) -> bool:
    """Whether every group of ``runs`` (one row per run) has a single value of ``column``."""
    values = runs[column].astype(str).where(runs[column].notna(), MISSING)
    return bool(values.groupby(runs["group"].astype(str)).nunique().max() <= 1)


def _codes(column: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes of ``column``'s values as text, the values sorted naturally."""
    if column.dtype.kind == "f" and np.allclose(column.dropna() % 1, 0):
        # A column of whole numbers turns float when some runs lack it: show 2, not 2.0.
        column = column.astype("Int64")
    # Factorised first (a million values become text once per distinct value); values
    # of one text (1 and "1") share a code, and a missing value is MISSING.
    raw, distinct = pd.factorize(_text_safe(column), use_na_sentinel=True)
    names = [str(v) for v in distinct] + [MISSING]  # raw code -1: the last
    present = names if (raw < 0).any() else names[:-1]
    uniques = sorted(set(present), key=_natural)
    index = {v: i for i, v in enumerate(uniques)}
    remap = np.array([index.get(n, -1) for n in names], dtype=np.int32)
    return remap[raw], tuple(uniques)


def _text_safe(column: pd.Series) -> pd.Series:
    """``column``, or its values as text if values equal to Python differ as text (``1``
    and ``True`` in one column of objects), so that factorising it tells apart what
    ``str`` does; missing values stay missing."""
    if column.dtype != object or pd.api.types.infer_dtype(column, skipna=True) in (
        "string",
        "empty",
    ):
        return column
    return column.astype(str).where(column.notna(), None)


def _natural(value: str) -> tuple:
    # Depths and seeds sort as numbers (2 before 10); other labels as text.
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)
