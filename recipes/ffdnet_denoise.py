"""Train the FFDNet-family denoiser (``clearsight.models.ffdnet``) on clean photos with realistic noise.

    python recipes/ffdnet_denoise.py --data ../shared/data --out runs/ffdnet --iters 6000

Training photos: ``clean/BSDS500`` (its CBSD68 split is not in that folder) without its validation images,
``clean/Urban100_x2HR`` and ``clean/SunHays80``. Never used: CBSD68 and Kodak24 (noise benchmarks), Set14
(IRP's model selection), the real noise pairs. Validation: every 16th BSDS500 photo (24), centre 256-px crops
with Gaussian noise of sigma 15, 25 and 50 (fixed seed), denoised blind (the built-in estimator) and with the
true level; the EMA weights with the best blind mean PSNR are written to ``OUT/best.safetensors``.

Noise, drawn per crop: white Gaussian (sigma 0-55 of 255, 45%), Poisson-Gaussian (variance a x + b^2, 25%),
the same through a Bayer mosaic and bilinear demosaicking (spatially correlated, like a camera's, 25%), and
none (5%: a clean photo must come out unchanged); 30% of the camera-like crops are then JPEG-compressed.

Resumable: running the same command again continues from ``OUT/checkpoint.pt``. On 2 cores with bf16 (AMX)
one iteration of 32 crops of 96 px takes about 0.3-0.4 s with one thread (0.6-0.7 s while other work runs).
Peak memory, measured (VmHWM, training and validation): 1.1 GB in bf16, 1.2 GB in float32.

Known gap: the noisy crops are neither clipped to [0, 1] nor rounded to 8 bits, while a noisy image file is
both; ``benchmarks/denoise.py`` feeds the network clipped, rounded images, which costs most at sigma 50.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from _loop import add_training_options, after_step, learning_rate, set_up, update_ema

from clearsight.io import load_image
from clearsight.models import build_arch
from clearsight.models._weights import save_weights

TRAIN_FOLDERS = ("clean/BSDS500", "clean/Urban100_x2HR", "clean/SunHays80")
VAL_EVERY = 16  # every 16th BSDS500 photo is validation
VAL_SIGMAS = (15, 25, 50)


def _files(root: Path, folder: str) -> list[Path]:
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
    return sorted(p for p in (root / folder).iterdir() if p.suffix.lower() in exts)


def _rgb(path: Path) -> np.ndarray:
    a = load_image(path).rgb
    if a.dtype != np.uint8:
        a = (a.astype(np.float32) / np.iinfo(a.dtype).max * 255 + 0.5).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, 2)
    return np.ascontiguousarray(a[..., :3])


def split(root: Path) -> tuple[list[Path], list[Path]]:
    bsds = _files(root, "clean/BSDS500")
    val = bsds[::VAL_EVERY]
    train = [p for p in bsds if p not in val] + [p for f in TRAIN_FOLDERS[1:] for p in _files(root, f)]
    return train, val


def _bayer_demosaic(x: torch.Tensor) -> torch.Tensor:
    """RGGB mosaic of ``x`` (B, 3, H, W) and bilinear demosaicking (spatially correlates the noise)."""
    b, _, h, w = x.shape
    mask = torch.zeros(1, 3, h, w, dtype=x.dtype)
    mask[:, 0, 0::2, 0::2] = 1
    mask[:, 1, 0::2, 1::2] = 1
    mask[:, 1, 1::2, 0::2] = 1
    mask[:, 2, 1::2, 1::2] = 1
    k_rb = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], dtype=x.dtype)
    k_g = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]], dtype=x.dtype)
    k = torch.stack([k_rb, k_g, k_rb])[:, None]
    return F.conv2d(F.pad(x * mask, (1, 1, 1, 1), mode="reflect"), k, groups=3)


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    a = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", a[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(dec)).permute(2, 0, 1).float() / 255


def add_noise(clean: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noisy, level)``: one noise draw per image of ``clean`` (B, 3, H, W); ``level`` (B, 1, H, W) is the
    per-pixel noise standard deviation in [0, 1] units (the estimator's target)."""
    b = clean.shape[0]
    noisy, level = clean.clone(), torch.zeros(b, 1, *clean.shape[-2:])
    for i in range(b):
        u = float(torch.rand((), generator=g))
        x = clean[i : i + 1]
        if u < 0.45:
            s = float(torch.rand((), generator=g)) * 55 / 255
            noisy[i] = (x + s * torch.randn(x.shape, generator=g))[0]
            level[i] = s
        elif u < 0.95:
            a = float(torch.rand((), generator=g)) ** 2 * 0.03
            r = float(torch.rand((), generator=g)) * 0.04
            std = (a * x + r * r).sqrt()
            y = x + std * torch.randn(x.shape, generator=g)
            lev = std.mean(1, keepdim=True)
            if u >= 0.7:  # camera-like: through a Bayer mosaic, correlated across neighbours
                y = _bayer_demosaic(y)
                lev = lev * 0.75
            if float(torch.rand((), generator=g)) < 0.3:
                y = _jpeg(y[0], 70 + int(torch.randint(0, 26, (), generator=g)))[None]
            noisy[i], level[i] = y[0], lev[0]
    return noisy, level


