"""Distances between checkpoints: each against a direct reference, blockwise = direct."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist, jensenshannon

from fspace.distances import DISTANCES, _kernels, base, cached_pairwise, pairwise, rowwise
from fspace.errors import ConfigError, ProbeMismatchError
from fspace.vectors import FunctionVectors


def distributions(n: int, m: int, c: int, seed: int = 0) -> np.ndarray:
    """Random distributions (n, m, c) with many exact zeros and a few one-hot ones."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(c, 0.7), size=(n, m))
    p[p < 0.08] = 0.0
    p[0, 0] = np.eye(c)[0]
    p[1, 0] = np.eye(c)[1]  # disjoint with row 0 on probe 0: BC = 0
    p /= p.sum(axis=-1, keepdims=True)
    return p


def as_vectors(p: np.ndarray, output: str = "prob", fingerprint: str = "fp") -> FunctionVectors:
    n, m, c = p.shape
    matrix = {"prob": p, "logprob": np.log(np.maximum(p, 1e-300)), "logits": np.log(p + 1e-30)}
    points = pd.DataFrame({"checkpoint": [f"run/{i}" for i in range(n)]})
    return FunctionVectors(
        matrix[output].reshape(n, -1), points, fingerprint, output=output, layout=(m, c)
    )


def reference(name: str, p: np.ndarray, q: np.ndarray) -> float:
    """The direct formula of each distance for one pair (m, c) of predictions."""
    if name == "euclidean":
        return float(np.sqrt(((p - q) ** 2).sum()))
    if name == "hellinger":
        return float(np.sqrt(np.mean(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum(-1))))
    if name == "bhattacharyya":
        bc = np.sqrt(p * q).sum(-1)
        return float(np.mean(-np.log(np.maximum(bc, 1e-12))))
    if name == "jensen_shannon":
        per_probe = np.array([jensenshannon(a, b) ** 2 for a, b in zip(p, q, strict=True)])
        return float(np.sqrt(per_probe.mean()))
    if name == "symmetric_kl":
        lp, lq = np.log(np.maximum(p, 1e-8)), np.log(np.maximum(q, 1e-8))
        return float(np.mean(((p - q) * (lp - lq)).sum(-1)))
    if name == "disagreement":
        return float(np.mean(p.argmax(-1) != q.argmax(-1)))
    raise AssertionError(name)


NAMES = (
    "euclidean",
    "hellinger",
    "bhattacharyya",
    "jensen_shannon",
    "symmetric_kl",
    "disagreement",
)


def test_every_distance_is_registered_with_its_tags():
    assert set(NAMES) <= set(DISTANCES.names())
    for entry in DISTANCES:
        assert entry.label and entry.help
        assert set(entry.tags) >= {"kinds", "metric", "squared"}
    assert DISTANCES.get("euclidean").tags["kinds"] == ("classification", "sequence", "regression")


@pytest.mark.parametrize("name", NAMES)
def test_distance_equals_its_reference_on_distributions_with_zeros(name):
    p = distributions(7, 5, 4, seed=1)
    d = pairwise(as_vectors(p), name)
    expected = np.array([[reference(name, a, b) for b in p] for a in p])
    np.testing.assert_allclose(d, expected, rtol=1e-9, atol=1e-7)
    assert np.array_equal(d, d.T) and not np.diag(d).any()


