"""The training engine: configs, losses, a short run that learns, exact resume after a kill, torchrun DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import hazy_scene, run_cli, scene, to_u8

from clearsight.io import save_image
from clearsight.train import ConfigError, ContrastPerceptualLoss, RandomFeatures, RestorationLoss, load_config, train
from clearsight.train.data import IterationBatches
from clearsight.train.losses import asm_reconstruction


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Clean images for synthesis and hazy/clean pairs, all generated."""
    root = tmp_path_factory.mktemp("data")
    for d in ("clean", "pairs/hazy", "pairs/clean"):
        (root / d).mkdir(parents=True)
    for i in range(4):
        save_image(root / "clean" / f"{i}.png", to_u8(scene(72, 88, seed=i)))
        hz, cl, _ = hazy_scene(48, 48, seed=i)
        save_image(root / "pairs/hazy" / f"{i}.png", to_u8(hz))
        save_image(root / "pairs/clean" / f"{i}.png", to_u8(cl))
    return root


def _overrides(root: Path, out: Path, **extra) -> list[str]:
    base = {
        "out": str(out), "data.root": str(root), "model.args": "{preset: tiny}", "amp": "none",
        "channels_last": "false", "data.workers": "0", "data.batch": "2", "data.crop": "32",
        "data.sources": "[clean]", "data.presets": "{day_haze: 1, sand_dust: 1}", "data.depth": "random",
        "data.val_sources": "[]", "log_every": "1", "ckpt_every": "4", "optim.lr": "2e-3",
        "optim.min_lr": "2e-3", "optim.iterations": "1000", "loss.contrast": "0.2", "loss.features": "random",
    }  # fmt: skip
    base.update({k.replace("__", "."): str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def _losses(out: Path) -> list[float]:
    with (out / "train_log.csv").open() as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


# ------------------------------------------------------------------------------------------ configs
def test_config_overrides_are_typed_and_checked(tmp_path):
    cfg = load_config(None, ["optim.lr=3e-4", "data.presets={a: 1, b: 2}", "data.sources=[x, y]", "amp=none"])
    assert cfg.optim.lr == 3e-4 and cfg.data.presets == {"a": 1.0, "b": 2.0} and cfg.data.sources == ["x", "y"]
    with pytest.raises(ConfigError, match="unknown key optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="expected a number"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["optim.lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_recipes_load():
    for path in Path(__file__).resolve().parents[1].glob("recipes/*.yaml"):
        if "stages" in path.read_text():  # degradation pipelines, not training configs
            continue
        load_config(path)


def test_batches_are_disjoint_across_ranks_and_resume_where_they_stopped():
    full = list(IterationBatches(0, 6, 3, rank=0, world=2))
    other = list(IterationBatches(0, 6, 3, rank=1, world=2))
    assert not {i for b in full for i in b} & {i for b in other for i in b}
    assert list(IterationBatches(4, 6, 3, rank=0, world=2)) == full[4:]


# ------------------------------------------------------------------------------------------ losses
def test_losses():
    x, neg = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    for feats in ("random", "gradient"):
        cp = ContrastPerceptualLoss(feats)
        assert float(cp(x, x, neg)) == 0.0
        near = (x + 0.05 * (neg - x)).clamp(0, 1)
        far = (x + 0.6 * (neg - x)).clamp(0, 1)
        assert float(cp(near, x, neg)) < float(cp(far, x, neg))
    assert all(torch.equal(a, b) for a, b in zip(RandomFeatures().parameters(), RandomFeatures().parameters()))
    t, a = torch.rand(2, 1, 32, 32), torch.tensor([0.9, 0.8, 0.7]).view(1, 3, 1, 1)
    hazy = x * t + a * (1 - t)
    assert float(asm_reconstruction(x, t, a, hazy)) < 1e-6
    total, terms = RestorationLoss(1.0, 0.1, 0.2)({"image": x, "transmission": t, "airlight": a},
                                                  {"clean": x, "degraded": hazy})  # fmt: skip
    assert float(total) < 1e-6 and set(terms) == {"l1", "asm", "contrast"}


def test_validation_psnr_of_identity_items_is_finite():
    from types import SimpleNamespace

    from clearsight.train.trainer import Trainer

    y = torch.rand(3, 32, 32)
    items = [{"degraded": y.clone(), "clean": y}, {"degraded": (y + 0.1).clamp(0, 1), "clean": y}]
    fake = SimpleNamespace(cfg=SimpleNamespace(val_metrics=["psnr"], amp="none"), device=torch.device("cpu"),
                           ema=lambda x: x * 0.9, _amp=False)  # fmt: skip
    res = Trainer.validate(fake, items)
    assert np.isfinite(res["input_psnr"]) and 40 < res["input_psnr"] <= 60
    assert np.isfinite(res["psnr"]) and res["psnr"] < res["input_psnr"]


def test_bf16_falls_back_to_float32_on_a_cpu_without_it(data_root, tmp_path, monkeypatch):
    import clearsight.train.trainer as trainer_mod

    cfg = load_config(None, _overrides(data_root, tmp_path / "run", amp="bf16"))
    monkeypatch.setattr(trainer_mod, "_bf16_ok", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert trainer_mod.Trainer(cfg, progress=False)._amp is False
    monkeypatch.setattr(trainer_mod, "_bf16_ok", lambda: True)
    assert trainer_mod.Trainer(cfg, progress=False)._amp is True


# ------------------------------------------------------------------------------------------ training runs
def test_short_run_decreases_the_loss(data_root, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(None, _overrides(data_root, out, data__kind="paired", data__degraded="pairs/hazy",
                                       data__clean="pairs/clean", data__crop=48, optim__iterations=20,
                                       **{"loss.contrast": 0}))  # fmt: skip
    res = train(cfg, progress=False)
    assert res["finished"] and Path(res["weights"]).is_file()
    losses = _losses(out)
    assert len(losses) == 20
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])


def _train_cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clearsight", "train", "/dev/null", *_overrides(root, out), "--no-progress", *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_kill_and_resume_reproduces_the_loss_curve(data_root, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_train_cmd(data_root, ref, "--stop-after", "12"), env=_env(), check=True, capture_output=True)
    proc = subprocess.Popen(_train_cmd(data_root, killed), env=_env(), stdout=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it (SIGKILL: no clean-up) once a checkpoint exists and it has gone past it
        if (killed / "checkpoint.pt").is_file() and (killed / "train_log.csv").is_file():
            if len(_losses(killed)) >= 9:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = len(_losses(killed))
    assert stopped_at < 1000, "the run finished before it could be killed"
    subprocess.run(_train_cmd(data_root, killed, "--stop-after", "12"), env=_env(), check=True, capture_output=True)
    a, b = _losses(ref), _losses(killed)
    assert len(a) == len(b) == 12
    assert np.allclose(a, b, rtol=1e-5, atol=1e-7), (a, b)


def test_torchrun_two_processes_hold_identical_weights(data_root, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "clearsight", "train", "/dev/null", *_overrides(data_root, out, optim__iterations=4),
           "--no-progress"]  # fmt: skip
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    sums = [json.loads((out / f"rank{r}.json").read_text())["checksum"] for r in (0, 1)]
    assert sums[0] == sums[1]
    assert len(_losses(out)) == 4 and (out / "ema.safetensors").is_file()


def test_cli_train_then_restore_with_the_weights(data_root, tmp_path):
    out = tmp_path / "cli"
    res = run_cli("train", "/dev/null", *_overrides(data_root, out, optim__iterations=3), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "finished at iteration 3" in res.stdout
    res = run_cli("restore", str(data_root / "pairs/hazy/0.png"), "-o", str(tmp_path / "restored"),
                  "--weights", str(out / "ema.safetensors"), "-q")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "restored/0.png").is_file()
    bad = run_cli("train", "/dev/null", "optim.lr=fast")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "expected a number" in bad.stderr
    empty = run_cli("train", "/dev/null", f"data.root={tmp_path}", "data.sources=[nothing]", f"out={tmp_path}/e")
    assert empty.returncode == 1 and "nothing" in empty.stderr


def test_every_shipped_weight_file_has_a_card_and_an_existing_recipe():
    from safetensors import safe_open

    from clearsight.models.learned import WEIGHTS_DIR

    root = Path(__file__).resolve().parents[1]
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    assert files
    for f in files:
        card = f.with_suffix(".md")
        assert card.is_file(), f"{f.name} has no model card"
        assert f.stat().st_size < 20 * 2**20, f"{f.name} is over 20 MB"
        with safe_open(str(f), "pt") as h:
            recipe = (h.metadata() or {}).get("recipe", "")
        assert recipe, f"{f.name} names no recipe"
        assert (root / recipe.split()[0]).is_file(), f"{f.name}: recipe {recipe.split()[0]} is missing"


# ------------------------------------------------------------------------------------------ memory budget
def test_sizes_and_splits():
    from clearsight.train.memory import parse_size, split_sizes

    assert parse_size("8G") == 8 * 2**30 and parse_size("512M") == 512 * 2**20 and parse_size("1.5GB") == 1.5 * 2**30
    assert parse_size("2GiB") == 2 * 2**30 and parse_size(1000) == 1000
    with pytest.raises(Exception, match="8G"):
        parse_size("lots")
    assert split_sizes(16, 16) == [16] and split_sizes(16, 5) == [4, 4, 4, 4] and split_sizes(7, 3) == [3, 2, 2]
    assert split_sizes(5, 1) == [1] * 5


def test_micro_batches_give_the_gradient_of_the_whole_batch():
    """Accumulated over micro-batches, even a loss that mixes samples (the contrast ratio) gives the same gradient."""
    from clearsight.models import build_arch
    from clearsight.train.memory import accumulate

    torch.manual_seed(0)
    net = build_arch("corun", preset="tiny")
    loss_mod = RestorationLoss(1.0, 0.01, 0.2, "random")
    x, y = torch.rand(5, 3, 32, 32), torch.rand(5, 3, 32, 32)
    batch = {"degraded": x, "clean": y}
    fwd = net.forward_train if hasattr(net, "forward_train") else net
    loss, _ = loss_mod(fwd(x), batch)
    loss.backward()
    whole = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    import contextlib

    loss2, _ = accumulate(fwd, x, [2, 2, 1], lambda pred: loss_mod(pred, batch), net, contextlib.nullcontext)
    assert abs(float(loss2) - float(loss.detach())) < 1e-6
    for a, b in zip(whole, [p.grad for p in net.parameters()]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    # a split that ignored the mixing (mean of the micro-batches' own losses) would differ: the test can fail
    net.zero_grad(set_to_none=True)
    naive = sum(loss_mod(fwd(x[s : s + n]), {"degraded": x[s : s + n], "clean": y[s : s + n]})[0] * n / 5
                for s, n in ((0, 2), (2, 2), (4, 1)))  # fmt: skip
    naive.backward()
    assert any(not torch.allclose(a, p.grad, atol=1e-6, rtol=1e-4) for a, p in zip(whole, net.parameters()))


def _memory_run(root: Path, out: Path, budget: str, *extra: str):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "corun_haze.yaml"
    args = ["train", str(recipe), f"data.root={root}", "data.sources=[clean]", "data.val_sources=[]",
            "data.workers=0", "data.batch=4", "data.crop=96", "model.args={preset: tiny}", "amp=none",
            f"out={out}", "optim.iterations=3", "ckpt_every=1", "log_every=1", "--no-progress",
            "--max-memory", budget, *extra]  # fmt: skip
    return run_cli(*args)


@pytest.mark.slow
def test_recipe_under_a_small_memory_budget_splits_the_batch_with_the_same_result(data_root, tmp_path):
    from safetensors.torch import load_file

    root = tmp_path / "data"
    (root / "clean").mkdir(parents=True)
    for i in range(4):
        save_image(root / "clean" / f"{i}.png", to_u8(scene(128, 128, seed=i)))
    whole = _memory_run(root, tmp_path / "whole", "64G")
    assert whole.returncode == 0, whole.stderr
    plan = json.loads((tmp_path / "whole" / "memory.json").read_text())
    assert plan["micro"] == [4] and plan["measured"] and plan["per_sample"] > 10 * 2**20
    assert plan["peak_rss"] > plan["baseline"] and "peak resident memory" in whole.stdout
    params = 3 * sum(v.numel() * 4 for v in load_file(tmp_path / "whole" / "ema.safetensors").values())
    budget = int(plan["baseline"] + params + 1.2 * (plan["fixed"] + 2.5 * plan["per_sample"]))
    split = _memory_run(root, tmp_path / "split", str(budget))
    assert split.returncode == 0, split.stderr
    plan_s = json.loads((tmp_path / "split" / "memory.json").read_text())
    assert len(plan_s["micro"]) > 1 and sum(plan_s["micro"]) == 4 and plan_s["exact"], plan_s
    assert "micro-batches" in split.stderr
    assert np.allclose(_losses(tmp_path / "whole"), _losses(tmp_path / "split"), atol=1e-5)
    a, b = load_file(tmp_path / "whole" / "ema.safetensors"), load_file(tmp_path / "split" / "ema.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    # stopped after 2 iterations and resumed: identical to the uninterrupted split run
    first = _memory_run(root, tmp_path / "resumed", str(budget), "--stop-after", "2")
    assert first.returncode == 0 and not (tmp_path / "resumed" / "ema.safetensors").exists(), first.stderr
    again = _memory_run(root, tmp_path / "resumed", str(budget))
    assert again.returncode == 0, again.stderr
    c = load_file(tmp_path / "resumed" / "ema.safetensors")
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_a_budget_too_small_for_one_sample_is_a_one_line_error(data_root, tmp_path):
    r = _memory_run(data_root, tmp_path / "tiny_budget", "100M")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "more than the memory budget" in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_low_light_recipe_night_pairs_keep_the_lamps_and_brighten_the_scene():
    """``recipes/lowlight_enhance.py``'s night pairs (session 38): in the dark capture the scene is dark and the lamp
    cores are at full brightness; the target is the scene at its normal exposure with the same lamps."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    try:
        import lowlight_enhance as recipe
    finally:
        sys.path.pop(0)
    clean = torch.full((3, 96, 128), 0.5)
    replay = torch.Generator().manual_seed(0)  # the lamps darken_with_lamps draws: after the exposure's draws
    recipe._draws(replay)
    light = recipe.lamps(96, 128, replay)
    assert light.shape == (3, 96, 128) and float(light.amax()) >= 1.0 and float(light.min()) >= 0.0
    low, high = recipe.darken_with_lamps(clean, torch.Generator().manual_seed(0))
    assert low.shape == high.shape == clean.shape
    core = light.amax(0) >= 2.0
    dim = light.amax(0) <= light.amax(0).quantile(0.2)  # the scene, furthest from the lamps' glow
    assert core.any()
    assert float(low.amin(0)[core].mean()) > 0.9 and float(high.amin(0)[core].mean()) > 0.9
    assert float(low[:, dim].mean()) < 0.5 * float(high[:, dim].mean())  # the scene is dark in the capture
    expected = (0.5**2.2 + light).clamp(0, 1) ** (1 / 2.2)  # the scene at its own exposure, the lamps as they were
    assert float((high - expected).abs().amax()) <= 1 / 255
