"""Learned networks behind the :class:`~clearsight.priors.base.Restorer` protocol, so the tiling engine,
``clearsight restore`` and the benchmarks run them like the classical restorers.

Speed on a CPU comes from two choices, both options:

* ``precision="bf16"`` runs the network under bfloat16 autocast with channels-last tensors (about 2x faster
  than float32 on CPUs with AMX); ``"auto"`` uses it where the CPU supports bfloat16, ``"fp32"`` never.
* ``max_pixels``: a larger image (or tile) is restored at a reduced size, and the result is carried back to
  full resolution by a guided (locally affine, per channel) upsampling: the network's colour and contrast
  correction is transferred while the full-resolution detail comes from the input. ``None`` restores at
  full resolution.

One choice concerns quality: ``affine`` (dehazing networks: CORUN, RSR) replaces the network's output by its
best locally affine function of the input, ``out = a * in + b`` per channel, fitted in windows whose radius is
``affine`` times the shorter side. The scattering model makes a dehazed image exactly such a function where the
transmission is locally constant, ``J = (I - A) / t + A``, so the projection keeps the network's haze removal
and colour correction and drops what no transmission could produce: the blotches a small network paints into
flat sky and the texture it invents or smears. It keeps the input's noise, so it is off for the all-in-one
(denoising, deraining) models. Measured on the benchmarks in ``docs/learned.md``.

``affine_mode`` says how free that function is. ``"channel"`` fits a gain and an offset per colour channel: it can
also shift and rotate colours, and a network trained on synthetic haze uses that freedom on real photos (grey smog
skies turned blue, olive tints). ``"shared"`` fits one gain and one offset for all three channels,
``out_c = a * in_c + m``: a neutral pixel stays neutral and no hue can turn, only contrast, brightness and
saturation change locally; this is the scattering model's dehazing with a grey airlight, which is what the
networks are trained to remove.

``gate`` (all-in-one networks with an ``identify`` method: UDAIR) identifies the degradation once, on the preview, and
restrains the network where the task cannot change the picture's tone: an image identified as ``clean`` is returned
unchanged, and so is one identified with a probability under :data:`GATE_MIN_PROB` (unsure; night haze:
:data:`GATE_TASK_MIN_PROB`), or as ``low_light`` or ``night_haze`` while brighter than :data:`GATE_MAX_LUMA` allows;
for ``noise`` and ``blur`` the result keeps the input's low frequencies (below a Gaussian of :data:`GATE_SIGMA` pixels
at the pass's resolution) and takes only the finer ones from the network, so a denoiser cannot brighten or tint a dim
photo. For day haze, sand-dust and night haze the result is projected as ``affine`` does (:data:`GATE_PROJECTION`;
with one gain for the three channels for day haze, so no hue can turn). Low light and rain (whose synthetic veil is
low-frequency) keep the network's output. A photo darker than :data:`GATE_DARK_LUMA` is never held back: what the
identifier calls noise, blur or clean there is most often an underexposed photo that needs brightening, so it gets the
network's output as it is. Those dark photos, and photos called noise or blur, are acted on only when the real-photo
recogniser that ``auto`` uses finds some degradation in them (:data:`GATE_CONFIRM`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from .._errors import ClearsightError
from ..priors.base import DARK_LUMA, Restorer, RestorerState, make_preview, mean_luma
from ._weights import WEIGHTS_DIR

__all__ = ["NetworkRestorer", "affine_project", "guided_upsample", "shared_gain_upsample", "WEIGHTS_DIR"]


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_upsample(
    low_in: np.ndarray, low_out: np.ndarray, full_in: np.ndarray, radius: int = 4, eps: float = 1e-4
) -> np.ndarray:
    """Carry a low-resolution restoration to full resolution.

    Fits ``out = a * in + b`` per channel in windows of ``low_in -> low_out`` (a guided filter with the input
    as guide), upsamples ``a`` and ``b`` bilinearly and applies them to ``full_in``. All arrays are float32
    ``(H, W, 3)``.
    """
    mi, mo = _box(low_in, radius), _box(low_out, radius)
    cov = _box(low_in * low_out, radius) - mi * mo
    var = _box(low_in * low_in, radius) - mi * mi
    a = cov / (var + eps)
    b = mo - a * mi
    a, b = _box(a, radius), _box(b, radius)
    h, w = full_in.shape[:2]
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
    return a * full_in + b


def shared_gain_upsample(
    low_in: np.ndarray, low_out: np.ndarray, full_in: np.ndarray, radius: int, eps: float = 1e-5
) -> np.ndarray:
    """Like :func:`guided_upsample` with one gain ``a`` and one offset ``m`` per window for the three channels,
    ``out_c = a * in_c + m``, fitted by least squares over the window's pixels and channels: the result has the
    input's hues (a grey pixel stays grey). Arrays are float32 ``(H, W, 3)``."""
    n = low_in.shape[2]
    mi, mo = _box(low_in, radius), _box(low_out, radius)
    cov = (_box(low_in * low_out, radius) - mi * mo).sum(2)
    var = (_box(low_in * low_in, radius) - mi * mi).sum(2)
    # the channel means' own spread belongs to the fit too: pool it with the within-channel moments
    ci, co = mi.mean(2, keepdims=True), mo.mean(2, keepdims=True)
    cov += ((mi - ci) * (mo - co)).sum(2)
    var += ((mi - ci) ** 2).sum(2)
    a = cov / (var + n * eps)
    m = co[..., 0] - a * ci[..., 0]
    a, m = _box(a, radius), _box(m, radius)
    h, w = full_in.shape[:2]
    a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return a[..., None] * full_in + m[..., None]