def test_jensen_shannon_of_one_probe_is_scipys():
    p = distributions(6, 1, 5, seed=2)
    d = pairwise(as_vectors(p), "jensen_shannon")
    np.testing.assert_allclose(d, cdist(p[:, 0], p[:, 0], jensenshannon), atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_blockwise_matrix_equals_the_direct_one(name, monkeypatch):
    p, q = distributions(11, 6, 3, seed=3), distributions(5, 6, 3, seed=4)
    direct_sym = pairwise(as_vectors(p), name)
    direct = pairwise(as_vectors(p), name, other=as_vectors(q))
    monkeypatch.setattr(base, "BLOCK_ROWS", 4)
    monkeypatch.setattr(_kernels, "CHUNK_PROBES", 4)
    np.testing.assert_allclose(pairwise(as_vectors(p), name), direct_sym, rtol=1e-12, atol=1e-12)
    blocked = pairwise(as_vectors(p), name, other=as_vectors(q))
    np.testing.assert_allclose(blocked, direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        direct_sym, pairwise(as_vectors(p), name, other=as_vectors(p)), rtol=1e-9, atol=1e-7
    )
    pairs = rowwise(as_vectors(p[:5]), as_vectors(q), name)
    np.testing.assert_allclose(pairs, np.diag(direct[:5]), rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("output", ["logprob", "logits"])
@pytest.mark.parametrize("name", ["hellinger", "bhattacharyya", "disagreement"])
def test_probability_distances_do_not_depend_on_the_stored_form(name, output):
    p = distributions(6, 4, 3, seed=5)
    p = np.maximum(p, 1e-6)
    p /= p.sum(-1, keepdims=True)
    expected = pairwise(as_vectors(p), name)
    np.testing.assert_allclose(pairwise(as_vectors(p, output), name), expected, atol=1e-6)
    mixed = pairwise(as_vectors(p, output), name, other=as_vectors(p))
    np.testing.assert_allclose(mixed, expected, atol=1e-6)


def test_float32_precision_is_close_to_float64():
    v = as_vectors(distributions(9, 30, 10, seed=6))
    for name in ("euclidean", "hellinger", "bhattacharyya", "symmetric_kl"):
        exact = pairwise(v, name)
        np.testing.assert_allclose(pairwise(v, name, precision="float32"), exact, atol=2e-3)


def test_sequence_outputs_are_compared_per_position():
    p = distributions(4, 6, 3, seed=7)  # 2 probes x 3 positions
    seq = FunctionVectors(
        p.reshape(4, -1), as_vectors(p).points, "fp", kind="sequence", layout=(2, 3, 3)
    )
    np.testing.assert_allclose(
        pairwise(seq, "bhattacharyya"), pairwise(as_vectors(p), "bhattacharyya")
    )


def test_regression_outputs_take_euclidean_only():
    rng = np.random.default_rng(8)
    v = FunctionVectors(
        rng.normal(size=(4, 6)),
        as_vectors(distributions(4, 2, 3)).points,
        "fp",
        kind="regression",
        layout=(6, 1),
    )
    np.testing.assert_allclose(pairwise(v, "euclidean"), cdist(v.matrix, v.matrix), atol=1e-12)
    with pytest.raises(
        ConfigError, match="'hellinger' applies to classification, sequence.*euclidean"
    ):
        pairwise(v, "hellinger")


def test_bad_input_is_refused_with_a_message_naming_it():
    v = as_vectors(distributions(4, 3, 3))
    with pytest.raises(ConfigError, match="unknown distance 'cosine'"):
        pairwise(v, "cosine")
    with pytest.raises(ConfigError, match="floor must be at most 1.0"):
        pairwise(v, "bhattacharyya", floor=2.0)
    with pytest.raises(ConfigError, match="has no parameter 'bogus'"):
        pairwise(v, "hellinger", bogus=1)
    with pytest.raises(ProbeMismatchError, match="fp vs other"):
        pairwise(v, "hellinger", other=as_vectors(distributions(4, 3, 3), fingerprint="other"))
    negative = FunctionVectors(-v.matrix, v.points, "fp", layout=(3, 3))
    with pytest.raises(ConfigError, match="negative probabilities"):
        pairwise(negative, "bhattacharyya")


class FakeCache:
    """The store's cache API (get/put by kind and JSON key), in memory."""

    def __init__(self):
        self.entries = {}

    def get(self, kind, key):
        return self.entries.get((kind, json.dumps(key, sort_keys=True)))

    def put(self, kind, key, array, meta):
        self.entries[(kind, json.dumps(key, sort_keys=True))] = (np.array(array), meta)


def test_cached_matrix_is_keyed_by_distance_params_and_checkpoints():
    exp = SimpleNamespace(cache=FakeCache())
    v = as_vectors(distributions(5, 3, 3))
    first = cached_pairwise(exp, v, "bhattacharyya")
    np.testing.assert_array_equal(first, pairwise(v, "bhattacharyya"))
    (stored,) = [array for array, _ in exp.cache.entries.values()]
    assert cached_pairwise(exp, v, "bhattacharyya") is stored  # read back, not recomputed
    cached_pairwise(exp, v, "bhattacharyya", floor=1e-6)
    cached_pairwise(exp, as_vectors(distributions(4, 3, 3)), "bhattacharyya")
    cached_pairwise(exp, v, "hellinger")
    assert len(exp.cache.entries) == 4
    cached_pairwise(exp, v, "hellinger", cache=False)
    assert len(exp.cache.entries) == 4


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("floor", [1e-100, 1e-60, 1e-19, 1e-12, 0.5])
def test_bhattacharyya_floor_holds_without_underflow(floor, precision):
    # 300 probes: the running products are rescaled many times (every 3 probes in float32)
    p = distributions(6, 300, 3, seed=9)
    p[0], p[1] = np.eye(3)[0], np.eye(3)[1]  # disjoint on every probe: BC = 0
    p[2, :200] = np.eye(3)[2]  # disjoint with row 0 on two thirds of the probes
    d = pairwise(as_vectors(p), "bhattacharyya", floor=floor, precision=precision)
    rtol = 1e-12 if precision == "float64" else 1e-6
    assert d[0, 1] == pytest.approx(-np.log(floor), rel=rtol)
    bc = np.einsum("aic,bic->abi", np.sqrt(p), np.sqrt(p))
    expected = -np.log(np.clip(bc, floor, 1)).mean(-1)
    np.testing.assert_allclose(d, expected, rtol=max(rtol, 1e-10), atol=1e-7)


def test_bhattacharyya_kernel_equals_the_direct_formula_in_both_precisions():
    rng = np.random.default_rng(10)
    p = rng.dirichlet(np.full(10, 0.3), size=(70, 500))
    p[p < 0.02] = 0.0
    p /= p.sum(-1, keepdims=True)
    root = np.sqrt(p)
    bc = np.einsum("aic,bic->abi", root[:70], root[:50])
    expected = np.log(np.maximum(bc, 1e-12)).sum(-1)  # 70 x 50: a partial last tile
    # sums over 500 probes; equal pairs sum to ~0 (a rounding error per probe)
    for dtype, rtol, atol in ((np.float64, 1e-13, 1e-10), (np.float32, 1e-6, 1e-4)):
        sums = _kernels.log_bc_sums(root.astype(dtype), root[:50].astype(dtype), 1e-12)
        np.testing.assert_allclose(sums, expected, rtol=rtol, atol=atol)


def test_simd_width_follows_numbas_target(monkeypatch):
    import numba

    from fspace.distances import _simd

    host = _simd.vector_bits()
    assert host in (128, 256, 512)
    targets = {"+avx,+avx2,-avx512f": 256, "+avx,+avx2,+avx512f": 512, "+sse4.2,-avx": 128}
    try:
        for features, bits in targets.items():
            monkeypatch.setattr(numba.config, "CPU_FEATURES", features)
            _simd.vector_bits.cache_clear()
            assert _simd.vector_bits() == bits
            assert _kernels.tile_width(np.float32) == 2 * bits // 32
    finally:
        _simd.vector_bits.cache_clear()
    monkeypatch.undo()
    assert _simd.vector_bits() == host


def test_bhattacharyya_upper_triangle_and_threads_give_the_same_matrix():
    import numba

    root = np.sqrt(distributions(70, 40, 10, seed=11))
    full = _kernels.log_bc_sums(root, root.copy(), 1e-12)
    upper = _kernels.log_bc_sums(root, root, 1e-12, upper=True)
    np.testing.assert_array_equal(upper, full)  # same products in the same order
    assert np.array_equal(upper, upper.T)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = _kernels.log_bc_sums(root, root, 1e-12, upper=True)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one_thread, upper)


def test_cached_matrix_round_trips_through_the_experiment_store(tmp_path):
    from fspace.store import Experiment

    exp = Experiment.create(tmp_path / "exp")
    v = as_vectors(distributions(6, 3, 3))
    first = cached_pairwise(exp, v, "bhattacharyya")
    again = cached_pairwise(exp, v, "bhattacharyya")
    np.testing.assert_array_equal(again, first)
    assert not again.flags.writeable  # read back from the memory-mapped cache
    assert len(exp.cache.entries("distances")) == 1
