"""Cache entries that scale: frames as column arrays, extra arrays in an entry, big maps."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _bigmap import synthetic_embedding

from fspace import Experiment
from fspace.embedding import Embedding
from fspace.errors import ConfigError
from fspace.pipeline import cache_map, cached_map, checkpoints_digest, map_key
from fspace.store import files
from fspace.store.frames import frame_arrays, frame_from


@pytest.fixture
def exp(tmp_path):
    return Experiment.create(tmp_path / "exp")


def _frames() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Frames and what they read back as (missing values of object columns become None)."""
    text = ["a", "b\x00c", "é🙂", "", "a"]
    mixed = [1, 1.0, True, [1, "x"], {"k": None}]
    plain = pd.DataFrame(
        {
            "checkpoint": text,
            "epoch": np.arange(5, dtype=np.int64),
            "small": np.arange(5, dtype=np.int8),
            "loss": [0.5, np.nan, np.inf, -np.inf, 1e-300],
            "done": [True, False, True, True, False],
            "mixed": pd.Series(mixed, dtype=object),
        }
    )
    holes = pd.DataFrame(
        {
            "group": pd.Series(["x", None, "y", np.nan, "x"], dtype=object),
            "maybe": pd.Series([None, 2, np.nan, "s", 2.5], dtype=object),
            "lr": [0.1, None, 0.3, None, 0.5],
        }
    )
    holes_back = holes.copy()
    holes_back["group"] = pd.Series(["x", None, "y", None, "x"], dtype=object)
    holes_back["maybe"] = pd.Series([None, 2, None, "s", 2.5], dtype=object)
    typed = pd.DataFrame(
        {
            "name": pd.Series(["r0", "r1", None], dtype="string"),
            "count": pd.Series([1, None, 3], dtype="Int64"),
            "kind": pd.Series(["a", "b", "a"], dtype="category"),
            "text": pd.Series(["u", "v", "w"], dtype="str"),
        }
    )
    empty = pd.DataFrame({"run": pd.Series([], dtype=object), "epoch": np.zeros(0, np.int64)})
    return {
        "plain": (plain, plain),
        "missing": (holes, holes_back),
        "extension-dtypes": (typed, typed),
        "empty": (empty, empty),
    }


@pytest.mark.parametrize("name", list(_frames()))
def test_frame_round_trips_through_arrays(name):
    frame, expected = _frames()[name]
    arrays, layout = frame_arrays(frame, prefix="points")
    assert all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in arrays.values())
    back = frame_from(arrays, layout)
    pd.testing.assert_frame_equal(back, expected)
    assert [type(v) for v in back.iloc[:, -1]] == [type(v) for v in expected.iloc[:, -1]]


def test_frame_layout_that_does_not_match_its_arrays_is_a_value_error():
    arrays, layout = frame_arrays(pd.DataFrame({"run": ["a", "b"]}), prefix="p")
    with pytest.raises(ValueError, match="shape"):
        frame_from(arrays, {**layout, "rows": 3})
    arrays["p.0.codes"] = np.array([0, 7], dtype=np.int32)
    with pytest.raises(ValueError, match="codes outside"):
        frame_from(arrays, layout)


def test_cache_entry_holds_extra_arrays_checksummed(exp):
    key = {"n": 1}
    extra = {"a.values": np.arange(5, dtype=np.int32), "b": np.ones((2, 3), np.uint8)}
    exp.cache.put("map", key, np.zeros((5, 2)), {"note": "x"}, extra=extra)
    arrays, meta = exp.cache.get_arrays("map", key)
    assert set(arrays) == {"array", *extra} and meta == {"note": "x"}
    for name, value in extra.items():
        np.testing.assert_array_equal(arrays[name], value)
        assert not arrays[name].flags.writeable
    np.testing.assert_array_equal(exp.cache.get("map", key)[0], np.zeros((5, 2)))
    with pytest.raises(ConfigError, match="other than 'array'"):
        exp.cache.put("map", key, np.zeros(2), extra={"array": np.ones(2)})


def test_map_key_names_the_exact_ordered_checkpoints_by_digest():
    keys = [f"r{i}/e{i}" for i in range(5)]
    key = map_key("pca", {}, "fp", "prob", keys)
    assert key["checkpoints"] == {"count": 5, "sha256": checkpoints_digest(keys)}
    assert map_key("pca", {}, "fp", "prob", list(keys)) == key
    assert map_key("pca", {}, "fp", "prob", keys[::-1]) != key
    assert map_key("pca", {}, "fp", "prob", keys[:-1]) != key
    assert checkpoints_digest(["a,b"]) != checkpoints_digest(["a", "b"])


def test_entry_in_the_old_format_is_a_miss_not_an_error(exp):
    embedding = synthetic_embedding(3, 2)
    keys = list(embedding.points["checkpoint"])
    old = {**map_key("pca", {}, "synthetic", "prob", keys), "checkpoints": keys}
    exp.cache.put("map", old, embedding.coords, {"dtypes": {}, "points": []})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cached_map(exp, map_key("pca", {}, "synthetic", "prob", keys)) is None


@pytest.mark.slow
def test_map_of_200k_points_round_trips_with_a_small_header(exp):
    runs, epochs = 2_000, 99  # 200,000 checkpoints
    embedding = synthetic_embedding(runs, epochs)
    embedding.points["note"] = pd.Series([None, "x"] * (runs * (epochs + 1) // 2), dtype=object)
    embedding = Embedding(
        embedding.coords, embedding.points, "pca", {"n": 2}, "synthetic", "prob", 2
    )
    key = map_key("pca", {}, "synthetic", "prob", embedding.points["checkpoint"])
    cache_map(exp, key, embedding)
    back = cached_map(exp, key)
    np.testing.assert_array_equal(back.coords, embedding.coords)
    pd.testing.assert_frame_equal(back.points, embedding.points)
    assert (back.method, back.params, back.fingerprint) == ("pca", {"n": 2}, "synthetic")
    (entry,) = exp.cache.entries("map")
    with open(entry.path, "rb") as f:
        header = files.header_length(entry.path, f.read(8), entry.path.stat().st_size)
    assert header < 1_000_000, header
