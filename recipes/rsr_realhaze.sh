#!/usr/bin/env bash
# Reproduces src/clearsight/models/weights/rsr_realhaze.safetensors (registered as rsr.realhaze):
# rsr.haze adapted to real day haze with RSR/CID's two phases (sample re-weighting, then CORAL alignment of the
# frozen encoder's features), 300 iterations, batch 4, 128-px views, synthetic anchor pairs from SunHays80.
# `clearsight adapt` holds out every fifth image of the target folder (8 of 41), so the adapted model never sees
# the images benchmarks/adaptation.py scores it on. About 100 s on a 2-core CPU.
#   bash recipes/rsr_realhaze.sh [DATA]            (DATA defaults to ../shared/data)
# The same file is written by `python benchmarks/adaptation.py --data DATA --iters 300 --variants rsr`
# (runs/adaptation/rsr.safetensors), which also scores it.
# Peak memory, measured (maximum resident size, /usr/bin/time -f %M, the same command with --iters 20, both
# phases): 0.94 GB in bf16, 1.1 GB in float32 (add --fp32 to the adapt line on a CPU without native bf16).
set -euo pipefail
data=${1:-../shared/data}
clearsight adapt --model rsr.haze --target "$data/haze/real_day" --method rsr --iters 300 --batch 4 --size 128 \
  --clean "$data/clean/SunHays80" --eval-every 100 --seed 0 --out runs/rsr_realhaze.safetensors
echo "then copy runs/rsr_realhaze.safetensors to src/clearsight/models/weights/rsr_realhaze.safetensors"
