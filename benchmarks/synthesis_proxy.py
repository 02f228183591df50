"""Synthesis proxy benchmark: which synthesis makes a network generalise best?

The same small reference network (a 3-level residual U-Net with an image-wide context vector, about 0.9 M
parameters; ``--net plain`` drops the context, as in the runs before session 20) is trained with the
same budget on each synthesis variant (depth source x preset), then scored on ``haze/sots_indoor``
(PSNR/SSIM; indoor scenes, never trained on) and, without reference, on the real hazy sets under
``haze/`` (NIQE, BRISQUE, haze score and contrast of the raw network output, beside the input's and the
classical DCPs'; before/after montages with ``--montage``).

Usage::

    python benchmarks/synthesis_proxy.py --data ../shared/data                       # 600 s per variant on CPU
    python benchmarks/synthesis_proxy.py --data ../shared/data --iterations 3000     # fixed iterations (e.g. GPU)
    python benchmarks/synthesis_proxy.py --render-only                               # Markdown again from the JSON

Writes ``benchmarks/results/synthesis_proxy.{json,md}``. Training uses bf16 autocast and channels-last.
The budget is either wall time (``--seconds``, default 600: "the same CPU budget") or a fixed number of
iterations (``--iterations``); the results say which, and on what device.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from clearsight.bench import cpu_name
from clearsight.degrade.dataset import SynthesisDataset, image_files
from clearsight.degrade.pipeline import PipelineConfig, load_pipeline_config
from clearsight.infer import restore_array
from clearsight.io import load_image, to_tensor, write_image
from clearsight.metrics import psnr, ssim
from clearsight.metrics.brisque import brisque_np
from clearsight.metrics.niqe import niqe_np
from clearsight.metrics.no_reference import haze_score, rms_contrast
from clearsight.models import AFFINE_DEFAULTS, create_model
from clearsight.models.learned import affine_project

# day_haze's ranges with hazier near points (its calibrated near is 0.0-0.1)
_HAZY_NEAR = load_pipeline_config(Path(__file__).resolve().parents[1] / "recipes" / "day_haze_near.yaml")

# variant name -> (preset or config, depth source)
VARIANTS = {
    "day_haze+geometry": ("day_haze", "geometry"),
    "day_haze+random": ("day_haze", "random"),
    "day_haze+scene": ("day_haze", "scene"),
    "day_haze+mixed": ("day_haze", "mixed"),
    "ridcp+geometry": ("ridcp", "geometry"),
    "hazy_near+geometry": (_HAZY_NEAR, "geometry"),
    "hazy_near+random": (_HAZY_NEAR, "random"),
    "uncalibrated+geometry": (
        PipelineConfig([{"op": "day_haze", "beta": (0.2, 2.8), "airlight": (0.25, 1.0)}]),
        "geometry",
    ),
}


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class ProxyUNet(nn.Module):
    """Reference network of the proxy benchmark: 3 scales, residual blocks, global residual.

    With ``context`` (the default since session 20) the bottleneck also receives an image-wide context vector:
    the mean of its features through a small MLP, added back at every position. Haze density and airlight are
    properties of the whole image, which the plain network (receptive field about 40 px) can only guess from a
    patch. The MLP's last layer starts at zero, so training starts from the plain network's function.
    """

    size_divisor = 4

    def __init__(self, width: int = 32, context: bool = True) -> None:
        super().__init__()
        w = width
        self.inp = nn.Conv2d(3, w, 3, padding=1)
        self.e1 = Block(w)
        self.down1 = nn.Conv2d(w, 2 * w, 2, stride=2)
        self.e2 = Block(2 * w)
        self.down2 = nn.Conv2d(2 * w, 4 * w, 2, stride=2)
        self.mid = nn.Sequential(Block(4 * w), Block(4 * w))
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.d2 = Block(2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.d1 = Block(w)
        self.out = nn.Conv2d(w, 3, 3, padding=1)
        self.context = None
        if context:
            self.context = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.GELU(), nn.Linear(4 * w, 4 * w))
            nn.init.zeros_(self.context[2].weight)
            nn.init.zeros_(self.context[2].bias)

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.size_divisor, (-w) % self.size_divisor
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
        e1 = self.e1(self.inp(xp))
        e2 = self.e2(self.down1(e1))
        m = self.down2(e2)
        if self.context is not None:
            m = m + self.context(m.float().mean((-2, -1)))[..., None, None].to(m.dtype)
        m = self.mid(m)
        d2 = self.d2(self.up2(m) + e2)
        d1 = self.d1(self.up1(d2) + e1)
        return (xp + self.out(d1).float())[..., :h, :w]


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)  # workers run in parallel; threads inside each would oversubscribe the cores


def train_variant(name, preset, depth, clean_dirs, args, device) -> tuple[nn.Module, dict]:
    torch.manual_seed(args.seed)
    ds = SynthesisDataset(clean_dirs, preset=preset, crop=args.crop, length=10**7, seed=1 + args.seed, depth=depth)
    workers = args.workers if args.workers >= 0 else max(1, (os.cpu_count() or 2) - 1)
    loader = DataLoader(
        ds,
        batch_size=args.batch,
        num_workers=workers,
        shuffle=False,
        drop_last=True,
        persistent_workers=workers > 0,
        worker_init_fn=_one_thread,
        prefetch_factor=4 if workers > 0 else None,
    )
    net = ProxyUNet(args.width, context=args.net == "context").to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    t0 = time.time()
    it = 0
    losses = []
    for batch in loader:
        frac = (time.time() - t0) / args.seconds if args.iterations is None else it / args.iterations
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        x = batch["degraded"].to(device).contiguous(memory_format=torch.channels_last)
        y = batch["clean"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = net(x)
        loss = F.l1_loss(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % 200 == 0:
            print(f"    {name}: it {it} loss {np.mean(losses[-200:]):.4f} ({time.time() - t0:.0f} s)", flush=True)
    info = {
        "iterations": it,
        "seconds": time.time() - t0,
        "final_loss": float(np.mean(losses[-100:])) if losses else None,
    }
    return net.eval(), info


@torch.no_grad()
def run_net(net, x, device):
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return net(x.to(device).contiguous(memory_format=torch.channels_last)).float().clamp(0, 1).cpu()


def project(x: torch.Tensor, out: torch.Tensor, fraction: float = AFFINE_DEFAULTS["corun"]) -> torch.Tensor:
    """The locally affine projection that clearsight applies to its dehazing networks (``docs/learned.md``)."""
    xi, oi = (np.ascontiguousarray(t[0].permute(1, 2, 0).numpy()) for t in (x, out))
    res = affine_project(xi, oi, xi, fraction)
    return torch.from_numpy(np.clip(res, 0, 1)).permute(2, 0, 1)[None]


REAL = ("haze/real_day", "haze/real_sand", "haze/real_night")
MONTAGE_PER_SET = 2  # images of each real set in a variant's montage
MAX_SIDE = 1024  # real photos are scored at this longest side at most


def real_inputs(data: Path) -> dict[str, list[torch.Tensor]]:
    """The real hazy photos, each at most ``MAX_SIDE`` px on its longest side."""
    sets = {}
    for key in REAL:
        xs = []
        for f in image_files(data / key):
            x = to_tensor(load_image(f).rgb)
            if max(x.shape[-2:]) > MAX_SIDE:
                x = F.interpolate(x, scale_factor=MAX_SIDE / max(x.shape[-2:]), mode="area").clamp(0, 1)
            xs.append(x)
        sets[key] = xs
    return sets


def nr_scores(outs: list[torch.Tensor]) -> dict[str, float]:
    """Set means of the no-reference scores of a method's outputs."""
    arrs = [o[0].permute(1, 2, 0).double().numpy() for o in outs]
    return {
        "niqe": float(np.mean([niqe_np(a) for a in arrs])),
        "brisque": float(np.mean([brisque_np(a) for a in arrs])),
        "haze": float(np.mean([haze_score(o).item() for o in outs])),
        "contrast": float(np.mean([rms_contrast(o).item() for o in outs])),
    }


