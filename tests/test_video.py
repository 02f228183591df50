"""Video restoration: frame-to-frame smoothing of the restorer's state, and `clearsight restore` on video files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import hazy_scene, run_cli, to_u8

from clearsight.priors.base import RestorerState
from clearsight.video import restore_video, smooth_state, video_output_suffix


def _write_clip(path, frames: list[np.ndarray], fps: float = 12.0) -> None:
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG" if path.suffix == ".avi" else "mp4v"), fps, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(np.ascontiguousarray(f[..., ::-1]))
    wr.release()


def _read_clip(path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps, out = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(bgr[..., ::-1].astype(np.float32) / 255)
    cap.release()
    return out, fps


def _flickering_clip(n: int = 8) -> list[np.ndarray]:
    """One hazy scene; in half of the frames a white patch pulls He et al.'s airlight estimate up."""
    base = to_u8(hazy_scene(64, 80, seed=1, beta=1.4)[0])
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        f = base.copy()
        if rng.random() < 0.5:
            f[0:30, 44:80] = 255
        frames.append(f)
    return frames


def test_smooth_state_averages_numbers_only_within_one_method():
    a = RestorerState("dcp", params={"airlight": np.array([0.6, 0.6, 0.6]), "gain": 1.0, "tag": "x"})
    b = RestorerState("dcp", params={"airlight": np.array([1.0, 1.0, 1.0]), "gain": 3.0, "tag": "y"})
    s = smooth_state(a, b, 0.5)
    assert np.allclose(s.params["airlight"], 0.8) and s.params["gain"] == 2.0 and s.params["tag"] == "y"
    assert smooth_state(a, b, 0.0) is b and smooth_state(None, b, 0.9) is b
    assert smooth_state(RestorerState("dcp-night", params={"gain": 9.0}), b, 0.5) is b  # no mixing of methods
    nested = smooth_state(RestorerState("auto", inner=a), RestorerState("auto", inner=b), 0.5)
    assert nested.inner.params["gain"] == 2.0
    la, lb = RestorerState("n", params={"airlight": [0.5, 0.5]}), RestorerState("n", params={"airlight": [1.0, 1.0]})
    lists = smooth_state(la, lb, 0.5)
    assert lists.params["airlight"] == [0.75, 0.75]
    with pytest.raises(ValueError):
        smooth_state(a, b, 1.0)


def test_restore_video_smoothing_reduces_flicker(tmp_path):
    import clearsight as cs

    src = tmp_path / "clip.avi"
    _write_clip(src, _flickering_clip())
    flicker = {}
    for w in (0.0, 0.9):
        dst = tmp_path / f"out_{w}.avi"
        info = restore_video(src, dst, cs.create_model("dcp", airlight="he"), smooth=w)
        frames, _ = _read_clip(dst)
        assert info["frames"] == len(frames) == 8
        # brightness of the part of the frame without the patch, frame to frame
        means = [f[34:, :40].mean() for f in frames]
        flicker[w] = float(np.std(means))
    assert flicker[0.9] < 0.5 * flicker[0.0]
    assert not list(tmp_path.glob(".*partial*"))  # the partial files were renamed into place


def test_restore_cli_on_a_video_keeps_frames_size_and_fps_and_never_overwrites(tmp_path):
    src = tmp_path / "cam" / "clip.mp4"
    src.parent.mkdir()
    # even sizes: the MPEG-4 and Motion JPEG encoders crop odd ones
    frames = [to_u8(hazy_scene(64, 80, seed=1, beta=1.0 + 0.05 * i)[0]) for i in range(6)]
    _write_clip(src, frames, fps=15)
    before = src.read_bytes()
    report = tmp_path / "r.json"
    r = run_cli("restore", str(src.parent), "-o", str(tmp_path / "out"), "-q", "--json", str(report), "-m", "dcp-auto")
    assert r.returncode == 0, r.stderr
    out, fps = _read_clip(tmp_path / "out" / "clip.mp4")
    assert len(out) == 6 and out[0].shape == (64, 80, 3) and abs(fps - 15) < 0.01
    inp, _ = _read_clip(src)
    # dehazed: the dark channel (per-pixel channel minimum) drops
    assert np.mean([o.min(2).mean() for o in out]) < np.mean([i.min(2).mean() for i in inp]) - 0.05
    rows = json.loads(report.read_text())
    assert rows[0]["status"] == "done" and rows[0]["method"].startswith("dcp-auto->")
    assert "6 frames" in rows[0]["message"]
    assert src.read_bytes() == before
    r2 = run_cli("restore", str(src), "-o", str(tmp_path / "out"), "-q")
    assert r2.returncode == 0 and "skipped 1" in r2.stdout
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    r3 = run_cli("restore", str(bad), "-o", str(tmp_path / "out"), "-q")
    assert r3.returncode == 1 and "bad.mp4: cannot open this video" in r3.stderr
    r4 = run_cli("restore", str(src), "-o", str(tmp_path / "o4"), "--smooth", "1.5", "-q")
    assert r4.returncode != 0 and "--smooth" in r4.stderr


def test_video_output_suffix():
    assert video_output_suffix("a.MOV") == ".mov" and video_output_suffix("a.webm") == ".mp4"
    assert video_output_suffix("a.avi") == ".avi"


def _night_frame(core: float) -> np.ndarray:
    """A dark hazy street with a lamp whose glow is the same in every frame and whose core is ``core`` bright (a lamp
    found at 1.0, not at 0.5: the detection switches between such frames)."""
    x = hazy_scene(200, 260, seed=0)[0] * 0.25
    yy, xx = np.mgrid[:200, :260]
    r2 = (xx - 156) ** 2 + (yy - 60) ** 2
    glow = 0.45 / (1 + r2 / 14.0**2)
    x = x + glow[..., None] * np.array([1.0, 0.75, 0.45])
    x[r2 <= 16] = core
    return np.clip(x, 0, 1).astype(np.float32)


def test_a_lamp_found_in_one_frame_and_missed_in_the_next_does_not_flicker():
    import dataclasses

    from clearsight.infer import restore_array
    from clearsight.models import create_model

    night = create_model("dcp-night")
    a, b = _night_frame(1.0), _night_frame(0.5)
    sa, sb = night.prepare_image(a), night.prepare_image(b)
    assert len(sa.params["lamps"]) == 1 and sb.params["lamps"] == []
    smoothed = smooth_state(sa, sb, 0.9)
    kept = smoothed.params["lamps"]  # the lamp missed in frame b keeps 0.9 of its glow
    assert len(kept) == 1 and np.allclose(
        kept[0]["profile"], 0.9 * np.asarray(sa.params["lamps"][0]["profile"]), atol=1e-4
    )
    back = smooth_state(sb, sa, 0.9).params["lamps"]  # and a lamp found again fades in
    assert np.allclose(back[0]["profile"], 0.1 * np.asarray(sa.params["lamps"][0]["profile"]), atol=1e-4)

    # frame b as it would look if the lamp had stayed found, against switching its glow off
    def out(lamps):
        return restore_array(b, night, state=dataclasses.replace(smoothed, params={**smoothed.params, "lamps": lamps}))[
            0
        ]

    steady = out(sa.params["lamps"])
    yy, xx = np.mgrid[:200, :260]
    around = (np.hypot(xx - 156, yy - 60) > 6) & (np.hypot(xx - 156, yy - 60) < 60)
    jump = float(np.abs(out([]) - steady)[around].mean())
    faded = float(np.abs(out(kept) - steady)[around].mean())
    assert jump > 0.01 and faded < 0.2 * jump, (jump, faded)
