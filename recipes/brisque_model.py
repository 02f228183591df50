"""Convert the BRISQUE model of the ``brisque`` wheel (Apache-2.0) into clearsight's parameter file.

The ``brisque`` package (0.2.0) ships an epsilon-SVR with an RBF kernel (``models/svm.txt``, libsvm
format) and its feature scaling (``models/normalize.pickle``); its own code needs libsvm and numpy < 2.
This script reads both files from a downloaded wheel and writes ``brisque_model.npz`` (support
vectors, coefficients, gamma, rho, feature minima and maxima), which ``clearsight.metrics.brisque``
evaluates with NumPy alone.

Usage::

    pip download --no-deps brisque==0.2.0 -d /tmp/bq
    python recipes/brisque_model.py /tmp/bq/brisque-0.2.0-py3-none-any.whl

Peak memory, measured (maximum resident size, ``/usr/bin/time -f %M``): 0.25 GB, 1.4 s. NumPy only, so float32
and bf16 do not apply. Reproduces the shipped ``brisque_model.npz`` exactly (checked 2026-12-06).
"""

from __future__ import annotations

import argparse
import importlib
import io
import pickle
import zipfile

import numpy as np

brisque_mod = importlib.import_module("clearsight.metrics.brisque")  # the module (the package exports a function)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("wheel")
    ap.add_argument("--out", default=str(brisque_mod.MODEL_FILE))
    args = ap.parse_args()
    with zipfile.ZipFile(args.wheel) as z:
        svm = z.read("brisque/models/svm.txt").decode()
        # the pickle comes from the published wheel we just downloaded; it holds two lists of floats
        scale = pickle.load(io.BytesIO(z.read("brisque/models/normalize.pickle")))  # noqa: S301
    header, _, body = svm.partition("\nSV\n")
    meta = dict(line.split(" ", 1) for line in header.splitlines())
    assert meta["svm_type"] == "epsilon_svr" and meta["kernel_type"] == "rbf"
    coefs, svs = [], []
    for line in body.strip().splitlines():
        parts = line.split()
        coefs.append(float(parts[0]))
        vec = np.zeros(36)
        for p in parts[1:]:
            k, v = p.split(":")
            vec[int(k) - 1] = float(v)
        svs.append(vec)
    np.savez(
        args.out,
        sv=np.array(svs),
        coef=np.array(coefs),
        gamma=float(meta["gamma"]),
        rho=float(meta["rho"]),
        min_=np.array([float(v) for v in scale["min_"]]),
        max_=np.array([float(v) for v in scale["max_"]]),
    )
    print(f"{len(svs)} support vectors -> {args.out}")


if __name__ == "__main__":
    main()
