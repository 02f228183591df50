"""Render the sample images shipped in ``src/clearsight/samples`` from nothing but code.

Each sample is a procedural outdoor scene (sky, distant hills, a road with lane markings, grass,
buildings with windows, trees, street lamps) rendered in perspective with an exact depth map, then
degraded with clearsight's own atmospheric scattering model:

* ``street_fog.jpg``: day fog, neutral airlight;
* ``city_dust.jpg``: sand-dust, yellow-orange airlight, wavelength-dependent scattering, blue absorption;
* ``road_night_fog.jpg``: night fog, dark scene lit by coloured street lamps whose light scatters into a
  spatially varying airlight and a glow;
* ``hills_dense_fog.png``: dense fog over open country (PNG, to show that output follows input format).

No photograph is used, so the images may be shipped and reused under the project's licence.
Run ``python scripts/make_samples.py`` to regenerate them (deterministic).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from clearsight.io import save_image
from clearsight.physics import haze

W, H = 512, 344
FOCAL = 420.0
CAM_H = 1.6
HORIZON = 0.42 * H
FAR = 5000.0


def value_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator, octaves: int = 4) -> np.ndarray:
    """Smooth fractal noise in [0, 1]."""
    out = np.zeros(shape, np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        s = max(2, int(scale * 2**o))
        g = rng.random((s, s)).astype(np.float32)
        out += amp * cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.5
    out /= total
    return np.clip((out - out.min()) / (np.ptp(out) + 1e-6), 0, 1)


@dataclass
class Scene:
    rgb: np.ndarray  # (H, W, 3) float32 radiance in [0, 1]
    depth: np.ndarray  # (H, W) metres
    lamps: list[tuple[float, float, float, tuple[float, float, float]]]  # (x, y, depth, colour)


def render(seed: int, buildings: bool = True, road: bool = True, hills: float = 1.0) -> Scene:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.zeros((H, W, 3), np.float32)
    depth = np.full((H, W), FAR, np.float32)

    # sky: blue at the top, pale at the horizon, a few soft clouds
    v = np.clip(ys / HORIZON, 0, 1)[..., None]
    sky = (1 - v) * np.array([0.32, 0.52, 0.85]) + v * np.array([0.75, 0.83, 0.92])
    clouds = value_noise((H, W), 3, rng)[..., None]
    rgb[:] = sky + 0.15 * np.clip(clouds - 0.5, 0, 1)

    # distant hills
    ridge = HORIZON - hills * (18 + 14 * np.sin(xs[0] / 57.0 + seed) + 9 * np.sin(xs[0] / 23.0 + 2 * seed))
    hill_tex = value_noise((H, W), 12, rng)
    mask = ys >= ridge[None, :]
    rgb[mask] = (np.array([0.20, 0.30, 0.18]) * (0.7 + 0.6 * hill_tex[..., None]))[mask]
    depth[mask] = 1500.0

    # ground plane with grass and a road
    below = ys > HORIZON + 0.5
    d = np.where(below, CAM_H * FOCAL / np.maximum(ys - HORIZON, 0.5), FAR)
    gx = (xs - W / 2) * d / FOCAL
    grass_tex = value_noise((H, W), 40, rng)
    grass = np.array([0.18, 0.36, 0.12]) * (0.6 + 0.8 * grass_tex[..., None])
    ground = grass
    if road:
        asphalt = np.array([0.22, 0.22, 0.23]) * (0.85 + 0.3 * grass_tex[..., None])
        on_road = (np.abs(gx) < 4.0)[..., None]
        ground = np.where(on_road, asphalt, grass)
        dash = (np.abs(gx) < 0.12) & (np.mod(d, 9.0) < 4.5)
        edge = np.abs(np.abs(gx) - 3.8) < 0.1
        ground = np.where((dash | edge)[..., None], np.array([0.85, 0.85, 0.8]), ground)
    rgb[below] = ground[below]
    depth[below] = d[below]

    lamps: list = []
    # buildings (painter's algorithm: far to near)
    if buildings:
        blocks = []
        for side in (-1, 1):
            z = 25.0
            while z < 220:
                width = rng.uniform(8, 18)
                height = rng.uniform(8, 35)
                x0 = side * rng.uniform(7, 10)
                blocks.append((z, x0, x0 + side * 40, height))
                z += width + rng.uniform(3, 12)
        for z, xa, xb, hgt in sorted(blocks, key=lambda b: -b[0]):
            u0 = W / 2 + FOCAL * min(xa, xb) / z
            u1 = W / 2 + FOCAL * max(xa, xb) / z
            v0 = HORIZON + FOCAL * (CAM_H - hgt) / z
            v1 = HORIZON + FOCAL * CAM_H / z
            r = (xs >= u0) & (xs < u1) & (ys >= v0) & (ys < v1)
            base = rng.choice([[0.62, 0.55, 0.48], [0.7, 0.68, 0.62], [0.55, 0.35, 0.28], [0.45, 0.5, 0.55]])
            col = np.array(base) * rng.uniform(0.8, 1.1)
            wy = ((ys - v0) * z / FOCAL) % 3.2 < 1.6
            wx = ((xs - u0) * z / FOCAL) % 2.6 < 1.3
            window = wy & wx & (ys > v0 + 2) & (ys < v1 - 3)
            face = np.where(window[..., None], np.array([0.15, 0.2, 0.28]), col)
            rgb[r] = face[r]
            depth[r] = z
    # trees
    for _ in range(14):
        z = rng.uniform(12, 120)
        x = rng.choice([-1, 1]) * rng.uniform(5, 7) if buildings else rng.uniform(-60, 60)
        u = W / 2 + FOCAL * x / z
        crown = FOCAL * rng.uniform(1.8, 3.0) / z
        v_base = HORIZON + FOCAL * CAM_H / z
        v_c = v_base - FOCAL * rng.uniform(3.5, 5.5) / z
        trunk = (np.abs(xs - u) < max(1.0, FOCAL * 0.15 / z)) & (ys > v_c) & (ys < v_base)
        can = (xs - u) ** 2 + ((ys - v_c) * 0.9) ** 2 < crown**2
        closer = depth > z
        leaf = np.array([0.12, 0.3, 0.1]) * (0.7 + 0.6 * grass_tex[..., None])
        rgb[trunk & closer] = [0.25, 0.17, 0.1]
        m = can & closer
        rgb[m] = leaf[m]
        depth[trunk & closer] = z
        depth[m] = z
    # street lamps along the road
    for i, z in enumerate((16.0, 30.0, 55.0, 95.0)):
        for side in (-1,) if i % 2 else (1,):
            u = W / 2 + FOCAL * side * 4.6 / z
            v_top = HORIZON + FOCAL * (CAM_H - 7.0) / z
            v_base = HORIZON + FOCAL * CAM_H / z
            pole = (np.abs(xs - u) < max(0.7, FOCAL * 0.08 / z)) & (ys > v_top) & (ys < v_base) & (depth > z)
            rgb[pole] = [0.3, 0.3, 0.32]
            depth[pole] = z
            colour = (1.0, 0.62, 0.25) if side < 0 else (0.9, 0.95, 1.0)
            lamps.append((u, v_top, z, colour))
    return Scene(np.clip(rgb, 0, 1).astype(np.float32), depth, lamps)


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()


def _np(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).numpy()


def _finish(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    img = img + rng.normal(0, sigma, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def day_fog(scene: Scene, beta: float, airlight: tuple[float, float, float]) -> np.ndarray:
    t = torch.exp(-beta * torch.from_numpy(scene.depth))[None, None]
    return _np(haze(_t(scene.rgb), t, torch.tensor(airlight)))


def dust(scene: Scene) -> np.ndarray:
    j = scene.rgb * np.array([1.0, 0.9, 0.65], np.float32)  # blue absorbed on the way
    beta = torch.tensor([[0.032, 0.042, 0.062]])  # shorter wavelengths scatter more
    d = torch.from_numpy(scene.depth)[None, None]
    t = torch.exp(-beta.view(1, 3, 1, 1) * d)
    return _np(haze(_t(j), t, torch.tensor([0.86, 0.66, 0.36])))


def night_fog(scene: Scene, beta: float) -> np.ndarray:
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    ambient = np.array([0.025, 0.03, 0.045], np.float32)
    light = np.zeros((H, W, 3), np.float32) + ambient
    glow = np.zeros((H, W, 3), np.float32)
    for u, v, z, colour in scene.lamps:
        col = np.array(colour, np.float32)
        # pool of light on the ground and walls, falling off with distance in the image plane
        r2 = ((xs - u) ** 2 + ((ys - v) * 0.6) ** 2) / (FOCAL * 6.0 / z) ** 2
        light += 0.55 * col / (1.0 + r2[..., None])
        # glow of the lamp through the fog: a wide atmospheric point-spread function
        g2 = ((xs - u) ** 2 + (ys - v) ** 2) / (FOCAL * 1.2 / z) ** 2
        glow += col * (0.22 * np.exp(-g2) + 0.035 / (1.0 + 4 * g2))[..., None]
        bulb = ((xs - u) ** 2 + (ys - v) ** 2) < max(1.5, FOCAL * 0.25 / z) ** 2
        glow[bulb] = np.maximum(glow[bulb], col)
    sky = scene.depth >= FAR
    j = scene.rgb * np.clip(light, 0, 1.2)
    j[sky] = ambient * 0.8
    airlight = np.clip(0.35 * cv2.GaussianBlur(light, (0, 0), 25), 0, 1)
    t = np.exp(-beta * scene.depth)[..., None]
    img = j * t + airlight * (1 - t) + glow
    return np.clip(img, 0, 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/clearsight/samples"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)

    s = render(1)
    save_image(out / "street_fog.jpg", _finish(day_fog(s, 0.035, (0.82, 0.84, 0.86)), rng, 0.01), quality=92)
    s = render(2)
    save_image(out / "city_dust.jpg", _finish(dust(s), rng, 0.012), quality=92)
    s = render(3)
    save_image(out / "road_night_fog.jpg", _finish(night_fog(s, 0.04), rng, 0.015), quality=92)
    s = render(4, buildings=False, road=False, hills=1.6)
    save_image(out / "hills_dense_fog.png", _finish(day_fog(s, 0.035, (0.9, 0.9, 0.9)), rng, 0.008))
    for p in sorted(out.glob("*.*")):
        if p.suffix in (".jpg", ".png"):
            print(f"{p.name}: {p.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
