"""Choose UDAIR's gate on validation: the all-in-one restorer with and without it, per synthesis preset.

    python benchmarks/udair_gate.py --data ../shared/data [--weights FILE] [--sigma 4] [--min-prob P]
        [--max-luma low_light=0.3,night_haze=0.47]

Validation, never a benchmark folder: the 24 ``clean/Kodak24`` photos (never trained on by ``udair.allinone``),
cropped to 256x384, each through every preset of the model's task list (fixed seed; estimated depth where the
preset needs it; ``clean`` is the photo itself), through light camera noise (``camera_noise``: the regime of
real photos taken in fair light, not in "all") and through a dim exposure with that noise (``dim_noise``: a dim
scene photographed as it looks, mean luma 0.12-0.35, whose reference is the dim photo itself, as in indoor camera
noise pairs; not in "all"), quantised to 8 bits. Two rows of real photos (training material, not benchmark
folders; not in "all"): ``real_dim``, every clean-corpus photo (BSDS500, SunHays80, Urban100, Kodak24, Set14)
darker than mean luma 0.3, whose reference is itself (a dim scene photographed as it looks: nothing to do),
``real_dim_noise``, the same photos through light camera noise (the regime of indoor camera noise pairs), and
``lol_train``, the 24 real short/long exposure pairs of ``lowlight/lol_train``. PSNR and SSIM against the clean
photo (a perfect result on ``clean`` is capped at 50 dB), and how the gate treated each image. Writes
``benchmarks/results/udair_gate.{json,md}``.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
#: Light camera noise, as in real photos taken in fair light (the ``noise`` preset reaches sigma 25): sigma 1-6 of
#: 255 of every kind (grey, colour, cross-channel correlated, signal-dependent), half of it JPEG-compressed.
CAMERA_NOISE = [
    {"op": "noise", "sigma": [1 / 255, 6 / 255], "probs": [0.2, 0.3, 0.2, 0.3]},
    {"op": "jpeg", "p": 0.5, "quality": [85, 98]},
]
CAP = 50.0
#: The mean luma range of the ``dim_noise`` row (drawn uniformly): where underexposed and merely dim photos meet.
DIM_LUMA = (0.12, 0.35)
#: The clean corpora whose dim photos (mean luma under :data:`REAL_DIM_LUMA`) make the ``real_dim`` row.
REAL_DIM_SOURCES = ("BSDS500", "SunHays80", "Urban100_x2HR", "Kodak24", "Set14")
REAL_DIM_LUMA = 0.3


def real_rows(data: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The real validation rows as (input, reference) float arrays: ``real_dim``, ``real_dim_noise`` (the same
    photos through :data:`CAMERA_NOISE`, 8-bit) and ``lol_train``."""
    from clearsight.degrade.dataset import image_files
    from clearsight.degrade.pipeline import Degrader
    from clearsight.io import read_image
    from clearsight.priors.base import mean_luma

    load = lambda f: read_image(f)[0].permute(1, 2, 0).numpy()  # noqa: E731
    dims = [x for s in REAL_DIM_SOURCES for f in image_files(data / "clean" / s)
            if mean_luma(x := load(f)) < REAL_DIM_LUMA]  # fmt: skip
    lol = data / "lowlight" / "lol_train"
    pairs = [(load(f), load(lol / "high" / f.name)) for f in image_files(lol / "low")]
    g, deg = torch.Generator().manual_seed(13), Degrader.from_config(CAMERA_NOISE)

    def noisy(x: np.ndarray) -> np.ndarray:
        y = deg(torch.from_numpy(x).permute(2, 0, 1)[None], generator=g)[0][0].clamp(0, 1).permute(1, 2, 0).numpy()
        return (np.round(y * 255) / 255).astype(np.float32)

    return {"real_dim": [(x, x) for x in dims], "real_dim_noise": [(noisy(x), x) for x in dims], "lol_train": pairs}


