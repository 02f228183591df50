"""Benchmark the shipped learned models against the classical DCP: fidelity, real haze, speed and memory.

Usage::

    python benchmarks/learned.py --data ../shared/data [--models corun.haze] [--repeats 3] [--montage DIR]

Writes ``benchmarks/results/learned.{json,md,html}``:

* ``haze/sots_indoor`` and ``haze/ohaze`` (real haze) PSNR/SSIM of the input, the textbook DCP (He et al.'s
  settings), clearsight's tuned ``dcp`` and each learned model, measured in the same run; the learned models never
  saw either;
* every real set under ``haze/`` (no reference): NIQE, BRISQUE, the haze score (mean dark channel) and the
  FADE-style fog density, set means, with the range of the haze score on the clean corpus for reference;
  ``--montage DIR`` writes input | dcp | model pictures there (real images: not for the repository);
* seconds for a 1920x1080 image (median of ``--repeats`` after a warm-up, end to end on an 8-bit array) and
  peak RSS, each method in a fresh process, on all the machine's cores;
* the acceptance checks of the learned-model issue, each marked pass or fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import clearsight as cs
from clearsight.bench import BenchConfig, cpu_name, reset_peak_rss, run_bench, status_kb, to_html, to_markdown
from clearsight.degrade.dataset import image_files
from clearsight.infer import restore_array
from clearsight.io import load_image, to_tensor, write_image
from clearsight.metrics.no_reference import haze_score
from clearsight.models.learned import _bf16_ok
from clearsight.priors import DCP

TEXTBOOK = {"omega": 0.95, "tolerance": 0.0, "eps": 1e-4, "airlight": "he"}
REAL = ["haze/real_day", "haze/real_sand", "haze/real_night"]
NR = ("niqe", "brisque", "haze_score", "fog_density")


def make(name: str):
    return DCP(**TEXTBOOK) if name == "dcp-textbook" else cs.create_model(name)


def _speed_child(name: str, repeats: int) -> None:
    cs.tune_allocator()  # as the clearsight command does
    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    # a smooth synthetic 1080p frame (content does not change the cost of these methods)
    small = (rng.random((68, 120, 3)) * 255).astype(np.uint8)
    import cv2

    arr = cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    r = make(name)
    restore_array(arr, r)
    base = reset_peak_rss()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        restore_array(arr, r)
        times.append(time.perf_counter() - t0)
    peak = status_kb("VmHWM") if base is not None else 0
    print(json.dumps({"seconds": float(np.median(times)), "seconds_all": times, "peak_rss_mb": peak / 1024}))


def speed(methods: list[str], repeats: int) -> dict:
    rows = {}
    for m in methods:
        out = subprocess.run(
            [sys.executable, __file__, "--_speed-child", m, "--repeats", str(repeats)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows[m] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {m:<14} {rows[m]['seconds']:.3f} s / 1080p, peak RSS {rows[m]['peak_rss_mb']:.0f} MB", flush=True)
    return rows


def onnx_comparison(model: str, repeats: int) -> dict:
    """Seconds for one 400x720 network pass: torch fp32, torch bf16 (where the CPU has it), and onnxruntime fp32
    (if onnx is installed)."""
    import inspect

    net = cs.create_model(model, precision="fp32").net.float()
    x = torch.rand(1, 3, 400, 720)
    a = torch.full((1, 3, 1, 1), 0.8)
    with_air = "airlight" in inspect.signature(net.forward).parameters  # CORUN takes the airlight, RSR does not

    class _Net(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.n = n

        def forward(self, x, a):
            return self.n(x, airlight=a) if with_air else self.n(x) + 0 * a.sum()

    wrapped = _Net(net).eval()

    def timed(fn) -> float:
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    res = {"input": "1x3x400x720", "threads": torch.get_num_threads(), "torch_bf16": None}
    with torch.no_grad():
        res["torch_fp32"] = timed(lambda: wrapped(x, a))
        if _bf16_ok():  # without native bf16 the autocast path is emulated and many times slower
            cl = x.contiguous(memory_format=torch.channels_last)
            wrapped.to(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                res["torch_bf16"] = timed(lambda: wrapped(cl, a))
            wrapped.to(memory_format=torch.contiguous_format)
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime as ort
    except ImportError:
        res["onnxruntime_fp32"] = None
        return res
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/model.onnx"
        torch.onnx.export(wrapped, (x, a), path, dynamo=False, input_names=["x", "a"], opset_version=17)
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy(), "a": a.numpy()}
        res["onnxruntime_fp32"] = timed(lambda: sess.run(None, feed))
        with torch.no_grad():
            res["onnx_max_abs_diff"] = float(np.abs(sess.run(None, feed)[0] - wrapped(x, a).numpy()).max())
    return res


def clean_haze_range(data: Path) -> dict:
    vals = []
    for f in image_files(data / "clean"):
        x = to_tensor(load_image(f).rgb)
        vals.append(haze_score(x).item())
    return {"n": len(vals), "p10": float(np.percentile(vals, 10)), "p90": float(np.percentile(vals, 90))}


def montage(data: Path, models: list[str], out: Path, per_set: int = 3) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rs = {m: make(m) for m in ["dcp", *models]}
    for key in REAL:
        for f in image_files(data / key)[:per_set]:
            rgb = load_image(f).rgb
            tiles = [to_tensor(rgb)] + [to_tensor(restore_array(rgb, r)[0]) for r in rs.values()]
            write_image(out / f"{key.replace('/', '_')}_{f.stem}.jpg", torch.cat(tiles, -1))


def checks(res: dict, models: list[str]) -> list[dict]:
    out = []
    sots = res["paired"]["haze/sots_indoor"]["scores"]
    ref = sots["dcp-textbook"]["psnr"]
    rng = res["clean_haze_score"]
    for m in models:
        p = sots[m]["psnr"]
        out.append({"model": m, "check": "SOTS PSNR >= textbook DCP + 2 dB",
                    "value": f"{p:.2f} vs {ref + 2:.2f}", "pass": p >= ref + 2})  # fmt: skip
        for key, margin in (("haze/sots_indoor", 1.0), ("haze/ohaze", 2.0)):  # the learned-restorer issue's bars
            if key in res["paired"]:
                sc = res["paired"][key]["scores"]
                a, b = sc[m]["psnr"], sc["dcp"]["psnr"]
                out.append({"model": m, "check": f"{key} PSNR >= dcp + {margin:g} dB",
                            "value": f"{a:.2f} vs {b + margin:.2f}", "pass": a >= b + margin})  # fmt: skip
        for key in REAL:
            sc = res["unpaired"][key]["scores"]
            for k in ("niqe", "brisque"):
                a, b = sc[m][k], sc["dcp"][k]
                out.append({"model": m, "check": f"{key} {k} better than dcp",
                            "value": f"{a:.3f} vs {b:.3f}", "pass": a < b})  # fmt: skip
            if m == "corun.haze":
                a, b = sc[m]["niqe"], sc["dcp"]["niqe"]
                out.append({"model": m, "check": f"{key} niqe no worse than dcp",
                            "value": f"{a:.3f} vs {b:.3f}", "pass": a <= b})  # fmt: skip
            if "harm_rate" in sc[m]:
                out.append({"model": m, "check": f"{key} judge harm rate at most 10%",
                            "value": f"{sc[m]['harm_rate']:.0%} (dcp {sc['dcp']['harm_rate']:.0%})",
                            "pass": sc[m]["harm_rate"] <= 0.10})  # fmt: skip
            h, hi, hd = sc[m]["haze_score"], sc["input"]["haze_score"], sc["dcp"]["haze_score"]
            ok = min(hi, hd) <= h <= max(hi, hd) or rng["p10"] <= h <= rng["p90"]
            out.append({"model": m, "check": f"{key} haze score between dcp and input, or in the clean range",
                        "value": f"{h:.3f} (input {hi:.3f}, dcp {hd:.3f}, clean {rng['p10']:.3f}-{rng['p90']:.3f})",
                        "pass": ok})  # fmt: skip
        sp = res["speed_1080p"][m]
        out.append({"model": m, "check": "1080p in at most 2 s", "value": f"{sp['seconds']:.2f} s",
                    "pass": sp["seconds"] <= 2.0})  # fmt: skip
        if m == "corun.haze":
            out.append({"model": m, "check": "1080p in at most 0.7 s", "value": f"{sp['seconds']:.2f} s",
                        "pass": sp["seconds"] <= 0.7})  # fmt: skip
        out.append({"model": m, "check": "peak memory at most 4 GB", "value": f"{sp['peak_rss_mb']:.0f} MB",
                    "pass": sp["peak_rss_mb"] <= 4096})  # fmt: skip
    return out


def extra_markdown(res: dict) -> str:
    from clearsight.models import MAX_PIXELS_DEFAULTS

    lines = [
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}; torch {res['torch']}. Learned models run as shipped (bf16 where the CPU has it, "
        f"restored at up to 0.3 MP (corun {MAX_PIXELS_DEFAULTS['corun'] / 1e6:g} MP) with guided upsampling beyond; "
        "corun and rsr with the locally affine projection, `docs/learned.md`).",
        "",
        f"Haze score of clean photos (`clean/`, n={res['clean_haze_score']['n']}): p10 "
        f"{res['clean_haze_score']['p10']:.3f}, p90 {res['clean_haze_score']['p90']:.3f}.",
        "",
        "## Seconds per 1920x1080 image (median, fresh process per method)",
        "",
        "| method | seconds | peak RSS (MB) |",
        "|---|---|---|",
    ]
    for m, r in res["speed_1080p"].items():
        lines.append(f"| {m} | {r['seconds']:.3f} | {r['peak_rss_mb']:.0f} |")
    lines += [
        "",
        "## One network pass at 400x720: torch vs onnxruntime",
        "",
        "| model | torch fp32 (s) | torch bf16 (s) | onnxruntime fp32 (s) | max abs diff onnx vs torch |",
        "|---|---|---|---|---|",
    ]
    for m, r in res["onnx"].items():
        ort_s = "not installed" if r.get("onnxruntime_fp32") is None else f"{r['onnxruntime_fp32']:.3f}"
        diff = f"{r['onnx_max_abs_diff']:.1e}" if "onnx_max_abs_diff" in r else "–"
        bf16 = "no native bf16" if r.get("torch_bf16") is None else f"{r['torch_bf16']:.3f}"
        lines.append(f"| {m} | {r['torch_fp32']:.3f} | {bf16} | {ort_s} | {diff} |")
    lines += ["", "## Acceptance checks", "", "| model | check | value | pass |", "|---|---|---|---|"]
    for c in res["checks"]:
        lines.append(f"| {c['model']} | {c['check']} | {c['value']} | {'yes' if c['pass'] else '**no**'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--models", default=",".join(cs.list_models("*.*")), help="learned models, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--montage", metavar="DIR", help="write before/after pictures of the real sets here")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--_speed-child", dest="speed_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed_child:
        _speed_child(args.speed_child, args.repeats)
        return
    data, models = Path(args.data), [m for m in args.models.split(",") if m]
    methods = ["dcp-textbook", "dcp", *models]
    cfg = BenchConfig(
        methods=methods,
        paired=[(k, str(data / k / "hazy"), str(data / k / "clean")) for k in ("haze/sots_indoor", "haze/ohaze")],
        unpaired=[(k, str(data / k)) for k in REAL],
        fr_metrics=("psnr", "ssim"),
        nr_metrics=NR,
        judge=True,
    )
    tuned = cs.tune_allocator()  # as the clearsight command and the timing children do
    print("scoring SOTS-indoor and the real sets ...", flush=True)
    res = run_bench(cfg, restorers={"dcp-textbook": DCP(**TEXTBOOK)})
    res["command"] = "python benchmarks/learned.py --data " + args.data
    if args.models != ap.get_default("models"):
        res["command"] += " --models " + args.models
    res["machine"] = (
        f"{cpu_name()}, {os.cpu_count()} cores, native bf16: {'yes' if _bf16_ok() else 'no'}, "
        f"allocator tuned: {'yes' if tuned else 'no'}"
    )
    res["torch"] = torch.__version__
    res["clean_haze_score"] = clean_haze_range(data)
    print("timing 1080p ...", flush=True)
    res["speed_1080p"] = speed(methods, args.repeats)
    res["onnx"] = {m: onnx_comparison(m, args.repeats) for m in models}
    print("onnx:", res["onnx"], flush=True)
    res["checks"] = checks(res, models)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    title = "Learned models vs classical DCP"
    (out / "learned.json").write_text(json.dumps({k: v for k, v in res.items() if k != "crops"}, indent=1) + "\n")
    (out / "learned.md").write_text(to_markdown(res, title) + extra_markdown(res))
    (out / "learned.html").write_text(to_html(res, title))
    if args.montage:
        montage(data, models, Path(args.montage))
    for c in res["checks"]:
        print(f"  [{'pass' if c['pass'] else 'FAIL'}] {c['model']}: {c['check']}: {c['value']}")
    print(f"wrote {out / 'learned.json'}")


if __name__ == "__main__":
    main()
