"""Denoising: the FFDNet-family network against OpenCV's non-local means, on synthetic and real camera noise.

    python benchmarks/denoise.py --data ../shared/data [--weights runs/ffdnet/best.safetensors]

Sets (benchmark folders, reported once after the model was chosen on its validation photos):

* ``clean/CBSD68`` with white Gaussian noise of sigma 15, 25 and 50 (seeded), clipped and rounded to 8 bits as
  an image file is (published figures use unclipped noise, which is easier at sigma 50): the classic colour benchmark
  (published CBM3D 33.52 / 30.71 / 27.38 dB, FFDNet 33.87 / 31.21 / 27.96 dB);
* ``noise/polyu`` and ``noise/cc15``: real camera noise against the mean of many shots.

Methods: the noisy input; ``cv2.fastNlMeansDenoisingColored`` with its filter strength ``h = k * sigma`` and the
factor ``k`` chosen per sigma on the validation photos (every 16th ``clean/BSDS500`` photo, the denoiser's own
validation set), with sigma from Immerkaer's estimator on the real sets; the network blind (its own noise-level
estimate) and, on the synthetic set, given the true sigma. PSNR and SSIM on the whole image; seconds per 1080p
image. Writes ``benchmarks/results/denoise.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))

from clearsight.io import load_image, to_tensor  # noqa: E402
from clearsight.metrics import psnr, ssim  # noqa: E402
from clearsight.metrics.no_reference import noise_level  # noqa: E402
from clearsight.models import load_restorer  # noqa: E402

SIGMAS = (15, 25, 50)
NLM_FACTORS = (0.5, 0.65, 0.8, 1.0)


def _rgb(path: Path) -> np.ndarray:
    a = load_image(path).rgb
    return a if a.dtype == np.uint8 else (a / 257).astype(np.uint8)


def _nlm(noisy: np.ndarray, sigma: float, k: float) -> np.ndarray:
    """``noisy``: float32 (H, W, 3) in [0, 1] (may exceed it); sigma in 0-255 units."""
    u8 = (np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8)
    h = max(1.0, k * sigma)
    out = cv2.fastNlMeansDenoisingColored(u8[..., ::-1], None, h, h, 7, 21)[..., ::-1]
    return out.astype(np.float32) / 255


def _scores(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    a, b = to_tensor(np.clip(out, 0, 1).astype(np.float32)), to_tensor(clean.astype(np.float32))
    return float(psnr(a, b)[0]), float(ssim(a, b)[0])


def _net(restorer, noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    if sigma is None:
        from clearsight.infer import restore_array

        return restore_array(np.clip(noisy, 0, 1).astype(np.float32), restorer)[0]
    x = torch.from_numpy(np.ascontiguousarray(noisy, np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=restorer.bf16):
        y = restorer.net(x, sigma / 255).float()
    return y[0].permute(1, 2, 0).clamp(0, 1).numpy()


def _noisy(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Gaussian noise, then clipped and rounded to 8 bits as a noisy image file is (every method sees this)."""
    rng = np.random.default_rng(seed)
    return np.round(np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1) * 255).astype(np.float32) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", default=None, help="denoiser weights (default: the shipped ffdnet.denoise)")
    ap.add_argument("--max-images", type=int, default=0, help="at most N images per set (0: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "denoise"))
    args = ap.parse_args()
    data = Path(args.data)
    from clearsight.models.learned import WEIGHTS_DIR

    weights = args.weights or WEIGHTS_DIR / "ffdnet_denoise.safetensors"
    restorer = load_restorer(weights, "ffdnet")
    cap = (lambda f: f[: args.max_images]) if args.max_images else (lambda f: f)

    # NLM's strength, chosen on the denoiser's validation photos (never on a benchmark folder)
    import ffdnet_denoise as recipe

    _, val_files = recipe.split(data)
    val = [_rgb(f)[:256, :256].astype(np.float32) / 255 for f in val_files[:8]]
    nlm_k = {}
    for s in SIGMAS:
        best = max(NLM_FACTORS, key=lambda k, s=s: np.mean(
            [_scores(_nlm(_noisy(c, s, 7 + i), s, k), c)[0] for i, c in enumerate(val)]))  # fmt: skip
        nlm_k[s] = best
    print("NLM factors chosen on validation:", nlm_k, flush=True)

    rows: dict[str, dict[str, list[float]]] = {}

    def add(set_name: str, method: str, out: np.ndarray, clean: np.ndarray) -> None:
        p, q = _scores(out, clean)
        d = rows.setdefault(set_name, {})
        d.setdefault(f"{method} psnr", []).append(p)
        d.setdefault(f"{method} ssim", []).append(q)

    cbsd = cap(sorted((data / "clean" / "CBSD68").glob("*.png")))
    for i, f in enumerate(cbsd):
        clean = _rgb(f).astype(np.float32) / 255
        for s in SIGMAS:
            noisy = _noisy(clean, s, 1000 * s + i)
            name = f"CBSD68 sigma {s}"
            add(name, "input", noisy, clean)
            add(name, "nlm", _nlm(noisy, s, nlm_k[s]), clean)
            add(name, "ffdnet blind", _net(restorer, noisy), clean)
            add(name, "ffdnet known sigma", _net(restorer, noisy, s), clean)
        print(f"CBSD68 {i + 1}/{len(cbsd)}", flush=True)
    for real in ("polyu", "cc15"):
        folder = data / "noise" / real
        for f in cap(sorted((folder / "noisy").iterdir())):
            ref = next((folder / "clean").glob(f.stem + ".*"), None)
            if ref is None:
                continue
            noisy = _rgb(f).astype(np.float32) / 255
            clean = _rgb(ref).astype(np.float32) / 255
            est = float(noise_level(to_tensor(noisy))[0]) * 255
            name = f"{real} (real)"
            add(name, "input", noisy, clean)
            add(name, "nlm", _nlm(noisy, est, nlm_k[15]), clean)
            add(name, "ffdnet blind", _net(restorer, noisy), clean)
        print(f"{real} done", flush=True)

    frame = np.random.default_rng(0).random((1080, 1920, 3)).astype(np.float32)
    _net(restorer, frame[:256, :256])
    t0 = time.perf_counter()
    _net(restorer, frame)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    _nlm(frame, 25, nlm_k[25])
    nlm_seconds = time.perf_counter() - t0

    summary = {s: {k: float(np.mean(v)) for k, v in d.items()} for s, d in rows.items()}
    counts = {s: len(next(iter(d.values()))) for s, d in rows.items()}
    from clearsight.bench import cpu_name
    from clearsight.models._weights import read_metadata

    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "weights": str(weights), "nlm_factors": nlm_k,
            "seconds_1080p": {"ffdnet": seconds, "nlm": nlm_seconds}, "bf16": restorer.bf16,
            "weights_iterations": read_metadata(weights).get("iterations")}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "summary": summary, "counts": counts}, indent=1))
    methods = ["input", "nlm", "ffdnet blind", "ffdnet known sigma"]
    cmd = f" --weights {args.weights} --out {args.out}" if args.weights else ""
    lines = [
        f"# Denoising: FFDNet-family network ({Path(weights).stem}) against non-local means",
        "",
        f"`python benchmarks/denoise.py --data ../shared/data{cmd}` on {meta['cpu']}, {meta['cores']} cores "
        f"(bf16: {restorer.bf16}). PSNR / SSIM; NLM's strength per sigma chosen on the validation photos "
        f"({nlm_k}).",
        "",
        "| set | images | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for s, d in summary.items():
        cells = [f"{d[f'{m} psnr']:.2f} / {d[f'{m} ssim']:.3f}" if f"{m} psnr" in d else "–" for m in methods]
        lines.append(f"| {s} | {counts[s]} | " + " | ".join(cells) + " |")
    lines += ["", f"Seconds per 1920x1080 image: ffdnet {seconds:.2f} s (blind, tiled), NLM {nlm_seconds:.2f} s."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
