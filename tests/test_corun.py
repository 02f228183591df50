"""CORUN and the learned-model plumbing: closed-form updates, registry-wide network checks, weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import hazy_scene, to_u8

import clearsight as cs
from clearsight.models import ARCHS, build_arch, load_restorer
from clearsight.models._weights import load_weights, read_metadata, save_weights
from clearsight.models.corun import CORUN, CORUNConfig, dark_channel_torch, estimate_airlight_torch, sgdm, tgdm
from clearsight.models.learned import guided_upsample

TINY = {
    "corun": {"preset": "tiny"},
    "rsr": {"preset": "tiny"},
    "udair": {"preset": "tiny"},
    "ffdnet": {"preset": "tiny"},
    "lowlight": {"preset": "tiny"},
    "degclass": {"widths": (4, 8)},
    "irp": {"widths": (8, 12, 16), "dim": 16},
}
#: expected output shape of each architecture for an input ``x``
OUT_SHAPE = {
    "corun": lambda x: tuple(x.shape),
    "rsr": lambda x: tuple(x.shape),
    "udair": lambda x: tuple(x.shape),
    "ffdnet": lambda x: tuple(x.shape),
    "lowlight": lambda x: tuple(x.shape),
    "degclass": lambda x: (x.shape[0], 9),
    "irp": lambda x: (x.shape[0],),
}


def _tiny(name: str) -> torch.nn.Module:
    return build_arch(name, **TINY.get(name, {}))


def test_every_arch_has_tiny_arguments():
    assert set(ARCHS) <= set(TINY) & set(OUT_SHAPE), "give new architectures tiny arguments and an output shape"


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 21, 35)])
def test_arch_forward_shape_range_nan_gradient(name, shape):
    torch.manual_seed(0)
    net = _tiny(name)
    x = torch.rand(shape, requires_grad=True)
    out = net(x)
    assert tuple(out.shape) == OUT_SHAPE[name](x)
    assert torch.isfinite(out).all()
    out.clamp(0, 1).mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", list(ARCHS))
def test_arch_bf16_autocast_runs(name):
    net = _tiny(name).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 24, 24).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert tuple(out.shape) == OUT_SHAPE[name](x) and torch.isfinite(out.float()).all()


def test_sgdm_is_the_least_squares_minimiser():
    g = torch.Generator().manual_seed(0)
    p, jp = torch.rand(1, 3, 4, 5, generator=g), torch.rand(1, 3, 4, 5, generator=g)
    t = 0.3 + 0.6 * torch.rand(1, 1, 4, 5, generator=g)
    gamma = 0.57
    j = sgdm(p, t, jp, gamma)
    # per pixel and channel: min_J (P - J T - 1 + T)^2 + gamma (J - Jp)^2, solved as a 2-row least squares
    for c, y, x in [(0, 0, 0), (1, 2, 3), (2, 3, 4)]:
        tt = t[0, 0, y, x]
        a = torch.stack([tt, torch.tensor(gamma).sqrt()])[:, None]
        b = torch.stack([p[0, c, y, x] - 1 + tt, torch.tensor(gamma).sqrt() * jp[0, c, y, x]])[:, None]
        ref = torch.linalg.lstsq(a, b).solution.item()
        assert abs(float(j[0, c, y, x]) - min(max(ref, 0.0), 1.0)) < 1e-5


def test_tgdm_is_the_least_squares_minimiser():
    g = torch.Generator().manual_seed(1)
    lam = 0.574
    # one channel: the published form is the exact minimiser of ||(1-P) - T (1-J)||^2 + lam ||T - T0||^2
    p, jh, t0 = (torch.rand(1, 1, 6, 6, generator=g) * 0.9 for _ in range(3))
    t = tgdm(p, t0, jh, lam)
    a = 1 - jh
    ref = ((a * (1 - p) + lam * t0) / (a * a + lam)).clamp(0.05, 0.999)
    assert torch.allclose(t, ref, atol=1e-6)
    # three channels: numerator and denominator of each channel's minimiser are divided by (1 - J_c) and
    # summed over channels (the paper's normalisation); check against that formula and the clamps
    p3, jh3 = torch.rand(2, 3, 5, 5, generator=g) * 0.9, torch.rand(2, 3, 5, 5, generator=g) * 0.9
    t03 = torch.rand(2, 1, 5, 5, generator=g)
    a3 = 1 - jh3
    ref3 = (((1 - p3) + lam * t03 / a3).sum(1, keepdim=True) / (a3 + lam / a3).sum(1, keepdim=True)).clamp(0.05, 0.999)
    out3 = tgdm(p3, t03, jh3, lam)
    assert torch.allclose(out3, ref3, atol=1e-6)
    assert out3.min() >= 0.05 and out3.max() <= 0.999
    # identical channels reduce to the one-channel minimiser
    same = tgdm(p.expand(1, 3, 6, 6), t0, jh.expand(1, 3, 6, 6), lam)
    assert torch.allclose(same, t, atol=1e-6)


def test_tgdm_recovers_the_true_transmission_without_prior():
    j = torch.rand(1, 3, 8, 8) * 0.7
    t_true = 0.2 + 0.7 * torch.rand(1, 1, 8, 8)
    p = j * t_true + (1 - t_true)
    assert torch.allclose(tgdm(p, torch.zeros_like(t_true), j, 1e-9), t_true, atol=1e-4)


def test_dark_channel_and_airlight_estimate():
    x = torch.rand(2, 3, 40, 50) * 0.5
    x[0, :, :5, :5] = torch.tensor([0.9, 0.8, 0.6])[:, None, None]  # a bright hazy corner
    dc = dark_channel_torch(x, 5)
    ref = -torch.nn.functional.max_pool2d(-x.amin(1, keepdim=True), 5, 1, 2)  # zero padding differs at borders
    assert torch.allclose(dc[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2])
    a = estimate_airlight_torch(x, 5, top=0.002)
    assert a.shape == (2, 3, 1, 1)
    assert torch.allclose(a[0, :, 0, 0], torch.tensor([0.9, 0.8, 0.6]), atol=1e-5)


def test_corun_pads_and_crops_any_size():
    net = CORUN(CORUNConfig.tiny())
    for h, w in [(1, 1), (17, 5), (33, 40)]:
        res = net.forward_train(torch.rand(1, 3, h, w))
        assert res["image"].shape == (1, 3, h, w) and res["transmission"].shape == (1, 1, h, w)
        assert len(res["images"]) == len(res["transmissions"]) == 2


def test_corun_zero_init_is_the_unrolled_physics():
    cfg = CORUNConfig(stages=2, dim=8, levels=1, num_blocks=[1, 1], zero_init=True)
    net = CORUN(cfg)
    x = torch.rand(1, 3, 16, 16)
    res = net.forward_train(x)
    # with the proximal nets at identity, the output is the last SGDM scene
    assert torch.allclose(res["image"], res["image"].clamp(0, 1))


def test_weights_roundtrip_and_bad_files(tmp_path):
    net = _tiny("corun")
    path = save_weights(net, tmp_path / "w.safetensors", "corun", {"preset": "tiny"}, note="x")
    loaded, meta = load_weights(path)
    assert meta["note"] == "x"
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(cs.ClearsightError, match="not a safetensors"):
        read_metadata(bad)
    with pytest.raises(cs.ClearsightError, match="no such weights file"):
        read_metadata(tmp_path / "missing.safetensors")


def test_shipped_models_are_registered_and_restore():
    learned = [m for m in cs.list_models() if cs.model_info(m).kind == "learned"]
    assert "corun.haze" in learned
    hazy = to_u8(hazy_scene(48, 64)[0])
    for name in learned:
        r = cs.create_model(name, precision="fp32")
        for shape in [(1, 1), (5, 3), (48, 64)]:
            out, state = cs.infer.restore_array(hazy[: shape[0], : shape[1]], r)
            assert out.shape == (*shape, 3) and out.dtype == np.uint8
        # the trained model clears synthetic haze better than the untrained one
        untrained = cs.create_model(name, pretrained=False, precision="fp32")
        h, c, _ = hazy_scene(64, 96, seed=3)
        err = [np.abs(cs.infer.restore_array(h, m)[0] - c).mean() for m in (r, untrained)]
        assert err[0] < err[1]


def test_load_restorer_from_file(tmp_path):
    path = save_weights(_tiny("corun"), tmp_path / "w.safetensors", "corun", {"preset": "tiny"})
    r = load_restorer(path, precision="fp32", max_pixels=None)
    out = r(torch.rand(1, 3, 20, 20))
    assert out.shape == (1, 3, 20, 20) and out.min() >= 0 and out.max() <= 1


def test_guided_upsample_carries_a_global_colour_change():
    full = hazy_scene(120, 160)[0]
    low = np.ascontiguousarray(full[::4, ::4])
    target = 0.8 * full + 0.1  # an affine correction the network might make
    up = guided_upsample(low, 0.8 * low + 0.1, full)
    assert np.abs(up - target).mean() < 2e-3


def test_learned_model_tiles_close_to_untiled():
    # the MST attention is global over a tile, so tiling is close to, not equal to, the whole-image result
    h = to_u8(hazy_scene(160, 224, seed=5)[0])
    r = cs.create_model("corun.haze", precision="fp32", max_pixels=None)
    whole = cs.infer.restore_array(h, r, tile=0)[0].astype(np.float32)
    tiled = cs.infer.restore_array(h, r, tile=128, overlap=32)[0].astype(np.float32)
    assert np.abs(whole - tiled).mean() < 4.0  # 8-bit codes


class _Blotchy(torch.nn.Module):
    """A stand-in dehazer: the exact affine correction plus mid-scale blotches no transmission could make."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        blot = torch.nn.functional.interpolate(torch.rand(1, 3, 32, 32, generator=g), size=x.shape[-2:], mode="bicubic")
        return 1.3 * x - 0.1 + 0.08 * (blot - 0.5)


