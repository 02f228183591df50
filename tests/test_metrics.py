from pathlib import Path

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
    assert set(cs.list_metrics(mode="FR")) == {"psnr", "ssim", "ms_ssim", "ciede2000"}
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


def test_niqe_is_deterministic_and_rises_with_noise_and_blur():
    import cv2

    x = cs.read_image(Path(cs.__file__).parent / "samples" / "street_fog.jpg")
    m = cs.create_metric("niqe")
    assert m.lower_better and m.mode == "NR"
    clean = m(x)
    assert torch.equal(clean, m(x))
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    arr = x[0].permute(1, 2, 0).numpy()
    blurred = torch.from_numpy(cv2.GaussianBlur(arr, (0, 0), 2.5)).permute(2, 0, 1)[None]
    assert m(noisy) > clean and m(blurred) > clean


def test_niqe_rejects_small_constant_and_nan_inputs():
    m = cs.create_metric("niqe")
    with pytest.raises(cs.ShapeError, match="at least 192"):
        m(torch.rand(1, 3, 100, 300))
    with pytest.raises(cs.ShapeError):
        m(torch.full((1, 3, 200, 200), float("nan")))
    with pytest.raises(cs.ShapeError, match="constant"):
        m(torch.full((1, 3, 200, 200), 0.5))


def test_ranking_correlations():
    from scipy.stats import kendalltau, pearsonr, spearmanr

    from clearsight.metrics import krcc, plcc, srcc

    rng = np.random.default_rng(0)
    a = rng.random(40)
    b = a + rng.random(40) * 0.5
    b[5] = b[6]  # a tie
    assert abs(srcc(a, b) - spearmanr(a, b)[0]) < 1e-12
    assert abs(krcc(a, b) - kendalltau(a, b)[0]) < 1e-12
    assert abs(plcc(a, b) - pearsonr(a, b)[0]) < 1e-12
    assert srcc(a, -a) == pytest.approx(-1)
    with pytest.raises(ValueError, match="NaN"):
        srcc([1, 2, float("nan")], [1, 2, 3])


def test_group_split_tells_between_from_within_errors():
    from clearsight.metrics.ranking import group_split

    rng = np.random.default_rng(1)
    means, dev = rng.random((30, 1)), 0.1 * rng.random((30, 8))
    t = means + dev
    exact = group_split(t, t)
    assert all(exact[k] == pytest.approx(1) for k in ("srcc_group_means", "plcc_deviations", "srcc_true_means"))
    # right order inside every group, group means shuffled: only the between-group part fails
    wrong_means = group_split(rng.permutation(means) + dev, t)
    assert wrong_means["plcc_deviations"] == pytest.approx(1) and wrong_means["srcc_true_means"] == pytest.approx(1)
    assert wrong_means["srcc_group_means"] < 0.5 and wrong_means["srcc_true_deviations"] < 0.6
    assert exact["between_var"] > exact["within_var"]
    with pytest.raises(ValueError, match="groups"):
        group_split(t.ravel(), t.ravel())


@pytest.mark.parametrize("name", ["haze_score", "fog_density"])
def test_haze_metrics_order_a_haze_ladder(name):
    from clearsight.degrade import random_depth
    from clearsight.degrade.ops import day_haze
    from clearsight.metrics import srcc

    m = cs.create_metric(name)
    levels, scores = [], []
    g = torch.Generator().manual_seed(0)
    for i in range(20):
        x = _t(scene(96, 128, i))
        d = random_depth(1, 96, 128, g)
        for beta in (0.0, 0.5, 1.0, 2.0, 3.0):
            y, _ = day_haze(x, d, torch.tensor([beta]), torch.tensor([[0.9, 0.9, 0.9]]))
            levels.append(beta)
            scores.append(m(y).item())
    assert srcc(levels, scores) >= 0.9


def test_ms_ssim_matches_pytorch_msssim():
    from pytorch_msssim import ms_ssim as reference

    from clearsight.metrics import ms_ssim

    g = torch.Generator().manual_seed(0)
    x = _t(scene(200, 230, 0)).repeat(2, 1, 1, 1)
    y = (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    ours = ms_ssim(x, y)
    ref = reference(x, y, data_range=1.0, size_average=False)
    assert ours.shape == (2,) and (ours - ref).abs().max() < 1e-3
    assert torch.allclose(ms_ssim(x, x), torch.ones(2))
    with pytest.raises(ValueError, match="at least 176"):
        ms_ssim(x[..., :100, :100], y[..., :100, :100])


def test_ciede2000_matches_skimage():
    from skimage.color import deltaE_ciede2000, rgb2lab

    from clearsight.metrics import create_metric

    x = scene(30, 40, 2)
    y = np.clip(x + np.random.default_rng(1).normal(0, 0.08, x.shape), 0, 1).astype(np.float32)
    ref = deltaE_ciede2000(rgb2lab(x.astype(np.float64)), rgb2lab(y.astype(np.float64))).mean()
    m = create_metric("ciede2000")
    assert m.lower_better and abs(m(_t(x), _t(y)).item() - ref) < 1e-3
    assert m(_t(x), _t(x)).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["fog_density", "niqe", "brisque", "piqe", "haze_score", "entropy", "noise_level"])
def test_no_reference_metrics_bad_inputs(name):
    m = cs.create_metric(name)
    x = _t(scene(200, 200, 0))
    assert torch.equal(m(x), m(x))  # deterministic
    with pytest.raises((cs.ShapeError, ValueError)):
        m(torch.full((1, 3, 200, 200), float("nan")))
    if name in ("fog_density", "niqe", "brisque", "piqe"):
        with pytest.raises(cs.ShapeError):
            m(torch.full((1, 3, 200, 200), 0.5))
        with pytest.raises(cs.ShapeError):
            m(torch.rand(1, 3, 1, 1))


@pytest.mark.parametrize("name", ["brisque", "piqe"])
def test_distortion_metrics_react_to_noise_and_blur(name):
    import cv2

    x = cs.read_image(Path(cs.__file__).parent / "samples" / "street_fog.jpg")
    m = cs.create_metric(name)
    base = m(x).item()
    g = torch.Generator().manual_seed(0)
    noisy = (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    blurred = torch.from_numpy(cv2.GaussianBlur(x[0].permute(1, 2, 0).numpy(), (0, 0), 3.0)).permute(2, 0, 1)[None]
    assert m(noisy).item() > base + 5
    if name == "brisque":  # PIQE reads strong blur as fewer active blocks, not as distortion
        assert m(blurred).item() > base + 5
    assert 0 <= base <= 100


@pytest.mark.parametrize("name", ["psnr", "ssim", "ms_ssim", "ciede2000"])
def test_full_reference_bad_inputs(name):
    m = cs.create_metric(name)
    x = _t(scene(200, 200, 0))
    bad = x.clone()
    bad[0, 0, 5, 5] = float("nan")
    with pytest.raises((cs.ShapeError, ValueError)):
        m(bad, x)
    with pytest.raises((cs.ShapeError, ValueError)):
        m(x, x[..., :100, :100])
    if name in ("ssim", "ms_ssim"):
        with pytest.raises(ValueError):
            m(torch.rand(1, 3, 1, 1), torch.rand(1, 3, 1, 1))