def _montage(rows: list[tuple[torch.Tensor, torch.Tensor]], height: int = 192) -> torch.Tensor:
    """Pairs (input | output) stacked as rows of the same height and width."""
    tiles = []
    for x, out in rows:
        pair = torch.cat([x, out], -1)
        w = round(pair.shape[-1] * height / pair.shape[-2])
        tiles.append(F.interpolate(pair, size=(height, w), mode="area"))
    width = max(t.shape[-1] for t in tiles)
    return torch.cat([F.pad(t, (0, width - t.shape[-1]), value=1.0) for t in tiles], -2)


def evaluate(net, data: Path, device, montage_dir: Path | None, name: str, real_sets: dict) -> dict:
    hazy_dir, clean_dir = data / "haze/sots_indoor/hazy", data / "haze/sots_indoor/clean"
    ps, ss, pps, pss = [], [], [], []
    for h in sorted(hazy_dir.iterdir()):
        x, y = to_tensor(load_image(h).rgb), to_tensor(load_image(clean_dir / h.name).rgb)
        out = run_net(net, x, device)
        ps.append(psnr(out, y).item())
        ss.append(ssim(out, y).item())
        proj = project(x, out)
        pps.append(psnr(proj, y).item())
        pss.append(ssim(proj, y).item())
    real, rows = {}, []
    for key, xs in real_sets.items():
        outs = [run_net(net, x, device) for x in xs]
        real[key] = nr_scores(outs)
        rows += list(zip(xs[:MONTAGE_PER_SET], outs[:MONTAGE_PER_SET], strict=True))
    if montage_dir is not None:
        montage_dir.mkdir(parents=True, exist_ok=True)
        write_image(montage_dir / f"{name}.jpg", _montage(rows), quality=88)
    return {
        "sots_psnr": float(np.mean(ps)),
        "sots_ssim": float(np.mean(ss)),
        "sots_psnr_projected": float(np.mean(pps)),
        "sots_ssim_projected": float(np.mean(pss)),
        "real": real,
    }


