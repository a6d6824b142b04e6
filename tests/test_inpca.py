"""InPCA and classical MDS: known geometries recovered, explained stress by hand, placement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from fspace.embedding import embed
from fspace.embedding.mds import classical_scaling
from fspace.embedding.quality import double_centred
from fspace.vectors import FunctionVectors


def vectors_of(p: np.ndarray, prefix: str = "run") -> FunctionVectors:
    n, m, c = p.shape
    points = pd.DataFrame(
        {"run": prefix, "epoch": np.arange(n), "checkpoint": [f"{prefix}/{i}" for i in range(n)]}
    )
    return FunctionVectors(p.reshape(n, -1), points, "fp", layout=(m, c))


def procrustes_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Largest distance between ``found`` and ``truth`` after the best rotation/reflection."""
    a, b = found - found.mean(0), truth - truth.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    return float(np.abs(a @ (u @ vt) - b).max())


def test_inpca_of_hellinger_recovers_an_arc_of_the_circle_of_square_roots():
    # sqrt(p(t)) = (cos t, sin t, 0): the Hellinger rows sqrt(p)/sqrt(2) lie on a circle
    t = np.linspace(0.1, 1.4, 12)
    p = np.stack([np.cos(t) ** 2, np.sin(t) ** 2, np.zeros_like(t)], axis=1)[:, None, :]
    emb = embed(vectors_of(p), "inpca", distance="hellinger")
    circle = np.stack([np.cos(t), np.sin(t)], axis=1) / np.sqrt(2)
    assert procrustes_error(emb.coords, circle) < 1e-10
    assert emb.quality["explained_stress"] == pytest.approx(1.0, abs=1e-12)
    assert emb.quality["axis_signs"] == [1, 1]


def test_inpca_keeps_a_negative_eigenvalue_and_is_isometric_in_minkowski_space():
    # points (3t, t^2) in 1+1 Minkowski space: squared distance da^2 - db^2 (all > 0 here)
    t = np.linspace(0, 1, 9)
    a, b = 3 * t, t**2
    squared = (a[:, None] - a) ** 2 - (b[:, None] - b) ** 2
    fitted = classical_scaling(np.sqrt(squared), by_magnitude=True)
    x, signs = fitted.coords, np.array(fitted.quality()["axis_signs"])
    assert sorted(signs) == [-1, 1]
    mapped = ((x[:, None, :] - x[None, :, :]) ** 2 * signs).sum(-1)
    np.testing.assert_allclose(mapped, squared, atol=1e-10)
    assert fitted.quality()["explained_stress"] == pytest.approx(1.0)
    # classical MDS drops the negative eigenvalue: its map is one straight line
    mds = classical_scaling(np.sqrt(squared), by_magnitude=False)
    assert mds.values[0] > 0 and abs(mds.values[1]) < 1e-9
    assert np.abs(mds.coords[:, 1]).max() < 1e-6


def bernoulli_products(t: np.ndarray, m: int = 16) -> np.ndarray:
    """m independent coins whose biases move along a known curve theta_i(t)."""
    slopes = np.linspace(-2.0, 3.0, m)
    theta = 1 / (1 + np.exp(-(slopes[None, :] * t[:, None] + np.linspace(-1, 1, m))))
    return np.stack([theta, 1 - theta], axis=-1)


def test_inpca_of_bhattacharyya_on_coins_along_a_curve_matches_a_hand_computation():
    t = np.linspace(-1.5, 1.5, 25)
    p = bernoulli_products(t)
    emb = embed(vectors_of(p), "inpca", distance="bhattacharyya")
    # by hand: intensive Bhattacharyya, double-centred, eigenvalues ranked by |lambda|
    bc = np.einsum("aic,bic->abi", np.sqrt(p), np.sqrt(p))
    d_b = -np.log(np.clip(bc, 1e-12, 1)).mean(-1)
    values = np.linalg.eigvalsh(double_centred(d_b))
    top = values[np.argsort(-np.abs(values))[:2]]
    assert emb.quality["explained_stress"] == pytest.approx(
        np.square(top).sum() / np.square(values).sum(), rel=1e-10
    )
    np.testing.assert_allclose(emb.quality["eigenvalues"], top, rtol=1e-10)
    # the curve is recovered in order along the first axis, and distances are faithful
    assert np.all(np.diff(emb.coords[:, 0]) > 0) or np.all(np.diff(emb.coords[:, 0]) < 0)
    signs = np.array(emb.quality["axis_signs"])
    x = emb.coords
    mapped = ((x[:, None, :] - x[None, :, :]) ** 2 * signs).sum(-1)
    assert np.abs(mapped - d_b).max() < 0.05 * d_b.max()


@pytest.mark.parametrize("method", ["inpca", "mds"])
@pytest.mark.parametrize("distance", ["bhattacharyya", "hellinger", "euclidean"])
def test_placing_checkpoints_already_in_the_map_returns_their_coordinates(method, distance):
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=(15, 6))
    emb = embed(vectors_of(p), method, distance=distance)
    again = vectors_of(p[[3, 7, 11]], prefix="copy")
    placed = emb.transform(again)
    np.testing.assert_allclose(placed.coords[15:], emb.coords[[3, 7, 11]], atol=1e-9)
    np.testing.assert_array_equal(placed.coords[:15], emb.coords)
    assert placed.quality == emb.quality and placed.distance == distance


def test_new_checkpoint_is_placed_by_gowers_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 2)) * [3, 1]  # exactly 2-D: MDS recovers it, and places anew
    new = rng.normal(size=(4, 2))
    fitted = classical_scaling(cdist(x, x), by_magnitude=True)
    both = np.vstack([x, new])
    refit = classical_scaling(cdist(both, both), by_magnitude=True)
    placed = fitted.place(cdist(new, x))
    assert procrustes_error(np.vstack([fitted.coords, placed]), both) < 1e-9
    assert procrustes_error(refit.coords, both) < 1e-9
