"""Peak memory of every YAML training recipe in float32 and bf16, measured on one iteration.

    python benchmarks/recipe_memory.py --data ../shared/data [--recipes corun_haze,rsr_haze] [--precisions fp32,bf16]

Each recipe runs one iteration as ``clearsight train RECIPE optim.iterations=1 amp=...`` in its own process
(validation and ``model.init`` off: neither changes the training step's memory) with the default memory budget
(60% of the available memory), so a batch that would not fit runs as micro-batches. Recorded per run: the
trainer's plan (``out/memory.json``: micro-batches, the measured fixed and per-sample need), the peak resident
memory of the training process, the peak of the whole process tree (``/usr/bin/time``'s maximum resident size,
which includes the largest loader process), the time of the iteration, and what the whole batch would need
unsplit (baseline + optimiser state + 1.2 x (fixed + batch x per sample), as the planner estimates it).
bf16 runs are skipped with a note on a CPU without native bf16 (they would fall back to float32).

Writes ``benchmarks/results/recipe_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _recipes(names: list[str] | None) -> list[Path]:
    found = [p for p in sorted((ROOT / "recipes").glob("*.yaml")) if "stages:" not in p.read_text()]
    return [p for p in found if names is None or p.stem in names]


def _bf16_ok() -> bool:
    from clearsight.models.learned import _bf16_ok as ok

    return ok()


def measure(recipe: Path, data: str, precision: str, work: Path) -> dict:
    out = work / f"{recipe.stem}_{precision}"
    amp = "bf16" if precision == "bf16" else "none"
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "clearsight", "train", str(recipe),
           f"data.root={data}", f"out={out}", "optim.iterations=1", f"amp={amp}", "data.val_sources=[]",
           "model.init=null", "log_every=1", "--no-progress"]  # fmt: skip
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    row: dict = {"recipe": recipe.stem, "precision": precision, "seconds": round(time.time() - t0, 1)}
    if r.returncode != 0:
        row["error"] = (r.stderr.strip().splitlines() or ["?"])[-2:]
        return row
    tree_kb = int(r.stderr.strip().splitlines()[-1])
    plan = json.loads((out / "memory.json").read_text())
    with (out / "train_log.csv").open() as f:
        it = [float(x["seconds_per_it"]) for x in csv.DictReader(f)]
    params = os.path.getsize(out / "ema.safetensors")  # float32 weights: about the parameter bytes
    whole = plan["baseline"] + 3 * params + 1.2 * (plan["fixed"] + plan["batch"] * plan["per_sample"])
    row.update(
        batch=plan["batch"], micro=plan["micro"], per_sample_gb=plan["per_sample"] / 2**30,
        baseline_gb=plan["baseline"] / 2**30, peak_gb=plan["peak_rss"] / 2**30, tree_peak_gb=tree_kb / 2**20,
        whole_batch_gb=whole / 2**30, budget_gb=plan["budget"] / 2**30, iteration_s=it[-1] if it else None,
    )  # fmt: skip
    return row


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Peak memory of the training recipes (one iteration)",
        "",
        f"`python benchmarks/recipe_memory.py --data ../shared/data` on {meta['cpu']}, {meta['cores']} cores, "
        f"{meta['memory_gb']:.0f} GB; default budget (60% of available memory).",
        "",
        "| recipe | precision | batch | micro-batches | per sample | peak (training process) | peak (with loader) "
        "| whole batch would need (estimate) | one iteration |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['recipe']} | {r['precision']} | {r.get('skipped') or r['error']} |||||||")
            continue
        micro = "whole" if len(r["micro"]) == 1 else "/".join(map(str, r["micro"]))
        lines.append(
            f"| {r['recipe']} | {r['precision']} | {r['batch']} | {micro} | {r['per_sample_gb']:.2f} GB | "
            f"{r['peak_gb']:.1f} GB | {r['tree_peak_gb']:.1f} GB | {r['whole_batch_gb']:.1f} GB | "
            f"{r['iteration_s']:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the shared data folder")
    ap.add_argument("--recipes", help="comma-separated recipe names (default: every YAML training recipe)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recipe_memory"))
    args = ap.parse_args()
    names = args.recipes.split(",") if args.recipes else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="recipe_memory_") as tmp:
        for recipe in _recipes(names):
            for precision in args.precisions.split(","):
                if precision == "bf16" and not _bf16_ok():
                    rows.append({"recipe": recipe.stem, "precision": precision, "skipped": "no native bf16"})
                    continue
                print(f"{recipe.stem} {precision} ...", flush=True)
                rows.append(measure(recipe, args.data, precision, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    from clearsight.bench import cpu_name
    from clearsight.runtime import _proc_field

    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "memory_gb": (_proc_field("/proc/meminfo", "MemTotal") or 0)
            / 2**30, "python": platform.python_version()}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
