"""The RSR/CID network, RSR's two adaptation phases and the trainer's sample re-weighting."""

from __future__ import annotations

import torch
from conftest import hazy_scene, run_cli, scene, to_u8

from clearsight.io import save_image
from clearsight.models._weights import load_weights, read_metadata, save_weights
from clearsight.models.rsr import Bottle2neck, RSRConfig, RSRNet


def test_paper_configuration_has_the_released_channels():
    net = RSRNet(RSRConfig.paper())
    enc = net.encoder
    assert [len(enc.layer1), len(enc.layer2), len(enc.layer3)] == [3, 4, 23]
    assert enc.layer3[-1].conv3.out_channels == 1024 and enc.layer1[0].width == 26
    assert net.mid.conv1.in_channels == 1024 and net.block2.conv1.in_channels == 256
    assert net.block1.conv1.in_channels == 192 and net.enhancer.refine1.in_channels == 28
    assert net.tail[1].in_channels == 28 and net.tail[1].kernel_size == (7, 7)


def test_bottle2neck_stage_and_normal_blocks():
    x = torch.rand(2, 64, 16, 16)
    stage = Bottle2neck(64, 32, stride=2, stage=True)
    assert stage(x).shape == (2, 128, 8, 8) and stage.downsample is not None
    normal = Bottle2neck(128, 32)
    assert normal.downsample is None and normal(stage(x)).shape == (2, 128, 8, 8)


def test_forward_train_returns_representation_and_crops_back():
    net = RSRNet(RSRConfig.tiny()).eval()
    for h, w in [(5, 7), (40, 56), (64, 64)]:
        out = net.forward_train(torch.rand(1, 3, h, w))
        assert out["image"].shape == (1, 3, h, w)
        assert out["z"].shape == (1, 16 * 16) and out["features"].shape[1] == 256
        assert torch.allclose(out["z"], out["features"].mean((2, 3)))


def test_residual_configuration_adds_the_input():
    torch.manual_seed(0)
    net = RSRNet(RSRConfig.tiny()).eval()
    plain = RSRNet(RSRConfig.tiny(), residual=False).eval()
    plain.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.allclose(net(x) - plain(x), x, atol=1e-6)
        assert float(plain(x).abs().max()) <= 1.0  # the paper's output is the tail's Tanh


def _folder(path, n, hazy=True):
    path.mkdir()
    for i in range(n):
        img = hazy_scene(72, 80, seed=i)[0] if hazy else scene(72, 80, seed=40 + i)
        save_image(path / f"{i}.png", to_u8(img))
    return path


def test_rsr_adapt_keeps_the_encoder_and_changes_the_decoder(tmp_path):
    torch.manual_seed(0)
    start = save_weights(RSRNet(RSRConfig.tiny()), tmp_path / "rsr.safetensors", "rsr", {"preset": "tiny"})
    target, clean = _folder(tmp_path / "cam", 6), _folder(tmp_path / "clean", 2, hazy=False)
    out = tmp_path / "adapted.safetensors"
    for phases in ("invariant,align", "align,invariant"):
        r = run_cli("adapt", "--model", str(start), "--method", "rsr", "--phases", phases, "--target", str(target),
                    "--clean", str(clean), "--out", str(out), "--iters", "4", "--size", "64", "--batch", "2",
                    "--lr", "1e-3", "--eval-every", "2", "-q")  # fmt: skip
        assert r.returncode == 0, r.stderr
        before, _ = load_weights(start)
        after, _ = load_weights(out)
        b, a = before.state_dict(), after.state_dict()
        assert all(torch.equal(b[k], a[k]) for k in b if k.startswith("encoder."))
        assert any(not torch.equal(b[k], a[k]) for k in b if k.startswith(("mid.", "block", "enhancer", "tail")))
        assert read_metadata(out)["method"] == "rsr"
        out.unlink()
        out.with_name(out.name + ".ckpt").unlink()
    r = run_cli("adapt", "--method", "rsr", "--target", str(target), "--clean", str(clean), "--out",
                str(out), "-q")  # fmt: skip
    assert r.returncode == 1 and "RSR network" in r.stderr
    r = run_cli("adapt", "--model", str(start), "--method", "rsr", "--phases", "both", "--target", str(target),
                "--clean", str(clean), "--out", str(out), "-q")  # fmt: skip
    assert r.returncode == 1 and "--phases" in r.stderr


def test_trainer_reweights_samples_with_the_rsr_representation(tmp_path):
    from clearsight.train import load_config
    from clearsight.train.trainer import Trainer

    root = _folder(tmp_path / "clean", 4, hazy=False).parent
    over = [f"out={tmp_path / 'run'}", f"data.root={root}", "model.name=rsr", "model.args={preset: tiny}",
            "amp=none", "channels_last=false", "data.workers=0", "data.batch=4", "data.crop=32",
            "data.sources=[clean]", "data.presets={day_haze: 1}", "data.depth=random", "data.val_sources=[]",
            "optim.iterations=3", "loss.contrast=0", "loss.reweight=rff"]  # fmt: skip
    tr = Trainer(load_config(None, over), progress=False)
    z = torch.cat([torch.randn(4, 1).repeat(1, 128), torch.randn(4, 128)], 1)
    w = tr.sample_weights({"z": z}, 0)
    assert w.shape == (4,) and (w >= 0).all() and abs(float(w.sum()) - 1) < 1e-5
    res = tr.fit()
    assert res["finished"] and torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)["weighter"] is not None
    import pytest

    from clearsight.train import ConfigError

    with pytest.raises(ConfigError, match="loss.reweight"):
        load_config(None, ["loss.reweight=yes"])
    bad = over[:3] + ["model.name=corun"] + over[4:]
    with pytest.raises(Exception, match="representation z"):
        Trainer(load_config(None, bad), progress=False)
