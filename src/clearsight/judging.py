"""Judge whether a restoration harmed a photo: compare BEFORE and AFTER, name each harm found.

No reference is needed: each check compares a statistic of the output with the same statistic of the input, in a
form that a correct restoration leaves alone (a uniform brightening keeps relative noise, a dehazing raises
contrast, a denoising lowers noise):

=================  =========================================================================================
harm               test (thresholds in :data:`THRESHOLDS`)
=================  =========================================================================================
``colour_cast``    the mean a*b* (3-px smoothed) of BEFORE's most neutral 30% (lit pixels only), each image's
                   divided by its typical chroma, moved by more than ``cast`` and away from neutral (3x ``cast``
                   when BEFORE's mean luma is under 0.25, not tested under 0.12; the test needs a quarter of
                   BEFORE lit, luma > 0.1: the colour of a dark photo is not measurable); or coloured pixels
                   (chroma > 15 before and after) turned, on circular average and in one direction, by more
                   than ``hue`` degrees. Two exceptions for a removed veil. The turn is excused when the
                   neutral cast fell to at most half its value and to at most ``neutral`` and the turn is at
                   most 2x ``hue`` (the hues under a yellow dust veil turn back to their own; a rotation keeps
                   the cast's size). When the dark channel's mean fell by more than ``veil``, BEFORE's most
                   neutral pixels are the veiled ones: the shift is measured on BEFORE's least veiled half
                   (dark channel at most its median), and after a coloured veil (cast above ``neutral``) the
                   turn is not tested. Or (session 34) AFTER scaled the colour channels apart: the local gains of
                   red and blue against green (:func:`_channel_gains`) differ by more than ``gain`` (log units) in a
                   direction that moves BEFORE's greys away from neutral (a veil removed, grey or coloured, a
                   brightening and a contrast change scale the three alike; a white balance that takes a cast off
                   moves the greys towards neutral); not on a BEFORE of mean luma under 0.25 or very noisy.
                   After a coloured veil lifted (channels scaled alike, contrast up by ``lift``, BEFORE's mean tint
                   longer than ``tint`` and shorter in AFTER by ``tint_drop``: a dust veil) AFTER's own most neutral
                   30% are judged instead of the shift and the turn: a cast above ``own``
``noise``          noise in the flattest tenth of blocks, relative to the mean brightness and (session 34)
                   relative to contrast (luma std), grew by more than ``noise`` times, and is at least
                   ``noise_abs`` after (a veil removed uncovers the photo's own noise with its contrast)
``detail_lost``    fine gradient energy (at half resolution, so removed noise does not count) fell below
                   ``detail`` of its value both relative to coarse contrast and relative to mean brightness
``clipped``        the share of newly clipped pixels (a channel at >= 0.996 where BEFORE was below its 95th
                   percentile, or luminance <= 0.004 where it was above its 5th, and smoothed BEFORE was not
                   already at white or black, nor on its own white or black plateau: within 0.02 of its 99.5th
                   (0.5th) percentile) grew by more than ``clip``, where BEFORE had texture: its mean gradient
                   inside them at least ``texture`` (session 35: a flat hazy sky restored to white loses nothing)
``over_dehazed``   the share of pixels whose dark channel is ~0 grew by more than ``dark``, the share of
                   near-black pixels (luminance <= 0.02) by more than ``crushed``, and the texture inside those
                   near-black pixels (mean gradient, AFTER against BEFORE) fell below ``shadow`` of its value,
                   from at least ``texture`` in BEFORE: shadows crushed flat, not merely deepened, nor a flat
                   grey that haze lifted returned to black (session 35)
``haze_added``     dark channel mean up by more than ``haze`` while contrast (luma std) fell by ``contrast``
``halo``           around compact bright sources (the brightest 2%, in blobs under 0.5% of the image: lamps,
                   windows), the part of AFTER that an affine function of BEFORE does not explain, averaged
                   in rings out to 40 px, has a well (a ring below the highest rings inside and outside it)
                   deeper than ``halo`` of AFTER's contrast (luma std + 0.02): rings and dark collars
                   (session 32; until then the test below was the halo test)
``blotches``       within 15 px of those sources, AFTER leaves the local range of its best locally affine
                   prediction from BEFORE by more than ``blotches`` of its contrast (99th percentile): blotchy
                   and blocky skies around bright fragments (textbook DCP's bands over a smog sky), and rings;
                   and (session 34) AFTER has edges there that BEFORE's, locally scaled, do not explain, by more
                   than ``new_edges`` of its contrast (a correct dehazing whose sky fragments reveal clouds
                   amplifies faint edges BEFORE had; DCP's blocks are new ones)
=================  =========================================================================================

Heavy noise biases the structural statistics (it lowers the dark channel, adds contrast, its specks look like
lamps), so ``haze_added``, ``halo`` and ``blotches`` are measured on both previews smoothed alike, enough to quiet
BEFORE's noise (``quiet`` in the scores; 0 for an ordinary photo), and ``detail_lost`` takes out the
gradients each image's own noise explains (session 33). Heavy noise also biases the colour tests: chosen on noisy
chroma, BEFORE's "most neutral" pixels are those whose noise cancelled their colour, which AFTER shows back, and
noise clipped at black and white greys BEFORE's colours. For such a BEFORE the neutral pixels are chosen on a
copy smoothed 3x as much, and AFTER's colours are taken from the mean it would have under BEFORE's noise, clipped
(session 34)

Both images are compared on the same grid: AFTER is resized to BEFORE's size if they differ, and both are
judged on a preview of at most 640 pixels (and a centre crop at full size for noise). The thresholds are
calibrated in ``benchmarks/judge.py`` on synthetic harms of known size applied to real photos and on harmless
pairs (a re-encoded copy, a correctly brightened dark image, a correctly denoised noisy one).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    >>> judge(x, x).ok
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ._errors import ClearsightError
from .priors.filters import channel_max_np, compact_lights_np, dark_channel_np
from .recognition import _crop, _flat_noise, _to_float, image_array

__all__ = ["judge", "judge_np", "first_unharmed", "Verdict", "THRESHOLDS", "HARMS", "harm_counts"]

HARMS = ("colour_cast", "noise", "detail_lost", "clipped", "over_dehazed", "haze_added", "halo", "blotches")

#: Decision thresholds (see the module docstring).
THRESHOLDS = {
    "cast": 1.0,
    "hue": 20.0,
    "gain": 0.08,
    "lift": 0.3,
    "own": 6.5,
    "tint": 15.0,
    "tint_drop": 3.0,
    "neutral": 3.5,
    "veil": 0.1,
    "noise": 2.5,
    "noise_abs": 0.006,
    "detail": 0.90,  # session 39 (0.87 before): see docs/auto.md
    "clip": 0.05,
    "texture": 0.0012,
    "dark": 0.05,
    "crushed": 0.01,
    "shadow": 0.5,
    "haze": 0.08,
    "contrast": 0.15,
    "halo": 0.32,
    "blotches": 0.45,
    "new_edges": 0.09,
}

_PREVIEW = 640
#: The 90th percentile of the detail test's gradient magnitude on white noise, per unit of the noise sigma that
#: ``_flat_noise`` measures on it (3.28 per true sigma; that estimate reads 0.89 of it on white noise).
_NOISE_GRAD90 = 3.67
#: What ``_flat_noise``'s flattest-tenth estimate reads of the true sigma of white noise.
_FLAT_READS = 0.89
#: Noise (luma sigma on the preview) left after the quieting blur of the structural tests, and the largest blur.
_QUIET_NOISE, _QUIET_MAX = 0.01, 4.0


def _quiet_sigma(noise: float) -> float:
    """The Gaussian (px) that brings white noise of ``noise`` down to :data:`_QUIET_NOISE` (a blur of ``s`` px divides
    it by about ``2 sqrt(pi) s``), capped at :data:`_QUIET_MAX`; 0 when under 1 px (an ordinary photo)."""
    s = noise / (2 * np.sqrt(np.pi) * _QUIET_NOISE)
    return 0.0 if s < 1.0 else float(min(s, _QUIET_MAX))


@dataclass
class Verdict:
    """The judge's finding for one pair.

    Attributes:
        harms: the harms found (names from :data:`HARMS`), empty when the output is ``ok``.
        scores: the measured statistic behind every check.
    """

    harms: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.harms

    def __str__(self) -> str:
        return "ok" if self.ok else "harmed: " + ", ".join(self.harms)


def _lost_noise(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per channel, the sigma of the noise that ``b`` has and ``a`` lost (a denoising), from the flattest blocks of
    two ``(H, W, 3)`` arrays: ``sqrt(max(n_b^2 - n_a^2, 0))``; 0 where ``a`` kept or added noise."""

    def n(x: np.ndarray, c: int) -> float:
        return _flat_noise(np.ascontiguousarray(x[..., c]))[1] / _FLAT_READS

    return np.array([np.sqrt(max(n(b, c) ** 2 - n(a, c) ** 2, 0.0)) for c in range(3)])


