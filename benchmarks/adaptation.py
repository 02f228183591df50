"""Adaptation benchmark: adapt ``corun.haze`` and ``rsr.haze`` to real day haze and score them on images they
never saw.

Usage::

    python benchmarks/adaptation.py --data ../shared/data [--iters 300] [--variants colabator,no_pool,coral,rsr]

Variants: CORUN with ``colabator`` (``colabator_long``: the same under another name, for a run with a larger
``--iters``; ``colabator_long_s1``: with seed 1; ``colabator_best``, ``colabator_best_long``,
``colabator_best_s1``: writing the teacher that restores 8 of the *training* images best by NIQE + BRISQUE / 10,
the unadapted one included), ``no_pool``, ``no_weight_map``, ``colabator_brisque``,
``colabator_crops`` (training crops at inference scale, whole-image pseudo-labels), ``colabator_strengths`` (the
pool picks among the teacher's label at several dehazing strengths by ``-(NIQE + BRISQUE / 10)``),
``colabator_strengths_initial`` (the same, from the frozen unadapted network's label) and ``coral``; the RSR
network with ``rsr`` (both phases, RSR's order), ``rsr_cid`` (CID's order), ``rsr_no_reweight``, ``rsr_no_align``
and ``rsr_colabator``. Rows of earlier runs stay in the results file (each with its command) unless re-run.

The target folder is ``haze/real_day``; ``clearsight adapt`` holds out every fifth image (never trained on), and
this script scores the unadapted and each adapted model on exactly those held-out images at full resolution
(NIQE, BRISQUE, haze score; clean photos' haze score range for reference) and on ``haze/sots_indoor``
(PSNR/SSIM: the adaptation must not cost more than 0.5 dB). Synthetic pairs from ``clean/SunHays80`` anchor
the model. Writes ``benchmarks/results/adaptation.{json,md,html}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

import clearsight as cs
from clearsight.adapt.runner import AdaptConfig, adapt
from clearsight.bench import cpu_name
from clearsight.infer import restore_array
from clearsight.io import load_image, to_tensor
from clearsight.metrics import psnr, ssim
from clearsight.models import AFFINE_DEFAULTS, AFFINE_MODE_DEFAULTS
from clearsight.models.learned import _bf16_ok

VARIANTS = {
    "colabator": {"model": "corun.haze", "method": "colabator"},
    "colabator_long": {"model": "corun.haze", "method": "colabator"},  # the same, run with a larger --iters
    "colabator_long_s1": {"model": "corun.haze", "method": "colabator", "seed": 1},
    "colabator_best": {"model": "corun.haze", "method": "colabator", "keep": "best"},
    "colabator_best_long": {"model": "corun.haze", "method": "colabator", "keep": "best"},  # for a larger --iters
    "colabator_best_s1": {"model": "corun.haze", "method": "colabator", "keep": "best", "seed": 1},
    # the teacher chosen on 8 target images withheld from adaptation (a validation split), not on trained ones
    "colabator_best_val": {"model": "corun.haze", "method": "colabator", "keep": "best", "select_withheld": True},
    "projected_labels": {"model": "corun.haze", "method": "colabator", "project_labels": -1},
    "no_pool": {"model": "corun.haze", "method": "colabator", "label_pool": False},
    "no_weight_map": {"model": "corun.haze", "method": "colabator", "weight_map": False},
    "colabator_brisque": {"model": "corun.haze", "method": "colabator", "quality": "brisque"},
    "colabator_crops": {"model": "corun.haze", "method": "colabator", "views": "crop"},
    "colabator_strengths": {
        "model": "corun.haze",
        "method": "colabator",
        "views": "crop",
        "quality": "naturalness",
        "strengths": (0.7, 0.85, 1.0, 1.15, 1.3),
    },
    "colabator_strengths_initial": {
        "model": "corun.haze",
        "method": "colabator",
        "views": "crop",
        "quality": "naturalness",
        "strengths": (0.85, 1.0, 1.15),
        "strength_of": "initial",
    },
    "coral": {"model": "corun.haze", "method": "coral"},
    "rsr": {"model": "rsr.haze", "method": "rsr", "batch": 4},
    "rsr_cid": {"model": "rsr.haze", "method": "rsr", "phases": "align,invariant", "batch": 4},
    "rsr_no_reweight": {"model": "rsr.haze", "method": "rsr", "reweight": False, "batch": 4},
    "rsr_no_align": {"model": "rsr.haze", "method": "rsr", "phases": "invariant", "batch": 4},
    "rsr_colabator": {"model": "rsr.haze", "method": "colabator"},
}


def score(restorer, held: list[Path], data: Path) -> dict:
    niqe, brisque, haze = cs.create_metric("niqe"), cs.create_metric("brisque"), cs.create_metric("haze_score")
    n, b, h, harmed = [], [], [], []
    for f in held:
        x = load_image(f).rgb
        out = restore_array(x, restorer)[0] if restorer else None
        y = to_tensor(out if restorer else x)
        n.append(niqe(y).item())
        b.append(brisque(y).item())
        h.append(haze(y).item())
        harmed.append(restorer is not None and not cs.judge(x, out).ok)
    ps, ss = [], []
    if restorer is not None:
        for hz in sorted((data / "haze/sots_indoor/hazy").iterdir()):
            out = to_tensor(restore_array(load_image(hz).rgb, restorer)[0])
            ref = to_tensor(load_image(data / "haze/sots_indoor/clean" / hz.name).rgb)
            ps.append(psnr(out, ref).item())
            ss.append(ssim(out, ref).item())
    res = {"niqe": float(np.mean(n)), "brisque": float(np.mean(b)), "haze_score": float(np.mean(h)),
           "harm_rate": float(np.mean(harmed))}  # fmt: skip
    if ps:
        res.update({"sots_psnr": float(np.mean(ps)), "sots_ssim": float(np.mean(ss))})
    return res


def to_markdown(res: dict) -> str:
    lines = [
        "# Adaptation to real day haze (corun.haze, rsr.haze)",
        "",
        f"Last command: `{res['command']}` (each row's own command is in the JSON)  ",
        f"Machine: {res['machine']}. Target `haze/real_day`: {res['train_images']} images adapted on, "
        f"{len(res['held_out'])} held out (every fifth, never trained on) and scored at full resolution. "
        f"Iterations: each row's own (last column; {res['iters']} in the last command), training views "
        f"{res['size']} px, synthetic anchor from "
        "`clean/SunHays80`; RSR variants use batch 4 (re-weighting needs more than two samples), the others 2.",
    ]

    def table(rows: dict) -> None:
        head = (
            "| model | held-out NIQE ↓ | BRISQUE ↓ | judge harm rate ↓ | haze score | SOTS PSNR | SOTS SSIM | "
            "adapt s | iterations |"
        )
        lines.extend(["", head, "|---|---|---|---|---|---|---|---|---|"])
        for k, v in rows.items():
            sp = f"{v['sots_psnr']:.2f}" if "sots_psnr" in v else "–"
            sss = f"{v['sots_ssim']:.4f}" if "sots_ssim" in v else "–"
            sec = f"{v['seconds']:.0f}" if "seconds" in v else "–"
            its = v["held_out_trend"][-1]["iteration"] if v.get("held_out_trend") else "–"
            hr = f"{v['harm_rate']:.0%}" if "harm_rate" in v else "–"
            lines.append(
                f"| {k} | {v['niqe']:.3f} | {v['brisque']:.2f} | {hr} | {v['haze_score']:.3f} | {sp} | {sss} | {sec} "
                f"| {its} |"
            )

    table(res["rows"])
    if res.get("earlier"):
        lines += ["", "### Earlier rows, scored under another output projection", "",
                  "Measured before `corun` and `rsr` restorers projected their output as they do now (no projection "
                  "before session 7; `corun` with a gain per channel before session 26, `docs/learned.md`); rerun "
                  "a variant to score it as shipped now."]  # fmt: skip
        table(res["earlier"])
    lines += ["", f"Clean photos' haze score (p10–p90): {res['clean_haze'][0]:.3f}–{res['clean_haze'][1]:.3f}."]
    return "\n".join(lines) + "\n"


def to_html(res: dict) -> str:
    """A standalone HTML page of the Markdown table (no images: the real photos are not ours to publish)."""
    import html

    rows = [line for line in to_markdown(res).splitlines() if line.startswith("|") and not line.startswith("|---")]
    cells = [[html.escape(c.strip()) for c in r.strip("|").split("|")] for r in rows]
    head = "".join(f"<th>{c}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
    return (
        "<!doctype html><meta charset=utf-8><title>Adaptation</title><h1>Adaptation to real day haze</h1>"
        f"<p>last command: {html.escape(res['command'])}</p><table border=1><tr>{head}</tr>{body}</table>\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--work", default="runs/adaptation", help="where adapted weights and checkpoints go")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    res = {
        "command": f"python benchmarks/adaptation.py --data {args.data} --iters {args.iters}",
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, native bf16: {'yes' if _bf16_ok() else 'no'}, "
        f"torch {torch.__version__}",
        "iters": args.iters,
        "size": args.size,
        "rows": {},
        "clean_haze": (0.055, 0.330),  # p10-p90 over clean/ (benchmarks/results/learned.json)
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/adaptation.py --data {args.data} --iters {args.iters} --variants {args.variants}"
    old = out / "adaptation.json"
    if old.is_file():  # keep the rows of earlier runs (they carry their own command)
        prev = json.loads(old.read_text())
        res["earlier"] = prev.get("earlier", {})
        for k, v in prev.get("rows", {}).items():
            v.setdefault("command", prev.get("command", ""))
            k = {"unadapted": "corun.haze (unadapted)"}.get(k, k)
            # rows scored under another output projection than the models' current default are set aside
            family = k.split(".")[0]
            current = (AFFINE_DEFAULTS.get(family), AFFINE_MODE_DEFAULTS.get(family, "channel"))
            if k == "input" or (v.get("affine"), v.get("affine_mode", "channel")) == current:
                res["rows"][k] = v
            else:
                res["earlier"][k] = v
        res.update({k: prev[k] for k in ("held_out", "train_images") if k in prev})
    for name in args.variants.split(","):
        spec = dict(VARIANTS[name])
        model = spec.pop("model")
        cfg = AdaptConfig(model=model, target=str(data / "haze/real_day"), out=str(work / f"{name}.safetensors"),
                          iters=args.iters, clean=str(data / "clean/SunHays80"), size=args.size, eval_every=100,
                          **spec)  # fmt: skip
        t0 = time.time()
        summary = adapt(cfg, progress=False)
        held = [Path(f) for f in summary["held_out_files"]]
        res["held_out"] = [str(f.relative_to(data)) for f in held]
        res["train_images"] = summary["train_images"]
        if "input" not in res["rows"]:
            res["rows"]["input"] = score(None, held, data) | {"command": command}
        base = f"{model} (unadapted)"
        affine = AFFINE_DEFAULTS.get(model.split(".")[0])
        mode = AFFINE_MODE_DEFAULTS.get(model.split(".")[0], "channel")
        if base not in res["rows"]:
            res["rows"][base] = score(cs.create_model(model), held, data) | {
                "command": command, "affine": affine, "affine_mode": mode}  # fmt: skip
            print(base, res["rows"][base], flush=True)
        row = score(cs.load_restorer(summary["weights"]), held, data)
        row.update(seconds=time.time() - t0, held_out_trend=summary["history"], command=command, model=model)
        row["affine"], row["affine_mode"] = affine, mode
        res["rows"][f"{model} + {name}"] = row
        print(name, row, flush=True)
        res["command"] = command
        (out / "adaptation.json").write_text(json.dumps(res, indent=1) + "\n")
        (out / "adaptation.md").write_text(to_markdown(res))
        (out / "adaptation.html").write_text(to_html(res))
    print(f"wrote {out / 'adaptation.md'}")


if __name__ == "__main__":
    main()
