"""IRP: the capture simulator, the labels, the predictor and rank/select/advise through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import run_cli, scene, to_u8

from clearsight.degrade.capture import Capture, SceneMotion, exposure_bracket, sample_scene, simulate_captures
from clearsight.degrade.ops import srgb_to_linear
from clearsight.irp.labels import irp_labels, shake_kernel_of, wiener_deconvolve
from clearsight.models._weights import save_weights
from clearsight.models.irp import IRPConfig, IRPNet


def _clean(h=64, w=64, seed=0) -> torch.Tensor:
    return torch.from_numpy(scene(h, w, seed)).permute(2, 0, 1)[None]


def _sharpness(x: torch.Tensor) -> float:
    g = x.mean(1, keepdim=True)
    lap = torch.tensor([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=g.dtype).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(g, lap).var())


def test_bracket_keeps_exposure_times_gain():
    b = exposure_bracket(5, 2.0, 32.0)
    assert [round(c.exposure_ms, 6) for c in (b[0], b[-1])] == [2.0, 32.0]
    assert all(abs(c.exposure_ms * c.gain - 32.0) < 1e-9 for c in b)
    with pytest.raises(ValueError):
        exposure_bracket(0)


def test_blur_grows_with_exposure():
    clean = _clean()
    s = SceneMotion(speed=0.5, photons=1e7, read=0.0, seed=3)  # photons so many that noise vanishes
    frames, info = simulate_captures(clean, exposure_bracket(5, 1, 32), s)
    sharp = [_sharpness(f[None]) for f in frames]
    assert all(a > b for a, b in zip(sharp, sharp[1:])), sharp
    assert all(a["blur_px"] < b["blur_px"] for a, b in zip(info, info[1:]))


def test_noise_grows_with_gain_at_constant_brightness():
    clean = _clean()
    s = SceneMotion(speed=0.0, photons=40.0, read=4.0, seed=5)  # no shake: only noise differs
    frames, info = simulate_captures(clean, exposure_bracket(5, 1, 64), s)
    lin, ref = srgb_to_linear(frames), srgb_to_linear(clean)
    means = lin.mean((1, 2, 3))
    assert torch.allclose(means, ref.mean().expand(5), rtol=0.05), means  # brightness constant
    noise = [float((f - clean[0]).std()) for f in frames]
    assert all(a > b for a, b in zip(noise, noise[1:])), noise  # shortest exposure = highest gain = noisiest
    assert all(a["noise_sigma"] > b["noise_sigma"] for a, b in zip(info, info[1:]))


def test_camera_pipeline_correlates_the_noise_and_compresses():
    flat = torch.full((1, 3, 64, 64), 0.5)
    b = [Capture(1.0, 1.0)]

    def neighbour_corr(frames):
        n = (frames - frames.mean((2, 3), keepdim=True))[0, 1].double()  # green channel
        return float(torch.corrcoef(torch.stack([n[:, :-1].flatten(), n[:, 1:].flatten()]))[0, 1])

    raw, _ = simulate_captures(flat, b, SceneMotion(speed=0.0, photons=200.0, read=2.0, seed=1))
    cfa, _ = simulate_captures(flat, b, SceneMotion(speed=0.0, photons=200.0, read=2.0, seed=1, cfa=True))
    assert abs(neighbour_corr(raw)) < 0.1 < 0.3 < neighbour_corr(cfa)
    assert abs(float(cfa.mean() - raw.mean())) < 0.02  # the demosaic keeps the brightness
    jp, _ = simulate_captures(flat, b, SceneMotion(speed=0.0, photons=200.0, read=2.0, seed=1, jpeg_quality=30))
    assert torch.equal(jp, (jp * 255).round() / 255) and float((jp - raw).abs().mean()) > 0.005
    draws = [sample_scene(torch.Generator().manual_seed(i)) for i in range(40)]
    assert 10 < sum(d.cfa for d in draws) < 40 and any(d.jpeg_quality for d in draws)


def test_cached_bursts_are_rebuilt_when_the_simulator_changed(tmp_path):
    from clearsight.io import save_image
    from clearsight.irp.data import Bursts, cached_bursts, make_bursts

    save_image(tmp_path / "a.png", to_u8(scene(48, 48, seed=2)))
    calls = []

    def build():
        calls.append(1)
        return make_bursts([tmp_path / "a.png"], 1, crop=32, settings=exposure_bracket(2), workers=1, progress=False)

    path = tmp_path / "cache" / "b.npz"
    first = cached_bursts(path, build)
    again = cached_bursts(path, build)
    assert len(calls) == 1 and np.array_equal(first.frames, again.frames) and again.version == first.version
    old = Bursts.load(path)
    old.version = first.version - 1
    old.save(path)
    assert cached_bursts(path, build).version == first.version and len(calls) == 2


def test_simulator_is_deterministic_and_seeded():
    clean = _clean(40, 48)
    st = exposure_bracket(3)
    s1 = sample_scene(torch.Generator().manual_seed(7))
    s2 = sample_scene(torch.Generator().manual_seed(7))
    s3 = sample_scene(torch.Generator().manual_seed(8))
    a, _ = simulate_captures(clean, st, s1)
    b, _ = simulate_captures(clean, st, s2)
    c, _ = simulate_captures(clean, st, s3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 3, 40, 48) and 0 <= float(a.min()) and float(a.max()) <= 1
    with pytest.raises(ValueError):
        simulate_captures(clean[0], st, s1)


def test_moving_object_blurs_only_its_region():
    clean = _clean(64, 64)
    s = SceneMotion(speed=0.0, photons=1e7, read=0.0, object_speed=1.0, object_box=(0.5, 0.5, 0.2, 0.2), seed=1)
    frames, _ = simulate_captures(clean, [Capture(20.0, 1.0)], s)
    diff = (frames[0] - clean[0]).abs().mean(0)
    assert float(diff[24:40, 24:40].mean()) > 5 * float(diff[:8, :8].mean()) + 1e-4


def test_wiener_inverts_a_known_blur():
    x = scene(64, 64, 2)
    k = np.zeros((9, 9), np.float32)
    k[4, :] = 1 / 9
    blurred = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)
    err_blur = np.abs(blurred - x)[8:-8, 8:-8].mean()
    err_rest = np.abs(wiener_deconvolve(blurred, k, 1e-3) - x)[8:-8, 8:-8].mean()
    assert err_rest < 0.5 * err_blur


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255 + 0.5).floor() / 255  # frames as a camera saves them


def test_irp_labels_monotone_on_a_controlled_ladder():
    clean = _clean(64, 64, 4)
    st = exposure_bracket(4, 2, 32)
    blur_only = SceneMotion(speed=0.6, photons=1e7, read=0.0, seed=11, shake="linear")
    f = _u8(simulate_captures(clean, st, blur_only)[0])
    pool = ["none", "denoise", "deblur"]
    lab = irp_labels(f, clean, [shake_kernel_of(blur_only, s, st) for s in st], restorers=pool)
    assert all(a > b for a, b in zip(lab.irp, lab.irp[1:])), lab.irp  # longer exposure, more blur: lower IRP
    noise_only = SceneMotion(speed=0.0, photons=30.0, read=3.0, seed=11)
    f = _u8(simulate_captures(clean, st, noise_only)[0])
    pool = ["none", "denoise", "deblur"]
    lab = irp_labels(f, clean, [shake_kernel_of(noise_only, s, st) for s in st], restorers=pool)
    assert all(a < b for a, b in zip(lab.irp, lab.irp[1:])), lab.irp  # shorter exposure, more noise: lower IRP
    assert lab.irp_relative.max() == pytest.approx(1.0) and lab.ssim.shape == (4, 3)


def test_irp_net_shapes_range_and_gradients():
    net = IRPNet(IRPConfig.tiny())
    x = torch.rand(3, 3, 40, 56, requires_grad=True)
    y = net(x)
    assert y.shape == (3,) and bool(((y > 0) & (y < 1)).all())
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in net.parameters() if p.requires_grad)
    net.eval()
    w = net.level_weights(torch.rand(2, 3, 32, 32))
    assert torch.allclose(w.sum(1), torch.ones(2), atol=1e-5)
    big = torch.rand(1, 3, 300, 320)
    s = net.score(big, tile=64, max_pixels=100 * 100)
    assert s.shape == (1,) and 0 < float(s) < 1
    with pytest.raises(ValueError):
        net.score(torch.rand(1, 3, 8, 8))


def test_flip_averages_the_image_and_its_mirror():
    from clearsight.irp.apps import IRPPredictor

    torch.manual_seed(0)
    net = IRPNet(IRPConfig.tiny()).eval()
    x = torch.rand(2, 3, 40, 56)
    plain, flipped = IRPPredictor(net), IRPPredictor(net, flip=True)
    with torch.no_grad():
        want = (net.score(x) + net.score(x.flip(-1))) / 2
        assert torch.allclose(flipped.score_tensor(x), want, atol=1e-6)
        assert not torch.allclose(plain.score_tensor(x), want, atol=1e-6)  # an asymmetric image scores differently
        sym = torch.cat([x[..., :28], x[..., :28].flip(-1)], -1)  # a mirror-symmetric image: same either way
        assert torch.allclose(flipped.score_tensor(sym), plain.score_tensor(sym), atol=1e-6)


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    torch.manual_seed(0)
    net = IRPNet(IRPConfig.tiny())
    return save_weights(net, tmp_path / "irp_tiny.safetensors", "irp", net.config.to_dict(), name="irp.tiny")


def test_synth_dynamic_rank_select_advise_cli(tmp_path, tiny_weights):
    src = tmp_path / "clean"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), to_u8(scene(48, 64, 1))[..., ::-1])
    r = run_cli("synth", "--preset", "dynamic", "--clean", str(src), "--out", str(tmp_path / "s"), "--per-image", "2",
                "--size", "64", "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    bursts = sorted((tmp_path / "s" / "degraded").iterdir())
    assert [b.name for b in bursts] == ["a_0", "a_1"]
    frames = sorted(bursts[0].glob("*.png"))
    assert len(frames) == 8 and (tmp_path / "s" / "clean" / "a_0.png").is_file()
    meta = json.loads((tmp_path / "s" / "params" / "a_0.json").read_text())
    assert [m["exposure_ms"] for m in meta["frames"]] == sorted(m["exposure_ms"] for m in meta["frames"])
    again = run_cli("synth", "--preset", "dynamic", "--clean", str(src), "--out", str(tmp_path / "s"), "-q",
                    "--per-image", "2", "--size", "64")  # fmt: skip
    assert "skipped 2" in again.stdout  # resumable

    missing = tmp_path / "missing.png"
    csv_path = tmp_path / "rank.csv"
    r = run_cli("rank", str(bursts[0]), str(missing), "--weights", str(tiny_weights), "--csv", str(csv_path), "--flip")
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines() == [f"{missing}: no such file or folder"]  # named once, on one line
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 8 and [float(x["irp"]) for x in rows] == sorted((float(x["irp"]) for x in rows), reverse=True)

    out = tmp_path / "best"
    r = run_cli("select", str(tmp_path / "s" / "degraded"), "--top", "2", "-o", str(out), "--weights",
                str(tiny_weights), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(list((out / "a_0").glob("*.png"))) == 2 and len(list((out / "a_1").glob("*.png"))) == 2
    sel = list(csv.DictReader(open(out / "selection.csv")))
    assert len(sel) == 16 and sum(int(x["chosen"]) for x in sel) == 4
    best = max((x for x in sel if x["burst"] == "a_0"), key=lambda x: float(x["irp"]))
    assert best["chosen"] == "1"
    # bursts share frame names: each pick must be its own burst's frame
    for b in ("a_0", "a_1"):
        top1 = max((x for x in sel if x["burst"] == b), key=lambda x: float(x["irp"]))
        src = tmp_path / "s" / "degraded" / b / f"{top1['frame']}.png"
        assert np.array_equal(cv2.imread(top1["output"]), cv2.imread(str(src)))

    inside = run_cli("select", str(tmp_path / "s" / "degraded"), "-o", str(bursts[0] / "x"), "--weights",
                     str(tiny_weights), "-q")  # fmt: skip
    assert inside.returncode == 1 and "outside the input" in inside.stderr

    r = run_cli("advise", *map(str, frames[::2]), "--weights", str(tiny_weights))
    assert r.returncode == 0, r.stderr
    assert "recommended" in r.stdout and "ms" in r.stdout and "<- best" in r.stdout


def test_select_from_a_generated_video(tmp_path, tiny_weights):
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert vw.isOpened()
    rng = np.random.default_rng(0)
    base = to_u8(scene(48, 64, 3))
    for i in range(12):
        noisy = np.clip(base.astype(np.float32) + rng.normal(0, 3 + 6 * i, base.shape), 0, 255).astype(np.uint8)
        vw.write(np.ascontiguousarray(noisy[..., ::-1]))
    vw.release()
    out = tmp_path / "picks"
    r = run_cli("select", str(path), "--top", "3", "--min-gap", "2", "-o", str(out), "--weights", str(tiny_weights),
                "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    picks = sorted((out / "clip").glob("*.png"))
    assert len(picks) == 3
    idx = sorted(int(p.stem.split("_")[-1]) for p in picks)
    assert all(b - a > 2 for a, b in zip(idx, idx[1:]))
    sel = list(csv.DictReader(open(out / "selection.csv")))
    assert len(sel) == 12
    bad = run_cli("select", str(tmp_path / "nope.mp4"), "-o", str(out), "--weights", str(tiny_weights), "-q")
    assert bad.returncode == 1 and "error:" in bad.stderr
    # with the progress bar on (its total is unknown for a video: it once crashed on 'if bar:')
    r = run_cli("select", str(path), "--top", "3", "-o", str(tmp_path / "bar"), "--weights", str(tiny_weights))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "IRP select" in r.stderr  # the bar was drawn
    assert len(list((tmp_path / "bar" / "clip").glob("*.png"))) == 3


SHIPPED = Path(__file__).resolve().parents[1] / "src/clearsight/models/weights/irp_dynamic.safetensors"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="irp.dynamic is not shipped yet")
def test_shipped_predictor_prefers_the_restorable_frame():
    from clearsight.irp.apps import load_predictor

    pred = load_predictor()
    clean = _clean(128, 128, 6)
    st = [Capture(1.0, 64.0), Capture(8.0, 8.0), Capture(64.0, 1.0)]
    noisy = simulate_captures(clean, st[:1], SceneMotion(speed=0.0, photons=15.0, read=6.0, seed=2))[0]
    blurred = simulate_captures(clean, st[2:], SceneMotion(speed=1.5, photons=1e6, read=0.0, seed=2))[0]
    good = simulate_captures(clean, st[1:2], SceneMotion(speed=0.05, photons=2000.0, read=2.0, seed=2))[0]
    s = pred.score_tensor(torch.cat([good, noisy, blurred]))
    assert float(s[0]) > float(s[1]) and float(s[0]) > float(s[2]), s


def test_bad_frames_are_reported_and_skipped(tmp_path, tiny_weights):
    d = tmp_path / "burst"
    d.mkdir()
    cv2.imwrite(str(d / "good.png"), to_u8(scene(40, 40, 1))[..., ::-1])
    cv2.imwrite(str(d / "tiny.png"), np.zeros((8, 8, 3), np.uint8))
    (d / "bad.jpg").write_bytes(b"not an image")
    r = run_cli("select", str(d), "-o", str(tmp_path / "out"), "--weights", str(tiny_weights), "-q")
    assert r.returncode == 0, r.stderr
    assert "bad.jpg" in r.stderr and "16x16" in r.stderr and "Traceback" not in r.stderr
    assert [p.name for p in (tmp_path / "out" / "burst").iterdir()] == ["01_good.png"]
    r = run_cli("advise", str(d / "tiny.png"), "--weights", str(tiny_weights))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "16x16" in r.stderr
