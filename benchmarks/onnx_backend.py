"""torch against onnxruntime for every learned restorer: seconds per 1920x1080 image and the largest difference on
real photos.

    python benchmarks/onnx_backend.py --data ../shared/data [--repeats 3]

Each restorer runs whole (preview estimates, reduced pass, guided upsampling, projection) as ``clearsight
restore`` runs it: torch with its default precision on this CPU (bf16 autocast where the CPU has it) and in
float32, and onnxruntime (float32) on a graph exported once by :func:`clearsight.models.onnx.export_onnx`. The
speed is the median of ``--repeats`` runs on a 1920x1080 real photo after one warm-up run; the difference is the
largest absolute difference (pixels in [0, 1]) between torch float32 and onnxruntime over a few real photos of
each kind (haze, low light, noise), the issue's parity target being 2e-3. Writes
``benchmarks/results/onnx_backend.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = {"haze/real_day/ridcp": 2, "lowlight/lol/low": 2, "noise/cc15/noisy": 2}


def _images(data: Path) -> list[tuple[str, np.ndarray]]:
    from clearsight.io import load_image

    out = []
    for folder, n in REAL.items():
        files = sorted(p for p in (data / folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
        for p in files:
            rgb = load_image(p).rgb
            out.append((f"{folder}/{p.name}", rgb.astype(np.float32) / (65535.0 if rgb.dtype == np.uint16 else 255.0)))
    return out


def _seconds(restorer, img: np.ndarray, repeats: int) -> float:
    from clearsight.infer import restore_array

    restore_array(img, restorer)  # warm-up (allocator, onnxruntime's first run)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        restore_array(img, restorer)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default=None, help="comma-separated learned restorers (default: all)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_backend"))
    args = ap.parse_args()
    from clearsight.bench import cpu_name
    from clearsight.infer import restore_array
    from clearsight.models import create_model, list_models, model_info, weights_file
    from clearsight.models.learned import _bf16_ok
    from clearsight.models.onnx import export_onnx
    from clearsight.runtime import tune_allocator

    tune_allocator()  # as the clearsight command runs
    data = Path(args.data)
    names = args.models.split(",") if args.models else [n for n in list_models() if model_info(n).kind == "learned"]
    real = _images(data)
    day = sorted((data / "haze" / "real_day" / "ridcp").iterdir())[0]
    from clearsight.io import load_image

    hd = cv2.resize(load_image(day).rgb, (1920, 1080), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.perf_counter()
            path = export_onnx(weights_file(name), Path(tmp) / f"{name}.onnx", check=False)["path"]
            export_s = time.perf_counter() - t0
            default = create_model(name)
            fp32 = create_model(name, precision="fp32")
            ort = create_model(name, backend="onnx", onnx_file=path)
            diff = 0.0
            for _, img in real:
                a, _ = restore_array(img, fp32)
                b, _ = restore_array(img, ort)
                diff = max(diff, float(np.abs(a - b).max()))
            row = {"model": name, "export_s": round(export_s, 1), "max_abs_diff": diff, "parity_met": diff <= 2e-3,
                   "torch_s": round(_seconds(default, hd, args.repeats), 3),
                   "torch_fp32_s": round(_seconds(fp32, hd, args.repeats), 3),
                   "onnxruntime_s": round(_seconds(ort, hd, args.repeats), 3)}  # fmt: skip
            rows.append(row)
            print(row, flush=True)
    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_default_precision": "bf16" if _bf16_ok() else "fp32",
            "repeats": args.repeats, "image": f"{day.name} resized to 1920x1080",
            "parity_images": [n for n, _ in real]}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [
        "# torch vs onnxruntime",
        "",
        f"`python benchmarks/onnx_backend.py --data {args.data}` on {meta['cpu']} ({meta['cores']} cores); torch's "
        f"default precision here: {meta['torch_default_precision']}. Seconds per 1920x1080 image through the whole "
        f"restorer (median of {args.repeats}); difference: largest absolute difference between torch float32 and "
        f"onnxruntime over {len(real)} real photos (haze, low light, noise), target 2e-3.",
        "",
        "| model | torch (default) s | torch fp32 s | onnxruntime s | max abs diff | export s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['torch_s']:.2f} | {r['torch_fp32_s']:.2f} | {r['onnxruntime_s']:.2f} | "
                     f"{r['max_abs_diff']:.1e} | {r['export_s']:.0f} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
