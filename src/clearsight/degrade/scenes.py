"""Procedural 3D scenes with exact depth: rooms, corridors, streets and terrain.

No depth network or depth data set can be had here, so geometrically true depth comes from scenes we
build and render ourselves: axis-aligned boxes and planes, textured with crops of clean photographs (or
plain painted colours, since real walls are mostly plain), ray-cast in perspective with NumPy. Each
render returns the image and the exact distance along each camera ray.

*Right*: depth is exact and discontinuous exactly at object boundaries; indoor geometry (walls, floor,
ceiling, furniture) exists, which the outdoor photo corpus lacks; plain surfaces are plain.
*Wrong*: the world is made of boxes; lighting is a simple Lambertian model without shadows or
inter-reflection; photo textures are pasted flat, so their own (photographed) depth cues contradict the
scene's geometry; there are no people, cars or vegetation shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SCENE_KINDS", "Box", "render_scene", "TexturePool"]

SCENE_KINDS = ("room", "corridor", "street", "terrain")


@dataclass
class Box:
    """Axis-aligned box ``lo``-``hi`` (metres). ``inside``: the camera sees its inner faces (a room)."""

    lo: np.ndarray
    hi: np.ndarray
    textures: list[int]  # one texture id per face: -x, +x, -y, +y, -z, +z
    scales: list[float]  # metres per texture repeat, per face
    inside: bool = False


class TexturePool:
    """Square texture patches: crops of clean photos and plain painted colours.

    Args:
        photos: float32 ``(H, W, 3)`` images in [0, 1] to crop from (may be empty).
        rng: NumPy generator.
        size: side of each patch in pixels.
        plain_share: share of plain (painted) textures among the faces.
    """

    def __init__(self, photos: list[np.ndarray], rng: np.random.Generator, size: int = 96, plain_share: float = 0.5):
        self.rng, self.size, self.plain_share = rng, size, plain_share
        self.photos = [p for p in photos if min(p.shape[:2]) >= 16]
        self.patches: list[np.ndarray] = []

    def new(self, plain: bool | None = None) -> int:
        """Create a texture and return its id."""
        s = self.size
        plain = (self.rng.random() < self.plain_share or not self.photos) if plain is None else plain
        if plain:
            base = self.rng.uniform(0.25, 0.95, 3) * self.rng.uniform(0.7, 1.0)
            base = 0.6 * base + 0.4 * base.mean()  # painted walls are not very saturated
            noise = self.rng.normal(0, 0.01, (s, s, 1))
            tex = np.clip(base[None, None, :] + noise, 0, 1)
        else:
            p = self.photos[self.rng.integers(len(self.photos))]
            h, w = p.shape[:2]
            c = int(min(h, w) * self.rng.uniform(0.2, 0.6))
            c = max(c, 8)
            y, x = self.rng.integers(0, h - c + 1), self.rng.integers(0, w - c + 1)
            crop = p[y : y + c, x : x + c]
            idx = (np.arange(s) * c // s).astype(int)
            tex = crop[idx][:, idx]
        self.patches.append(tex.astype(np.float32))
        return len(self.patches) - 1


def _camera_rays(h: int, w: int, fov_deg: float, yaw: float, pitch: float) -> np.ndarray:
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.stack([(xs - (w - 1) / 2) / f, -(ys - (h - 1) / 2) / f, np.ones_like(xs)], axis=-1)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    rot_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]], np.float32)
    rot_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], np.float32)
    d = d @ (rot_yaw @ rot_pitch).T
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def _intersect(origin: np.ndarray, dirs: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Ray-box distances and hit face ids (0..5), ``inf`` where missed."""
    inv = 1.0 / np.where(np.abs(dirs) < 1e-9, 1e-9, dirs)
    t1 = (box.lo - origin) * inv
    t2 = (box.hi - origin) * inv
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = tmin.max(axis=-1), tmax.min(axis=-1)
    hit = t_far >= np.maximum(t_near, 0)
    if box.inside:
        t = np.where(hit, t_far, np.inf)
        axis = tmax.argmin(axis=-1)
        positive = np.take_along_axis(dirs, axis[..., None], -1)[..., 0] > 0
    else:
        t = np.where(hit & (t_near > 1e-4), t_near, np.inf)
        axis = tmin.argmax(axis=-1)
        positive = np.take_along_axis(dirs, axis[..., None], -1)[..., 0] < 0
    face = axis * 2 + positive.astype(int)
    return t, face