#: Tasks for which the gate keeps the input's tone, and the Gaussian (pixels at the pass's resolution) that splits
#: tone from detail: chosen on Kodak24 validation (``docs/allinone.md``).
GATE_TONE_TASKS = ("noise", "blur")
GATE_SIGMA = 4.0
#: A photo identified as one of these tasks whose mean luma is above the value is returned unchanged: it is too bright
#: to be what the identifier says, and the network would brighten or re-light it. Low light: ``auto``'s
#: :data:`~clearsight.priors.base.DARK_LUMA`, so that only a dark photo is brightened. Between 0.15 and 0.3 an
#: underexposed photo and a dim scene photographed as it looks are identified alike (probability 0.9 and more); the
#: validation rows ``low_light`` and ``dim_noise`` of ``benchmarks/udair_gate.py`` weigh the two (0.3 until session
#: 27, the 95th percentile of the ``low_light`` synthesis; 0.2 until session 36: the sum of the two rows ties, 46.98
#: against 47.00 dB at 0.15, and 0.15 is the toolkit's one definition of dark). Night haze: about the 95th
#: percentile of the ``night_haze`` synthesis (0.465 over 192 BSDS500 photos).
GATE_MAX_LUMA = {"low_light": DARK_LUMA, "night_haze": 0.47}
#: Tasks whose result the gate replaces by its best locally affine function of the input (``affine`` projection,
#: radius :data:`GATE_PROJECTION_RADIUS` of the pass's shorter side), and how free that function is: the dehazing
#: tasks, whose restoration is such a function by the scattering model. Chosen on Kodak24 validation
#: (``docs/allinone.md``): day haze ``shared`` (+0.1 dB, and the judge's harm on the validation outputs 10 of 24 -> 0),
#: sand-dust ``channel`` (+0.6 dB: removing the dust's colour needs a gain per channel; ``shared`` lost 1.9 dB), night
#: haze ``channel`` (equal, harm 11 -> 8).
#: The key ``dark`` (not set) would project every photo the gate treats as dark, whatever its call: tried in session 37,
#: it lost 0.03 SSIM on the real short exposures of ``lol_train`` (the input's noise is brightened with it).
GATE_PROJECTION = {"day_haze": "shared", "sand_dust": "channel", "night_haze": "channel"}
GATE_PROJECTION_RADIUS = 0.07
#: Below this identification probability the gate returns the photo unchanged (unsure: do nothing); chosen on
#: Kodak24 validation (``benchmarks/udair_gate.py``; 0.6 and 0.8 were also tried, ``docs/allinone.md``).
GATE_MIN_PROB = 0.7
#: Tasks that need a surer identification than :data:`GATE_MIN_PROB`. Night haze: real dim photos with nothing to
#: restore are called night haze with probabilities from 0.5 to 1.0, where the ``night_haze`` synthesis is called it
#: at 1.0 almost always; chosen on validation (``benchmarks/udair_gate.py``, rows ``night_haze``, ``real_dim`` and
#: ``real_dim_noise``; ``docs/allinone.md``).
GATE_TASK_MIN_PROB = {"night_haze": 0.95}
#: A photo darker than this mean luma goes to the network whatever it is identified as (``auto``'s
#: :data:`~clearsight.priors.base.DARK_LUMA`; 0.1 was tried on validation in session 30: the clean dim photos gained
#: 0.39 dB, the real ``lol_train`` pairs lost 0.48, ``docs/allinone.md``).
GATE_DARK_LUMA = DARK_LUMA
#: Tasks whose result the gate checks on the preview with the judge (:func:`clearsight.judging.judge_np`); a harmed
#: result is retried at these strengths (``x + s (y - x)``), and left out (the photo unchanged) when harmed at every
#: one. The key ``"dark"`` checks every photo of the dark branch (darker than :data:`GATE_DARK_LUMA`), whatever it
#: was identified as; ``"dark_as_is"`` only those the identifier called clean, noise or blur (the network's output
#: as it is). Empty: no check.
GATE_GUARD: dict[str, tuple[float, ...]] = {}
#: Calls the real-photo recogniser (the one ``auto`` uses, :mod:`clearsight.recognition`) must confirm before the gate
#: acts on them: the photo is returned unchanged unless the recogniser finds some degradation in it. UDAIR's identifier
#: learned our synthesis, and on real photos it brightens dim scenes photographed as they look and "sharpens" sharp
#: ones; the recogniser was trained on real folders. The key ``"dark_as_is"``: a photo darker than
#: :data:`GATE_DARK_LUMA` that the identifier calls clean, noise or blur, which the gate gives to the network as it is.
#: Empty: the identifier alone decides.
#: Chosen on validation (``benchmarks/udair_gate.py``, session 36, ``docs/allinone.md``): clean dim photos
#: 48.84 -> 49.24 dB, the synthetic noise row 29.17 -> 29.08, every other row unchanged.
GATE_CONFIRM: tuple[str, ...] = ("dark_as_is", "noise", "blur")