def test_affine_projection_removes_what_no_transmission_makes():
    from clearsight.models.learned import NetworkRestorer

    x = hazy_scene(96, 128, seed=2)[0]
    target = np.clip(1.3 * x - 0.1, 0, 1)
    errs = {}
    for affine in (None, 0.1):
        r = NetworkRestorer(_Blotchy(), precision="fp32", max_pixels=None, affine=affine)
        errs[affine] = np.abs(r.process(x, r.prepare(x)) - target).mean()
    assert errs[0.1] < 0.4 * errs[None], errs
    with pytest.raises(ValueError, match="affine"):
        NetworkRestorer(_Blotchy(), affine=2.0)


class _Tinting(torch.nn.Module):
    """A stand-in dehazer that raises contrast and also tints everything blue."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.3 * x - 0.1 + torch.tensor([-0.05, 0.0, 0.08]).view(1, 3, 1, 1)


def test_shared_affine_mode_keeps_hues_and_the_contrast_gain():
    from clearsight.models.learned import NetworkRestorer

    x = hazy_scene(96, 128, seed=3)[0]
    x[:, :40] = x[:, :40].mean(2, keepdims=True)  # a grey region: its pixels must stay grey
    target = np.clip(1.3 * x - 0.1, 0, 1)
    outs = {}
    for mode in ("channel", "shared"):
        r = NetworkRestorer(_Tinting(), precision="fp32", max_pixels=None, affine=0.1, affine_mode=mode)
        outs[mode] = r.process(x, r.prepare(x))
    grey = lambda y: float(np.abs(y[:, :40] - y[:, :40].mean(2, keepdims=True)).max())  # noqa: E731
    assert grey(outs["channel"]) > 0.04  # the per-channel fit carries the tint
    assert grey(outs["shared"]) < 1e-3, grey(outs["shared"])
    # the contrast gain is kept: the shared fit is close to the untinted correction
    assert np.abs(outs["shared"] - target).mean() < 0.03
    with pytest.raises(ValueError, match="affine_mode"):
        NetworkRestorer(_Tinting(), affine=0.1, affine_mode="hue")


class _Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


def test_broken_network_is_a_clear_error_not_a_garbage_image():
    from clearsight.models.learned import NetworkRestorer

    x = to_u8(hazy_scene(48, 64, seed=1)[0])
    for affine in (None, 0.1):
        r = NetworkRestorer(_Broken(), precision="fp32", max_pixels=None, affine=affine)
        with pytest.raises(cs.ClearsightError, match="NaN"):
            cs.infer.restore_array(x, r)


def test_affine_projection_is_on_for_dehazers_only(tmp_path):
    assert cs.create_model("corun.haze").affine == cs.models.AFFINE_DEFAULTS["corun"]
    assert cs.create_model("corun.haze", affine=None).affine is None
    assert cs.create_model("corun.haze").affine_mode == cs.models.AFFINE_MODE_DEFAULTS["corun"] == "shared"
    assert cs.create_model("rsr.realhaze").affine_mode == "channel"
    assert cs.create_model("udair.allinone").affine is None
    path = save_weights(_tiny("corun"), tmp_path / "w.safetensors", "corun", {"preset": "tiny"})
    assert load_restorer(path).affine == cs.models.AFFINE_DEFAULTS["corun"]
    # through the CLI: --affine 0 turns it off; it has no meaning for a classical restorer
    from conftest import run_cli

    img = tmp_path / "in.png"
    cs.io.save_image(img, to_u8(hazy_scene(40, 56, seed=1)[0]))
    r = run_cli("restore", str(img), "-o", str(tmp_path / "o"), "--weights", str(path), "--affine", "0", "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("restore", str(img), "-o", str(tmp_path / "o2"), "--model", "dcp", "--affine", "0.05", "-q")
    assert r.returncode == 1 and "--affine" in r.stderr
    r = run_cli(
        "restore", str(img), "-o", str(tmp_path / "o3"), "--weights", str(path), "--affine-mode", "channel", "-q"
    )
    assert r.returncode == 0, r.stderr