DCP_VARIANTS = (("dcp", {}), ("dcp-textbook", {"omega": 0.95, "tolerance": 0.0, "eps": 1e-4, "airlight": "he"}))


def dcp_reference(data: Path, real_sets: dict) -> tuple[dict, dict]:
    """SOTS scores of the two classical DCPs, and the no-reference scores of the input and both DCPs on the real
    sets."""
    out, real = {}, {key: {"input": nr_scores(xs)} for key, xs in real_sets.items()}
    for name, kw in DCP_VARIANTS:
        r = create_model("dcp", **kw)
        ps, ss = [], []
        for h in sorted((data / "haze/sots_indoor/hazy").iterdir()):
            res = to_tensor(restore_array(load_image(h).rgb, r)[0])
            y = to_tensor(load_image(data / "haze/sots_indoor/clean" / h.name).rgb)
            ps.append(psnr(res, y).item())
            ss.append(ssim(res, y).item())
        out[name] = {"sots_psnr": float(np.mean(ps)), "sots_ssim": float(np.mean(ss))}
        for key, xs in real_sets.items():
            outs = [to_tensor(restore_array(np.ascontiguousarray(x[0].permute(1, 2, 0).numpy()), r)[0]) for x in xs]
            real[key][name] = nr_scores(outs)
    return out, real


