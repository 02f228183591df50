"""Degradation synthesis: physics properties, determinism, replay, gradients, every preset on odd sizes."""

import colorsys

import numpy as np
import pytest
import torch
from conftest import scene

from clearsight.degrade import create_degradation, estimate_depth, list_degradations, random_depth
from clearsight.degrade.ops import day_haze, disk_kernel, motion_kernel, sand_dust
from clearsight.degrade.pipeline import PRESETS, Degrader, load_pipeline_config


def _img(b=2, h=48, w=64, seed=0):
    return torch.stack([torch.from_numpy(scene(h, w, seed + i)).permute(2, 0, 1) for i in range(b)])


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_lists_every_operator():
    assert set(list_degradations()) >= {
        "day_haze", "nonhomogeneous_haze", "night_haze", "sand_dust", "low_light", "noise",
        "color_cast", "motion_blur", "defocus", "rain", "jpeg", "gamma",
    }  # fmt: skip


def test_beta_zero_is_identity_and_transmission_in_unit_range():
    x = _img()
    depth = random_depth(2, 48, 64, _gen())
    out, t = day_haze(x, depth, torch.zeros(2), torch.rand(2, 3))
    assert torch.equal(out, x) and torch.equal(t, torch.ones_like(t))
    out, t = sand_dust(x, depth, torch.zeros(2), torch.ones(2), torch.rand(2, 3), torch.ones(2, 3))
    assert torch.allclose(out, x)
    for name in ("day_haze", "nonhomogeneous_haze", "sand_dust", "night_haze"):
        op = create_degradation(name)
        maps = {}
        op.apply(x, op.sample(2, _gen()), depth, maps)
        assert maps["transmission"].min() >= 0 and maps["transmission"].max() <= 1, name


def test_haze_monotone_in_beta():
    x = _img(1)
    depth = random_depth(1, 48, 64, _gen())
    a = torch.tensor([[0.9, 0.9, 0.9]])
    prev = None
    for beta in (0.0, 0.5, 1.0, 2.0, 4.0):
        out, _ = day_haze(x, depth, torch.tensor([beta]), a)
        dist = (out - a.view(1, 3, 1, 1)).abs().mean().item()  # distance to the airlight shrinks
        if prev is not None:
            assert dist < prev
        prev = dist


def test_dust_airlight_is_yellow_orange():
    op = create_degradation("sand_dust")
    p = op.sample(256, _gen())
    for r, g, b in p["airlight"].tolist():
        hue = colorsys.rgb_to_hsv(r, g, b)[0] * 360
        assert 15 <= hue <= 60, (r, g, b, hue)
    assert (p["absorb"][:, 2] <= p["absorb"][:, 1]).all()


def test_night_darker_than_day():
    x = _img(8)
    depth = random_depth(8, 48, 64, _gen(3))
    day, _ = Degrader.from_preset("day_haze")(x, depth=depth, generator=_gen(1))
    night, _ = Degrader.from_preset("night_haze")(x, depth=depth, generator=_gen(1))
    assert night.mean() < 0.6 * day.mean()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_seed_determinism_and_replay(preset):
    x = _img()
    deg = Degrader.from_preset(preset)
    y1, p1 = deg(x, generator=_gen(7))
    y2, _ = deg(x, generator=_gen(7))
    y3, _ = deg(x, generator=_gen(8))
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, y3)
    assert torch.equal(deg.replay(x, p1), y1)


@pytest.mark.parametrize("name", [n for n in list_degradations() if n != "jpeg"])
def test_gradcheck_differentiable_ops(name):
    op = create_degradation(name)
    assert op.differentiable
    x = torch.rand(1, 3, 6, 7, dtype=torch.float64) * 0.8 + 0.1
    depth = torch.rand(1, 1, 6, 7, dtype=torch.float64)
    params = op.sample(1, _gen(2))
    x.requires_grad_(True)
    # clamps make some points non-differentiable; check where the function is smooth
    assert torch.autograd.gradcheck(lambda t: op.apply(t, params, depth), (x,), atol=1e-4, raise_exception=True)


def test_module_equals_function():
    x = _img()
    depth = random_depth(2, 48, 64, _gen())
    op = create_degradation("day_haze")
    p = op.sample(2, _gen())
    assert torch.equal(op.apply(x, p, depth), day_haze(x, depth, p["beta"], p["airlight"])[0])


def test_per_sample_and_same_on_batch():
    op = create_degradation("day_haze")
    p = op.sample(4, _gen())
    assert len(set(p["beta"].tolist())) == 4
    q = op.sample(4, _gen(), same_on_batch=True)
    assert len(set(q["beta"].tolist())) == 1


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (33, 17)])
def test_presets_on_tiny_and_odd_sizes(preset, shape):
    x = torch.rand(2, 3, *shape)
    y, _ = Degrader.from_preset(preset)(x, generator=_gen())
    assert y.shape == x.shape and torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_on_large_input(preset):
    x = torch.rand(1, 3, 1500, 2000) * 0.5 + 0.25
    y, _ = Degrader.from_preset(preset)(x, generator=_gen())
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_kernels_are_normalised():
    k = motion_kernel(15.0, _gen())
    assert abs(k.sum().item() - 1) < 1e-9 and (k >= 0).all() and k.shape[0] % 2 == 1
    d = disk_kernel(3.0)
    assert abs(d.sum().item() - 1) < 1e-9 and d[3, 3] == d.max()


def test_low_light_and_noise_behave():
    x = _img(4)
    ll, _ = Degrader.from_preset("low_light")(x, generator=_gen())
    assert ll.mean() < 0.5 * x.mean()
    op = create_degradation("noise", sigma=(0.1, 0.1), probs=(0, 1, 0, 0))
    flat = torch.full((1, 3, 64, 64), 0.5)
    y = op.apply(flat, op.sample(1, _gen()))
    assert abs((y - flat).std().item() - 0.1) < 0.01