def dim(x: torch.Tensor, target: float) -> torch.Tensor:
    """``x`` (1x3xHxW in [0, 1]) scaled in linear light (gamma 2.2) to about mean luma ``target``."""
    from clearsight.priors.base import mean_luma

    lin = x.clamp(0, 1) ** 2.2
    for _ in range(4):  # the clipping-free fixed point in a few steps
        luma = mean_luma((lin.clamp(0, 1) ** (1 / 2.2))[0].permute(1, 2, 0).numpy())
        lin = lin * (target / max(luma, 1e-3)) ** 2.2
    return lin.clamp(0, 1) ** (1 / 2.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--weights", default=None, help="a UDAIR weights file (default: the shipped udair.allinone)")
    ap.add_argument("--sigma", type=float, default=None, help="the gate's Gaussian in pixels (default: shipped)")
    ap.add_argument("--tone", default=None, help="comma-separated tasks whose tone is kept (default: shipped)")
    ap.add_argument("--min-prob", type=float, default=None, help="identified less surely: unchanged (default: shipped)")
    ap.add_argument("--task-min-prob", default=None, help="e.g. night_haze=0.95: per-task minimum probabilities")
    ap.add_argument("--max-luma", default=None, help="e.g. low_light=0.3,night_haze=0.47: brighter ones unchanged")
    ap.add_argument("--dark-luma", type=float, default=None, help="darker photos always go to the network")
    ap.add_argument("--guard", default=None, help="e.g. low_light=0.6/0.35: tasks the judge checks, and strengths")
    ap.add_argument("--confirm", default=None, help="e.g. dark,low_light: calls the real-photo recogniser confirms")
    ap.add_argument("--projection", default=None, help="e.g. dark=shared: tasks projected onto the input, and how")
    ap.add_argument("--only", nargs="+", default=None, help="score only these rows (a scratch comparison)")
    ap.add_argument("--out", default=str(RESULTS / "udair_gate"))
    args = ap.parse_args()
    import clearsight as cs
    import clearsight.models.learned as learned
    from clearsight.degrade.dataset import image_files
    from clearsight.degrade.depth import estimate_depth
    from clearsight.degrade.pipeline import Degrader
    from clearsight.infer import restore_array
    from clearsight.io import read_image
    from clearsight.metrics import psnr, ssim

    cs.tune_allocator()
    if args.sigma:
        learned.GATE_SIGMA = args.sigma
    if args.tone is not None:
        learned.GATE_TONE_TASKS = tuple(t for t in args.tone.split(",") if t)
    if args.min_prob is not None:
        learned.GATE_MIN_PROB = args.min_prob
    if args.dark_luma is not None:
        learned.GATE_DARK_LUMA = args.dark_luma
    if args.task_min_prob is not None:
        learned.GATE_TASK_MIN_PROB = {
            k: float(v) for k, v in (kv.split("=") for kv in args.task_min_prob.split(",") if kv)
        }
    if args.guard is not None:
        pairs = (kv.split("=") for kv in args.guard.split(",") if kv)
        learned.GATE_GUARD = {k: tuple(float(v) for v in vs.split("/") if v) for k, vs in pairs}
    if args.max_luma is not None:
        learned.GATE_MAX_LUMA = {k: float(v) for k, v in (kv.split("=") for kv in args.max_luma.split(",") if kv)}
    if args.projection is not None:
        learned.GATE_PROJECTION = dict(kv.split("=") for kv in args.projection.split(",") if kv)
    if args.confirm is not None:
        learned.GATE_CONFIRM = tuple(t for t in args.confirm.split(",") if t)
    weights = args.weights or str(cs.models.weights_file("udair.allinone"))
    methods = {"no gate": cs.load_restorer(weights, gate=False), "gate": cs.load_restorer(weights, gate=True)}
    tasks = methods["gate"].net.config.tasks
    g = torch.Generator().manual_seed(1)
    files = image_files(Path(args.data) / "clean" / "Kodak24")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    rows = {}

    def score(task: str, items: list[tuple[np.ndarray, np.ndarray]], count: bool = False) -> None:
        """``rows[task]``: mean PSNR / SSIM of the input and of each method against the reference, and what the
        gate treated each image as (and how many images, with ``count``)."""
        acc: dict[str, list[float]] = collections.defaultdict(list)
        ident: collections.Counter = collections.Counter()
        for x, ref in items:
            acc["input psnr"].append(min(CAP, float(psnr(t(x), t(ref)))))
            for name, r in methods.items():
                out, st = restore_array(x, r)
                acc[f"{name} psnr"].append(min(CAP, float(psnr(t(out), t(ref)))))
                acc[f"{name} ssim"].append(float(ssim(t(out), t(ref))))
                if name == "gate":
                    ident[st.params.get("task", "?")] += 1
        rows[task] = {k: float(np.mean(v)) for k, v in acc.items()} | {"identified": dict(ident)}
        if count:
            rows[task]["images"] = len(items)
        print(task, rows[task], flush=True)

    extra = ("camera_noise", "dim_noise")
    for task in (*tasks, *extra):
        if args.only and task not in args.only:
            continue
        if task in extra:  # after the presets, each with its own seed: the presets' draws stay as they were
            g = torch.Generator().manual_seed({"camera_noise": 7, "dim_noise": 11}[task])
            rng = np.random.default_rng(11)
            deg = Degrader.from_config(CAMERA_NOISE)
        else:
            deg = None if task == "clean" else Degrader.from_config(task)
        items = []
        for f in files:
            x = read_image(f)[0][None].float()[..., :256, :384]
            if task == "dim_noise":
                x = dim(x, float(rng.uniform(*DIM_LUMA)))
            y = x if deg is None else deg(x, depth=estimate_depth(x) if deg.needs_depth else None, generator=g)[0]
            hazy = np.round(y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255) / 255
            items.append((hazy.astype(np.float32), x[0].permute(1, 2, 0).numpy()))
        score(task, items)
    for task, items in real_rows(Path(args.data)).items():
        if not args.only or task in args.only:
            score(task, items, count=True)
    extra = (*extra, "real_dim", "real_dim_noise", "lol_train")
    if all(task in rows for task in tasks):
        keys = [k for k in rows[tasks[0]] if k not in ("identified", "images")]
        rows["all"] = {k: float(np.mean([rows[task][k] for task in tasks])) for k in keys}
    for task in extra:  # listed after "all", which averages the model's presets
        if task in rows:
            rows[task] = rows.pop(task)
    res = {
        "weights": Path(weights).name,
        "sigma": learned.GATE_SIGMA,
        "tone": list(learned.GATE_TONE_TASKS),
        "min_prob": learned.GATE_MIN_PROB,
        "task_min_prob": learned.GATE_TASK_MIN_PROB,
        "dark_luma": learned.GATE_DARK_LUMA,
        "max_luma": learned.GATE_MAX_LUMA,
        "confirm": list(learned.GATE_CONFIRM),
        "projection": learned.GATE_PROJECTION,
        "images_per_task": len(files),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    lines = [f"# UDAIR's gate on validation ({res['weights']}, Gaussian {res['sigma']:g} px)", "",
             f"Gate: clean unchanged; tone kept {', '.join(res['tone'])}; unchanged when identified with a "
             f"probability under {res['min_prob']:g} "
             f"({', '.join(f'{k} {v:g}' for k, v in res['task_min_prob'].items())}) or brighter than mean luma "
             f"{', '.join(f'{v:g} ({k})' for k, v in res['max_luma'].items())}; photos darker than mean luma "
             f"{res['dark_luma']:g} always go to the network; "
             f"confirmed by the real-photo recogniser: {', '.join(res['confirm']) or 'none'}; projected: "
             f"{', '.join(f'{k} ({v})' for k, v in res['projection'].items())}.", "",
             f"`python benchmarks/udair_gate.py --data {args.data}`: {len(files)} Kodak24 crops (256x384) per preset; "
             f"PSNR / SSIM against the clean photo (capped at {CAP:g} dB); `real_dim` "
             f"({rows.get('real_dim', {}).get('images', '?')} clean-corpus photos darker than mean luma "
             f"{REAL_DIM_LUMA:g}, against themselves; `real_dim_noise`: through light camera noise) and `lol_train` "
             "(24 real pairs) are real photos at full size.",
             "",
             "| preset | input | no gate | gate | treated as (clean: returned unchanged) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for task, r in rows.items():
        ids = ", ".join(f"{k} {v}" for k, v in sorted(r.get("identified", {}).items(), key=lambda kv: -kv[1]))
        lines.append(f"| {task} | {r['input psnr']:.2f} | {r['no gate psnr']:.2f} / {r['no gate ssim']:.3f} | "
                     f"{r['gate psnr']:.2f} / {r['gate ssim']:.3f} | {ids} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