class Crops:
    """Random crops (with flips and quarter turns) of photos held in memory as uint8."""

    def __init__(self, files: list[Path], crop: int, seed: int) -> None:
        self.images = [_rgb(f) for f in files]
        self.images = [a for a in self.images if min(a.shape[:2]) >= crop]
        self.crop, self.rng = crop, np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for i in range(n):
            a = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(0, a.shape[0] - self.crop + 1)
            x = self.rng.integers(0, a.shape[1] - self.crop + 1)
            c = a[y : y + self.crop, x : x + self.crop]
            c = np.rot90(c, self.rng.integers(4))
            out[i] = c[:, ::-1] if self.rng.random() < 0.5 else c
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255


def validation_set(files: list[Path], size: int = 256) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1234)
    items = []
    for f in files:
        a = _rgb(f)
        h, w = a.shape[:2]
        s = min(size, h, w) // 2 * 2
        y, x = (h - s) // 2, (w - s) // 2
        clean = torch.from_numpy(np.ascontiguousarray(a[y : y + s, x : x + s])).permute(2, 0, 1)[None].float() / 255
        for sigma in VAL_SIGMAS:
            noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=g)
            items.append((sigma, noisy, clean))
    return items


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


@torch.no_grad()
def validate(net, items, amp: bool) -> dict[str, float]:
    net.eval()
    res: dict[str, list[float]] = {}
    for sigma, noisy, clean in items:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            blind = net(noisy).float()
            known = net(noisy, sigma / 255).float()
        res.setdefault(f"blind{sigma}", []).append(psnr(blind, clean))
        res.setdefault(f"known{sigma}", []).append(psnr(known, clean))
    net.train()
    out = {k: float(np.mean(v)) for k, v in res.items()}
    out["blind_mean"] = float(np.mean([out[f"blind{s}"] for s in VAL_SIGMAS]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the shared data folder (holds clean/BSDS500, ...)")
    add_training_options(ap, "runs/ffdnet", iters=6000, batch=32, crop=96, val_every=500)
    args = ap.parse_args()
    out, amp = set_up(args)
    model_args = {"preset": args.preset}
    net = build_arch("ffdnet", **model_args).to(memory_format=torch.channels_last)
    ema = build_arch("ffdnet", **model_args)
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.0)
    train_files, val_files = split(Path(args.data))
    g = torch.Generator().manual_seed(args.seed)
    start, best = 0, -1.0
    ckpt = out / "checkpoint.pt"
    crops = Crops(train_files, args.crop, args.seed)
    if ckpt.is_file():
        st = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(st["net"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["gen"])
        crops.rng.bit_generator.state = st["crop_rng"]
        start, best = st["iteration"], st["best"]
        print(f"resumed at iteration {start} (best blind mean {best:.3f} dB)")
    val_items = validation_set(val_files)
    print(f"{len(crops.images)} training photos, {len(val_files)} validation photos, bf16={amp}")
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    t0, t_last = time.time(), time.time()
    meta = dict(recipe=f"recipes/ffdnet_denoise.py --preset {args.preset} --batch {args.batch} --crop "
                f"{args.crop} --lr {args.lr} --seed {args.seed}", train=list(TRAIN_FOLDERS),
                validation=f"every {VAL_EVERY}th of clean/BSDS500, sigma {VAL_SIGMAS}")  # fmt: skip
    for it in range(start, args.iters):
        lr = learning_rate(it, args.iters, args.lr, warmup=200)
        for group in opt.param_groups:
            group["lr"] = lr
        clean = crops.batch(args.batch)
        noisy, level = add_noise(clean, g)
        noisy = noisy.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            est = net.estimate(noisy)
            target = F.avg_pool2d(level, 2)
            known = torch.rand(args.batch, 1, 1, 1, generator=g) < 0.5
            cond = torch.where(known, target, est.detach().float())
            out_img = net(noisy, F.interpolate(cond, scale_factor=2, mode="nearest"))
            loss_img = F.l1_loss(out_img.float(), clean)
            loss_est = F.l1_loss(est.float(), target)
            loss = loss_img + 2.0 * loss_est
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.body.parameters(), 1.0)  # apart: the estimator's gradient is larger
        torch.nn.utils.clip_grad_norm_(net.estimator.parameters(), 1.0)
        opt.step()
        update_ema(ema, net, it, cap=0.999)
        n = it + 1
        if n % 20 == 0:
            dt = (time.time() - t_last) / 20
            t_last = time.time()
            writer.writerow([n, f"{loss_img.item():.5f}", f"{loss_est.item():.5f}", f"{lr:.2e}", f"{dt:.3f}"])
            log.flush()
            print(f"it {n} loss {loss_img.item():.4f} est {loss_est.item():.4f} lr {lr:.1e} {dt:.2f} s/it", flush=True)
        best, stop = after_step(
            n, args, out, t0, best, lambda: validate(ema, val_items, amp), "blind_mean",
            lambda n_, res: save_weights(ema, out / "best.safetensors", "ffdnet", model_args, iterations=str(n_),
                                         validation_scores=json.dumps(res), **meta),
            lambda b, n_=n: {"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                             "gen": g.get_state(),
                     "crop_rng": crops.rng.bit_generator.state, "iteration": n_, "best": b},
        )  # fmt: skip
        if stop:
            break


if __name__ == "__main__":
    main()