def test_geometry_depth_puts_sky_far_and_ground_near():
    h, w = 120, 160
    img = np.zeros((h, w, 3), np.float32)
    img[: h // 3] = [0.6, 0.75, 0.95]  # smooth blue sky on top
    img[h // 3 :] = np.random.default_rng(0).random((h - h // 3, w, 3)) * 0.4  # textured ground
    d = estimate_depth(torch.from_numpy(img).permute(2, 0, 1)[None])[0, 0]
    assert d[: h // 4].mean() > 0.9 and d[-10:].mean() < 0.3
    assert d.min() >= 0 and d.max() <= 1


def test_yaml_pipeline(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("depth: random\nstages:\n  - {op: day_haze, beta: [1.0, 1.0]}\n  - {op: jpeg, p: 0.5}\n")
    deg = Degrader.from_config(f)
    y, p = deg(_img(), generator=_gen())
    assert torch.equal(p["0.day_haze.beta"], torch.ones(2))
    with pytest.raises(Exception, match="unknown pipeline keys"):
        load_pipeline_config({"stages": [], "bogus": 1})
    with pytest.raises(Exception, match="has no 'op'"):
        load_pipeline_config([{"beta": 1}])


def test_dataset_is_deterministic(tmp_path):
    from conftest import to_u8

    from clearsight.degrade.dataset import SynthesisDataset
    from clearsight.io import save_image

    for i in range(2):
        save_image(tmp_path / f"c{i}.png", to_u8(scene(90, 120, i)))
    for depth in ("geometry", "random", "scene"):
        ds = SynthesisDataset(tmp_path, preset="day_haze", crop=64, seed=3, depth=depth)
        a, b = ds[5], ds[5]
        assert torch.equal(a["degraded"], b["degraded"]) and a["degraded"].shape == (3, 64, 64)
        assert not torch.equal(ds[5]["degraded"], ds[6]["degraded"])
        assert a["transmission"].shape == (1, 64, 64)


def test_dead_leaves_is_reproducible_and_in_range():
    from clearsight.degrade.dead_leaves import dead_leaves

    a = dead_leaves(64, np.random.default_rng(3))
    b = dead_leaves(64, np.random.default_rng(3))
    c = dead_leaves(64, np.random.default_rng(4))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0 <= a.min() and a.max() <= 1
    with pytest.raises(ValueError):
        dead_leaves(64, np.random.default_rng(0), r_min=10, r_max=5)


def test_dead_leaves_smaller_leaves_make_busier_images():
    from clearsight.degrade.dead_leaves import dead_leaves

    def busy(r_min: float) -> float:
        grads = []
        for seed in range(4):
            img = dead_leaves(128, np.random.default_rng(seed), r_min=r_min, r_max=40, grain=0.0, alpha=3.0)
            grads.append(np.abs(np.diff(img.mean(-1), axis=1)).mean())
        return float(np.mean(grads))

    fine, coarse = busy(1.0), busy(8.0)
    assert fine > 1.5 * coarse, (fine, coarse)


def test_photo_leaves_cut_every_leaf_from_the_given_photos():
    from clearsight.degrade.dead_leaves import photo_leaves

    red = np.zeros((40, 60, 3), np.float32)
    red[..., 0] = 0.5
    blue = np.zeros((300, 200, 3), np.float32)
    blue[..., 2] = 0.5
    a = photo_leaves(64, [red, blue], np.random.default_rng(1))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert np.array_equal(a, photo_leaves(64, [red, blue], np.random.default_rng(1)))
    assert not np.array_equal(a, photo_leaves(64, [red, blue], np.random.default_rng(2)))
    assert np.all(a[..., 1] == 0)  # nothing but the photos' pixels (times a brightness) appears
    assert (a[..., 0] > 0.25).mean() > 0.05 and (a[..., 2] > 0.25).mean() > 0.05  # leaves from both photos
    # a leaf shows its photo in place: a gradient photo keeps its gradient inside big leaves
    ramp = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None, :, None], 256, 0).repeat(3, 2)
    g = photo_leaves(64, [ramp], np.random.default_rng(0), r_min=30, r_max=40, sources=1)
    assert (np.diff(g[..., 0], axis=1) > 0).mean() > 0.6
    with pytest.raises(ValueError, match="texture"):
        photo_leaves(64, [], np.random.default_rng(0))


def test_near_duplicates_finds_resized_flipped_turned_compressed_copies_only(tmp_path):
    import cv2

    from clearsight.degrade.dataset import near_duplicates
    from clearsight.degrade.dead_leaves import dead_leaves
    from clearsight.io import save_image

    def u8(img):
        return (img * 255 + 0.5).astype(np.uint8)

    wide = u8(dead_leaves(144, np.random.default_rng(0))[:96])  # 96 x 144
    save_image(tmp_path / "ref_wide.png", wide)
    save_image(tmp_path / "ref_other.png", u8(dead_leaves(128, np.random.default_rng(1))))
    small = cv2.resize(wide[:, ::-1], (100, 67), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "copy.jpg"), small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    save_image(tmp_path / "turned.png", np.ascontiguousarray(np.rot90(wide)))  # portrait
    save_image(tmp_path / "new.png", u8(dead_leaves(144, np.random.default_rng(2))[:96]))
    refs = [tmp_path / "ref_wide.png", tmp_path / "ref_other.png"]
    found = near_duplicates([tmp_path / n for n in ("copy.jpg", "turned.png", "new.png")], refs)
    assert found == {tmp_path / "copy.jpg": refs[0], tmp_path / "turned.png": refs[0]}
    assert near_duplicates([tmp_path / "new.png"], []) == {}
