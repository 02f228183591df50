import numpy as np
import pytest
import torch
from conftest import scene
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import clearsight as cs
from clearsight.metrics import psnr, ssim


def _pair(seed, h=48, w=61):
    x = scene(h, w, seed)
    y = np.clip(x + np.random.default_rng(seed).normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    return x, y


def _t(a):
    return torch.from_numpy(a).permute(2, 0, 1)[None]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_psnr_matches_skimage(seed, data_range):
    x, y = _pair(seed)
    x, y = x * data_range, y * data_range
    ref = peak_signal_noise_ratio(x, y, data_range=data_range)
    assert abs(psnr(_t(y), _t(x), data_range).item() - ref) < 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_skimage(seed, data_range):
    x, y = _pair(seed)
    x, y = x * data_range, y * data_range
    ref = structural_similarity(
        x, y, data_range=data_range, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(_t(x), _t(y), data_range).item() - ref) < 1e-4
    ref_u = structural_similarity(x, y, data_range=data_range, channel_axis=2)
    assert abs(ssim(_t(x), _t(y), data_range, gaussian=False).item() - ref_u) < 1e-4


def test_per_image_scores_and_registry():
    xs, ys = zip(*(_pair(s) for s in range(3)))
    X = torch.cat([_t(a) for a in xs])
    Y = torch.cat([_t(b) for b in ys])
    p, s = psnr(X, Y), ssim(X, Y)
    assert p.shape == (3,) and s.shape == (3,)
    for i in range(3):
        assert torch.allclose(p[i], psnr(X[i : i + 1], Y[i : i + 1]))
    assert psnr(X, X).isinf().all() and torch.allclose(ssim(X, X), torch.ones(3, dtype=X.dtype))
    m = cs.create_metric("ssim")
    assert m.mode == "FR" and not m.lower_better and m.score_range == (-1.0, 1.0)
    assert set(cs.list_metrics(mode="FR")) == {"psnr", "ssim"}
    with pytest.raises(ValueError, match="reference"):
        m(X)


@pytest.mark.parametrize("name", ["haze_score", "rms_contrast", "colorfulness"])
def test_no_reference_statistics_move(name):
    m = cs.create_metric(name)
    x = _t(scene(40, 50))
    hazy = 0.4 * x + 0.6 * 0.9
    s_clear, s_hazy = m(x).item(), m(hazy).item()
    assert m(x).shape == (1,)
    # haze raises the dark channel and lowers contrast and colourfulness
    assert (s_hazy > s_clear) if m.lower_better else (s_hazy < s_clear)
