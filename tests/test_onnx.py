"""ONNX export (``clearsight export``) and the onnxruntime backend (``restore --backend onnx``): every learned
restorer exports with dynamic sizes and matches torch within 2e-3 through the whole restorer (padding, reduced
pass, guided upsampling, projection, preview estimates)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import hazy_scene, run_cli, to_u8
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.slow

from clearsight.infer import restore_array  # noqa: E402
from clearsight.models import create_model, list_models, model_info, weights_file  # noqa: E402
from clearsight.models.onnx import OnnxNetwork, export_onnx  # noqa: E402

LEARNED = [n for n in list_models() if model_info(n).kind == "learned"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {n: export_onnx(weights_file(n), folder / f"{n}.onnx", check=False)["path"] for n in LEARNED}


def test_every_learned_restorer_is_covered():
    assert {"corun.haze", "udair.allinone", "ffdnet.denoise", "lowlight.lol"} <= set(LEARNED)


@pytest.mark.parametrize("name", LEARNED)
def test_onnx_matches_torch_through_the_restorer(exported, name):
    img = to_u8(hazy_scene(150, 214, seed=1)[0])  # sides that are no multiple of any network's divisor
    dark = (img * 0.25).astype(np.uint8) if name.startswith("lowlight") else img
    net = OnnxNetwork(exported[name])
    assert net.props["clearsight_name"] and net.divisor >= 1
    for max_pixels in (None, 20_000):  # full size, and a reduced pass carried back by guided upsampling
        torch_r = create_model(name, precision="fp32", max_pixels=max_pixels)
        onnx_r = create_model(name, max_pixels=max_pixels, backend="onnx", onnx_file=exported[name])
        x = dark.astype(np.float32) / 255
        a, _ = restore_array(x, torch_r)
        b, _ = restore_array(x, onnx_r)
        assert a.shape == b.shape == x.shape
        assert np.abs(a - b).max() <= 2e-3, (name, max_pixels, float(np.abs(a - b).max()))
        assert np.abs(a - x).mean() > 1e-3  # the network did something, so the comparison means something


def test_export_refuses_what_it_cannot_export(tmp_path):
    from clearsight._errors import ClearsightError

    r = run_cli("export", "dcp", "-o", str(tmp_path / "dcp.onnx"))
    assert r.returncode != 0 and "not a learned restorer" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("export", "ffdnet.denoise", "-o", str(tmp_path / "x.txt"))
    assert r.returncode != 0 and ".onnx" in r.stderr
    with pytest.raises(ClearsightError, match="no such ONNX file"):
        OnnxNetwork(tmp_path / "missing.onnx")


def test_cli_export_then_restore_with_onnxruntime(tmp_path, exported):
    out = tmp_path / "ffdnet.onnx"
    r = run_cli("export", "ffdnet.denoise", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "max abs difference" in r.stdout and out.is_file()
    src = tmp_path / "noisy.png"
    rng = np.random.default_rng(0)
    clean = to_u8(hazy_scene(90, 130, seed=2)[1])
    Image.fromarray(np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)).save(src)
    a = run_cli("restore", str(src), "-o", str(tmp_path / "t"), "-m", "ffdnet.denoise", "--precision", "fp32", "-q")
    b = run_cli("restore", str(src), "-o", str(tmp_path / "o"), "-m", "ffdnet.denoise", "--onnx", str(out), "-q")
    assert a.returncode == b.returncode == 0, b.stderr
    ta = np.asarray(Image.open(tmp_path / "t" / "noisy.png")).astype(int)
    tb = np.asarray(Image.open(tmp_path / "o" / "noisy.png")).astype(int)
    assert np.abs(ta - tb).max() <= 1
    wrong = run_cli("restore", str(src), "-o", str(tmp_path / "w"), "-m", "rsr.haze", "--onnx", str(out), "-q")
    assert wrong.returncode != 0 and "other weights" in wrong.stderr and "Traceback" not in wrong.stderr
    tta = run_cli("restore", str(src), "-o", str(tmp_path / "w"), "-m", "udair.allinone", "--tta", "--backend", "onnx")
    assert tta.returncode != 0 and "torch backend" in tta.stderr
