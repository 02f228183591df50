"""Check that clearsight's BRISQUE agrees with the ``brisque`` package it takes its model from.

The package needs libsvm and numpy < 2, so it runs in a separate Python given by ``--package-python``
(for example a venv with ``numpy<2 libsvm-official scipy scikit-image opencv-python-headless requests`` and
the ``brisque`` 0.2.0 wheel). Both score the same 8-bit images.

Usage::

    python benchmarks/brisque_agreement.py --package-python /tmp/bqenv/bin/python --data ../shared/data

Writes ``benchmarks/results/brisque_agreement.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from clearsight.degrade.dataset import image_files
from clearsight.io import load_image
from clearsight.metrics.brisque import brisque_np

CHILD = """
import sys, json, numpy as np
from PIL import Image
from brisque import BRISQUE
b = BRISQUE()
print(json.dumps([float(b.score(np.asarray(Image.open(p).convert('RGB')))) for p in sys.argv[1:]]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package-python", required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results/brisque_agreement.json"))
    args = ap.parse_args()
    data = Path(args.data)
    files = (
        image_files(data / "clean/Kodak24")[:10]
        + image_files(data / "haze/real_day/ridcp")[:10]
        + image_files(data / "noise/rni15")[:10]
    )
    files = [f for f in files if load_image(f).rgb.dtype == np.uint8]
    theirs = json.loads(
        subprocess.run(
            [args.package_python, "-c", CHILD, *map(str, files)], capture_output=True, text=True, check=True
        ).stdout
    )
    ours = [brisque_np(load_image(f).rgb.astype(np.float64) / 255) for f in files]
    diff = np.abs(np.array(ours) - np.array(theirs))
    res = {
        "images": len(files),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "pairs": [[str(f.relative_to(data)), o, t] for f, o, t in zip(files, ours, theirs)],
    }
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"{len(files)} images: max |ours - package| = {diff.max():.4f}, mean {diff.mean():.4f}")


if __name__ == "__main__":
    main()
