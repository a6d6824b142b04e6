"""Property-based tests of the file reader (hypothesis): random bytes, truncations, bit
flips, headers and metadata. A file is refused with a CheckpointError that names it, or
it loads and its checksum verifies; never another exception, a hang or a large
allocation, and listing an experiment never fails because of one file.
"""

from __future__ import annotations

import json
import shutil
import struct
import warnings
from pathlib import Path

import pytest
import torch
from _hostile import (
    GOOD,
    N_GOOD,
    NEW,
    lenient_dumps,
    read_or_refuse,
    record_base,
    safetensors_bytes,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fspace import Experiment
from fspace.store import files, reading

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return record_base(tmp_path_factory.mktemp("hostile-properties") / "base")


@pytest.fixture(scope="module")
def good(base) -> bytes:
    return (base / GOOD).read_bytes()


@pytest.fixture(scope="module")
def good_contents(base) -> tuple[dict, dict]:
    return reading.read(base / GOOD)


@pytest.fixture(scope="module")
def scratch(base, tmp_path_factory) -> Path:
    """One copy of the experiment shared by all examples of the property tests."""
    path = tmp_path_factory.mktemp("scratch") / "exp"
    shutil.copytree(base, path)
    return path


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_random_bytes_are_refused(tmp_path, data):
    path = tmp_path / "random.safetensors"
    path.write_bytes(data)
    assert read_or_refuse(path) is None


@PROPERTY
@given(length=st.integers(min_value=0, max_value=600), body=st.binary(max_size=600))
def test_random_bytes_behind_a_plausible_length_are_refused(tmp_path, length, body):
    path = tmp_path / "random.safetensors"
    path.write_bytes(struct.pack("<Q", length) + body)
    assert read_or_refuse(path) is None


@PROPERTY
@given(data=st.data())
def test_truncated_files_are_refused(tmp_path, good, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(good) - 1), label="cut")
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good[:cut])
    assert read_or_refuse(path) is None


@PROPERTY
@given(data=st.data())
def test_one_flipped_bit_is_caught_or_harmless(tmp_path, good, good_contents, data):
    """A single bit flip anywhere is refused, or (flipping format 2 to 1 in the header)
    loads exactly the tensors and metadata that were written."""
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(good) - 1), label="bit")
    damaged = bytearray(good)
    damaged[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(damaged))
    loaded = read_or_refuse(path)
    if loaded is not None:
        want_tensors, want_meta = good_contents
        tensors, meta = loaded
        assert tensors.keys() == want_tensors.keys()
        for name in tensors:
            torch.testing.assert_close(tensors[name], want_tensors[name], rtol=0, atol=0)
        assert {**meta, "format_version": 0} == {**want_meta, "format_version": 0}


@PROPERTY
@given(data=st.data())
def test_several_flipped_bits_are_caught_or_verified(tmp_path, good, good_contents, data):
    """Several bits flipped anywhere, or digits of the metadata changed (which keeps its
    JSON valid: 0.25 becomes 0.34): refused, or the very tensors and metadata written."""
    n = struct.unpack("<Q", good[:8])[0]
    digits = [8 + i for i in range(n) if chr(good[8 + i]).isdigit()]  # in the header only
    anywhere = st.integers(0, 8 * len(good) - 1)
    a_digit = st.sampled_from(digits).map(lambda i: 8 * i)  # the lowest bit: 2 <-> 3
    bits = data.draw(
        st.lists(anywhere, min_size=2, max_size=8, unique=True)
        | st.lists(a_digit, min_size=1, max_size=4, unique=True),
        label="bits",
    )
    damaged = bytearray(good)
    for bit in bits:
        damaged[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(damaged))
    loaded = read_or_refuse(path)
    if loaded is not None:  # it passed its checksum: the tensors are exactly the written ones
        want_tensors, want_meta = good_contents
        tensors, meta = loaded
        assert tensors.keys() == want_tensors.keys()
        for name in tensors:
            torch.testing.assert_close(tensors[name], want_tensors[name], rtol=0, atol=0)
        if meta["format_version"] == files.FORMAT_VERSION:  # the checksum covers the metadata
            assert meta == want_meta


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "F64", "I8", "BOOL", "BF16", "C64", "x"]) | JSON,
        "shape": st.lists(st.integers(-2, 2**40), max_size=3) | JSON,
        "data_offsets": st.lists(st.integers(-2, 2**40), min_size=2, max_size=2) | JSON,
    },
)


@PROPERTY
@given(
    entries=st.dictionaries(st.text(max_size=6), ENTRY | JSON, max_size=3),
    meta=st.dictionaries(st.text(max_size=8), JSON, max_size=4) | JSON,
    data=st.binary(max_size=64),
)
def test_random_headers_are_refused(tmp_path, entries, meta, data):
    header = {**entries, "__metadata__": {"fspace": json.dumps(meta)}}
    path = tmp_path / "header.safetensors"
    path.write_bytes(safetensors_bytes(header, data))
    # Its checksum is random (or missing), so it never verifies: every reader refuses it.
    assert read_or_refuse(path) is None


FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "epoch": st.integers(-3, 2**70) | JSON,
        "step": st.integers(-3, 2**70) | JSON,
        "metrics": st.dictionaries(st.text(max_size=8), st.floats() | JSON, max_size=3) | JSON,
        "created": st.floats() | JSON,
        "kind": JSON,
    },
)


@PROPERTY
@given(fields=FIELDS, extra=st.dictionaries(st.text(max_size=8), JSON, max_size=3))
def test_random_metadata_never_breaks_listing(scratch, fields, extra):
    """A checkpoint with random metadata (and a valid checksum) is listed with sane
    values or skipped as a problem naming it; listing never raises."""
    exp_path = scratch
    bad = exp_path / NEW
    tensors, _ = reading.read(exp_path / GOOD)
    bad.write_bytes(lenient_dumps(tensors, {**extra, **fields}))
    try:
        exp = Experiment(exp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpts = exp.checkpoints()
        listed = [c for c in ckpts if c.path == bad]
        if listed:
            (ckpt,) = listed
            assert isinstance(ckpt.epoch, int) and ckpt.epoch >= 0
            assert isinstance(ckpt.step, int) and ckpt.step >= 0
            assert all(isinstance(v, float) for v in ckpt.metrics.values())
            assert exp.load_weights(ckpt).keys() == tensors.keys()
        else:
            assert [p.path for p in exp.problems] == [bad]
            assert str(bad) in exp.problems[0].message
        assert len(ckpts) == N_GOOD + len(listed)
    finally:
        bad.unlink()
