"""All-in-one benchmark: one UDAIR model on every degradation, with and without test-time adaptation.

Usage::

    python benchmarks/allinone.py --data ../shared/data [--model udair.allinone] [--nr-limit 24]

Writes ``benchmarks/results/allinone.{json,md,html}``:

* paired tasks, PSNR/SSIM of the input, a classical baseline per task, the single-task learned model where
  one exists, UDAIR as shipped (with its gate, ``docs/allinone.md``), without the gate, and with TTA:
  ``haze/sots_indoor`` (DCP; ``corun.haze``), ``haze/ohaze`` (real haze; DCP; ``corun.haze``), ``noise/polyu``
  and ``noise/cc15`` (real noise; OpenCV non-local means), CBSD68 with Gaussian noise of sigma 15/25/50 (fixed
  seed; non-local means with h = sigma), ``rain/synthetic_pairs`` (a 3x3 median filter), ``lowlight/lol`` (real
  low light; ``dcp-night``, the classical restorer ``auto`` had for dark photos; ``lowlight.lol``);
* no-reference sets, NIQE/BRISQUE and the judge's harm rate (``clearsight.judging``, output against input) of the
  input, the classical baseline and UDAIR with/without TTA:
  ``lowlight/`` (gamma 0.5), ``rain/real`` (median), ``haze/real_*`` (``auto``), at most ``--nr-limit``
  images per set (evenly spaced in name order, so every sub-folder contributes);
* identification accuracy of the nearest-prototype degradation assignment on held-out synthetic images
  (``clean/Kodak24``, never trained on: every preset the model knows, ``--id-per-task`` crops each) with the
  confusion matrix;
* seconds per 1920x1080 image (UDAIR with its default reduced-size pass, with and without TTA).

The classical baselines here are benchmark-local OpenCV operations (clearsight's classical restorers cover
haze only); they are what a user without a learned model would reach for.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

import clearsight as cs
from clearsight.bench import cpu_name
from clearsight.degrade.dataset import SynthesisDataset, image_files
from clearsight.infer import restore_array
from clearsight.io import load_image, to_tensor
from clearsight.judging import harm_counts, judge_np
from clearsight.metrics import psnr, ssim
from clearsight.models.learned import _bf16_ok
from clearsight.priors.base import Restorer, RestorerState


class _Fn(Restorer):
    """A classical per-image operation on float32 RGB in [0, 1] behind the Restorer protocol."""

    def __init__(self, name: str, fn) -> None:
        self.name, self.description, self.fn = name, name, fn

    def prepare(self, preview: np.ndarray) -> RestorerState:
        return RestorerState(self.name, "", {})

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        return np.clip(self.fn(x), 0, 1).astype(np.float32)


def _nlm(h: float):
    def f(x: np.ndarray) -> np.ndarray:
        u8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
        return cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21).astype(np.float32) / 255

    return f


def _median(x: np.ndarray) -> np.ndarray:
    return cv2.medianBlur((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8), 3).astype(np.float32) / 255


def _gamma(x: np.ndarray) -> np.ndarray:
    return np.power(np.clip(x, 0, 1), 0.5)


def _rgb(path: Path) -> np.ndarray:
    a = load_image(path).rgb
    return a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 65535.0)


def _run(method, x: np.ndarray) -> np.ndarray:
    if method is None:
        return x
    return restore_array((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8), method)[0].astype(np.float32) / 255


def _affine_psnr(r: np.ndarray, y: np.ndarray) -> float:
    """PSNR of ``r`` after the per-channel gain and offset that best fit it to ``y`` (least squares): how good the
    result would be if only its global tone and colour were wrong. A diagnostic, never a score of a method."""
    fit = np.empty_like(r)
    for c in range(3):
        a = np.stack([r[..., c].ravel(), np.ones(r[..., c].size, np.float32)], 1)
        coef = np.linalg.lstsq(a, y[..., c].ravel(), rcond=None)[0]
        fit[..., c] = (a @ coef).reshape(r.shape[:2])
    return float(psnr(to_tensor(np.clip(fit, 0, 1).astype(np.float32)), to_tensor(y)))


def paired(pairs: list[tuple[np.ndarray, np.ndarray]], methods: dict) -> dict:
    out = {}
    for name, m in methods.items():
        ps, ss, shift, aff, t0 = [], [], [], [], time.time()
        for x, y in pairs:
            r = _run(m, x)
            ps.append(float(psnr(to_tensor(r), to_tensor(y))))
            ss.append(float(ssim(to_tensor(r), to_tensor(y))))
            shift.append(float(r.mean() - y.mean()))
            aff.append(_affine_psnr(r, y))
        out[name] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "seconds": time.time() - t0,
                     "brightness_shift": float(np.mean(shift)), "psnr_tone_fitted": float(np.mean(aff))}  # fmt: skip
        print(f"  {name}: {out[name]}", flush=True)
    return out


def no_reference(images: list[np.ndarray], methods: dict) -> dict:
    niqe, brisque = cs.create_metric("niqe"), cs.create_metric("brisque")
    out = {}
    for name, m in methods.items():
        n, b, h, named = [], [], [], collections.Counter()
        for x in images:
            y = _run(m, x)
            r = to_tensor(y)
            n.append(float(niqe(r)))
            b.append(float(brisque(r)))
            harms = judge_np(x, y).harms if m is not None else []  # the input's own row: no harm
            h.append(bool(harms))
            named.update(harms)
        out[name] = {"niqe": float(np.mean(n)), "brisque": float(np.mean(b)), "harm_rate": float(np.mean(h)),
                     "harms": dict(named)}  # fmt: skip
        print(f"  {name}: {out[name]}", flush=True)
    return out


def _sots(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    hz = sorted((data / "haze/sots_indoor/hazy").iterdir())
    return [(_rgb(f), _rgb(data / "haze/sots_indoor/clean" / f.name)) for f in hz]


def _folder_pairs(a: Path, b: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(_rgb(f), _rgb(b / f.name)) for f in image_files(a) if (b / f.name).is_file()]


def _cbsd(data: Path, sigma: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(sigma)
    out = []
    for f in image_files(data / "clean/CBSD68"):
        y = _rgb(f)
        if y.ndim != 3:
            continue
        x = np.clip(y + rng.normal(0, sigma / 255, y.shape).astype(np.float32), 0, 1)
        out.append((x, y))
    return out


def _id_methods(net) -> list[str]:
    """The identification rules ``net`` has, the one ``identify`` uses by default last."""
    return ["prototype"] + (["classifier"] if getattr(net, "identifier", None) is not None else [])


def identification(net, data: Path, per_task: int, size: int) -> dict:
    """Accuracy and confusion of each identification method the network has (``prototype``: UDAIR's nearest
    prototype of the codebook embedding; ``classifier``: its separately trained identifier, if any)."""
    tasks = list(net.config.tasks)
    ds = SynthesisDataset(data / "clean/Kodak24", {t: 1.0 for t in tasks}, crop=size, length=per_task * len(tasks),
                          seed=2024, depth="mixed", balanced=True)  # fmt: skip
    methods = _id_methods(net)
    conf = {m: np.zeros((len(tasks), len(tasks)), dtype=int) for m in methods}
    for i in range(len(ds)):
        item = ds[i]
        for m in methods:
            p = net.identify(item["degraded"][None], method=m)
            conf[m][int(item["task"]), int(p.argmax(1))] += 1
    res = {m: {"confusion": c.tolist(), "accuracy": float(np.trace(c) / c.sum())} for m, c in conf.items()}
    return {"tasks": tasks, "default": methods[-1], **res}


#: real sets and the task a correct identification names (none of them trained on)
REAL_SETS = {
    "haze/real_day": "day_haze",
    "haze/real_sand": "sand_dust",
    "haze/real_night": "night_haze",
    "lowlight": "low_light",
    "rain/real": "rain",
    "blur": "blur",
    "noise/rni15": "noise",
    "noise/polyu/noisy": "noise",
    "noise/polyu/clean": "clean",
}


def identification_real(net, data: Path, limit: int) -> dict:
    """Per real set: how its images are identified (the reduced view of ``clearsight identify``), by each method."""
    from clearsight.models.udair import identify_view

    tasks = list(net.config.tasks)
    methods = _id_methods(net)
    out = {}
    for name, expected in REAL_SETS.items():
        files = sorted(image_files(data / name)) if (data / name).is_dir() else []
        files = files[:: max(1, len(files) // limit)][:limit]
        if not files or expected not in tasks:
            continue
        counts = {m: [0] * len(tasks) for m in methods}
        for f in files:
            x = identify_view(torch.from_numpy(_rgb3(f)).permute(2, 0, 1)[None].contiguous())
            for m in methods:
                counts[m][int(net.identify(x, method=m).argmax(1))] += 1
        out[name] = {"expected": expected, "images": len(files), **{m: c for m, c in counts.items()}}
    return out


def _rgb3(path: Path) -> np.ndarray:
    x = _rgb(path)
    return np.repeat(x[..., None], 3, -1) if x.ndim == 2 else x


def speed(method, repeats: int = 2) -> float:
    """Seconds for a 1920x1080 photo that the network restores: a bundled foggy sample, identified as day haze (a
    random image would be left unchanged by the gate, as unsure, and time nothing but the identification)."""
    sample = Path(cs.__file__).resolve().parent / "samples" / "street_fog.jpg"
    arr = cv2.resize(_rgb(sample), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    restore_array(arr, method)
    ts = []
    for _ in range(repeats):
        t0 = time.time()
        restore_array(arr, method)
        ts.append(time.time() - t0)
    return float(np.median(ts))


def to_markdown(res: dict) -> str:
    lines = [f"# All-in-one restoration ({res['model']})", "", f"Command: `{res['command']}`  ",
             f"Machine: {res['machine']}.", ""]  # fmt: skip
    if res.get("gated_command"):
        lines += [f"The gated rows (udair, udair+tta) and the single-task ones recomputed by `{res['gated_command']}`; "
                  "the other rows, identification and speed are from the command above.", ""]  # fmt: skip
    lines += ["## Paired tasks (PSNR / SSIM)", ""]
    methods = sorted({m for t in res["paired"].values() for m in t}, key=lambda m: _ORDER.get(m, 9))
    lines += ["| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for task, row in res["paired"].items():
        cells = [f"{row[m]['psnr']:.2f} / {row[m]['ssim']:.3f}" if m in row else "–" for m in methods]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    if all("brightness_shift" in r for t in res["paired"].values() for r in t.values()):
        lines += ["", "### Tone diagnostics: mean brightness shift against the reference / PSNR once the global "
                  "tone is fitted", "", "The second number refits each result's per-channel gain and offset to the "
                  "reference (least squares): the gap between it and the plain PSNR is what global tone and colour "
                  "cost. A diagnostic of where a method loses, not a score.", "",
                  "| task | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]  # fmt: skip
        for task, row in res["paired"].items():
            cells = [f"{row[m]['brightness_shift']:+.3f} / {row[m]['psnr_tone_fitted']:.2f}" if m in row else "–"
                     for m in methods]  # fmt: skip
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "## No-reference sets (NIQE / BRISQUE, lower is better; judge's harm rate)", ""]
    methods = sorted({m for t in res["no_reference"].values() for m in t}, key=lambda m: _ORDER.get(m, 9))
    lines += ["| set | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for task, row in res["no_reference"].items():
        cells = [f"{row[m]['niqe']:.2f} / {row[m]['brisque']:.1f}"
                 + (f" / {row[m]['harm_rate']:.0%}" if "harm_rate" in row[m] else "") if m in row else "–"
                 for m in methods]  # fmt: skip
        lines.append(f"| {task} ({res['nr_counts'][task]}) | " + " | ".join(cells) + " |")
    named = [f"{task}, {m}: {harm_counts(row[m]['harms'])}"
             for task, row in res["no_reference"].items() for m in methods if row.get(m, {}).get("harms")]  # fmt: skip
    if named:
        lines += ["", "Harms the judge named: " + "; ".join(named) + "."]
    ident = res["identification"]
    names = {"classifier": "the identifier (a classifier trained on the presets, `recipes/udair_identifier.py`)",
             "prototype": "the nearest prototype of the codebook embedding (UDAIR's rule)"}  # fmt: skip
    default = ident.get("default", "prototype")
    lines += ["", f"## Degradation identification: {100 * ident[default]['accuracy']:.1f}% on held-out synthetic "
              "images", "", f"Kodak24 crops of 128 px, every preset equally often. Used by `identify` and `--tta`: "
              f"{names[default]}."]  # fmt: skip
    if res.get("identification_command"):
        lines += ["", f"Identification sections recomputed by `{res['identification_command']}`."]
    for m in sorted((m for m in names if m in ident), key=lambda m: m != default):
        lines += ["", f"{names[m][0].upper() + names[m][1:]}: **{100 * ident[m]['accuracy']:.1f}%**. Rows: true "
                  "preset; columns: assigned task.", "",
                  "| | " + " | ".join(ident["tasks"]) + " |", "|---" * (len(ident["tasks"]) + 1) + "|"]  # fmt: skip
        for t, row in zip(ident["tasks"], ident[m]["confusion"]):
            lines.append(f"| {t} | " + " | ".join(str(v) for v in row) + " |")
    real = res.get("identification_real")
    if real:
        lines += ["", "### Real images (not trained on): share identified as the matching task", "",
                  "The view of `clearsight identify` (longest side at most 512 px). Columns: each method's share of "
                  "the set named as the expected task, then the identifier's most frequent answers.", "",
                  "| set | expected | images | " + " | ".join(m for m in ("classifier", "prototype") if m in ident)
                  + " | identifier's answers |", "|---" * (4 + sum(m in ident for m in ("classifier", "prototype")))
                  + "|"]  # fmt: skip
        for name, r in real.items():
            k = ident["tasks"].index(r["expected"])
            shares = [f"{100 * r[m][k] / r['images']:.0f}%" for m in ("classifier", "prototype") if m in r]
            top = r.get("classifier", r["prototype"])
            answers = ", ".join(f"{ident['tasks'][i]} {top[i]}" for i in np.argsort(top)[::-1] if top[i])
            lines.append(f"| {name} | {r['expected']} | {r['images']} | " + " | ".join(shares) + f" | {answers} |")
    lines += ["", "## Speed (a bundled foggy sample at 1920x1080, default reduced-size pass)", ""]
    if res.get("speed_command"):
        lines += [f"Measured by `{res['speed_command']}`.", ""]
    lines += [f"* {k}: {v:.2f} s" for k, v in res["speed"].items()]
    return "\n".join(lines) + "\n"


_ORDER = {"input": 0, "classical": 1, "single-task": 2, "udair": 3, "udair, no gate": 4, "udair+tta": 5}


def to_html(res: dict) -> str:
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
    return "<!doctype html><meta charset=utf-8><title>All-in-one</title><table>" + "".join(body) + "</table>\n"


def main() -> None:
    cs.tune_allocator()  # timings as the clearsight command runs (quality scores do not depend on it)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--model", default="udair.allinone", help="udair model name (or use --weights)")
    ap.add_argument("--weights", help="a udair .safetensors file instead of --model")
    ap.add_argument("--nr-limit", type=int, default=24, help="images per no-reference set (default 24)")
    ap.add_argument("--id-per-task", type=int, default=24, help="held-out synthetic images per preset")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--only-identification", action="store_true",
                    help="recompute only the identification sections of the existing results (same model)")  # fmt: skip
    ap.add_argument("--only-speed", action="store_true",
                    help="recompute only the speed section of the existing results (same model)")  # fmt: skip
    ap.add_argument("--only-gated", action="store_true",
                    help="after a change of the gate or of a single-task model (same UDAIR weights): recompute the "
                         "gated rows (udair, udair+tta) and the single-task ones; keep input, classical, the "
                         "ungated network, identification and speed from the existing results")  # fmt: skip
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    torch.manual_seed(0)
    if args.only_identification:
        res = json.loads((out / "allinone.json").read_text())
        net = cs.load_restorer(args.weights).net if args.weights else cs.create_model(args.model).net
        res["identification"] = identification(net, data, args.id_per_task, 128)
        res["identification_real"] = identification_real(net, data, args.nr_limit)
        res["identification_command"] = " ".join(["python benchmarks/allinone.py", *sys.argv[1:]])
        _write(res, out)
        return
    if args.only_speed:
        res = json.loads((out / "allinone.json").read_text())
        load = partial(cs.load_restorer, args.weights) if args.weights else partial(cs.create_model, args.model)
        res["speed"] = {
            "udair": speed(load()),
            "udair, no gate": speed(load(gate=False)),
            "udair+tta": speed(load(tta=True)),
        }
        res["speed_command"] = " ".join(["python benchmarks/allinone.py", *sys.argv[1:]])
        _write(res, out)
        return
    if args.weights:
        udair, tta = cs.load_restorer(args.weights), cs.load_restorer(args.weights, tta=True)
        ungated = cs.load_restorer(args.weights, gate=False)
        label = Path(args.weights).name
    else:
        udair, tta = cs.create_model(args.model), cs.create_model(args.model, tta=True)
        ungated = cs.create_model(args.model, gate=False)
        label = args.model
    res = {
        "command": f"python benchmarks/allinone.py --data {args.data} "
        + (f"--weights {args.weights}" if args.weights else f"--model {args.model}")
        + f" --nr-limit {args.nr_limit} --id-per-task {args.id_per_task}",
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, native bf16: {'yes' if _bf16_ok() else 'no'}, "
        f"torch {torch.__version__}",
        "model": label,
        "paired": {},
        "no_reference": {},
        "nr_counts": {},
    }
    both = {"udair": udair, "udair, no gate": ungated, "udair+tta": tta}
    if args.only_gated:  # update the existing results; the ungated network's rows do not depend on the gate
        res = json.loads((out / "allinone.json").read_text())
        del both["udair, no gate"]
    tasks = {
        "haze/sots_indoor": (_sots(data), {"classical": cs.create_model("dcp"),
                                           "single-task": cs.create_model("corun.haze")}),
        "haze/ohaze": (_folder_pairs(data / "haze/ohaze/hazy", data / "haze/ohaze/clean"),
                       {"classical": cs.create_model("dcp"), "single-task": cs.create_model("corun.haze")}),
        "noise/polyu": (_folder_pairs(data / "noise/polyu/noisy", data / "noise/polyu/clean"),
                        {"classical": _Fn("nlm", _nlm(10))}),
        "noise/cc15": (_folder_pairs(data / "noise/cc15/noisy", data / "noise/cc15/clean"),
                       {"classical": _Fn("nlm", _nlm(10))}),
        "lowlight/lol": (_folder_pairs(data / "lowlight/lol/low", data / "lowlight/lol/high"),
                         {"classical": cs.create_model("dcp-night"), "single-task": cs.create_model("lowlight.lol")}),
        **{f"CBSD68 sigma {s}": (_cbsd(data, s), {"classical": _Fn("nlm", _nlm(s))}) for s in (15, 25, 50)},
        "rain/synthetic_pairs": (_folder_pairs(data / "rain/synthetic_pairs/rainy",
                                               data / "rain/synthetic_pairs/clean"),
                                 {"classical": _Fn("median", _median)}),
    }  # fmt: skip
    for name, (pairs, extra) in tasks.items():
        print(name, len(pairs), flush=True)
        if args.only_gated:
            extra = {k: v for k, v in extra.items() if k == "single-task"}
            res["paired"][name].update(paired(pairs, {**extra, **both}))
        else:
            res["paired"][name] = paired(pairs, {"input": None, **extra, **both})
    nr_sets = {
        "lowlight": (sorted(image_files(data / "lowlight")), _Fn("gamma", _gamma)),
        "rain/real": (image_files(data / "rain/real"), _Fn("median", _median)),
        **{f"haze/{d.name}": (sorted(image_files(d)), cs.create_model("auto"))
           for d in sorted((data / "haze").glob("real_*"))},
    }  # fmt: skip
    for name, (files, classical) in nr_sets.items():
        files = files[:: max(1, len(files) // args.nr_limit)][: args.nr_limit]  # spread over sub-folders
        print(name, len(files), flush=True)
        imgs = []
        for f in files:
            x = _rgb(f)
            if x.ndim == 3:
                imgs.append(x)
        res["nr_counts"][name] = len(imgs)
        if args.only_gated:
            res["no_reference"][name].update(no_reference(imgs, both))
        else:
            res["no_reference"][name] = no_reference(imgs, {"input": None, "classical": classical, **both})
    if args.only_gated:
        res["gated_command"] = " ".join(["python benchmarks/allinone.py", *sys.argv[1:]])
        _write(res, out)
        return
    res["identification"] = identification(udair.net, data, args.id_per_task, 128)
    res["identification_real"] = identification_real(udair.net, data, args.nr_limit)
    print("identification", {m: v["accuracy"] for m, v in res["identification"].items() if "accuracy" in v})
    res["speed"] = {"udair": speed(udair), "udair, no gate": speed(ungated), "udair+tta": speed(tta)}
    _write(res, out)


def _write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "allinone.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "allinone.md").write_text(to_markdown(res))
    (out / "allinone.html").write_text(to_html(res))
    print(f"wrote {out / 'allinone.md'}")


if __name__ == "__main__":
    main()