def keep_tone(x: np.ndarray, out: np.ndarray, sigma: float) -> np.ndarray:
    """``out``'s detail on ``x``'s tone: ``out - G(out) + G(x)`` with a Gaussian ``G`` of ``sigma`` pixels."""
    blur = lambda a: cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    return out - blur(out) + blur(x)


#: Regularisation of the locally affine projection: small, so the fit follows the network wherever the input
#: has any contrast (1e-4 and more visibly flatten the result on the haze benchmarks).
_AFFINE_EPS = 1e-5


def affine_project(
    low: np.ndarray, out: np.ndarray, full: np.ndarray, fraction: float, mode: str = "channel"
) -> np.ndarray:
    """``out`` (the network's result on ``low``) replaced by its best locally affine function of ``low``, fitted in
    windows of radius ``fraction`` of ``low``'s shorter side and applied to ``full`` (see the module notes); ``mode``
    ``"channel"`` (:func:`guided_upsample`) or ``"shared"`` (:func:`shared_gain_upsample`)."""
    radius = max(1, round(fraction * min(low.shape[:2])))
    fit = shared_gain_upsample if mode == "shared" else guided_upsample
    return fit(low, np.ascontiguousarray(out), full, radius=radius, eps=_AFFINE_EPS)


def _bf16_ok() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older builds
        return False


