"""The distorted-digit stream: determinism, geometry of the warp, closeness to the originals."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from scipy import ndimage

from fspace.data import Digits, DistortedDigits, DistortionParams, load_sklearn_digits
from fspace.data.distort import _smooth, distort, draw_randomness, warp
from fspace.errors import ConfigError

NONE = DistortionParams(alpha=0, max_rotation=0, max_scale=0, max_shear=0, max_translation=0)


def _toy_digits(n: int = 40, shape=(12, 12)) -> Digits:
    """Random blobs in [0, 1] about as smooth, relative to their size, as digits."""
    rng = np.random.default_rng(0)
    blur = min(shape) / 8
    images = ndimage.gaussian_filter(rng.random((n, *shape)), sigma=(0, blur, blur))
    images = (images - images.min()) / (images.max() - images.min())
    return Digits(
        images.reshape(n, -1).astype(np.float32),
        np.arange(n, dtype=np.int64) % 4,
        shape,
        "toy",
    )


def _real_digits(shape, n: int = 60) -> Digits:
    """The first ``n`` scikit-learn digits, resampled to ``shape``."""
    digits = load_sklearn_digits()
    small = torch.tensor(digits.images[:n]).reshape(n, 1, 8, 8)
    images = torch.nn.functional.interpolate(small, size=shape, mode="bilinear")
    return Digits(images.reshape(n, -1).clamp(0, 1).numpy(), digits.labels[:n], shape, "real")


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


def test_stream_is_deterministic_per_seed():
    digits = _toy_digits()
    x0, y0 = DistortedDigits(digits, seed=0).batch(1, 0, 16)
    x1, y1 = DistortedDigits(digits, seed=0).batch(1, 0, 16)
    torch.testing.assert_close(x0, x1, rtol=0, atol=0)
    assert torch.equal(y0, y1)
    x2, _ = DistortedDigits(digits, seed=1).batch(1, 0, 16)
    assert not torch.allclose(x0, x2)


def test_item_does_not_depend_on_batching():
    stream = DistortedDigits(_toy_digits(), seed=5)
    whole, labels = stream.batch(2, 0, 40)
    pieces = torch.cat([x for x, _ in stream.epoch(2, batch_size=7)])
    torch.testing.assert_close(whole, pieces, rtol=0, atol=0)
    single, label = stream.items([2 * 40 + 13])
    torch.testing.assert_close(single[0], whole[13], rtol=0, atol=0)
    assert label[0] == labels[13]


def test_epoch_visits_every_digit_once_with_its_label():
    digits = _toy_digits()
    stream = DistortedDigits(digits, seed=2, **asdict(NONE))
    x, y = stream.batch(3, 0, len(digits))
    order = stream.permutation(3)
    assert sorted(order) == list(range(len(digits)))
    np.testing.assert_array_equal(y.numpy(), digits.labels[order])
    # With every distortion switched off, the stream returns the digits themselves.
    np.testing.assert_allclose(x.numpy(), digits.images[order], atol=1e-5)
    assert not np.array_equal(order, stream.permutation(4))


@pytest.mark.parametrize("shape", [(12, 12), (28, 28), (8, 8), (10, 14)], ids=str)
def test_distort_keeps_shape_range_and_likeness(shape):
    digits = _real_digits(shape)
    stream = DistortedDigits(digits, seed=0)
    x, _ = stream.batch(0, 0, len(digits))
    base = torch.tensor(digits.images[stream.permutation(0)])
    assert x.shape == base.shape and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    own = _correlation(x, base)
    other = _correlation(x, base.roll(1, dims=0))
    assert own.mean() > 0.75 and own.min() > 0.4
    assert own.mean() > other.mean() + 0.25
    assert (x - base).abs().mean() > 1e-3  # it did change the images


def test_real_digits_stay_recognisable():
    digits = load_sklearn_digits()
    x, y = DistortedDigits(digits, seed=0).items(np.arange(300))
    order = DistortedDigits(digits, seed=0).permutation(0)[:300]
    own = _correlation(x, torch.tensor(digits.images[order]))
    assert own.mean() > 0.75 and np.quantile(own.numpy(), 0.05) > 0.5
    np.testing.assert_array_equal(y.numpy(), digits.labels[order])


def test_take_returns_digits():
    digits = _toy_digits()
    taken = DistortedDigits(digits, seed=0).take(35, 10)  # crosses into epoch 1
    assert len(taken) == 10 and taken.image_shape == digits.image_shape
    assert taken.images.dtype == np.float32 and taken.name == "toy-distorted"


def test_distort_pure_function():
    images = torch.tensor(_toy_digits().images)
    first = distort(images, torch.Generator().manual_seed(0), image_shape=(12, 12))
    again = distort(images, torch.Generator().manual_seed(0), image_shape=(12, 12))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    cube = distort(images.reshape(-1, 12, 12), torch.Generator().manual_seed(0))
    torch.testing.assert_close(cube.reshape(first.shape), first)
    with pytest.raises(ConfigError, match="image_shape"):
        distort(images, torch.Generator())


def _warp_one(image: np.ndarray, uniforms: list[float], params: DistortionParams) -> np.ndarray:
    r = params.field_radius()
    noise = torch.zeros(1, 2, image.shape[0] + 2 * r, image.shape[1] + 2 * r)
    out = warp(torch.tensor(image[None]), noise, torch.tensor([uniforms]), params)
    return out[0].numpy()


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(3).random((9, 9)).astype(np.float32)


def test_warp_identity(image):
    np.testing.assert_allclose(
        _warp_one(image, [0.3, -0.2, 0.5, 0.1, -0.9], NONE), image, atol=1e-6
    )


def test_warp_translation_is_a_pixel_shift(image):
    params = DistortionParams(alpha=0, max_translation=1.0)
    shifted = _warp_one(image, [0, 0, 0, 1, 0], params)
    # Output pixel x samples input pixel x + 1; the last column falls outside.
    expected = np.zeros_like(image)
    expected[:, :-1] = image[:, 1:]
    np.testing.assert_allclose(shifted, expected, atol=1e-6)


def test_warp_quarter_turn_is_rot90(image):
    params = DistortionParams(alpha=0, max_rotation=90, max_translation=0)
    turned = _warp_one(image, [1, 0, 0, 0, 0], params)
    np.testing.assert_allclose(turned, np.rot90(image, k=1), atol=1e-5)


def test_smoothing_matches_scipy_gaussian():
    noise = draw_randomness(2, (8, 8), DistortionParams(sigma=1.5), torch.Generator())[0]
    r = DistortionParams(sigma=1.5).field_radius()
    ours = _smooth(noise, 1.5, r)
    reference = ndimage.gaussian_filter(noise.numpy(), sigma=(0, 0, 1.5, 1.5), truncate=r / 1.5)
    np.testing.assert_allclose(ours.numpy(), reference[:, :, r:-r, r:-r], atol=1e-5)


def test_params_scale_with_image_size():
    small = DistortionParams.for_shape((14, 14))
    assert small.sigma == pytest.approx(DistortionParams().sigma / 2)
    assert small.alpha == pytest.approx(DistortionParams().alpha / 4)
    assert small.max_rotation == DistortionParams().max_rotation
    assert DistortionParams.for_shape((8, 8), alpha=1.0).alpha == 1.0


@pytest.mark.parametrize(
    "overrides,message",
    [({"alpha": -1.0}, "alpha"), ({"max_scale": 1.5}, "max_scale"), ({"warp": 2.0}, "warp")],
    ids=["negative", "scale-too-big", "unknown"],
)
def test_bad_params(overrides, message):
    with pytest.raises(ConfigError, match=message):
        DistortedDigits(_toy_digits(), **overrides)


def test_batch_outside_epoch():
    with pytest.raises(ConfigError, match="outside an epoch of 40"):
        DistortedDigits(_toy_digits()).batch(0, 4, 10)
