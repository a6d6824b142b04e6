"""Bootstrap intervals cover the true separation; permutation p-values are uniform under
the null; resamples move whole runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from fspace.errors import ConfigError
from fspace.stats.resampling import (
    apply_statistic,
    bca_interval,
    permutation_test,
    stratified_weights,
)
from fspace.stats.separation import (
    distances_to_runs,
    nearest_run_statistic,
    ratio_statistic,
    silhouette_statistic,
)

LEVEL = 0.95


def sq_distances(x: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)


def two_groups(rng, n: int, shift: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((2 * n, dim))
    x[n:, 0] += shift
    return x, np.repeat([0, 1], n)


def true_values(shift: float, dim: int) -> dict[str, float]:
    """Population values of the two statistics for N(0, I) against N(shift e1, I) under
    squared Euclidean distance, where the mean distances have closed forms."""
    # E|X - X'|^2 = 2 dim within a group, 2 dim + shift^2 between groups.
    ratio = (2 * dim + shift**2) / (2 * dim)
    # A point x's mean distance to a group centred at m is |x - m|^2 + dim.
    x = np.random.default_rng(123).standard_normal((1_000_000, dim))
    a = (x**2).sum(1) + dim
    b = a - 2 * shift * x[:, 0] + shift**2
    silhouette = float(np.mean((b - a) / np.maximum(a, b)))
    return {"ratio": ratio, "silhouette": silhouette}


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_true_separation_at_the_stated_rate():
    rng = np.random.default_rng(0)
    n, dim, shift, reps = 10, 5, 2.0, 200
    truth = true_values(shift, dim)
    levels = (LEVEL, 0.8)  # a second level: the interval must follow the level asked for
    covered = dict.fromkeys([(s, lv) for s in truth for lv in levels], 0)
    for _ in range(reps):
        x, codes = two_groups(rng, n, shift, dim)
        r = sq_distances(x)
        for name, make in (("ratio", ratio_statistic), ("silhouette", silhouette_statistic)):
            for level in levels:
                low, high = bca_interval(make(r, 2), codes, n_boot=499, level=level, rng=rng)
                covered[name, level] += low <= truth[name] <= high
    # Coverage within 3 binomial standard errors of the stated level.
    for (name, level), hits in covered.items():
        tolerance = 3 * np.sqrt(level * (1 - level) / reps)
        assert abs(hits / reps - level) <= tolerance, (name, level, hits / reps)


def null_pvalues(statistic_of, reps: int, rng) -> np.ndarray:
    out = np.empty(reps)
    for i in range(reps):
        x, codes = two_groups(rng, 8, 0.0, 3)
        p, _ = permutation_test(statistic_of(x, codes), codes, n_perm=199, rng=rng)
        out[i] = p
    return out


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda x, c: ratio_statistic(sq_distances(x), 2), id="ratio"),
        pytest.param(
            lambda x, c: silhouette_statistic(np.sqrt(sq_distances(x)), 2), id="silhouette"
        ),
    ],
)
def test_permutation_pvalues_are_uniform_under_the_null(make):
    p = null_pvalues(make, 400, np.random.default_rng(1))
    # p lives on the grid k/200; against the continuous uniform that is a 0.005 offset,
    # far below what the KS test at 400 samples can see.
    assert sps.kstest(p, "uniform").pvalue > 0.001
    assert abs(np.mean(p <= 0.05) - 0.05) <= 3 * np.sqrt(0.05 * 0.95 / 400)


def test_nearest_neighbour_pvalues_are_valid_under_the_null():
    """1-NN accuracy takes few values, so its p-values tie: conservative, never liberal."""

    def make(x, codes):
        # three checkpoints per run: a run's points stay near its own centre
        pts = np.repeat(x, 3, axis=0) + 0.3 * np.random.default_rng(0).normal(size=(48, 3))
        run_of = np.repeat(np.arange(16), 3)
        d = np.sqrt(sq_distances(pts))
        return nearest_run_statistic(distances_to_runs(d, run_of, 16), run_of)

    p = null_pvalues(make, 300, np.random.default_rng(2))
    se = 3 * np.sqrt(0.25 / 300)
    for alpha in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p <= alpha) <= alpha + se


def test_stratified_weights_draw_whole_runs_within_groups():
    codes = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    w = stratified_weights(codes, 500, np.random.default_rng(0))
    assert w.shape == (500, 9)
    np.testing.assert_array_equal(w[:, codes == 0].sum(1), 3)
    np.testing.assert_array_equal(w[:, codes == 2].sum(1), 4)
    assert np.all(w == np.round(w)) and w.max() > 1


def test_a_run_drawn_twice_does_not_pair_with_its_copy():
    """Weight 2 on a run equals duplicating it, with the copy's pairs left out."""
    rng = np.random.default_rng(3)
    x, codes = two_groups(rng, 4, 1.0, 2)
    r = np.sqrt(sq_distances(x))
    w = np.ones(8)
    w[1] = 2
    weighted = ratio_statistic(r, 2)(w[None], codes[None])[0]
    dup = np.r_[np.arange(8), 1]
    rd, cd = r[np.ix_(dup, dup)], codes[dup]
    same_run = dup[:, None] == dup[None, :]
    within = (cd[:, None] == cd[None, :]) & ~same_run
    between = cd[:, None] != cd[None, :]
    assert weighted == pytest.approx(rd[between].mean() / rd[within].mean())


def test_interval_and_test_are_seeded():
    x, codes = two_groups(np.random.default_rng(4), 6, 1.0, 3)
    stat = ratio_statistic(sq_distances(x), 2)
    a = bca_interval(stat, codes, n_boot=99, level=0.9, rng=np.random.default_rng(9))
    b = bca_interval(stat, codes, n_boot=99, level=0.9, rng=np.random.default_rng(9))
    assert a == b
    value = apply_statistic(stat, np.ones((1, 12)), codes[None])[0]
    assert a[0] <= value <= a[1]


def test_bad_sizes_are_refused():
    stat = ratio_statistic(np.zeros((4, 4)), 2)
    codes = np.array([0, 0, 1, 1])
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="positive int"):
        bca_interval(stat, codes, n_boot=0, level=0.95, rng=rng)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        bca_interval(stat, codes, n_boot=10, level=95, rng=rng)
    with pytest.raises(ConfigError, match="alternative"):
        permutation_test(stat, codes, n_perm=10, rng=rng, alternative="less")