def _shade(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = tex.shape[0]
    iu = (np.mod(u, 1.0) * (s - 1)).astype(int)
    iv = (np.mod(v, 1.0) * (s - 1)).astype(int)
    return tex[iv, iu]


def _layout(kind: str, rng: np.random.Generator, pool: TexturePool) -> tuple[list[Box], float, float]:
    """Boxes of a scene, the camera height and the sky's presence."""
    boxes: list[Box] = []

    def faces(plain: bool | None = None) -> tuple[list[int], list[float]]:
        tid = pool.new(plain)
        return [tid] * 6, [float(rng.uniform(1.0, 4.0))] * 6

    if kind in ("room", "corridor"):
        width = rng.uniform(3, 7) if kind == "room" else rng.uniform(1.8, 3.0)
        depth = rng.uniform(4, 9) if kind == "room" else rng.uniform(15, 40)
        height = rng.uniform(2.4, 3.2)
        wall, floor, ceil = pool.new(), pool.new(), pool.new(plain=True)
        back = pool.new()
        tex = [wall, wall, floor, ceil, back, back]
        sc = [float(rng.uniform(1.5, 4))] * 6
        x0 = -width * rng.uniform(0.3, 0.7)
        boxes.append(Box(np.array([x0, -1.5, -0.5]), np.array([x0 + width, height - 1.5, depth]), tex, sc, True))
        n_items = rng.integers(2, 7) if kind == "room" else rng.integers(0, 4)
        for _ in range(n_items):  # furniture, cupboards, doors
            bw, bh, bd = rng.uniform(0.4, 1.6), rng.uniform(0.4, 2.0), rng.uniform(0.3, 1.2)
            bx = rng.uniform(x0, x0 + width - bw)
            bz = rng.uniform(1.0, depth - bd)
            t, s = faces()
            boxes.append(Box(np.array([bx, -1.5, bz]), np.array([bx + bw, -1.5 + bh, bz + bd]), t, s))
        return boxes, 1.5, 0.0
    # outdoor: a ground slab and buildings or hills
    ground = pool.new()
    boxes.append(Box(np.array([-500.0, -1e3, -1.0]), np.array([500.0, -1.6, 2000.0]), [ground] * 6, [4.0] * 6))
    if kind == "street":
        for side in (-1, 1):
            z = rng.uniform(2, 10)
            while z < 250:
                bw, bh = rng.uniform(6, 25), rng.uniform(5, 45)
                x_in = rng.uniform(5, 12)
                t, s = faces()
                xa, xb = (side * x_in, side * (x_in + 20))
                boxes.append(Box(np.array([min(xa, xb), -1.6, z]), np.array([max(xa, xb), -1.6 + bh, z + bw]), t, s))
                z += bw + rng.uniform(0, 10)
    else:  # terrain: rolling ridges as wide, low boxes at increasing distance
        for i in range(int(rng.integers(3, 8))):
            z = rng.uniform(30, 600) * (1 + i)
            bw, bh = rng.uniform(100, 800), rng.uniform(5, 80)
            bx = rng.uniform(-600, 300)
            t, s = faces(plain=False)
            boxes.append(Box(np.array([bx, -1.6, z]), np.array([bx + bw, -1.6 + bh, z + rng.uniform(20, 200)]), t, s))
    return boxes, 0.0, 1.0


def render_scene(
    kind: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    photos: list[np.ndarray] | None = None,
    plain_share: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one random scene.

    Args:
        kind: ``room``, ``corridor``, ``street`` or ``terrain``.
        height, width: image size in pixels.
        rng: NumPy generator (the scene is a deterministic function of its state).
        photos: clean float32 ``(H, W, 3)`` images to take textures from.
        plain_share: share of plain painted surfaces.

    Returns:
        ``rgb`` float32 ``(H, W, 3)`` in [0, 1] and ``depth`` float32 ``(H, W)``: distance along the ray
        in metres, ``inf`` for the sky.
    """
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; choose one of {', '.join(SCENE_KINDS)}")
    pool = TexturePool(photos or [], rng, plain_share=plain_share)
    boxes, _, sky = _layout(kind, rng, pool)
    yaw = rng.uniform(-0.35, 0.35)
    pitch = rng.uniform(-0.12, 0.08) if sky else rng.uniform(-0.15, 0.15)
    dirs = _camera_rays(height, width, rng.uniform(50, 80), yaw, pitch)
    origin = np.array([0.0, 0.0, 0.0], np.float32)
    best_t = np.full((height, width), np.inf, np.float32)
    rgb = np.zeros((height, width, 3), np.float32)
    light = np.array([0.3, 0.8, -0.5])
    light /= np.linalg.norm(light)
    normals = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], np.float32)
    for box in boxes:
        t, face = _intersect(origin, dirs, box)
        closer = t < best_t
        if not closer.any():
            continue
        best_t[closer] = t[closer]
        p = dirs[closer] * t[closer][:, None]
        f = face[closer]
        axis = f // 2
        uv_axes = np.array([[2, 1], [2, 1], [0, 2], [0, 2], [0, 1], [0, 1]])[f]
        u = np.take_along_axis(p, uv_axes[:, :1], 1)[:, 0]
        v = np.take_along_axis(p, uv_axes[:, 1:], 1)[:, 0]
        col = np.zeros((len(f), 3), np.float32)
        for fid in np.unique(f):
            m = f == fid
            tex = pool.patches[box.textures[fid]]
            sc = box.scales[fid]
            col[m] = _shade(tex, u[m] / sc, -v[m] / sc)
        n = normals[f] * (-1 if box.inside else 1)
        if box.inside:
            n = -normals[f] * np.where(f % 2 == 1, 1, -1)[:, None] * np.where(f % 2 == 1, 1, -1)[:, None]
        lambert = np.abs(n @ light) * 0.45 + 0.55
        falloff = 1.0 / (1.0 + 0.02 * t[closer]) if not sky else 1.0
        rgb[closer] = col * (lambert * falloff)[:, None]
        del axis
    if sky:
        up = np.clip(dirs[..., 1], 0, 1)[..., None]
        sky_col = (1 - up) * np.array([0.78, 0.84, 0.9]) + up * rng.uniform([0.3, 0.45, 0.7], [0.55, 0.7, 0.95])
        rgb = np.where(np.isinf(best_t)[..., None], sky_col, rgb)
    else:
        best_t[np.isinf(best_t)] = np.nanmax(best_t[np.isfinite(best_t)]) if np.isfinite(best_t).any() else 10.0
    return np.clip(rgb, 0, 1).astype(np.float32), best_t
