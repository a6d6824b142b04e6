"""Denoising with the joint model: the blending schedule, the inference steps against a
hand computation, the structured noise, the report and its figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax

from fspace.errors import ConfigError
from fspace.experiments.generative.analysis import denoise_report
from fspace.experiments.generative.figures import denoise_figure, denoise_summary_figure
from fspace.models.dbn import make_dbn
from fspace.training.denoise import NOISE_KINDS, blend_schedule, corrupt, denoise


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: torch's thread pool costs more than it saves. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_dbn(hidden=(6,), n_in=9, n_top=5, n_classes=3, seed=0):
    model = make_dbn(n_in, list(hidden), n_top, n_classes, seed=seed).double()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def _images(n=4, d=9, seed=0):
    return np.random.default_rng(seed).random((n, d))


@pytest.mark.parametrize(
    ("steps", "final"),
    [(1, 0.0), (2, 0.0), (6, 0.0), (5, 0.3), (4, 1.0)],
    ids=["one-step", "two-steps", "six-steps", "partial", "all-bottom-up"],
)
def test_shares_sum_to_one_at_every_step_and_move_towards_top_down(steps, final):
    result = denoise(_random_dbn(), _images(), steps=steps, final_share=final)
    np.testing.assert_allclose(result.bottom_up + result.top_down, 1.0)
    assert result.bottom_up[0] == 1.0  # the first step is a plain recognition pass
    assert np.all(np.diff(result.bottom_up) <= 0)
    assert result.bottom_up[-1] == pytest.approx(final if steps > 1 else 1.0)
    assert result.images.shape == (steps, 4, 9) and result.labels.shape == (steps, 4)


def _reference(model, x: np.ndarray, shares) -> tuple[list, list]:
    """The blended inference of a one-hidden-layer model, written out in numpy."""
    R, c = (t.detach().numpy() for t in (model.recognition[0].weight, model.recognition[0].bias))
    G, b = (t.detach().numpy() for t in (model.generative[0].weight, model.generative[0].bias))
    top = model.top
    W, U, ct, bt, a = (
        t.detach().numpy()
        for t in (top.weight, top.label_weight, top.hbias, top.vbias, top.label_bias)
    )
    t_state = np.zeros((len(x), W.shape[1]))
    images, labels = [], []
    for alpha in shares:
        h = expit(alpha * (x @ R.T + c) + (1 - alpha) * (bt + t_state @ W.T))
        free = np.stack(
            [-(h @ bt) - a[y] - np.logaddexp(0, ct + h @ W + U[y]).sum(1) for y in range(len(a))],
            axis=1,
        )
        q = softmax(-free, axis=1)
        t_state = expit(ct + h @ W + q @ U)
        images.append(expit(h @ G.T + b))
        labels.append(q.argmax(1))
    return images, labels


def test_each_step_matches_a_hand_computation():
    model, x = _random_dbn(), _images()
    result = denoise(model, x, steps=4, final_share=0.0)
    images, labels = _reference(model, x, blend_schedule(4))
    np.testing.assert_allclose(result.images, np.stack(images), rtol=1e-10)
    np.testing.assert_array_equal(result.labels, np.stack(labels))


def test_the_first_step_is_the_plain_classifier_and_reconstruction():
    model = _random_dbn(hidden=(6, 4))
    x = torch.tensor(_images())
    result = denoise(model, x, steps=3)
    np.testing.assert_array_equal(result.labels[0], model(x).argmax(1).numpy())
    first = torch.sigmoid(model.generative[0](model.up(x)[0])).detach().numpy()
    np.testing.assert_allclose(result.images[0], first, rtol=1e-10)


def test_without_top_down_share_nothing_changes():
    result = denoise(_random_dbn(hidden=(6, 4)), _images(), steps=4, final_share=1.0)
    for step in range(1, 4):
        np.testing.assert_allclose(result.images[step], result.images[0])


@pytest.mark.parametrize(("steps", "final"), [(0, 0.0), (3, 1.5), (True, 0.0)])
def test_bad_schedules_are_refused(steps, final):
    with pytest.raises(ConfigError):
        blend_schedule(steps, final)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_noise_only_adds_ink_and_depends_only_on_the_seed(kind):
    x = np.random.default_rng(0).random((6, 64)).astype(np.float32) * 0.5
    labels = np.arange(6) % 3
    a = corrupt(x, kind, image_shape=(8, 8), seed=1, labels=labels)
    b = corrupt(x, kind, image_shape=(8, 8), seed=1, labels=labels)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and np.all(a >= x) and np.all(a <= 1)
    assert np.all((a > x).any(axis=1))  # every image got some noise
    assert not np.array_equal(a, corrupt(x, kind, image_shape=(8, 8), seed=2, labels=labels))


def test_bars_are_full_rows_or_columns():
    noisy = corrupt(np.zeros((20, 28 * 28)), "bars", image_shape=(28, 28), seed=0)
    for image in noisy.reshape(-1, 28, 28):
        lines = (image == 1).all(axis=1).sum() + (image == 1).all(axis=0).sum()
        assert lines >= 2


def test_overlay_adds_a_digit_of_another_label():
    x = np.eye(4, 16, dtype=np.float32)  # image i has one pixel on, at i
    labels = np.array([0, 0, 1, 1])
    noisy = corrupt(x, "overlay", image_shape=(4, 4), seed=0, labels=labels)
    for i, image in enumerate(noisy):
        (on,) = np.flatnonzero(image - x[i] > 0)
        assert labels[on] != labels[i]


@pytest.mark.parametrize(
    ("kind", "labels", "match"),
    [("smudge", None, "kind"), ("overlay", None, "labels"), ("overlay", [0, 0, 0], "two classes")],
)
def test_bad_noise_requests_are_refused(kind, labels, match):
    with pytest.raises(ConfigError, match=match):
        corrupt(np.zeros((3, 16)), kind, image_shape=(4, 4), labels=labels)


def test_report_measures_against_the_noisy_input_baseline():
    model = _random_dbn(n_in=16, n_classes=3)
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 16)), np.arange(12) % 3
    report = denoise_report(model, x, y, image_shape=(4, 4), kinds=["bars", "pixels"], steps=3)
    assert list(report["kind"].unique()) == ["bars", "pixels"] and len(report) == 6
    bars = report[report["kind"] == "bars"].sort_values("step")
    noisy = corrupt(x, "bars", image_shape=(4, 4), seed=0)
    assert bars["noisy_mse"].iloc[0] == pytest.approx(((noisy - x) ** 2).sum(1).mean())
    plain = model(torch.tensor(noisy, dtype=torch.float64)).argmax(1).numpy()
    assert bars["label_accuracy"].iloc[0] == pytest.approx((plain == y).mean())
    clean = model(torch.tensor(x)).argmax(1).numpy()
    assert bars["clean_accuracy"].iloc[0] == pytest.approx((clean == y).mean())
    cleaned = denoise(model, noisy, steps=3).images[-1]
    assert bars["mse"].iloc[-1] == pytest.approx(((cleaned - x) ** 2).sum(1).mean())


def test_denoise_figure_shows_every_step_with_its_label():
    model, x = _random_dbn(), _images(n=3)
    noisy = corrupt(x, "pixels", image_shape=(3, 3), seed=0)
    result = denoise(model, noisy, steps=4)
    labels = np.array([0, 1, 2])
    fig = denoise_figure(noisy, result, x, image_shape=(3, 3), labels=labels)
    assert len(fig.data) == 3 * (4 + 2)  # rows x (noisy, 4 steps, original)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[1].startswith(f"{result.labels[0, 0]} (α=1.00)")
    assert titles[6 + 1 + 3] == str(result.labels[3, 1])
    right = "#009E73" if result.labels[3, 1] == 1 else "#D55E00"
    assert fig.layout.annotations[6 + 1 + 3].font.color == right
    summary = denoise_summary_figure(
        denoise_report(model, x, labels, image_shape=(3, 3), kinds=["pixels"], steps=4)
    )
    assert len(summary.data) == 4  # accuracy and MSE lines, and their two baselines
