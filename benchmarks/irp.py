"""IRP benchmark: does the predicted restoration potential rank frames as the restorers do?

Usage::

    python benchmarks/irp.py --data ../shared/data [--weights FILE] [--cache runs/irp]

Writes ``benchmarks/results/irp.{json,md,html}``:

* **held-out scenes**: bursts (8 captures from 1 to 64 ms at constant brightness, 192 px) simulated from
  ``clean/Kodak24`` (2 scenes per image) and ``clean/CBSD68`` (1 per image), which the predictor never saw
  (it was trained on SunHays80/Urban100 and selected on Set14); labels from the restorer pool of
  :mod:`clearsight.irp.labels`. SRCC/PLCC of the prediction against the label over all frames and within
  each burst, against no-reference baselines: NIQE (negated), a sharpness measure (variance of the
  Laplacian) and an estimated noise level (Immerkaer, negated);
* **frame selection** on the same bursts: the best restored PSNR (over the pool) of the frame each method
  picks, against the oracle's best frame and a random frame (the burst mean);
* **consistency with a learned restorer**: on the first ``--learned-scenes`` bursts, the SRCC between the IRP
  label and the SSIM that the all-in-one network ``udair.allinone`` reaches on each frame;
* **real images**: predicted IRP of the real blurred (``blur/``) and noisy (``noise/``) images, shown beside
  them in the HTML; on ``noise/polyu`` (real noise with clean references) also the SRCC against the real
  label (best SSIM of the frame and its non-local-means denoising, centre 512-px crops);
* seconds per 1920x1080 image.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import clearsight as cs
from clearsight.bench import cpu_name
from clearsight.degrade.dataset import image_files
from clearsight.irp.apps import load_predictor
from clearsight.irp.data import Bursts, cached_bursts, make_bursts
from clearsight.irp.labels import nlm_denoise
from clearsight.metrics.full_reference import ssim
from clearsight.metrics.no_reference import noise_level
from clearsight.metrics.ranking import group_split, plcc, srcc
from clearsight.models.learned import _bf16_ok


def sharpness(x: torch.Tensor) -> torch.Tensor:
    """Variance of the Laplacian of the luma, per image."""
    g = x.mean(1, keepdim=True)
    lap = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=g.dtype).view(1, 1, 3, 3)
    return torch.nn.functional.conv2d(g, lap).flatten(1).var(1)


def _scores(pred, frames: torch.Tensor) -> dict[str, np.ndarray]:
    niqe = cs.create_metric("niqe")
    out = {"irp": [], "irp_flip": [], "niqe": [], "sharpness": [], "noise": []}
    flip = type(pred)(pred.net, pred.bf16, flip=True)
    for i in range(0, len(frames), 32):
        x = frames[i : i + 32]
        out["irp"].append(pred.score_tensor(x).numpy())
        out["irp_flip"].append(flip.score_tensor(x).numpy())
        out["niqe"].append(-niqe(x).numpy())
        out["sharpness"].append(sharpness(x).numpy())
        out["noise"].append(-noise_level(x).numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def plot(b: Bursts, pred_irp: np.ndarray, path: Path) -> None:
    """Three panels: IRP label vs exposure for some bursts; one burst's SSIM per restorer; prediction vs label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8))
    t = b.exposure_ms[0]
    for i in range(0, len(b.irp), max(1, len(b.irp) // 14)):
        ax[0].plot(t, b.irp[i], marker=".", alpha=0.7)
    ax[0].set(xscale="log", xlabel="exposure (ms), gain = 64 ms / exposure", ylabel="IRP (best pool SSIM)",
              title="IRP across a bracket (held-out bursts)")  # fmt: skip
    i = int(np.argmax(np.ptp(b.irp, 1)))
    for j, r in enumerate(b.restorers):
        ax[1].plot(t, b.ssim[i, :, j], marker=".", label=r)
    ax[1].set(xscale="log", xlabel="exposure (ms)", ylabel="SSIM after restoration", title="one burst, per restorer")
    ax[1].legend(fontsize=7)
    ax[2].scatter(b.irp.reshape(-1), pred_irp, s=3, alpha=0.4)
    ax[2].plot([0, 1], [0, 1], "k--", lw=0.8)
    ax[2].set(xlabel="IRP label", ylabel="predicted IRP", title="prediction vs label (held-out)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def held_out(pred, b: Bursts, plot_path: Path | None = None) -> dict:
    s, n = b.irp.shape
    frames = torch.from_numpy(b.frames.reshape(-1, *b.frames.shape[2:])).permute(0, 3, 1, 2).float() / 255
    sc = _scores(pred, frames)
    if plot_path is not None:
        plot(b, sc["irp"], plot_path)
    y = b.irp.reshape(-1)
    corr, select = {}, {}
    oracle = b.best_psnr.max(1)
    for k, v in sc.items():
        per = v.reshape(s, n)
        within = [srcc(p, t) for p, t in zip(per, b.irp) if np.ptp(t) > 0]
        corr[k] = {"srcc": srcc(v, y), "plcc": plcc(v, y), "srcc_within_burst": float(np.mean(within))}
        pick = per.argmax(1)
        chosen = b.best_psnr[np.arange(s), pick]
        select[k] = {"psnr": float(chosen.mean()), "gap_to_oracle": float((oracle - chosen).mean()),
                     "picked_oracle_frame": float((pick == b.best_psnr.argmax(1)).mean())}  # fmt: skip
    select["oracle"] = {"psnr": float(oracle.mean()), "gap_to_oracle": 0.0, "picked_oracle_frame": 1.0}
    rnd = b.best_psnr.mean(1)
    select["random"] = {"psnr": float(rnd.mean()), "gap_to_oracle": float((oracle - rnd).mean()),
                        "picked_oracle_frame": 1.0 / n}  # fmt: skip
    best_exp = b.exposure_ms[np.arange(s), b.irp.argmax(1)]
    return {
        "scenes": int(s), "frames_per_scene": int(n), "correlation": corr, "selection": select,
        "split": group_split(sc["irp"].reshape(s, n), b.irp),
        "texture": texture_check(sc["irp"].reshape(s, n), b),
        "label_by_exposure": {f"{t:.2f}": float(b.irp[:, j].mean()) for j, t in enumerate(b.exposure_ms[0])},
        "best_exposure_histogram": {f"{t:.2f}": int((np.isclose(best_exp, t)).sum()) for t in b.exposure_ms[0]},
        "best_restorer_share": {r: float((b.ssim.argmax(2) == i).mean()) for i, r in enumerate(b.restorers)},
    }  # fmt: skip


def texture_check(pred: np.ndarray, b: Bursts) -> dict:
    """How the scene means relate to the clean scene's texture (mean absolute grey gradient): SRCC of the
    texture with the label, with the prediction and with the prediction's error."""
    g = b.clean.astype(np.float32).mean(-1) / 255
    tex = np.abs(np.diff(g, axis=1)).mean((1, 2)) + np.abs(np.diff(g, axis=2)).mean((1, 2))
    pm, ym = pred.mean(1), b.irp.mean(1)
    return {"label": srcc(tex, ym), "prediction": srcc(tex, pm), "error": srcc(tex, pm - ym)}


def learned_consistency(b: Bursts, scenes: int) -> dict:
    from clearsight.models import weights_file
    from clearsight.models._weights import load_weights

    net, _ = load_weights(weights_file("udair.allinone"))
    lab, got = [], []
    for i in range(min(scenes, len(b.irp))):
        x = torch.from_numpy(b.frames[i]).permute(0, 3, 1, 2).float() / 255
        ref = torch.from_numpy(b.clean[i]).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x).float().clamp(0, 1)
        got.append(ssim(y, ref.expand_as(y)).numpy())
        lab.append(b.irp[i])
    lab_a, got_a = np.concatenate(lab), np.concatenate(got)
    within = [srcc(g, t) for g, t in zip(got, lab) if np.ptp(t) > 0]
    return {"scenes": len(lab), "srcc": srcc(got_a, lab_a), "srcc_within_burst": float(np.mean(within)),
            "udair_best_share": float((got_a > lab_a).mean()), "udair_mean_ssim": float(got_a.mean()),
            "label_mean": float(lab_a.mean())}  # fmt: skip


def _read(path: Path) -> np.ndarray | None:
    rec = cs.load_image(path)
    rgb = rec.rgb
    if rgb.ndim != 3:
        return None
    return rgb.astype(np.float32) / (255.0 if rgb.dtype == np.uint8 else 65535.0)


def _centre(x: np.ndarray, size: int = 512) -> np.ndarray:
    h, w = x.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(x[y0 : y0 + size, x0 : x0 + size])


def _thumb(x: np.ndarray, size: int = 160) -> str:
    h, w = x.shape[:2]
    s = size / max(h, w)
    t = cv2.resize((np.clip(x, 0, 1) * 255).astype(np.uint8), (max(1, round(w * s)), max(1, round(h * s))),
                   interpolation=cv2.INTER_AREA)  # fmt: skip
    ok, buf = cv2.imencode(".jpg", t[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    return base64.b64encode(buf.tobytes()).decode()


def real(pred, data: Path, limit: int) -> tuple[dict, list]:
    sets = {
        "blur/srn_samples": image_files(data / "blur"),
        "noise/rni15": image_files(data / "noise/rni15"),
        "noise/polyu (noisy)": image_files(data / "noise/polyu/noisy"),
        "noise/polyu (clean)": image_files(data / "noise/polyu/clean"),
    }
    res, gallery = {}, []
    for name, files in sets.items():
        files = files[:limit]
        scores = []
        for f in files:
            x = _read(f)
            if x is None:
                continue
            s = pred.score_array(x)
            scores.append(s)
            if not name.startswith("noise/polyu") or len(scores) <= 6:
                gallery.append((name, f.name, s, _thumb(_centre(x, 384))))
        res[name] = {"images": len(scores), "mean_irp": float(np.mean(scores)), "min": float(np.min(scores)),
                     "max": float(np.max(scores))}  # fmt: skip
    # real noise with references: the label is the best SSIM of (frame, NLM(frame)) on centre crops
    noisy = image_files(data / "noise/polyu/noisy")[:limit]
    pr, lab = [], []
    for f in noisy:
        c = data / "noise/polyu/clean" / f.name
        if not c.exists():
            continue
        x, y = _centre(_read(f)), _centre(_read(c))
        tx = torch.from_numpy(x).permute(2, 0, 1)[None]
        ty = torch.from_numpy(y).permute(2, 0, 1)[None]
        td = torch.from_numpy(nlm_denoise(x)).permute(2, 0, 1)[None]
        lab.append(max(float(ssim(tx, ty)), float(ssim(td, ty))))
        pr.append(float(pred.score_tensor(tx)[0]))
    res["noise/polyu label check"] = {"images": len(pr), "srcc": srcc(pr, lab), "plcc": plcc(pr, lab),
                                      "label_mean": float(np.mean(lab))}  # fmt: skip
    return res, gallery


def speed(pred) -> dict:
    x = torch.rand(1, 3, 1080, 1920)
    out = {}
    for name, p in (("fp32", pred), ("bf16", type(pred)(pred.net, bf16=True))):
        p.score_tensor(x)
        t0 = time.time()
        for _ in range(3):
            p.score_tensor(x)
        out[name] = (time.time() - t0) / 3
    return out


def to_markdown(res: dict) -> str:
    h = res["held_out"]
    lines = [f"# IRP prediction ({res['weights']})", "", f"Command: `{res['command']}`  ",
             f"Machine: {res['machine']}.", "",
             f"## Held-out scenes: {h['scenes']} bursts x {h['frames_per_scene']} frames (Kodak24, CBSD68)", "",
             "| predictor | SRCC | PLCC | SRCC within a burst |", "|---|---|---|---|"]  # fmt: skip
    names = {"irp": "IRP (ours)", "irp_flip": "IRP (ours), `--flip`",
             "niqe": "NIQE (negated)", "sharpness": "sharpness (Laplacian variance)",
             "noise": "noise level (negated)"}  # fmt: skip
    for k, v in h["correlation"].items():
        lines.append(f"| {names[k]} | {v['srcc']:.3f} | {v['plcc']:.3f} | {v['srcc_within_burst']:.3f} |")
    if "split" in h:
        sp = h["split"]
        lines += ["", "Where the IRP errors lie (`clearsight.metrics.ranking.group_split`): the labels vary "
                  f"{sp['between_var'] / sp['within_var']:.1f}x more between scenes than within a burst "
                  f"(variance {sp['between_var']:.4f} vs {sp['within_var']:.4f}). The predicted burst means rank "
                  f"the scenes with SRCC {sp['srcc_group_means']:.3f}, the deviations inside bursts follow the "
                  f"labels with PLCC {sp['plcc_deviations']:.3f}. With the true burst means and our deviations "
                  f"the overall SRCC would be {sp['srcc_true_means']:.3f}; with our means and the true "
                  f"deviations {sp['srcc_true_deviations']:.3f}: the overall SRCC is held back by how well the "
                  "scene itself (its content) is judged, not by the ordering of degradations."]  # fmt: skip
    if "texture" in h:
        tx = h["texture"]
        lines += ["", "Texture (mean grey gradient of the clean scene) against the burst means, SRCC: with the label "
                  f"{tx['label']:.3f}, with the prediction {tx['prediction']:.3f}, with the prediction's error "
                  f"{tx['error']:.3f}."]  # fmt: skip
    lines += ["", "## Frame selection (best restored PSNR of the picked frame, dB)", "",
              "| picked by | PSNR | gap to oracle | picked the oracle's frame |", "|---|---|---|---|"]  # fmt: skip
    for k, v in h["selection"].items():
        lines.append(f"| {names.get(k, k)} | {v['psnr']:.2f} | {v['gap_to_oracle']:.2f} | "
                     f"{100 * v['picked_oracle_frame']:.0f}% |")  # fmt: skip
    lines += ["", "## Labels", "", "Mean IRP by exposure (ms): "
              + ", ".join(f"{k}: {v:.3f}" for k, v in h["label_by_exposure"].items()), "",
              "Best exposure per burst (count): "
              + ", ".join(f"{k}: {v}" for k, v in h["best_exposure_histogram"].items()), "",
              "Share of frames where each restorer is the best: "
              + ", ".join(f"{k} {100 * v:.0f}%" for k, v in h["best_restorer_share"].items())]  # fmt: skip
    if "learned" in res:
        lc = res["learned"]
        lines += ["", f"Consistency with udair.allinone ({lc['scenes']} bursts): SRCC of its restored SSIM with "
                  f"the label {lc['srcc']:.3f} (within a burst {lc['srcc_within_burst']:.3f}); it beats the "
                  f"classical pool on {100 * lc['udair_best_share']:.0f}% of frames (mean SSIM "
                  f"{lc['udair_mean_ssim']:.3f} vs label {lc['label_mean']:.3f})."]  # fmt: skip
    lines += ["", "## Real images", "", "| set | images | mean IRP | min | max |", "|---|---|---|---|---|"]
    for k, v in res["real"].items():
        if "mean_irp" in v:
            lines.append(f"| {k} | {v['images']} | {v['mean_irp']:.3f} | {v['min']:.3f} | {v['max']:.3f} |")
    chk = res["real"].get("noise/polyu label check")
    if chk:
        lines += ["", f"Real noise with references (noise/polyu, {chk['images']} centre crops): SRCC "
                  f"{chk['srcc']:.3f}, PLCC {chk['plcc']:.3f} against the best SSIM of the frame and its NLM "
                  "denoising."]  # fmt: skip
    lines += ["", "## Speed (1920x1080, 3x3 grid of 256-px crops)", ""]
    lines += [f"* {k}: {1000 * v:.0f} ms" for k, v in res["speed"].items()]
    return "\n".join(lines) + "\n"


def to_html(res: dict, gallery: list) -> str:
    import html

    body = []
    for line in to_markdown(res).splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|"))
            body.append(f"<tr>{cells}</tr>")
        elif line.startswith("#"):
            body.append(f"</table><h2>{html.escape(line.lstrip('# '))}</h2><table border=1>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    body.append("</table><h2>Real images with their predicted IRP</h2><div>")
    for name, fname, s, b64 in gallery:
        cap = f"{html.escape(name)}/{html.escape(fname)}<br>IRP {s:.3f}"
        body.append(f"<figure style='display:inline-block;margin:4px'><img src='data:image/jpeg;base64,{b64}'>"
                    f"<figcaption>{cap}</figcaption></figure>")  # fmt: skip
    body.append("</div>")
    return "<!doctype html><meta charset=utf-8><title>IRP</title><table>" + "".join(body) + "\n"


def main() -> None:
    cs.tune_allocator()  # timings as the clearsight command runs (quality scores do not depend on it)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--weights", help="IRP weights (default: the shipped irp.dynamic)")
    ap.add_argument("--cache", default="runs/irp", help="where the held-out bursts are cached")
    ap.add_argument("--learned-scenes", type=int, default=30)
    ap.add_argument("--real-limit", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    data, out, cache = Path(args.data), Path(args.out), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    pred = load_predictor(args.weights)
    kodak, cbsd = image_files(data / "clean/Kodak24"), image_files(data / "clean/CBSD68")
    # two scenes per Kodak image, one per CBSD68
    b = cached_bursts(cache / "bench.npz", lambda: make_bursts(kodak + kodak + cbsd, 1, crop=192, seed=2))
    res = {
        "command": f"python benchmarks/irp.py --data {args.data}"
        + (f" --weights {args.weights}" if args.weights else ""),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, native bf16: {'yes' if _bf16_ok() else 'no'}, "
        f"torch {torch.__version__}",
        "weights": args.weights or "irp.dynamic",
    }  # fmt: skip
    print("held-out", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    res["held_out"] = held_out(pred, b, out / "irp.png")
    print("learned consistency", flush=True)
    res["learned"] = learned_consistency(b, args.learned_scenes)
    print("real", flush=True)
    res["real"], gallery = real(pred, data, args.real_limit)
    res["speed"] = speed(pred)
    out.mkdir(parents=True, exist_ok=True)
    (out / "irp.json").write_text(json.dumps(res, indent=1))
    (out / "irp.md").write_text(to_markdown(res))
    (out / "irp.html").write_text(to_html(res, gallery))
    print(to_markdown(res))


if __name__ == "__main__":
    main()
