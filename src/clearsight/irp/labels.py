"""IRP labels: how well can a frame be restored? (methods §4.2, definitions in ``docs/irp.md``)

Every frame is restored by a pool of restorers and compared with the sharp, noise-free scene it came from:

* ``none``: the frame itself;
* ``denoise``: non-local means (OpenCV) with its strength set from the estimated noise level (blind);
* ``deblur``: Wiener deconvolution with the frame's own camera-shake kernel at two regularisations (a
  stand-in for a strong deblurring network: it knows the kernel, so it bounds what deblurring can recover);
* ``denoise>deblur`` and ``deblur>denoise``: both orders of the two (the latter at one regularisation);
* an optional image-to-image network (e.g. the shipped all-in-one ``udair.allinone``) as ``learned``;
* with ``dehaze=True`` (scenes captured through haze), every candidate is also dehazed with clearsight's
  ``dcp`` and the better of the two counts, so haze lowers IRP only by what dehazing cannot recover.

**IRP** of a frame is the best SSIM (to the clean scene) over the pool, a number in [0, 1]; ``irp_relative``
divides it by the best IRP among the frames of the same scene (1 for the scene's best frame).

Example:
    >>> import torch
    >>> from clearsight.degrade.capture import exposure_bracket, sample_scene, simulate_captures
    >>> clean = torch.rand(1, 3, 40, 40)
    >>> settings = exposure_bracket(3)
    >>> scene = sample_scene(torch.Generator().manual_seed(0))
    >>> frames, _ = simulate_captures(clean, settings, scene)
    >>> lab = irp_labels(frames, clean, [shake_kernel_of(scene, s, settings) for s in settings])
    >>> lab.irp.shape, bool((lab.irp <= 1).all())
    ((3,), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..degrade.capture import Capture, SceneMotion, shake_kernel
from ..metrics.full_reference import psnr, ssim
from ..metrics.no_reference import noise_level

__all__ = ["IRPLabels", "POOL", "irp_labels", "nlm_denoise", "shake_kernel_of", "wiener_deconvolve"]


def shake_kernel_of(scene: SceneMotion, setting: Capture, settings: Sequence[Capture]) -> np.ndarray:
    """The camera-shake kernel of ``setting`` within its bracket, as float32 NumPy."""
    return shake_kernel(scene, setting.exposure_ms, max(s.exposure_ms for s in settings)).numpy().astype(np.float32)


def nlm_denoise(x: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Non-local means on an ``(H, W, 3)`` float image in [0, 1]; ``sigma`` (0-1 units) defaults to an estimate."""
    if sigma is None:
        sigma = float(noise_level(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None])[0])
    h = float(np.clip(sigma * 255 * 0.9, 2.0, 60.0))
    u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    return cv2.fastNlMeansDenoisingColored(u8, None, h, h, 5, 13).astype(np.float32) / 255


