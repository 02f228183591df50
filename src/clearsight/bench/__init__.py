"""Benchmark runner: restorers x data sets x metrics, with timing, memory and reports.

``run_bench`` restores every image of paired sets (degraded/clean folders matched by file name, or by
the part before the first ``_``) and unpaired sets with each method from the restorer registry, scores
them with full-reference metrics (paired) or no-reference metrics (unpaired), times each method in
seconds per megapixel, records its peak memory, and writes JSON, Markdown and a self-contained HTML
report (metric plots and, on request, before/after crops).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..degrade.dataset import image_files
from ..infer import restore_array
from ..io import load_image, to_tensor
from ..judging import harm_counts, judge_np
from ..metrics import create_metric
from ..models import create_model

__all__ = [
    "BenchConfig",
    "run_bench",
    "write_reports",
    "reset_peak_rss",
    "status_kb",
    "cpu_name",
    "DEFAULT_FR",
    "DEFAULT_NR",
]

DEFAULT_FR = ("psnr", "ssim", "ciede2000")
DEFAULT_NR = ("fog_density", "haze_score", "niqe", "brisque", "piqe", "entropy")


@dataclass
class BenchConfig:
    """What to run.

    Attributes:
        methods: restorer names.
        paired: ``(name, degraded folder, clean folder)`` triples.
        unpaired: ``(name, folder)`` pairs.
        fr_metrics, nr_metrics: metric names.
        max_images: cap per set (0 = all).
        crops: embed before/after crops in the HTML (do not publish crops of images you may not share).
        judge: on the unpaired sets, also the share of outputs :func:`clearsight.judging.judge_np` calls harmed
            against their input (``harm_rate``; the input's own row is 0), and how often each harm was named
            (the set's ``harms``: method -> harm -> count).
    """

    methods: list[str]
    paired: list[tuple[str, str, str]] = field(default_factory=list)
    unpaired: list[tuple[str, str]] = field(default_factory=list)
    fr_metrics: tuple[str, ...] = DEFAULT_FR
    nr_metrics: tuple[str, ...] = DEFAULT_NR
    max_images: int = 0
    crops: bool = False
    judge: bool = False


def reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (Linux) and return the current RSS in KB, or ``None`` if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return status_kb("VmRSS")
    except OSError:
        return None


def cpu_name() -> str:
    """The CPU's model name (Linux), else the platform's processor string (for benchmark reports)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def status_kb(key: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``, ...) in KB; 0 where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _match_clean(deg: Path, clean_dir: Path) -> Path | None:
    exact = [p for p in clean_dir.glob(deg.stem + ".*")]
    if exact:
        return exact[0]
    stem = deg.stem.split("_")[0]
    cand = [p for p in clean_dir.iterdir() if p.stem == stem or p.stem.split("_")[0] == stem]
    return cand[0] if cand else None


def _score(metric, x, ref=None) -> float:
    try:
        v = metric(x, ref) if ref is not None else metric(x)
        return float(v[0])
    except Exception:  # noqa: BLE001 - a metric that cannot score an image (too small, ...) gives NaN
        return float("nan")


def _crop_b64(arrs: list[np.ndarray], size: int = 256) -> str:
    from PIL import Image

    tiles = []
    for a in arrs:
        h, w = a.shape[:2]
        s = min(h, w, size)
        y, x = (h - s) // 2, (w - s) // 2
        c = a[y : y + s, x : x + s]
        tiles.append(c if c.dtype == np.uint8 else (c / 257).astype(np.uint8))
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(tiles, axis=1)).save(buf, "JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode()


def run_bench(cfg: BenchConfig, progress: bool = True, restorers: dict | None = None) -> dict:
    """Run the benchmark; returns a JSON-friendly dict (see :func:`write_reports`).

    ``restorers`` maps some of ``cfg.methods`` to restorer objects (e.g. a configured variant that is not a
    registry name); the others are built with :func:`~clearsight.models.create_model`.
    """
    fr = {n: create_metric(n) for n in cfg.fr_metrics}
    nr = {n: create_metric(n) for n in cfg.nr_metrics}
    given = restorers or {}
    restorers = {m: given[m] if m in given else create_model(m) for m in cfg.methods}
    result: dict = {"methods": cfg.methods, "paired": {}, "unpaired": {}, "speed": {}, "crops": []}
    timing = {m: [0.0, 0.0] for m in cfg.methods}  # seconds, megapixels
    peaks = {m: 0 for m in cfg.methods}
    bar = None
    sets = [("paired", *p) for p in cfg.paired] + [("unpaired", n, d, None) for n, d in cfg.unpaired]
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sets), desc="bench", unit="set")
    for kind, name, deg_dir, clean_dir in sets:
        files = image_files(deg_dir)
        if cfg.max_images:
            files = files[: cfg.max_images]
        metrics = fr if kind == "paired" else nr
        judged = cfg.judge and kind == "unpaired"
        rows = {m: {k: [] for k in [*metrics, *(["harm_rate"] if judged else [])]} for m in ["input", *cfg.methods]}
        harms: dict[str, dict[str, int]] = {m: {} for m in cfg.methods}  # which harms the judge named, per method
        for i, f in enumerate(files):
            rec = load_image(f)
            x = to_tensor(rec.rgb)
            ref = None
            if kind == "paired":
                c = _match_clean(f, Path(clean_dir))
                if c is None:
                    continue
                ref = to_tensor(load_image(c).rgb)
                if ref.shape != x.shape:
                    continue
            for k, met in metrics.items():
                rows["input"][k].append(_score(met, x, ref))
            if judged:
                rows["input"]["harm_rate"].append(0.0)
            outs = [rec.rgb]
            for m, r in restorers.items():
                base = reset_peak_rss()
                t0 = time.perf_counter()
                out, _ = restore_array(rec.rgb, r)
                timing[m][0] += time.perf_counter() - t0
                timing[m][1] += rec.rgb.shape[0] * rec.rgb.shape[1] / 1e6
                if base is not None:
                    peaks[m] = max(peaks[m], status_kb("VmHWM"))
                y = to_tensor(out)
                for k, met in metrics.items():
                    rows[m][k].append(_score(met, y, ref))
                if judged:
                    verdict = judge_np(rec.rgb, out)
                    rows[m]["harm_rate"].append(float(not verdict.ok))
                    for h in verdict.harms:
                        harms[m][h] = harms[m].get(h, 0) + 1
                outs.append(out)
            if cfg.crops and i < 2:
                result["crops"].append({"set": name, "file": f.name, "jpeg": _crop_b64(outs)})
        summary = {
            m: {
                k: (float(np.nanmean(v)) if len(v) and not all(math.isnan(z) for z in v) else None)
                for k, v in d.items()
            }
            for m, d in rows.items()
        }
        result[kind][name] = {"n": len(rows["input"][next(iter(metrics))]) if metrics else 0, "scores": summary}
        if judged:
            result[kind][name]["harms"] = harms
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for m in cfg.methods:
        s, mp = timing[m]
        result["speed"][m] = {
            "seconds_per_megapixel": s / mp if mp else None,
            "peak_rss_mb": peaks[m] / 1024 if peaks[m] else None,
        }
    result["lower_better"] = {n: create_metric(n).lower_better for n in [*cfg.fr_metrics, *cfg.nr_metrics]}
    result["lower_better"]["harm_rate"] = True
    return result


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.4g}"


