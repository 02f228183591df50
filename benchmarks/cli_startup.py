"""Start-up time of the command-line tool: ``--version``, ``--help``, and ``score``/``identify`` of one small image.

    python benchmarks/cli_startup.py [--repeats 5]

Targets (issue "Faults and hostile input"): ``--help`` and ``--version`` under 0.3 s, ``identify`` and
``score`` of one small image under 1.5 s. Each command runs ``--repeats`` times as a fresh process; the median
wall time is reported. Writes ``benchmarks/results/cli_startup.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"--version": 0.3, "--help": 0.3, "score": 1.5, "identify": 1.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cli_startup"))
    args = ap.parse_args()
    exe = Path(sys.executable).with_name("clearsight")
    base = [str(exe)] if exe.is_file() else [sys.executable, "-m", "clearsight"]
    with tempfile.TemporaryDirectory() as tmp:
        from clearsight.io import save_image

        img = Path(tmp) / "small.png"
        save_image(img, (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8))
        commands = {"--version": ["--version"], "--help": ["--help"], "score": ["score", str(img)],
                    "identify": ["identify", str(img)]}  # fmt: skip
        rows = []
        for name, argv in commands.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = subprocess.run(base + argv, capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if r.returncode != 0:
                    raise SystemExit(f"{name} failed: {r.stderr.strip()}")
            med = statistics.median(times)
            rows.append({"command": name, "median_s": round(med, 3), "target_s": TARGETS[name],
                         "met": med <= TARGETS[name]})  # fmt: skip
            print(rows[-1], flush=True)
    from clearsight.bench import cpu_name

    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "repeats": args.repeats}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [
        "# Start-up time of the command-line tool",
        "",
        f"`python benchmarks/cli_startup.py` on {meta['cpu']}, {meta['cores']} cores; median of {args.repeats} "
        "fresh processes.",
        "",
        "| command | median | target | met |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r['command']}` | {r['median_s']:.2f} s | {r['target_s']} s | {'yes' if r['met'] else 'no'} |"
              for r in rows]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
