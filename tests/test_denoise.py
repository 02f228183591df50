"""The shipped denoisers (``ffdnet.denoise`` and the smaller ``ffdnet.fast`` that ``auto`` runs): each removes noise,
knows how much there is, and leaves a clean image nearly alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import scene

import clearsight as cs
from clearsight.infer import restore_array
from clearsight.metrics import psnr

DENOISERS = [pytest.param(m, marks=pytest.mark.skipif(m not in cs.list_models(), reason=f"{m} is not shipped"))
             for m in ("ffdnet.denoise", "ffdnet.fast")]  # fmt: skip


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(psnr(cs.io.to_tensor(a), cs.io.to_tensor(b))[0])


@pytest.mark.parametrize("model", DENOISERS)
def test_removes_gaussian_noise_blind_and_estimates_its_level(model):
    clean = scene(128, 160, seed=7)
    rng = np.random.default_rng(0)
    r = cs.create_model(model, precision="fp32")
    for sigma in (15, 25, 50):
        noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
        out, _ = restore_array(noisy, r)
        assert _psnr(out, clean) > _psnr(noisy, clean) + 4, sigma
        with torch.no_grad():
            est = float(r.net.estimate(torch.from_numpy(noisy).permute(2, 0, 1)[None]).mean()) * 255
        assert abs(est - sigma) < 0.3 * sigma, (sigma, est)


@pytest.mark.parametrize("model", DENOISERS)
def test_a_clean_image_comes_out_nearly_unchanged(model):
    import cv2

    clean = cv2.GaussianBlur(scene(128, 160, seed=8), (0, 0), 1.0)  # no noise at all
    r = cs.create_model(model, precision="fp32")
    out, _ = restore_array(clean, r)
    assert _psnr(out, clean) > 38
    assert r.max_pixels is None and r.halo == 48  # full resolution: a reduced pass would bring the noise back