def to_markdown(res: dict, title: str = "Benchmark") -> str:
    lb = res["lower_better"]
    lines = [f"# {title}", ""]
    for kind in ("paired", "unpaired"):
        for name, block in res[kind].items():
            metrics = list(next(iter(block["scores"].values())).keys())
            arrows = [f"{k} {'↓' if lb[k] else '↑'}" for k in metrics]
            lines += [f"## {name} ({kind}, {block['n']} images)", "", "| method | " + " | ".join(arrows) + " |"]
            lines.append("|---" * (len(metrics) + 1) + "|")
            for m, sc in block["scores"].items():
                lines.append(f"| {m} | " + " | ".join(_fmt(sc[k]) for k in metrics) + " |")
            named = {m: h for m, h in block.get("harms", {}).items() if h}
            if named:
                said = "; ".join(f"{m}: {harm_counts(h)}" for m, h in named.items())
                lines += ["", f"Harms the judge named: {said}."]
            lines.append("")
    lines += [
        "## Speed and memory",
        "",
        "Seconds per megapixel of restoration alone (decoding and metrics excluded); peak RSS of the process",
        "while the method ran (Linux; includes the interpreter and the images held).",
        "",
        "| method | seconds per megapixel | peak RSS (MB) |",
        "|---|---|---|",
    ]
    for m, sp in res["speed"].items():
        lines.append(f"| {m} | {_fmt(sp['seconds_per_megapixel'])} | {_fmt(sp['peak_rss_mb'])} |")
    return "\n".join(lines) + "\n"