class NetworkRestorer(Restorer):
    """Run an image-to-image network as a restorer.

    Args:
        net: the network; ``net(x)`` maps ``(B, 3, H, W)`` in [0, 1] to the restored image. If it has an
            ``estimate_airlight`` hook (CORUN with ``airlight="estimate"``), the airlight is estimated once
            on the preview, so every tile uses the same one; likewise an ``estimate_globals`` hook (the
            low-light enhancer's exposure), passed back as ``net(x, globals_=...)``.
        name: registry name (for reports); description: one line.
        precision: ``auto``, ``bf16`` or ``fp32``.
        max_pixels: restore at most this many pixels at once (see the module notes); ``None``: full size.
        halo: context in pixels around each tile.
        tta: per-image test-time adaptation (networks with a ``restore_tta`` method: UDAIR); each tile or
            reduced-size pass is one episode.
        affine: radius of the locally affine projection's windows (see the module notes) as a fraction of the shorter
            side of the pass, e.g. ``0.06``; ``None``: off.
        affine_mode: ``"channel"`` (a gain and an offset per colour channel) or ``"shared"`` (one for all three:
            keeps the input's hues), see the module notes.
        gate: identify the degradation on the preview; leave an image alone when it is identified as clean, when the
            identification is unsure, or when it is too bright for low light or night haze; keep the input's tone
            for noise and blur (see the module notes).
        onnx: a :class:`~clearsight.models.onnx.OnnxNetwork` exported from ``net``: the network's pass runs in
            onnxruntime (float32); the whole-image estimates on the preview and everything around the pass stay
            as they are.
    """

    def __init__(
        self,
        net: nn.Module,
        name: str = "network",
        description: str = "",
        precision: str = "auto",
        max_pixels: int | None = 300_000,
        halo: int = 32,
        tta: bool = False,
        affine: float | None = None,
        onnx=None,
        affine_mode: str = "channel",
        gate: bool = False,
    ) -> None:
        if onnx is not None and tta:
            raise ValueError(f"{name}: test-time adaptation needs the torch backend, not onnx")
        self.onnx = onnx
        if affine is not None and not 0 < affine <= 1:
            raise ValueError(f"affine must be a fraction of the image side in (0, 1], got {affine}")
        self.affine = affine
        if affine_mode not in ("channel", "shared"):
            raise ValueError(f"affine_mode must be channel or shared, got {affine_mode!r}")
        self.affine_mode = affine_mode
        if gate and not hasattr(net, "identify"):
            raise ValueError(f"{name}: the gate needs a network that identifies degradations (udair models)")
        self.gate = bool(gate)
        if precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
        if tta and not hasattr(net, "restore_tta"):
            raise ValueError(f"{name}: test-time adaptation needs a network that supports it (udair models)")
        self.tta = bool(tta)
        self.net = net.eval()
        self.name, self.description = name, description
        self.bf16 = precision == "bf16" or (precision == "auto" and _bf16_ok())
        self.max_pixels = max_pixels
        self._halo = int(halo)
        if self.bf16:
            self.net.to(memory_format=torch.channels_last)

    @property
    def halo(self) -> int:
        return self._halo

    @property
    def balanced_tiles(self) -> bool:
        """Balanced (smaller) tiles only for a network whose every output pixel sees no further than the halo
        (``tile_local``: the FFDNet denoiser); CORUN's and UDAIR's attention spans the tile, so their result moves
        further from the whole image's as tiles shrink (a CORUN test image: 5.3 codes off on 96-px tiles, under 4 on
        128-px ones), and they keep tiles of the requested size."""
        return bool(getattr(self.net, "tile_local", False))

    @property
    def auto_tile_pixels(self) -> int | None:
        """Images above this many pixels are tiled when tiling is automatic: at full resolution
        (``max_pixels=None``) a network's activations grow with the image (about 1.6 GB per megapixel for CORUN
        and 4.3 GB for UDAIR in float32), so it runs on 1024-px tiles above 1.5 MP; a reduced-size pass is
        bounded already and keeps the engine's default."""
        return None if self.max_pixels else 1_500_000

    def _run(
        self, x: torch.Tensor, airlight: torch.Tensor | None, globals_: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.onnx is not None:
            extra = airlight if airlight is not None else globals_
            if extra is None and len(self.onnx.inputs) > 1:  # CORUN without a preview estimate: as the net does
                extra = self.net.estimate_airlight(x.float())
            out = self.onnx.run(x.float().numpy(), extra.float().numpy() if extra is not None else None)
            return torch.from_numpy(out).clamp(0, 1)
        kwargs = {"airlight": airlight} if airlight is not None else {}
        if globals_ is not None:
            kwargs["globals_"] = globals_
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if self.bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.tta:
                return self.net.restore_tta(x).float().clamp(0, 1)
            return self.net(x, **kwargs).float().clamp(0, 1)

    def prepare_image(self, arr: np.ndarray) -> RestorerState:
        return self._prepare(make_preview(arr), arr)

    def prepare(self, preview: np.ndarray) -> RestorerState:
        return self._prepare(preview, preview)

    def _prepare(self, preview: np.ndarray, arr: np.ndarray) -> RestorerState:
        """``arr``: the whole image, for the recogniser that confirms the gate's calls (:data:`GATE_CONFIRM`)."""
        params = {}
        hook = getattr(self.net, "estimate_airlight", None)
        if hook is not None:
            a = hook(torch.from_numpy(np.ascontiguousarray(preview)).permute(2, 0, 1)[None])
            if a is not None:
                params["airlight"] = a[0, :, 0, 0].tolist()
        hook = getattr(self.net, "estimate_globals", None)
        if hook is not None:
            params["globals"] = hook(torch.from_numpy(np.ascontiguousarray(preview)).permute(2, 0, 1)[None])[0].tolist()
        reason = f"airlight {np.round(params['airlight'], 3).tolist()}" if "airlight" in params else ""
        if self.gate and min(preview.shape[:2]) >= 16:
            from .udair import identify_view

            x = torch.from_numpy(np.ascontiguousarray(preview)).permute(2, 0, 1)[None]
            with torch.no_grad():
                probs = self.net.identify(identify_view(x))[0]
            task, prob = self.net.config.tasks[int(probs.argmax())], float(probs.max())
            reason = f"identified {task} ({prob:.2f})"
            luma = mean_luma(preview)
            dark = luma < GATE_DARK_LUMA
            if dark:  # never held back: an underexposed photo needs brightening, whatever it seems
                params["dark"] = True
                if task in ("clean", *GATE_TONE_TASKS):
                    reason += f", but dark (mean luma {luma:.2f}): the network's output as it is"
                else:
                    params["task"] = task
            elif task != "clean" and prob < (least := GATE_TASK_MIN_PROB.get(task, GATE_MIN_PROB)):
                params["task"] = "clean"
                reason += f", unsure (below {least:g}): left unchanged"
            elif luma > GATE_MAX_LUMA.get(task, 1.0):
                params["task"] = "clean"
                reason += f", but too bright for it (mean luma {luma:.2f}): left unchanged"
            else:
                params["task"] = task
                what = {"clean": "left unchanged", **{t: "input's tone kept" for t in GATE_TONE_TASKS}}
                what |= {t: f"projected onto the input ({m} gain)" for t, m in GATE_PROJECTION.items()}
                reason += f": {what[task]}" if task in what else ""
            branch = "dark_as_is" if dark and "task" not in params else params["task"]
            if branch in GATE_CONFIRM:
                from ._recognise import recognise

                rec = recognise(arr)
                if rec.is_clean:
                    params["task"] = "clean"
                    reason += "; the recogniser finds nothing to restore: left unchanged"
            guard = "dark" if dark and "dark" in GATE_GUARD else branch
            if guard in GATE_GUARD and params.get("task") != "clean":
                reason += self._guard(preview, params, GATE_GUARD[guard])
        return RestorerState(self.name, reason, params)

    def _guard(self, preview: np.ndarray, params: dict, strengths: tuple[float, ...]) -> str:
        """Judge the gated result on the preview; set ``params["strength"]`` (or the task to ``clean``) when it
        harms. Returns what to add to the report."""
        from ..judging import first_unharmed

        out = self.process(preview, RestorerState(self.name, "", params))
        strength, verdict = first_unharmed(preview, out, strengths)
        said = f"{verdict}".replace("harmed:", "harmed")
        if strength is None:
            params["task"] = "clean"
            return f"; left unchanged (it {said} at every strength)"
        if strength != 1.0:
            params["strength"] = strength
            return f"; at strength {strength} (at full strength it {said})"
        return ""

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        task = state.params.get("task")
        if task == "clean":
            return np.array(x, np.float32)
        h, w = x.shape[:2]
        a = state.params.get("airlight")
        air = torch.tensor(a, dtype=torch.float32).view(1, 3, 1, 1) if a is not None else None
        scale = 1.0
        if self.max_pixels and h * w > self.max_pixels:
            scale = (self.max_pixels / (h * w)) ** 0.5
        if scale < 1.0:
            lh, lw = max(16, round(h * scale)), max(16, round(w * scale))
            low = cv2.resize(x, (lw, lh), interpolation=cv2.INTER_AREA)
        else:
            low = np.ascontiguousarray(x)
        gl = state.params.get("globals")
        gl = torch.tensor(gl, dtype=torch.float32)[None] if gl is not None else None
        out = self._run(torch.from_numpy(low).permute(2, 0, 1)[None], air, gl)[0].permute(1, 2, 0).numpy()
        if not np.isfinite(out).all():
            raise ClearsightError(
                f"{self.name}: the network produced NaN or infinite values; its weights are broken "
                "(or bf16 overflowed: try --precision fp32)"
            )
        affine, mode = self.affine, self.affine_mode
        key = "dark" if state.params.get("dark") and "dark" in GATE_PROJECTION else task
        if not affine and key in GATE_PROJECTION:
            affine, mode = GATE_PROJECTION_RADIUS, GATE_PROJECTION[key]
        if affine:
            res = affine_project(low, out, x, affine, mode)
        elif scale < 1.0:
            res = guided_upsample(low, np.ascontiguousarray(out), x)
        else:
            res = out  # the clip below copies it anyway
        if task in GATE_TONE_TASKS:
            res = keep_tone(x, np.asarray(res, np.float32), GATE_SIGMA / scale)
        strength = state.params.get("strength", 1.0)
        if strength != 1.0:  # the gate's guard found the full result harmful (see _guard)
            res = x + strength * (np.asarray(res, np.float32) - x)
        return np.clip(res, 0, 1).astype(np.float32)

    def __repr__(self) -> str:
        backend = f", backend=onnx:{self.onnx.path.name}" if self.onnx is not None else ""
        mode = f", affine_mode={self.affine_mode!r}" if self.affine else ""
        mode += ", gate=True" if self.gate else ""
        return (
            f"NetworkRestorer({self.name!r}, bf16={self.bf16}, max_pixels={self.max_pixels}, tta={self.tta}, "
            f"affine={self.affine}{mode}{backend})"
        )