def _noisy_mean(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """The expected value of ``clip(x + n, 0, 1)`` for Gaussian ``n`` of per-channel ``sigma``: what a noisy capture
    of ``x`` averages to, clipping included (dark pixels lifted, bright ones lowered, colours greyed)."""
    sig = np.maximum(np.asarray(sigma, np.float32), 1e-4)
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    s = torch.from_numpy(np.broadcast_to(sig, x.shape).copy())
    lo, hi = -t / s, (1 - t) / s  # the clip points in units of sigma
    pdf_lo, pdf_hi = (torch.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) for z in (lo, hi))
    cdf_lo, cdf_hi = torch.special.ndtr(lo), torch.special.ndtr(hi)
    out = s * (pdf_lo - pdf_hi) + t * (cdf_hi - cdf_lo) + (1 - cdf_hi)
    return out.numpy()


def _channel_gains(pb: np.ndarray, pa: np.ndarray, radius: int = 6, smooth: float = 1.0) -> np.ndarray:
    """``(log g_R / g_G, log g_B / g_G)``: how much more AFTER scaled red and blue than green, where ``g_c`` is the
    local gain of channel ``c`` (AFTER's covariance with BEFORE over BEFORE's variance, in ``radius`` windows of the
    previews at half size), the median over the most textured 30% of windows. A veil removed, grey or coloured, a
    brightening or a contrast change scale the three channels alike (0, 0); a colour cast scales them apart."""
    h, w = pb.shape[:2]
    size = (max(8, w // 2), max(8, h // 2))
    pb, pa = cv2.resize(pb, size, interpolation=cv2.INTER_AREA), cv2.resize(pa, size, interpolation=cv2.INTER_AREA)
    if smooth > 0:
        pb, pa = cv2.GaussianBlur(pb, (0, 0), smooth), cv2.GaussianBlur(pa, (0, 0), smooth)
    box = (2 * radius + 1, 2 * radius + 1)
    # the noise BEFORE had and AFTER lost (a denoising) inflates BEFORE's variance but not the covariance: taken out,
    # or a denoiser that removes more noise from blue than from green reads as a cast (real camera noise)
    lost = _lost_noise(pb, pa)
    gains, var = [], []
    for c in range(3):
        bc, ac = np.ascontiguousarray(pb[..., c]), np.ascontiguousarray(pa[..., c])
        mb = cv2.blur(bc, box)
        v = cv2.blur(bc * bc, box) - mb * mb - lost[c] ** 2
        gains.append((cv2.blur(bc * ac, box) - mb * cv2.blur(ac, box)) / np.maximum(v, 1e-6))
        var.append(v)
    v = np.minimum(np.minimum(var[0], var[1]), var[2])
    m = v > max(float(np.percentile(v, 70)), 2e-4)
    if m.sum() < 20:
        return np.zeros(2)
    g = [np.maximum(x[m], 1e-3) for x in gains]
    return np.array([np.median(np.log(g[0] / g[1])), np.median(np.log(g[2] / g[1]))])


def _new_edges(yb: np.ndarray, ya: np.ndarray, where: np.ndarray, radius: int = 4) -> float:
    """The 99th percentile over ``where`` of ``|grad A - k grad B|``, ``k >= 0`` fitted to the gradients in
    ``2 radius + 1`` windows (regularised for the image's brightness): edges AFTER has that BEFORE did not."""
    bx, by = cv2.Sobel(yb, cv2.CV_32F, 1, 0) / 8, cv2.Sobel(yb, cv2.CV_32F, 0, 1) / 8
    ax, ay = cv2.Sobel(ya, cv2.CV_32F, 1, 0) / 8, cv2.Sobel(ya, cv2.CV_32F, 0, 1) / 8
    box = (2 * radius + 1, 2 * radius + 1)
    reg = 1e-4 * max(float(yb.mean()), 0.05) ** 2
    k = np.maximum(cv2.blur(ax * bx + ay * by, box) / (cv2.blur(bx * bx + by * by, box) + reg), 0)
    return float(np.percentile(np.hypot(ax - k * bx, ay - k * by)[where], 99))


def _preview(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[:2]
    s = _PREVIEW / max(h, w)
    if s < 1:
        x = cv2.resize(x, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(x)


def _grad(y: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))


def _ring_well(
    yb: np.ndarray, ya: np.ndarray, labels: np.ndarray, table: np.ndarray, reach: int = 40, step: int = 2
) -> float:
    """The deepest ring around a compact light source that AFTER has and BEFORE does not explain (session 32).

    Light sources: ``labels`` and ``table`` of :func:`~clearsight.priors.filters.compact_lights_np` on BEFORE
    (lamps, windows, the sun; a bright sky or wall is not one). Around each, within ``reach`` px of its edge (other
    bright pixels left out), AFTER's luminance is fitted as one affine function of BEFORE's (a dehazing, a
    brightening or a contrast change is affine there and leaves nothing), and the residual is averaged in
    ``step``-px rings. A ring or a dark collar is a well in that profile: a ring lower than the highest one inside
    it and the highest one outside it.
    Returns the deepest well over the sources (luminance units; 0 when there is none)."""
    h, w = yb.shape
    deepest = 0.0
    for _, cx, cy, area in table:
        radius = float(np.sqrt(area / np.pi))
        x0, x1 = int(max(0, cx - radius - reach)), int(min(w, cx + radius + reach + 1))
        y0, y1 = int(max(0, cy - radius - reach)), int(min(h, cy + radius + reach + 1))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r = np.hypot(xx - cx, yy - cy) - radius
        near = (r >= 0) & (r < reach) & (labels[y0:y1, x0:x1] == 0)
        if near.sum() < 50:
            continue
        bb, aa = yb[y0:y1, x0:x1][near], ya[y0:y1, x0:x1][near]
        design = np.stack([bb, np.ones_like(bb)], 1)
        coef, *_ = np.linalg.lstsq(design, aa, rcond=None)
        ring = (r[near] // step).astype(np.int64)
        count = np.bincount(ring, minlength=reach // step)
        prof = (np.bincount(ring, aa - design @ coef, minlength=reach // step) / np.maximum(count, 1))[count >= 5]
        if prof.size < 5:
            continue
        inside, outside = np.maximum.accumulate(prof), np.maximum.accumulate(prof[::-1])[::-1]
        deepest = max(deepest, float((np.minimum(inside, outside) - prof).max()))
    return deepest


def judge_np(before: np.ndarray, after: np.ndarray, thresholds: dict[str, float] | None = None) -> Verdict:
    """Judge ``after`` against ``before``: ``(H, W, 3)`` arrays (uint8, uint16 or float in [0, 1])."""
    t = {**THRESHOLDS, **(thresholds or {})}
    b, a = _to_float(before), _to_float(after)
    if b.ndim != 3 or a.ndim != 3 or b.shape[2] != 3 or a.shape[2] != 3:
        raise ClearsightError(f"judge needs two RGB images, got shapes {b.shape} and {a.shape}")
    if min(b.shape[:2]) < 16:
        raise ClearsightError(f"judge needs images of at least 16x16 pixels, got {b.shape[1]}x{b.shape[0]}")
    if a.shape != b.shape:
        a = cv2.resize(a, (b.shape[1], b.shape[0]), interpolation=cv2.INTER_AREA)
    s: dict[str, float] = {}
    harms: list[str] = []
    pb, pa = _preview(b), _preview(a)
    yb, ya = cv2.cvtColor(pb, cv2.COLOR_RGB2GRAY), cv2.cvtColor(pa, cv2.COLOR_RGB2GRAY)
    # the blur that quiets BEFORE's noise (0 for an ordinary photo; below, and for the colour of a very noisy photo)
    quiet = _quiet_sigma(_flat_noise(yb)[1])
    s["quiet"] = quiet
    # heavy noise clipped at black and white shifts BEFORE's colours: the colour tests then compare BEFORE with the
    # mean AFTER would have under BEFORE's noise (per channel, at full size, less the noise AFTER kept), so that a
    # correct denoising is no cast (session 34)
    pc = _noisy_mean(pa, _lost_noise(_crop(b), _crop(a))) if quiet > 0 else pa
    # colour, on smoothed previews so that noise does not read as colour (at 1.5 px, removing sigma-15 noise still
    # read as a cast in 9% of photos: noise clipped at black and white greys the colours; 3 px: none)
    sb, sa = cv2.GaussianBlur(pb, (0, 0), 3.0), cv2.GaussianBlur(pc, (0, 0), 3.0)
    lb, la = cv2.cvtColor(sb, cv2.COLOR_RGB2Lab), cv2.cvtColor(sa, cv2.COLOR_RGB2Lab)
    cb = np.hypot(lb[:, :, 1], lb[:, :, 2])
    ca = np.hypot(la[:, :, 1], la[:, :, 2])
    # the neutral pixels are chosen where BEFORE's noise is quieted: chosen on noisy chroma, they would be those whose
    # noise cancelled their colour, and AFTER would show the colour back (regression to the mean)
    # (session 34; 3x the quieting blur: at 1x, 25 of 104 denoised sigma-50 photos still read as casts)
    lq = cv2.cvtColor(cv2.GaussianBlur(sb, (0, 0), 3 * quiet), cv2.COLOR_RGB2Lab) if quiet > 0 else lb
    cq = np.hypot(lq[:, :, 1], lq[:, :, 2])

    # mean (a*, b*) of the most neutral 30% of BEFORE, in both images (a grey-world estimate without vivid objects),
    # relative to each image's typical chroma, so that a change of saturation (dehazing, brightening) is no cast
    def typical_chroma(p: np.ndarray, blur: float = 4.0) -> float:  # on a heavily smoothed copy: noise adds no chroma
        lab = cv2.cvtColor(cv2.GaussianBlur(p, (0, 0), blur), cv2.COLOR_RGB2Lab)
        return float(np.median(np.hypot(lab[:, :, 1], lab[:, :, 2])))

    tb, ta = typical_chroma(pb, float(np.hypot(4.0, quiet))), typical_chroma(pc)

    def mean_ab(lab: np.ndarray, mask: np.ndarray) -> np.ndarray:  # the mean (a*, b*) of ``lab`` over ``mask``
        return np.array([lab[:, :, 1][mask].mean(), lab[:, :, 2][mask].mean()])

    def most_neutral(region: np.ndarray, chroma: np.ndarray) -> np.ndarray:  # the 30% of ``region`` least coloured
        return region & (chroma <= np.percentile(chroma[region], 30))

    def neutral_cast(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = most_neutral(region, cq) if region.mean() >= 0.125 else np.zeros_like(region)
        if not m.any():
            return np.zeros(2), np.zeros(2)
        kb = mean_ab(lb, m)
        ka = mean_ab(la, m)
        return 10 * kb / (tb + 3), 10 * ka / (ta + 3)

    # the colour of near-black pixels cannot be measured
    lit = (cv2.GaussianBlur(yb, (0, 0), 3 * quiet) if quiet > 0 else yb) > 0.1
    kb, ka = neutral_cast(lit) if lit.mean() >= 0.25 else (np.zeros(2), np.zeros(2))
    s["cast_before"], s["cast_after"] = float(np.hypot(*kb)), float(np.hypot(*ka))
    # a veil removed (the dark channel's mean fell by more than ``veil``): BEFORE's most neutral pixels are then
    # mostly those the veil greyed most (distant ones under haze), whose own colours a correct dehazing brings back,
    # which reads as a shift. The shift is then measured on BEFORE's least veiled half (dark channel at most its
    # median), where a correct dehazing changes colours least
    dark_b, dark_a = dark_channel_np(pb, 7), dark_channel_np(pa, 7)  # also for over-dehazing
    s["dark_drop"] = float(dark_b.mean() - dark_a.mean())
    unveiled = s["dark_drop"] > t["veil"]
    if unveiled and lit.mean() >= 0.25:
        kb, ka = neutral_cast(lit & (dark_b <= np.percentile(dark_b[lit], 50)))
    s["cast_shift"] = float(np.hypot(*(ka - kb)))
    vivid = (cb > 15) & (ca > 15)
    if vivid.mean() >= 0.02:
        hb = np.arctan2(lb[:, :, 2], lb[:, :, 1])[vivid]
        ha = np.arctan2(la[:, :, 2], la[:, :, 1])[vivid]
        # the mean *signed* turn (circular mean): a rotation of the hues is harm; removing a veil turns hues
        # both ways (yellow to blue sky, to red brick, to grey) and averages out
        s["hue_turn"] = float(np.degrees(abs(np.angle(np.exp(1j * (ha - hb)).mean()))))
    else:
        s["hue_turn"] = 0.0
    away = np.hypot(*ka) > np.hypot(*kb) + 1.0  # a correction moves towards neutral, a harm away from it
    # the colour of a dim photo is measured poorly (noise, quantisation): a larger shift is needed there
    # (and, since session 34, 1.5x under heavy noise: the noise scatters that mean)
    cast_limit = t["cast"] * (3.0 if yb.mean() < 0.25 else 1.0) if yb.mean() >= 0.12 else np.inf
    cast_limit *= 1.5 if quiet > 0 else 1.0
    shifted = away and s["cast_shift"] > cast_limit
    # a colour veil removed: the greys became neutral (at most the median cast of 121 clean photos, 3.5, and half of
    # BEFORE's), so the coloured pixels' turn is the veil's colour leaving them, not a rotation (which keeps the
    # cast's size); up to twice the hue limit (the real sand photos' veils turned their hues by 22-27 degrees).
    # After a coloured veil removed with the dark channel, every hue returns from the veil's: no turn is measurable
    neutralised = s["cast_after"] <= min(t["neutral"], 0.5 * s["cast_before"]) and s["hue_turn"] <= 2 * t["hue"]
    coloured_veil = unveiled and s["cast_before"] > t["neutral"]
    turned = s["hue_turn"] > t["hue"] and not neutralised and not coloured_veil
    # channel gains (session 34): a veil removed (grey or coloured), a brightening, a contrast change scale the
    # three channels alike; a cast scales them apart, and it harms when it moves BEFORE's greys away from neutral
    # (a white balance that corrects a cast moves them towards it). Not on a dim or a very noisy BEFORE (the local
    # gains of dark or noisy pixels are not measurable)
    s["gain_turn"] = 0.0
    gained = False
    if quiet == 0 and yb.mean() >= 0.25 and lit.mean() >= 0.25:
        d = _channel_gains(pb, pa)
        lg = np.log(sb[most_neutral(lit, cq)].mean(0) + 1e-3)
        kg = np.array([lg[0] - lg[1], lg[2] - lg[1]])  # BEFORE's greys, log R/G and B/G
        s["gain_turn"] = float(np.hypot(*d))
        gained = s["gain_turn"] > t["gain"] and np.hypot(*(kg + d)) > np.hypot(*kg) + 0.5 * t["gain"]
        # a coloured veil lifted (session 34): the channels scaled alike, contrast up, and BEFORE's tint (the mean
        # a*b* of its lit pixels, longer than ``tint``: a dust veil, not a colourful scene under grey haze, where a
        # wrong airlight's cast must still be found) shorter along itself by more than ``tint_drop`` in AFTER.
        # BEFORE's most neutral pixels are then those whose own colour is the veil's complement, and their colour
        # comes back: the shift and the turn say nothing. AFTER's own greys are judged instead: a cast when their
        # mean a*b* (relative to AFTER's typical chroma, as above) is over ``own``, the 95th percentile of clean
        # photos (6.2 on the judge's calibration photos)
        tint_b = mean_ab(lb, lit)
        tint_a = mean_ab(la, lit)
        s["tint_drop"] = float((tint_b - tint_a) @ tint_b / (np.hypot(*tint_b) + 1e-6))
        lifted = (
            np.hypot(*tint_b) > t["tint"]
            and s["tint_drop"] > t["tint_drop"]
            and s["gain_turn"] <= 0.5 * t["gain"]
            and ya.std() > (1 + t["lift"]) * yb.std()
        )
        if lifted:
            grey_a = most_neutral(lit, ca)
            own = mean_ab(la, grey_a) * 10 / (ta + 3)
            s["cast_own"] = float(np.hypot(*own))
            shifted, turned = s["cast_own"] > t["own"], False
    if shifted or turned or gained:
        harms.append("colour_cast")
    # noise relative to brightness, at full size
    gb = cv2.cvtColor(np.ascontiguousarray(_crop(b)), cv2.COLOR_RGB2GRAY)
    ga = cv2.cvtColor(np.ascontiguousarray(_crop(a)), cv2.COLOR_RGB2GRAY)
    nb, na = _flat_noise(gb)[1], _flat_noise(ga)[1]
    rel_b, rel_a = nb / (gb.mean() + 0.02), na / (ga.mean() + 0.02)
    s["noise_ratio"] = float(rel_a / max(rel_b, 1e-4))
    s["noise_after"] = float(na)
    # ... and relative to contrast (session 34): a veil removed scales the photo's own noise with its contrast, by
    # 1/t, while the mean falls; that is the photo's noise uncovered, not noise amplified beyond the picture
    s["noise_ratio_contrast"] = float((na / (ga.std() + 0.01)) / max(nb / (gb.std() + 0.01), 1e-4))
    if s["noise_ratio"] > t["noise"] and s["noise_ratio_contrast"] > t["noise"] and na > t["noise_abs"]:
        harms.append("noise")

    # detail: fine gradients at half resolution (removed noise does not count), against coarse contrast and
    # against brightness; lost only if both fell (dehazing raises coarse contrast faster than fine detail). The
    # gradients that the image's own noise explains are taken out (in energy): heavy noise survives the halving and
    # read as detail that a correct denoising lost (session 33)
    def detail(y: np.ndarray) -> tuple[float, float]:
        half = cv2.resize(y, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        fine = cv2.GaussianBlur(half, (0, 0), 0.8)
        gx, gy = cv2.Sobel(fine, cv2.CV_32F, 1, 0), cv2.Sobel(fine, cv2.CV_32F, 0, 1)
        g90 = float(np.percentile(np.hypot(gx, gy), 90))
        g90 = float(np.sqrt(max(g90**2 - (_NOISE_GRAD90 * _flat_noise(half)[1]) ** 2, 0.0)))
        return g90 / (cv2.GaussianBlur(half, (0, 0), 4.0).std() + 0.01), g90 / (y.mean() + 0.02)

    (cb_, bb_), (ca_, ba_) = detail(yb), detail(ya)
    s["detail_ratio"] = ca_ / max(cb_, 1e-4)
    s["detail_ratio_brightness"] = ba_ / max(bb_, 1e-4)
    if s["detail_ratio"] < t["detail"] and s["detail_ratio_brightness"] < t["detail"]:
        harms.append("detail_lost")
    # clipping: pixels clipped after that were not among the brightest (darkest) 5% before
    # (and not where smoothed BEFORE was already at white or black: denoising a clipped sky is no clipping; nor, since
    # session 34, on BEFORE's own white or black plateau, within 0.02 of its extreme: a white sky or wall that a veil
    # greyed to 0.9, a black that noise or haze lifted, which a correct restoration returns to white or black)
    hi_b, lo_b = np.percentile(yb, 95), np.percentile(yb, 5)
    top_b = channel_max_np(pb)
    top_s, y_s = cv2.GaussianBlur(top_b, (0, 0), 2.0), cv2.GaussianBlur(yb, (0, 0), 2.0)
    was_hi = top_s >= min(0.95, float(np.percentile(top_s, 99.5)) - 0.02)
    was_lo = y_s <= max(0.02, float(np.percentile(y_s, 0.5)) + 0.02)
    new_clip = ((channel_max_np(pa) >= 0.996) & (yb < hi_b) & ~was_hi) | ((ya <= 0.004) & (yb > lo_b) & ~was_lo)
    old_clip = ((top_b >= 0.996) & (yb < hi_b) & ~was_hi) | ((yb <= 0.004) & (yb > lo_b) & ~was_lo)
    s["clip_growth"] = float(new_clip.mean() - old_clip.mean())
    # ... where BEFORE had texture (session 35): the mean gradient of BEFORE inside the newly clipped pixels (their
    # interior, so the edges at their border do not count) at least ``texture`` (0.3 8-bit codes per pixel). A flat
    # hazy sky that a correct dehazing returns to white has less (at most 0.0017 on the calibration pairs, mostly
    # under 0.0006), the highlights a gain of 1.6 clips have 0.0014 and more, most well above
    grad_b, k3 = _grad(yb), np.ones((3, 3), np.uint8)  # (Sobel: 8x the gradient per pixel)
    inner = cv2.erode((new_clip & ~old_clip).astype(np.uint8), k3) > 0
    s["clip_texture"] = float(grad_b[inner].mean() / 8) if inner.any() else 0.0
    if s["clip_growth"] > t["clip"] and s["clip_texture"] >= t["texture"]:
        harms.append("clipped")
    # dark channel: over-dehazing, added haze
    zb, za = float((dark_b < 0.01).mean()), float((dark_a < 0.01).mean())
    s["dark_zero_growth"], s["dark_zero_after"] = za - zb, za
    s["crushed_growth"] = float((ya <= 0.02).mean() - (yb <= 0.02).mean())  # shadows pushed to black
    # ... with their texture: gradients inside the near-black region of AFTER against the same pixels of BEFORE
    # (a correct dehazing raises them, 1.5x or more in 95% of photos; crushing flattens them, under 0.2 in 90%)
    crushed = ya <= 0.02
    inner = cv2.erode(crushed.astype(np.uint8), k3) > 0
    inner = inner if inner.mean() >= 0.002 else crushed
    measured = crushed.mean() >= 0.005
    texture_b = float(grad_b[inner].mean()) if measured else 0.0
    s["shadow_detail"] = float(_grad(ya)[inner].mean() / (texture_b + 1e-3)) if measured else 1.0
    # ... and BEFORE had texture there to lose (session 35, as for clipping: a shadow that haze lifted to a flat grey
    # has none; the shadows the black-point harm crushes have 0.0026 and more)
    s["shadow_texture"] = texture_b / 8
    crushed_flat = s["shadow_detail"] < t["shadow"] and s["shadow_texture"] >= t["texture"]
    if za - zb > t["dark"] and s["crushed_growth"] > t["crushed"] and crushed_flat:
        harms.append("over_dehazed")
    # added haze, rings and blotches are judged on both previews smoothed alike, enough to quiet a very noisy
    # BEFORE's noise (none for an ordinary photo): noise lowers the dark channel, adds contrast and its specks read as
    # light sources, so that a correct denoising read as haze added and as rings (session 33). BEFORE's noise only:
    # a brightening's amplified noise must not hide the blotches it draws around lamps (the noise test sees noise)
    if quiet > 0:
        qb, qa = cv2.GaussianBlur(pb, (0, 0), quiet), cv2.GaussianBlur(pa, (0, 0), quiet)
        yqb, yqa = cv2.cvtColor(qb, cv2.COLOR_RGB2GRAY), cv2.cvtColor(qa, cv2.COLOR_RGB2GRAY)
        s["dark_mean_change"] = float(dark_channel_np(qa, 7).mean() - dark_channel_np(qb, 7).mean())
    else:
        yqb, yqa = yb, ya
        s["dark_mean_change"] = float(dark_a.mean() - dark_b.mean())
    s["contrast_change"] = float(yqa.std() / max(yqb.std(), 1e-4) - 1)
    if s["dark_mean_change"] > t["haze"] and s["contrast_change"] < -t["contrast"]:
        harms.append("haze_added")
    # rings and dark collars around compact light sources: a radial well in what BEFORE does not predict of AFTER
    labels, table = compact_lights_np(yqb)  # lamps, windows, the sun: for this test and the next
    s["halo"] = _ring_well(yqb, yqa, labels, table) / (float(yqa.std()) + 0.02)
    if s["halo"] > t["halo"]:
        harms.append("halo")
    # blotches near them: after, beyond the local range of its best locally affine prediction from before
    # (smoothed, so that noise does not count), in a 15-px band around the compact bright sources (the halo test of
    # sessions 25-31)
    hb_, ha_ = cv2.GaussianBlur(yb, (0, 0), max(1.0, quiet)), cv2.GaussianBlur(ya, (0, 0), max(1.0, quiet))
    r = max(4, round(min(yb.shape) / 12))
    box = (2 * r + 1, 2 * r + 1)
    mb, ma = cv2.blur(hb_, box), cv2.blur(ha_, box)
    cov = cv2.blur(hb_ * ha_, box) - mb * ma
    var = cv2.blur(hb_ * hb_, box) - mb * mb
    slope = cov / (var + 1e-3 * min(1.0, hb_.mean() / 0.4) ** 2 + 1e-6)  # regularised for the image's brightness
    pred = cv2.blur(slope, box) * hb_ + cv2.blur(ma - slope * mb, box)
    k5 = np.ones((5, 5), np.uint8)
    over = np.maximum(ha_ - cv2.dilate(pred, k5), 0) + np.maximum(cv2.erode(pred, k5) - ha_, 0)
    # only compact light sources (lamps, windows, the sun): a bright sky or wall is not a lamp, and its edge
    # legitimately changes when haze is removed
    lamps = np.isin(labels, table[:, 0].astype(labels.dtype)).astype(np.uint8)
    band = (cv2.dilate(lamps, np.ones((31, 31), np.uint8)) > 0) & (lamps == 0)
    s["blotches"] = float(np.percentile(over[band], 99) / (ha_.std() + 0.02)) if band.mean() >= 0.002 else 0.0
    # ... and new structure there (session 34): AFTER's gradient that a locally scaled copy of BEFORE's gradient (9-px
    # windows) does not explain. A correct dehazing amplifies what BEFORE had (faint clouds behind the haze, edges at
    # depth edges), which departs from a locally affine prediction but adds no edge; DCP's blocks and bands over a
    # flat sky and rings round lamps are edges BEFORE did not have
    s["new_edges"] = _new_edges(hb_, ha_, band) / (ha_.std() + 0.02) if band.mean() >= 0.002 else 0.0
    if s["blotches"] > t["blotches"] and s["new_edges"] > t["new_edges"]:
        harms.append("blotches")
    return Verdict(harms, {k: round(float(v), 4) for k, v in s.items()})


def first_unharmed(
    before: np.ndarray, after: np.ndarray, strengths: tuple[float, ...] = ()
) -> tuple[float | None, Verdict]:
    """The first strength at which ``after`` is not harmed against ``before``: 1.0 (``after`` itself), else the first
    of ``strengths`` whose blend ``before + s (after - before)`` passes, else ``None``; and the verdict on ``after``
    at full strength (for the report). ``auto``'s guard and the UDAIR gate's use it."""
    verdict = judge_np(before, after)
    if verdict.ok:
        return 1.0, verdict
    for s in strengths:
        if judge_np(before, before + s * (after - before)).ok:
            return s, verdict
    return None, verdict


def harm_counts(counts: dict[str, int]) -> str:
    """How often each harm was named, most frequent first (``"halo 5, noise 2"``; ``""`` for none): benchmark tables."""
    return ", ".join(f"{h} {n}" for h, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def judge(before, after, thresholds: dict[str, float] | None = None) -> Verdict:
    """Judge a restoration: ``before`` and ``after`` as file paths, ``(H, W, 3)`` arrays or ``(3, H, W)`` /
    ``(1, 3, H, W)`` tensors in [0, 1]. Returns a :class:`Verdict`."""
    return judge_np(image_array(before), image_array(after), thresholds)
