"""An endless, reproducible stream of distorted digits, in the spirit of InfiniteMNIST.

Each distorted image is a small random affine transform (rotation, scale, shear,
translation) plus an elastic deformation (Simard et al. 2003: a field of uniform
random displacements in [-1, 1], smoothed by a Gaussian of std ``sigma`` and scaled
by ``alpha``), applied with bilinear resampling. Everything is batched in torch.

>>> stream = DistortedDigits(load_mnist5k(), seed=0)  # doctest: +SKIP
>>> for x, y in stream.epoch(0, batch_size=100): ...  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from fspace.data.base import Digits
from fspace.errors import ConfigError

_N_AFFINE = 5  # rotation, scale, shear, x shift, y shift: one uniform draw each


@dataclass(frozen=True)
class DistortionParams:
    """Strength of the distortions, in pixels of the image they are applied to.

    The defaults suit 28x28 digits; :meth:`for_shape` rescales them to other sizes.
    """

    alpha: float = 24.0
    """Scale of the elastic displacement field (before smoothing)."""
    sigma: float = 4.0
    """Std of the Gaussian that smooths the displacement field, in pixels."""
    max_rotation: float = 10.0
    """Largest rotation, in degrees."""
    max_scale: float = 0.1
    """Largest relative change of size."""
    max_shear: float = 0.15
    """Largest shear factor."""
    max_translation: float = 1.0
    """Largest shift along each axis, in pixels."""

    def __post_init__(self) -> None:
        for field in fields(self):
            if not getattr(self, field.name) >= 0:
                raise ConfigError(f"{field.name} must be >= 0, got {getattr(self, field.name)}")
        if self.max_scale >= 1:
            raise ConfigError(f"max_scale must be below 1, got {self.max_scale}")

    @classmethod
    def for_shape(cls, image_shape: Sequence[int], **overrides: float) -> DistortionParams:
        """Return the 28x28 defaults rescaled to ``image_shape``, then ``overrides``.

        Lengths scale with the image side ``s / 28``; ``alpha`` scales with its square
        because the smoothed displacement is proportional to ``alpha / sigma``.
        """
        s = min(image_shape) / 28.0
        base = cls()
        scaled = cls(
            alpha=base.alpha * s * s,
            sigma=base.sigma * s,
            max_rotation=base.max_rotation,
            max_scale=base.max_scale,
            max_shear=base.max_shear,
            max_translation=base.max_translation * s,
        )
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(
                f"unknown distortion parameter(s) {sorted(unknown)}; "
                f"choose from {[f.name for f in fields(cls)]}"
            )
        return replace(scaled, **overrides)

    def field_radius(self) -> int:
        """Half-width of the smoothing kernel, in pixels."""
        return max(1, math.ceil(3 * self.sigma))


def draw_randomness(
    n: int, image_shape: Sequence[int], params: DistortionParams, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the raw randomness of ``n`` distortions: (noise fields, affine uniforms).

    Noise is uniform in [-1, 1] of shape ``(n, 2, h + 2r, w + 2r)`` (``r`` the kernel
    radius, so that smoothing needs no padding); affine uniforms are in [-1, 1] of
    shape ``(n, 5)``.
    """
    h, w = image_shape
    r = params.field_radius()
    noise = torch.rand(n, 2, h + 2 * r, w + 2 * r, generator=generator) * 2 - 1
    uniforms = torch.rand(n, _N_AFFINE, generator=generator) * 2 - 1
    return noise, uniforms


