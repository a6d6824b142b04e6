"""The store's checksummed caches: round trips, damaged entries rebuilt, maps cached."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from fspace import Experiment
from fspace.errors import ConfigError
from fspace.store import files


@pytest.fixture
def exp(tmp_path):
    return Experiment.create(tmp_path / "exp")


KEY = {"method": "tsne", "params": {"perplexity": 30}, "checkpoints": ["r0/a", "r0/b"]}


def test_round_trip_is_memory_mapped_and_read_only(exp):
    array = np.arange(12, dtype=np.float64).reshape(6, 2)
    path = exp.cache.put("map", KEY, array, {"note": "x"})
    assert path.is_relative_to(exp.path / "cache" / "map")
    got, meta = exp.cache.get("map", KEY)
    np.testing.assert_array_equal(got, array)
    assert got.dtype == np.float64 and meta == {"note": "x"}
    assert not got.flags.writeable and not got.flags.owndata  # a view of the map
    assert exp.cache.get("map", {**KEY, "method": "umap"}) is None
    assert exp.cache.get("distances", KEY) is None
    assert [e.key for e in exp.cache.entries("map")] == [KEY]


@pytest.mark.parametrize("where", ["tensor", "metadata"])
def test_damaged_entry_warns_and_is_missing(exp, where):
    path = exp.cache.put("map", KEY, np.ones((4, 2)), {"note": "x"})
    raw = bytearray(path.read_bytes())
    if where == "tensor":
        raw[-3] ^= 0xFF  # inside the array
    else:
        i = raw.index(b"note")
        raw[i : i + 4] = b"nota"  # same length: the header still parses
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="rebuilt: .*checksum mismatch"):
        assert exp.cache.get("map", KEY) is None
    exp.cache.put("map", KEY, np.zeros((4, 2)), {})  # the rebuild replaces it
    np.testing.assert_array_equal(exp.cache.get("map", KEY)[0], np.zeros((4, 2)))


def test_entry_copied_under_another_key_is_refused(exp):
    other = {**KEY, "checkpoints": ["r0/a"]}
    source = exp.cache.put("map", other, np.ones((1, 2)), {})
    target = exp.cache.put("map", KEY, np.zeros((2, 2)), {})
    os.replace(source, target)
    with pytest.warns(UserWarning, match="another key"):
        assert exp.cache.get("map", KEY) is None


def test_entry_with_valid_checksum_but_foreign_content_is_refused(exp):
    path = exp.cache.put("map", KEY, np.ones((2, 2)), {})
    # A file whose checksum is right (anyone can compute SHA-256) but which is no cache.
    files.write(path, {"weights": torch.ones(3)}, {"kind": "checkpoint", "epoch": 0})
    with pytest.warns(UserWarning, match="not a 'map' cache entry"):
        assert exp.cache.get("map", KEY) is None


@pytest.mark.parametrize(
    ("kind", "key", "meta"),
    [
        ("../x", KEY, {}),
        ("map", ["not", "a", "dict"], {}),
        ("map", {"x": math.inf}, {}),
        ("map", {"x": object()}, {}),
        ("map", KEY, {"x": math.nan}),
    ],
    ids=["kind-path", "key-list", "key-inf", "key-object", "meta-nan"],
)
def test_bad_kind_key_or_meta_is_refused(exp, kind, key, meta):
    with pytest.raises(ConfigError):
        exp.cache.put(kind, key, np.ones(2), meta)
    assert not (exp.path / "cache").exists() or not any((exp.path / "cache").rglob("*.*"))


def test_prune_keeps_the_most_recently_used(exp):
    keys = [{"i": i} for i in range(5)]
    for i, key in enumerate(keys):
        path = exp.cache.put("map", key, np.full(2, i), {})
        os.utime(path, ns=(i * 10**9, i * 10**9))
    assert exp.cache.get("map", keys[0]) is not None  # a read counts as a use
    assert exp.cache.prune("map", 2) == 3
    assert sorted(e.key["i"] for e in exp.cache.entries("map")) == [0, 4]
    assert exp.cache.prune("distances", 1) == 0


def test_embedding_map_is_cached_and_a_tampered_one_rebuilt(tmp_path, suite):
    from conftest import record_experiment

    from fspace.pipeline import embed_experiment

    record_experiment(tmp_path / "exp", suite, seeds=(0, 1), epochs=2)
    first = embed_experiment(tmp_path / "exp", method="pca", progress=False)
    exp = Experiment(tmp_path / "exp")
    (entry,) = exp.cache.entries("map")
    assert entry.key["method"] == "pca" and entry.key["checkpoints"]["count"] == len(first)
    again = embed_experiment(tmp_path / "exp", method="pca", progress=False)
    np.testing.assert_array_equal(again.coords, first.coords)
    # Coordinates replaced by hand: the checksum no longer matches, so the map is rebuilt.
    raw = bytearray(entry.path.read_bytes())
    raw[-8:] = np.float64(1e6).tobytes()
    entry.path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        rebuilt = embed_experiment(tmp_path / "exp", method="pca", progress=False)
    np.testing.assert_allclose(rebuilt.coords, first.coords)


def test_map_with_bad_metadata_but_valid_checksum_is_rebuilt(tmp_path, suite):
    from conftest import record_experiment

    from fspace.pipeline import embed_experiment

    record_experiment(tmp_path / "exp", suite, seeds=(0,), epochs=3)
    first = embed_experiment(tmp_path / "exp", method="pca", progress=False)
    exp = Experiment(tmp_path / "exp")
    (entry,) = exp.cache.entries("map")
    exp.cache.put("map", entry.key, np.ones((len(first), 2)), {"dtypes": [1], "points": 7})
    with pytest.warns(UserWarning, match="bad metadata"):
        rebuilt = embed_experiment(tmp_path / "exp", method="pca", progress=False)
    np.testing.assert_allclose(rebuilt.coords, first.coords)
