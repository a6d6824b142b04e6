"""Bootstrap intervals over runs and permutation tests of group labels, vectorised.

A statistic here is a function of *weights* and *group codes* of runs, both of shape
``(B, n_runs)``, returning ``(B,)`` values. The weight of a run is how many times it is
drawn: all ones for the data as recorded, a multinomial draw for a bootstrap resample,
a zero for the run a jackknife leaves out. Writing every statistic this way lets one
call evaluate thousands of resamples or permutations with matrix products, and makes
"resample runs, not checkpoints" hold by construction: a run's checkpoints always come
and go together. Copies of one run drawn twice count as one run (their zero distance
to each other is never a pair), as leave-one-run-out demands.

Example::

    stat = lambda w, c: ...                         # (B, n) weights, (B, n) codes -> (B,)
    rng = np.random.default_rng(0)
    low, high = bca_interval(stat, codes, n_boot=999, level=0.95, rng=rng)
    p, null_mean = permutation_test(stat, codes, n_perm=999, rng=rng)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fspace.errors import ConfigError

Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``statistic(weights, codes) -> values``: ``(B, n_runs)`` arrays in, ``(B,)`` out."""

# Resamples evaluated per call, so memory stays bounded whatever n_boot is.
BATCH = 256


def apply_statistic(statistic: Statistic, weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``statistic`` over rows of ``weights`` and ``codes`` (either may have one row,
    broadcast to the other), ``BATCH`` rows at a time."""
    b = max(len(weights), len(codes))
    out = np.empty(b)
    for start in range(0, b, BATCH):
        stop = min(start + BATCH, b)
        w = weights[start:stop] if len(weights) > 1 else weights
        c = codes[start:stop] if len(codes) > 1 else codes
        shape = (stop - start, max(w.shape[1], c.shape[1]))
        out[start:stop] = statistic(np.broadcast_to(w, shape), np.broadcast_to(c, shape))
    return out


def stratified_weights(codes: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` bootstrap resamples of runs as weights ``(n_boot, n_runs)``.

    Runs are drawn with replacement within each group, so every resample keeps the
    group sizes of the data (a stratified bootstrap).
    """
    n = len(codes)
    weights = np.zeros(n_boot * n)
    rows = np.arange(n_boot)[:, None] * n
    for g in np.unique(codes):
        members = np.flatnonzero(codes == g)
        picks = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        weights += np.bincount((rows + picks).ravel(), minlength=n_boot * n)
    return weights.reshape(n_boot, n)


def bca_interval(
    statistic: Statistic,
    codes: np.ndarray,
    *,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval of ``statistic`` over runs.

    Runs are resampled within groups (:func:`stratified_weights`); the acceleration
    comes from the leave-one-run-out jackknife (Efron and Tibshirani 1993, ch. 14).
    Where the bias correction is undefined (every resample on one side of the
    estimate), the plain percentile interval is returned; NaN if no resample gives a
    finite value.
    """
    from scipy.special import ndtr, ndtri

    _check_sizes(n_boot, level)
    codes = np.asarray(codes)
    n = len(codes)
    theta = apply_statistic(statistic, np.ones((1, n)), codes[None])[0]
    boot = apply_statistic(statistic, stratified_weights(codes, n_boot, rng), codes[None])
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0 or not np.isfinite(theta):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    quantiles = np.array([alpha, 1.0 - alpha])
    below = np.mean(boot < theta) + 0.5 * np.mean(boot == theta)
    if not 0.0 < below < 1.0:
        low, high = np.quantile(boot, quantiles)
        return float(low), float(high)
    z0 = ndtri(below)
    jack = apply_statistic(statistic, 1.0 - np.eye(n), codes[None])
    jack = jack[np.isfinite(jack)]  # leaving out a group's last pair can leave nothing
    u = jack.mean() - jack if len(jack) else jack
    spread = float(np.sum(u**2))
    accel = float(np.sum(u**3)) / (6.0 * spread**1.5) if spread > 0 else 0.0
    z = ndtri(quantiles)
    adjusted = ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    low, high = np.quantile(boot, adjusted)
    return float(low), float(high)


def permutation_test(
    statistic: Statistic,
    codes: np.ndarray,
    *,
    n_perm: int,
    rng: np.random.Generator,
    alternative: str = "greater",
) -> tuple[float, float]:
    """Permutation p-value of ``statistic`` and the mean of its permutation distribution.

    Group labels are shuffled across runs ``n_perm`` times;
    ``p = (1 + #{permuted >= observed}) / (1 + n_perm)`` for ``alternative="greater"``,
    with absolute values for ``"two-sided"``. Under the null hypothesis that the labels
    do not matter, ``p`` is uniform on its grid (conservative where the statistic ties).
    """
    if alternative not in ("greater", "two-sided"):
        raise ConfigError(f"alternative must be 'greater' or 'two-sided', got {alternative!r}")
    _check_sizes(n_perm, 0.5)
    codes = np.asarray(codes)
    n = len(codes)
    observed = apply_statistic(statistic, np.ones((1, n)), codes[None])[0]
    shuffled = rng.permuted(np.broadcast_to(codes, (n_perm, n)), axis=1)
    null = apply_statistic(statistic, np.ones((1, n)), shuffled)
    null_mean = float(np.mean(null[np.isfinite(null)])) if np.isfinite(null).any() else np.nan
    if not np.isfinite(observed):
        return float("nan"), null_mean
    if alternative == "two-sided":
        observed, null_abs = abs(observed), np.abs(null)
    else:
        null_abs = null
    # Relabellings that give the same partition must tie with the data despite rounding.
    tol = 1e-9 * max(1.0, abs(observed))
    hits = int(np.sum(null_abs >= observed - tol))
    return (1 + hits) / (1 + n_perm), null_mean


def _check_sizes(n: int, level: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"the number of resamples must be a positive int, got {n!r}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"the confidence level must lie between 0 and 1, got {level!r}")