def warp(
    images: torch.Tensor, noise: torch.Tensor, uniforms: torch.Tensor, params: DistortionParams
) -> torch.Tensor:
    """Distort ``images`` ``(n, h, w)`` with given randomness (see :func:`draw_randomness`)."""
    n, h, w = images.shape
    radius = params.field_radius()
    displacement = params.alpha * _smooth(noise.to(images), params.sigma, radius)  # (n, 2, h, w)
    u = uniforms.to(images)
    angle = u[:, 0] * math.radians(params.max_rotation)
    scale = 1 + u[:, 1] * params.max_scale
    shear = u[:, 2] * params.max_shear
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Output pixel p samples the input at A p + t + d(p), in pixels from the centre.
    ys = torch.arange(h, dtype=images.dtype, device=images.device) - (h - 1) / 2
    xs = torch.arange(w, dtype=images.dtype, device=images.device) - (w - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    gx, gy = gx + shear.view(n, 1, 1) * gy, gy.expand(n, h, w)
    src_x = cos.view(n, 1, 1) * gx - sin.view(n, 1, 1) * gy
    src_y = sin.view(n, 1, 1) * gx + cos.view(n, 1, 1) * gy
    src_x = src_x + (u[:, 3] * params.max_translation).view(n, 1, 1) + displacement[:, 0]
    src_y = src_y + (u[:, 4] * params.max_translation).view(n, 1, 1) + displacement[:, 1]
    # grid_sample with align_corners=False maps pixel centre c (from the middle) to 2c/size.
    grid = torch.stack((2 * src_x / w, 2 * src_y / h), dim=-1)
    out = F.grid_sample(
        images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out.squeeze(1).clamp_(0.0, 1.0)


def _smooth(noise: torch.Tensor, sigma: float, r: int) -> torch.Tensor:
    """Convolve each field with a normalised Gaussian of radius ``r``, without padding.

    The separable convolution is written as two banded matrix products, which is
    several times faster than ``conv2d`` for these small single-channel images.
    """
    hp, wp = noise.shape[-2:]
    return _band(hp, r, sigma, noise) @ noise @ _band(wp, r, sigma, noise).T


def _band(size: int, r: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """Matrix ``(size - 2r, size)`` whose row ``i`` is the Gaussian kernel centred on ``i + r``."""
    taps = torch.arange(-r, r + 1, dtype=like.dtype, device=like.device)
    kernel = torch.exp(-0.5 * (taps / max(sigma, 1e-6)) ** 2)
    kernel = kernel / kernel.sum()
    offset = (
        torch.arange(size, device=like.device)
        - torch.arange(size - 2 * r, device=like.device)[:, None]
    )
    inside = (offset >= 0) & (offset <= 2 * r)
    band = torch.where(inside, kernel[offset.clamp(0, 2 * r)], 0.0)
    return band


def distort(
    images: torch.Tensor,
    generator: torch.Generator,
    image_shape: Sequence[int] | None = None,
    params: DistortionParams | None = None,
) -> torch.Tensor:
    """Return randomly distorted copies of ``images``, same shape, values in [0, 1].

    ``images`` is ``(n, h, w)``, or ``(n, h * w)`` with ``image_shape=(h, w)``. The
    randomness comes only from ``generator``; ``params`` defaults to
    ``DistortionParams.for_shape(image_shape)``.
    """
    flat = images.dim() == 2
    if flat and image_shape is None:
        raise ConfigError(f"flat images of shape {tuple(images.shape)} need image_shape=(h, w)")
    if images.dim() not in (2, 3):
        raise ConfigError(f"images must be (n, h, w) or (n, h*w), got {tuple(images.shape)}")
    shape = tuple(image_shape) if flat else tuple(images.shape[1:])
    params = params or DistortionParams.for_shape(shape)
    noise, uniforms = draw_randomness(images.shape[0], shape, params, generator)
    out = warp(images.reshape(-1, *shape).float(), noise, uniforms, params)
    return out.reshape(images.shape)


class DistortedDigits:
    """An endless stream of distorted ``digits``; item ``i`` depends only on (seed, i).

    Epoch ``e`` covers stream items ``e * n .. (e + 1) * n - 1``: each base digit once,
    in an order drawn from (seed, e), each with its own distortion drawn from
    (seed, i). Keyword arguments override :class:`DistortionParams` (given in pixels of
    these images).
    """

    def __init__(self, digits: Digits, seed: int = 0, **params: float) -> None:
        self.digits = digits
        self.seed = int(seed)
        self.params = DistortionParams.for_shape(digits.image_shape, **params)
        self._images = torch.tensor(digits.images).reshape(-1, *digits.image_shape)
        self._labels = torch.tensor(digits.labels)
        self._generator = torch.Generator()

    def __len__(self) -> int:
        return len(self.digits)

    def permutation(self, epoch: int) -> np.ndarray:
        """Order in which epoch ``epoch`` visits the base digits."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.digits))

    def items(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return stream items ``indices`` as flat images ``(b, h*w)`` and labels ``(b,)``."""
        indices = np.asarray(indices, dtype=np.int64)
        n = len(self.digits)
        base = np.empty_like(indices)
        for epoch in np.unique(indices // n):
            here = indices // n == epoch
            base[here] = self.permutation(int(epoch))[indices[here] % n]
        noise, uniforms = self._draw(indices)
        x = warp(self._images[torch.from_numpy(base)], noise, uniforms, self.params)
        return x.reshape(len(indices), -1), self._labels[torch.from_numpy(base)]

    def _draw(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        # One reseed per item is what makes item i independent of batching.
        keys = [
            np.random.SeedSequence([self.seed, int(i)]).generate_state(1, np.uint64)[0]
            for i in indices
        ]
        draws = []
        for key in keys:
            self._generator.manual_seed(int(key))
            draws.append(draw_randomness(1, self.digits.image_shape, self.params, self._generator))
        return torch.cat([d[0] for d in draws]), torch.cat([d[1] for d in draws])

    def batch(
        self, epoch: int, batch_index: int, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return batch ``batch_index`` of epoch ``epoch`` (the last batch may be short)."""
        n = len(self.digits)
        start = batch_index * batch_size
        if batch_size < 1 or not 0 <= start < n:
            raise ConfigError(
                f"batch {batch_index} of size {batch_size} is outside an epoch of {n} digits"
            )
        stop = min(start + batch_size, n)
        return self.items(np.arange(epoch * n + start, epoch * n + stop))

    def epoch(self, epoch: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches ``(x, y)`` of one epoch."""
        for batch_index in range(math.ceil(len(self.digits) / batch_size)):
            yield self.batch(epoch, batch_index, batch_size)

    def take(self, start: int, count: int) -> Digits:
        """Return stream items ``start .. start + count - 1`` as ``Digits``."""
        x, y = self.items(np.arange(start, start + count))
        return Digits(
            x.numpy(), y.numpy(), self.digits.image_shape, f"{self.digits.name}-distorted"
        )