def wiener_deconvolve(x: np.ndarray, kernel: np.ndarray, nsr: float = 0.01) -> np.ndarray:
    """Wiener deconvolution of ``(H, W, 3)`` in [0, 1] by ``kernel`` (odd, sum 1) with noise-to-signal ``nsr``.

    The image is extended by mirroring to twice its size, which makes it periodic without seams, so the
    FFT's circular convolution matches reflective borders and the inverse filter does not ring from the edges.
    """
    k = kernel.shape[0]
    if k <= 1:
        return x.copy()
    h, w = x.shape[:2]
    xp = np.concatenate([x, x[::-1]], 0)
    xp = np.concatenate([xp, xp[:, ::-1]], 1).astype(np.float32)
    hh, ww = xp.shape[:2]
    if k > min(hh, ww):
        return x.copy()
    kp = np.zeros((hh, ww), np.float32)
    kp[:k, :k] = kernel
    kp = np.roll(kp, (-(k // 2), -(k // 2)), (0, 1))
    kf = np.fft.rfft2(kp)
    filt = np.conj(kf) / (np.abs(kf) ** 2 + nsr)
    out = np.empty_like(xp)
    for c in range(3):
        out[..., c] = np.fft.irfft2(np.fft.rfft2(xp[..., c]) * filt, s=(hh, ww))
    return np.clip(out[:h, :w], 0, 1).astype(np.float32)


def _deblur(x: np.ndarray, k: np.ndarray) -> list[np.ndarray]:
    return [wiener_deconvolve(x, k, nsr) for nsr in (0.01, 0.05)]


#: The classical restorers of the pool: name -> ``(image, kernel) -> list of candidate outputs``.
POOL: dict[str, Callable[[np.ndarray, np.ndarray], list[np.ndarray]]] = {
    "none": lambda x, k: [x],
    "denoise": lambda x, k: [nlm_denoise(x)],
    "deblur": _deblur,
    "denoise>deblur": lambda x, k: _deblur(nlm_denoise(x), k),
    "deblur>denoise": lambda x, k: [nlm_denoise(wiener_deconvolve(x, k, 0.02))],
}


@dataclass
class IRPLabels:
    """Labels of the frames of one scene.

    Attributes:
        irp: best SSIM over the pool per frame ``(N,)``.
        irp_relative: ``irp`` divided by the scene's best ``(N,)``.
        best_psnr: best PSNR over the pool per frame ``(N,)`` (dB).
        ssim: SSIM per frame and restorer ``(N, R)``; psnr likewise; restorers: their names.
    """

    irp: np.ndarray
    irp_relative: np.ndarray
    best_psnr: np.ndarray
    ssim: np.ndarray
    psnr: np.ndarray
    restorers: list[str]


def _dehaze(x: np.ndarray) -> np.ndarray:
    from ..priors.dcp import DCP

    r = DCP()
    return np.clip(r.process(x, r.prepare_image(x)), 0, 1).astype(np.float32)


def _to_np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(1, 2, 0).float().numpy())


def irp_labels(
    frames: torch.Tensor,
    clean: torch.Tensor,
    kernels: Sequence[np.ndarray],
    learned: torch.nn.Module | None = None,
    restorers: Sequence[str] | None = None,
    dehaze: bool = False,
) -> IRPLabels:
    """Restore every frame with the pool and score it against ``clean``.

    Args:
        frames: :math:`(N, 3, H, W)` in [0, 1].
        clean: :math:`(1, 3, H, W)` in [0, 1].
        kernels: the camera-shake kernel of each frame (for the deconvolution restorers).
        learned: an optional image-to-image network added to the pool as ``learned`` (run in bf16 when the CPU
            has it).
        restorers: names of :data:`POOL` to use (default: all).
        dehaze: also try every candidate followed by DCP dehazing (for frames of hazy scenes).
    """
    names = list(restorers or POOL)
    if len(kernels) != frames.shape[0]:
        raise ValueError(f"{frames.shape[0]} frames but {len(kernels)} kernels")
    n = frames.shape[0]
    cols = names + (["learned"] if learned is not None else [])
    s_mat = np.zeros((n, len(cols)), np.float64)
    p_mat = np.zeros((n, len(cols)), np.float64)
    ref = clean.float()
    for i in range(n):
        x = _to_np(frames[i])
        for j, name in enumerate(names):
            cands = POOL[name](x, kernels[i])
            if dehaze:
                cands = cands + [_dehaze(o) for o in cands]
            outs = torch.stack([torch.from_numpy(o).permute(2, 0, 1) for o in cands])
            s_mat[i, j] = float(ssim(outs, ref.expand_as(outs)).max())
            p_mat[i, j] = float(psnr(outs, ref.expand_as(outs)).max())
    if learned is not None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = learned(frames.float()).float().clamp(0, 1)
        if dehaze:
            out = torch.stack([torch.from_numpy(_dehaze(_to_np(o))).permute(2, 0, 1) for o in out])
        s_mat[:, -1] = ssim(out, ref.expand_as(out)).numpy()
        p_mat[:, -1] = psnr(out, ref.expand_as(out)).numpy()
    irp = s_mat.max(1)
    return IRPLabels(irp, irp / max(irp.max(), 1e-9), p_mat.max(1), s_mat, p_mat, cols)
