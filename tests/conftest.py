"""Shared fixtures: small images the tests make themselves, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clearsight.physics import haze
from clearsight.runtime import tune_allocator

ROOT = Path(__file__).resolve().parents[1]
tune_allocator()  # in-process network passes as fast as the CLI's


def scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth, colourful float32 (h, w, 3) scene in [0, 1] with edges (no photograph needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [
            0.5 + 0.4 * np.sin(xx / 9.0 + seed),
            0.5 + 0.4 * np.cos(yy / 7.0 + xx / 23.0),
            0.4 + 0.3 * np.sin((xx + yy) / 13.0),
        ],
        axis=2,
    )
    for _ in range(6):  # a few flat boxes: edges for the guided filter
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y0 : y0 + rng.integers(4, h // 3), x0 : x0 + rng.integers(4, w // 3)] = rng.random(3) * 0.8
    img += rng.normal(0, 0.01, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def hazy_scene(h: int = 96, w: int = 128, seed: int = 0, airlight=(0.85, 0.87, 0.9), beta: float = 1.2):
    """(hazy, clean, t) with depth growing towards the top of the image."""
    clean = scene(h, w, seed)
    depth = np.linspace(1.0, 0.1, h, dtype=np.float32)[:, None].repeat(w, 1)
    t = np.exp(-beta * depth)
    j = torch.from_numpy(clean).permute(2, 0, 1)[None]
    hz = haze(j, torch.from_numpy(t)[None, None], torch.tensor(airlight))
    return hz[0].permute(1, 2, 0).numpy().astype(np.float32), clean, t


def to_u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.fixture
def hazy_u8() -> np.ndarray:
    return to_u8(hazy_scene()[0])


def run_cli(*args: str, cwd: str | os.PathLike | None = None, prefix: list[str] | None = None, timeout: float = 600):
    """Run ``python -m clearsight ARGS`` in a subprocess; returns the CompletedProcess."""
    cmd = [*(prefix or []), sys.executable, "-m", "clearsight", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