def _plot_b64(res: dict) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    blocks = [(k, n, b) for k in ("paired", "unpaired") for n, b in res[k].items()]
    if not blocks:
        return None
    metrics = sorted({m for _, _, b in blocks for m in next(iter(b["scores"].values()))})
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.2 * len(metrics)), squeeze=False)
    for ax, met in zip(axes[:, 0], metrics):
        labels, vals = [], {}
        for _, n, b in blocks:
            if met not in next(iter(b["scores"].values())):
                continue
            labels.append(n)
            for m, sc in b["scores"].items():
                vals.setdefault(m, []).append(np.nan if sc[met] is None else sc[met])
        xs = np.arange(len(labels))
        width = 0.8 / max(len(vals), 1)
        for j, (m, v) in enumerate(vals.items()):
            ax.bar(xs + j * width, v, width, label=m)
        ax.set_xticks(xs + 0.4 - width / 2, labels, fontsize=7)
        ax.set_title(f"{met} ({'lower' if res['lower_better'][met] else 'higher'} is better)", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def to_html(res: dict, title: str = "Benchmark") -> str:
    """A self-contained HTML report (tables, plots, crops embedded as data URIs)."""
    import re

    md = to_markdown(res, title)
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style>",
    ]
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [r for r in table if not re.match(r"^\|(-+\|)+$", r.replace("---", "-"))]
            out = ["<table>"]
            for i, r in enumerate(rows):
                cells = [html.escape(c.strip()) for c in r.strip("|").split("|")]
                tag = "th" if i == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            parts.append("".join(out) + "</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.strip():
            parts.append(f"<p>{html.escape(line)}</p>")
    flush()
    if res.get("downstream"):
        parts.append("<h2>Downstream tasks</h2><pre>" + html.escape(json.dumps(res["downstream"], indent=1)) + "</pre>")
    plot = _plot_b64(res)
    if plot:
        parts.append(f"<h2>Plots</h2><img src='data:image/png;base64,{plot}'>")
    if res.get("crops"):
        parts.append("<h2>Before / after (centre crops: input, then each method in order)</h2>")
        parts.append(f"<p>{html.escape(', '.join(['input', *res['methods']]))}</p>")
        for c in res["crops"]:
            parts.append(
                f"<p>{html.escape(c['set'])} / {html.escape(c['file'])}</p>"
                f"<img src='data:image/jpeg;base64,{c['jpeg']}' style='max-width:100%'>"
            )
    return "\n".join(parts) + "\n"


def write_reports(res: dict, out_stem: str | Path, title: str = "Benchmark") -> list[Path]:
    """Write ``STEM.json``, ``STEM.md`` and ``STEM.html``; returns the paths."""
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".html")]
    slim = {k: v for k, v in res.items() if k != "crops"}  # crops live in the HTML only
    paths[0].write_text(json.dumps(slim, indent=1) + "\n")
    paths[1].write_text(to_markdown(res, title))
    paths[2].write_text(to_html(res, title))
    return paths