def to_markdown(res: dict) -> str:
    lines = ["# Synthesis proxy benchmark", ""]
    runs = [res, *res.get("earlier", [])]
    for i, run in enumerate(runs):
        if i == 1:
            lines += _seed_summary(runs)
            lines += ["", "## Earlier runs", ""]
        lines += _run_markdown(run) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _seed_summary(runs: list[dict]) -> list[str]:
    """Mean and spread of each variant over the runs (seeds) made with the same network and budget on the same kind
    of device (a fixed number of iterations gives the same schedule on any CPU)."""
    groups: dict[tuple[str, str, str], dict[str, list[dict]]] = {}
    refs = {k: v["sots_psnr"] for run in runs for k, v in run.get("reference", {}).items()}  # same in every run
    seen = set()
    for run in runs:  # newest first: a rerun of the same variant and seed replaces the older one
        kind = "GPU" if "NVIDIA" in run["device"] else "CPU"
        net = run.get("net", "plain")  # runs before session 20 used the plain network
        for name, v in run["variants"].items():
            key = (net, kind, run["budget"], name, run.get("seed", 0))
            if key in seen:
                continue
            seen.add(key)
            groups.setdefault((net, kind, run["budget"]), {}).setdefault(name, []).append(v)
    rows = []
    for (net, device, budget), variants in groups.items():
        for name, vs in variants.items():
            if len(vs) < 2:
                continue
            raw = [v["sots_psnr"] for v in vs]
            proj = [v["sots_psnr_projected"] for v in vs if "sots_psnr_projected" in v]
            cell = f"{np.mean(proj):.2f} ± {np.std(proj, ddof=1):.2f}" if len(proj) > 1 else "–"
            above = "; ".join(
                f"{k}: {sum(r > ref for r in raw)}/{len(raw)}"
                + (f" ({sum(r > ref for r in proj)}/{len(proj)} projected)" if proj else "")
                for k, ref in refs.items()
            )
            rows.append(f"| {name} | {net} | {device}, {budget} | {len(vs)} | "
                        f"{np.mean(raw):.2f} ± {np.std(raw, ddof=1):.2f} | "
                        f"{min(raw):.2f} – {max(raw):.2f} | {cell} | {above or '–'} |")  # fmt: skip
    if not rows:
        return []
    return ["", "## Across seeds", "",
            "Runs of this file with the same network, kind of device and budget (different `--seed`): mean ± "
            "standard deviation.", "",
            "| variant | network | device, budget | runs | SOTS PSNR | min – max | SOTS PSNR, projected | runs above "
            "the classical references' SOTS PSNR |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]  # fmt: skip


def _run_markdown(res: dict) -> list[str]:
    b = res["budget"]
    lines = [
        f"Command: `{res['command']}`  ",
        f"Device: {res['device']}; budget per variant: {b}; network: ProxyUNet width {res['width']}"
        f"{' with global context' if res.get('net') == 'context' else ''} "
        f"({res['params']:,} parameters), crops {res['crop']}, batch {res['batch']}, L1, AdamW, cosine, bf16.",
        "",
        "| variant | iterations | SOTS-indoor PSNR | SSIM | SOTS PSNR / SSIM, projected | real day haze score "
        "before → after | contrast before → after |",
        "|---|---|---|---|---|---|---|",
    ]
    inp = res.get("real_reference", {}).get("haze/real_day", {}).get("input", {})  # absent before session 13
    before = {"haze_before": inp.get("haze", float("nan")), "contrast_before": inp.get("contrast", float("nan"))}
    for k, v in res["variants"].items():
        rd = _day(before | v["real"]["haze/real_day"])
        proj = f"{v['sots_psnr_projected']:.2f} / {v['sots_ssim_projected']:.4f}" if "sots_psnr_projected" in v else "–"
        lines.append(
            f"| {k} | {v['train']['iterations']} | {v['sots_psnr']:.2f} | {v['sots_ssim']:.4f} | {proj} | "
            f"{rd['haze_before']:.3f} → {rd['haze_after']:.3f} | "
            f"{rd['contrast_before']:.3f} → {rd['contrast_after']:.3f} |"
        )
    for k, v in res["reference"].items():
        lines.append(f"| {k} (classical) | – | {v['sots_psnr']:.2f} | {v['sots_ssim']:.4f} | | | |")
    lines += [
        "",
        "Projected: the network's output replaced by its locally affine fit to the input, as clearsight runs its "
        "dehazing networks (radius 7 % of the shorter side, `docs/learned.md`); rows with – were scored without it.",
    ]
    if "real_reference" in res:  # runs before session 13 scored the real sets by haze score and contrast only
        lines += _real_markdown(res)
    return lines


def _day(r: dict) -> dict:
    """Real day haze scores under the names of both result formats."""
    return {
        "haze_before": r.get("haze_before", float("nan")),
        "haze_after": r.get("haze_after", r.get("haze", float("nan"))),
        "contrast_before": r.get("contrast_before", float("nan")),
        "contrast_after": r.get("contrast_after", r.get("contrast", float("nan"))),
    }


def _real_markdown(res: dict) -> list[str]:
    sets = list(res["real_reference"])
    head = " | ".join(f"{k.split('/')[-1]} NIQE / BRISQUE / haze" for k in sets)
    lines = ["", "Real hazy photos (longest side at most 1024 px; raw network output, no projection): set means, "
             "lower is better for NIQE and BRISQUE; clean photos' haze scores span about 0.06–0.33.", "",
             f"| method | {head} |", "|---|" + "---|" * len(sets)]  # fmt: skip

    def row(label: str, scores: dict) -> str:
        cells = [f"{scores[k]['niqe']:.3f} / {scores[k]['brisque']:.1f} / {scores[k]['haze']:.3f}" for k in sets]
        return f"| {label} | " + " | ".join(cells) + " |"

    methods = list(next(iter(res["real_reference"].values())))
    lines += [row(m if m == "input" else f"{m} (classical)", {k: res["real_reference"][k][m] for k in sets})
              for m in methods]  # fmt: skip
    lines += [row(name, v["real"]) for name, v in res["variants"].items()]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seconds", type=float, default=600.0, help="wall-time budget per variant")
    ap.add_argument("--iterations", type=int, default=None, help="fixed iterations per variant instead of time")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument(
        "--net",
        choices=("context", "plain"),
        default="context",
        help="reference network: with the image-wide context vector (default) or without (runs before session 20)",
    )
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--workers", type=int, default=-1)
    ap.add_argument("--seed", type=int, default=0, help="network initialisation and synthesis seed (0: the first runs)")
    ap.add_argument("--montage", metavar="DIR", help="write each variant's before/after montage (DIR/VARIANT.jpg) here")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON; train nothing")
    args = ap.parse_args()
    if args.render_only:
        path = Path(args.out) / "synthesis_proxy.json"
        if not path.is_file():
            raise SystemExit(f"error: {path} does not exist; run the benchmark first")
        (Path(args.out) / "synthesis_proxy.md").write_text(to_markdown(json.loads(path.read_text())))
        print(f"wrote {Path(args.out) / 'synthesis_proxy.md'}")
        return
    data = Path(args.data)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clean_dirs = [data / "clean" / d for d in ("SunHays80", "Urban100_x2HR", "Kodak24", "CBSD68", "Set14")]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "synthesis_proxy.json"
    res = {
        "command": "python benchmarks/synthesis_proxy.py --data "
        + args.data
        + (f" --iterations {args.iterations}" if args.iterations else f" --seconds {args.seconds:g}")
        + (f" --variants {args.variants}" if args.variants != ap.get_default("variants") else "")
        + (f" --seed {args.seed}" if args.seed else "")
        + (f" --net {args.net}" if args.net != "context" else ""),
        "seed": args.seed,
        "device": f"{torch.cuda.get_device_name() if device.type == 'cuda' else cpu_name()} ({os.cpu_count()} cores)",
        "budget": f"{args.iterations} iterations" if args.iterations else f"{args.seconds:g} s wall time",
        "net": args.net,
        "width": args.width,
        "crop": args.crop,
        "batch": args.batch,
        "params": sum(p.numel() for p in ProxyUNet(args.width, context=args.net == "context").parameters()),
        "variants": {},
    }
    if json_path.is_file():  # earlier runs stay in the results, below this one
        prev = json.loads(json_path.read_text())
        res["earlier"] = [{k: v for k, v in prev.items() if k != "earlier"}, *prev.get("earlier", [])]
    print("classical reference:", flush=True)
    real_sets = real_inputs(data)
    res["reference"], res["real_reference"] = dcp_reference(data, real_sets)
    print(res["reference"], flush=True)
    for name in args.variants.split(","):
        preset, depth = VARIANTS[name]
        print(f"variant {name}:", flush=True)
        net, info = train_variant(name, preset, depth, clean_dirs, args, device)
        ev = evaluate(net, data, device, Path(args.montage) if args.montage else None, name, real_sets)
        res["variants"][name] = {"train": info, **ev}
        print(
            f"  {name}: SOTS {ev['sots_psnr']:.2f} dB / {ev['sots_ssim']:.4f}, projected "
            f"{ev['sots_psnr_projected']:.2f} / {ev['sots_ssim_projected']:.4f} ({info['iterations']} it); "
            f"real day NIQE {ev['real']['haze/real_day']['niqe']:.3f}",
            flush=True,
        )
        json_path.write_text(json.dumps(res, indent=1) + "\n")
        (out_dir / "synthesis_proxy.md").write_text(to_markdown(res))
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
