"""Copy the clean training photos as JPEG (quality 96, no chroma subsampling) into a git-ignored folder that a lent
GPU machine can receive: the full clean corpus (80 MB of PNG) is over its 64 MiB transfer limit, this copy is ~23 MB.

Usage::

    python scripts/pack_clean_for_gpu.py --data ../shared/data --out .gpudata

then train there with ``data.root=.gpudata`` (see docs/learned.md, "Training on a lent GPU"). Benchmarks stay on
the original files. Existing outputs are kept (the copy is resumable); inputs are only read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from clearsight.degrade.dataset import image_files

SETS = ("SunHays80", "Urban100_x2HR", "Set14", "Kodak24")  # training and validation sources of the recipes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=".gpudata")
    ap.add_argument("--quality", type=int, default=96)
    args = ap.parse_args()
    src, dst = Path(args.data) / "clean", Path(args.out) / "clean"
    if not src.is_dir():
        raise SystemExit(f"error: {src}: no such folder")
    n = 0
    for name in SETS:
        (dst / name).mkdir(parents=True, exist_ok=True)
        for f in image_files(src / name):
            out = dst / name / (f.stem + ".jpg")
            if out.exists():
                continue
            tmp = out.with_name(out.name + ".part")
            try:
                with Image.open(f) as im:
                    im.convert("RGB").save(tmp, format="JPEG", quality=args.quality, subsampling=0)
            except (OSError, UnidentifiedImageError, ValueError) as e:
                print(f"skipped {f}: {e}")
                tmp.unlink(missing_ok=True)
                continue
            tmp.replace(out)  # an interrupted copy never leaves a truncated image behind
            n += 1
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    print(f"wrote {n} images; {dst} holds {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
