import numpy as np
import pytest
import torch

from clearsight.priors.filters import (
    box_filter,
    dark_channel,
    dark_channel_np,
    guided_filter,
    guided_filter_np,
    local_max,
    max_filter_np,
)


def brute_mean(x: np.ndarray, r: int) -> np.ndarray:
    h, w = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean(axis=(0, 1))
    return out


def brute_guided(I: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter written with explicit windows (gray guide, clipped borders)."""
    I, p = I.astype(np.float64), p.astype(np.float64)
    mi, mp = brute_mean(I, r), brute_mean(p, r)
    a = (brute_mean(I * p, r) - mi * mp) / (brute_mean(I * I, r) - mi * mi + eps)
    b = mp - a * mi
    return brute_mean(a, r) * I + brute_mean(b, r)


@pytest.mark.parametrize("shape,r,eps", [((19, 23), 3, 1e-2), ((12, 9), 5, 1e-3), ((7, 30), 8, 1e-4)])
def test_guided_filter_equals_brute_force(shape, r, eps):
    rng = np.random.default_rng(1)
    I = rng.random(shape).astype(np.float32)
    p = (0.5 * I + 0.5 * rng.random(shape)).astype(np.float32)
    ref = brute_guided(I, p, r, eps)
    assert np.abs(guided_filter_np(I, p, r, eps) - ref).max() < 1e-5
    t = guided_filter(torch.from_numpy(I)[None, None], torch.from_numpy(p)[None, None], r, eps)
    assert np.abs(t[0, 0].numpy() - ref).max() < 1e-5
    t64 = guided_filter(torch.from_numpy(I).double()[None, None], torch.from_numpy(p).double()[None, None], r, eps)
    assert np.abs(t64[0, 0].numpy() - ref).max() < 1e-10


def test_guided_filter_colour_src_gray_guide():
    rng = np.random.default_rng(2)
    I = rng.random((15, 16)).astype(np.float32)
    p = rng.random((15, 16, 3)).astype(np.float32)
    out = guided_filter_np(I, p, 4, 1e-3)
    for c in range(3):
        assert np.abs(out[:, :, c] - brute_guided(I, p[:, :, c], 4, 1e-3)).max() < 1e-5


def test_guided_filter_is_edge_preserving_and_smoothing():
    x = np.zeros((40, 40), np.float32)
    x[:, 20:] = 1.0
    noisy = x + np.random.default_rng(0).normal(0, 0.05, x.shape).astype(np.float32)
    out = guided_filter_np(x, noisy, 4, 1e-3)
    assert np.abs(out - x)[:, :17].std() < noisy[:, :17].std() / 2
    assert out[:, 22:].mean() - out[:, :18].mean() > 0.9


def test_box_filter_cost_is_radius_independent_and_exact():
    x = torch.rand(2, 3, 31, 29, dtype=torch.float64)
    for r in (0, 1, 4, 40):
        ref = brute_mean(x[0].permute(1, 2, 0).numpy(), r)
        assert np.allclose(box_filter(x, r)[0].permute(1, 2, 0).numpy(), ref, atol=1e-12)


def test_channel_min_and_max_equal_numpy():
    from clearsight.priors.filters import channel_max_np, channel_min_np

    x = np.random.default_rng(3).random((23, 31, 3)).astype(np.float32)
    assert np.array_equal(channel_min_np(x), x.min(2)) and np.array_equal(channel_max_np(x), x.max(2))


def test_dark_channel_and_local_max_equal_brute_force():
    rng = np.random.default_rng(3)
    x = rng.random((21, 18, 3)).astype(np.float32)
    m = x.min(axis=2)
    ref = np.array([[m[max(0, i - 3) : i + 4, max(0, j - 3) : j + 4].min() for j in range(18)] for i in range(21)])
    assert np.array_equal(dark_channel_np(x, 7), ref)
    xt = torch.from_numpy(x).permute(2, 0, 1)[None]
    assert np.array_equal(dark_channel(xt, 7)[0, 0].numpy(), ref)
    mx = np.array([[x[max(0, i - 2) : i + 3, max(0, j - 2) : j + 3, 0].max() for j in range(18)] for i in range(21)])
    assert np.array_equal(max_filter_np(x, 5)[:, :, 0], mx)
    assert np.array_equal(local_max(xt, 5)[0, 0].numpy(), mx)


def test_guided_filter_gradcheck():
    g = torch.rand(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    p = torch.rand(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: guided_filter(a, b, 2, 1e-2), (g, p))


def test_dark_channel_rejects_even_patch():
    with pytest.raises(ValueError, match="odd"):
        dark_channel(torch.rand(1, 3, 8, 8), 4)


def test_compact_lights_are_small_bright_blobs_largest_first():
    from clearsight.priors.filters import compact_lights_np

    y = np.full((120, 160), 0.2, np.float32)
    y[:2] = 0.9  # a bright band along the top (1.7% of the image): bright, but not compact
    yy, xx = np.mgrid[:120, :160]
    y[(xx - 40) ** 2 + (yy - 70) ** 2 <= 4] = 1.0  # a small lamp
    y[(xx - 120) ** 2 + (yy - 90) ** 2 <= 9] = 1.0  # a larger one
    labels, table = compact_lights_np(y)
    assert table.shape == (2, 4) and table[0, 3] > table[1, 3]  # largest first
    assert abs(table[0, 1] - 120) < 1 and abs(table[0, 2] - 90) < 1 and abs(table[1, 1] - 40) < 1
    assert labels[0, 80] > 0 and labels[0, 80] not in table[:, 0]  # the band is bright but left out
    assert compact_lights_np(np.full((50, 50), 0.3, np.float32))[1].shape == (0, 4)  # nothing bright enough
