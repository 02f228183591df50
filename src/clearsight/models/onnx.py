"""ONNX export of the learned restorers and an onnxruntime backend for them (the optional ``onnx`` extra).

What the exported graph holds: the network's pass on an image whose height and width are multiples of the
network's size divisor (``divisor`` in the file's metadata; any such size, the dimensions are dynamic), in
float32. What stays outside it, as in the torch backend: padding to that multiple (reflect, as the network
does itself) and cropping back, the reduced-size pass with guided upsampling, the locally affine projection,
tiling, and the whole-image estimates computed once per image on a preview (CORUN's airlight, the low-light
network's exposure), which are graph inputs (``airlight`` ``(1, 3, 1, 1)``, ``globals`` ``(1, 5)``). So
``clearsight restore --backend onnx`` gives the torch backend's output up to float rounding; a deployment that
uses the file alone must pad and supply those inputs itself (the metadata names them).

Example:
    >>> from clearsight.models import weights_file             # doctest: +SKIP
    >>> from clearsight.models.onnx import export_onnx          # doctest: +SKIP
    >>> export_onnx(weights_file("ffdnet.denoise"), "ffdnet.onnx")["max_abs_diff"] < 2e-3  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._errors import ClearsightError
from ._pad import pad_to_multiple

__all__ = ["export_onnx", "OnnxNetwork", "cached_export", "network_for", "onnx_divisor"]

#: Opset of the exported graphs (onnxruntime 1.17 and later run it).
OPSET = 18


def _need_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401 - torch's exporter needs it
    except ImportError:
        raise ClearsightError("ONNX export and --backend onnx need: pip install 'clearsight[onnx]'") from None
    return onnxruntime


def onnx_divisor(arch: str, net: nn.Module) -> int:
    """The multiple the exported graph's height and width must be: what the network pads to itself (CORUN 16,
    RSR 32, UDAIR 8, FFDNet 2, the low-light network 8)."""
    if arch == "corun":
        return max(int(net.size_divisor), 16)
    return int(getattr(net, "size_divisor", 1))


def _extra_inputs(arch: str) -> list[str]:
    return {"corun": ["airlight"], "lowlight": ["globals"]}.get(arch, [])


class _Core(nn.Module):
    """The graph that is exported: the network with its whole-image estimates as explicit inputs."""

    def __init__(self, net: nn.Module, arch: str) -> None:
        super().__init__()
        self.net, self.arch = net, arch

    def forward(self, image: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if self.arch == "corun":
            return self.net(image, airlight=extra).clamp(0.0, 1.0)
        if self.arch == "lowlight":
            return self.net(image, globals_=extra).clamp(0.0, 1.0)
        return self.net(image).clamp(0.0, 1.0)


def _example_extra(arch: str, net: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    if arch == "corun":
        a = net.estimate_airlight(x)
        return a if a is not None else torch.ones(1, 3, 1, 1)
    if arch == "lowlight":
        return net.estimate_globals(x)
    return None


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_onnx(weights: str | os.PathLike, out: str | os.PathLike, check: bool = True) -> dict:
    """Export the network of a weights file (``clearsight.models.weights_file("corun.haze")`` for a shipped one)
    to ``out`` with dynamic height and width, then run the file in onnxruntime on a test image and compare it
    with torch. Returns ``{"path", "arch", "divisor", "inputs", "seconds", "max_abs_diff"}``."""
    _need_onnx()
    import onnx

    from ._weights import load_weights

    src = Path(weights)
    model = src.stem
    net, meta = load_weights(src)
    arch = meta["arch"]
    if arch in ("degclass", "irp"):
        raise ClearsightError(f"{model}: not an image restorer; export a learned restorer (clearsight models)")
    net = net.float().eval()
    if arch == "lowlight":
        net.exact_halves = True
    d = onnx_divisor(arch, net)
    core = _Core(net, arch).eval()
    extra_names = _extra_inputs(arch)
    x = torch.rand(1, 3, 4 * d if d >= 16 else 64, 6 * d if d >= 16 else 96, generator=torch.Generator().manual_seed(0))
    extra = _example_extra(arch, net, x)
    hd, wd = torch.export.Dim("h_blocks", min=1, max=16384 // d), torch.export.Dim("w_blocks", min=1, max=16384 // d)
    shapes: tuple = ({2: d * hd, 3: d * wd},) + ((None,) if extra is not None else ())
    args = (x,) + ((extra,) if extra is not None else ())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    t0 = time.perf_counter()
    quiet = logging.getLogger("torch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(
                core, args, input_names=["image", *extra_names], output_names=["restored"], dynamic_shapes=shapes,
                dynamo=True, opset_version=OPSET, verbose=False, report=False, optimize=True,
            )  # fmt: skip
        proto = prog.model_proto
        props = {"clearsight_arch": arch, "clearsight_name": meta.get("name") or src.stem, "divisor": str(d),
                 "pad": "replicate" if arch == "ffdnet" else "reflect",
                 "inputs": json.dumps(["image", *extra_names]), "weights_sha256": _sha(src),
                 "description": meta.get("description", "")}  # fmt: skip
        onnx.helper.set_model_props(proto, props)
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    except ClearsightError:
        raise
    except Exception as e:  # noqa: BLE001 - the exporter's many failure types, on one line
        raise ClearsightError(
            f"{model}: ONNX export failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e
    finally:
        quiet.setLevel(level)
        tmp.unlink(missing_ok=True)
    res = {"path": str(out), "arch": arch, "divisor": d, "inputs": ["image", *extra_names],
           "seconds": round(time.perf_counter() - t0, 1), "max_abs_diff": None}  # fmt: skip
    if check:  # a size the example did not have, so that a graph specialised to one size fails here
        y = torch.rand(
            1, 3, 5 * d if d >= 16 else 72, 7 * d if d >= 16 else 104, generator=torch.Generator().manual_seed(1)
        )
        e = _example_extra(arch, net, y)
        with torch.no_grad():
            ref = core(y, e).numpy()
        got = OnnxNetwork(out).run(y.numpy(), e.numpy() if e is not None else None)
        res["max_abs_diff"] = float(np.abs(got - ref).max())
    return res


class OnnxNetwork:
    """An exported graph in an onnxruntime session; :meth:`run` pads an image of any size, runs it, crops."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        ort = _need_onnx()
        self.path = Path(path)
        if not self.path.is_file():
            raise ClearsightError(f"{path}: no such ONNX file")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise ClearsightError(f"{path}: not a usable ONNX model ({str(e).splitlines()[0][:200]})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if "divisor" not in props:
            raise ClearsightError(f"{path}: not an ONNX file written by 'clearsight export'")
        self.arch, self.divisor = props.get("clearsight_arch", ""), int(props["divisor"])
        self.inputs = json.loads(props.get("inputs", '["image"]'))
        self.props, self.threads = props, threads

    def __getstate__(self) -> dict:  # a session does not pickle: a Dask worker opens the file again
        return {"path": str(self.path), "threads": self.threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["threads"])

    def run(self, x: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """``x`` ``(1, 3, H, W)`` float32 in [0, 1] -> the restored ``(1, 3, H, W)``."""
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.props.get("pad") == "replicate":  # as FFDNet pads an odd side itself
            h, w = t.shape[-2:]
            p = torch.nn.functional.pad(t, (0, (-w) % self.divisor, 0, (-h) % self.divisor), mode="replicate")
        else:  # reflect where the image is large enough, as the other networks pad
            p, h, w = pad_to_multiple(t, self.divisor)
        feeds = {"image": p.numpy()}
        if len(self.inputs) > 1:
            if extra is None:
                raise ClearsightError(f"{self.path}: the graph needs its '{self.inputs[1]}' input")
            feeds[self.inputs[1]] = np.ascontiguousarray(extra, dtype=np.float32)
        return self.session.run(None, feeds)[0][..., :h, :w]


def cache_dir() -> Path:
    """Where ``--backend onnx`` keeps the graphs it exported (``CLEARSIGHT_CACHE`` or ``~/.cache/clearsight``)."""
    base = os.environ.get("CLEARSIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "clearsight"
    )
    return Path(base).expanduser() / "onnx"


def cached_export(weights: str | os.PathLike, log=None, sha: str | None = None) -> Path:
    """The ONNX graph of a weights file, exported once into :func:`cache_dir` (keyed by the file's hash)."""
    src = Path(weights)
    path = cache_dir() / f"{src.stem}-{(sha or _sha(src))[:16]}-opset{OPSET}.onnx"
    if not path.is_file():
        if log is not None:
            log(f"exporting {src.name} to ONNX once (cached in {path.parent})")
        export_onnx(src, path, check=False)
    return path


def network_for(weights: str | os.PathLike, onnx_file: str | os.PathLike | None = None, log=None) -> OnnxNetwork:
    """The onnxruntime network of a weights file: ``onnx_file`` (refused when it was exported from other weights)
    or the graph :func:`cached_export` keeps."""
    sha = _sha(Path(weights))
    net = OnnxNetwork(onnx_file or cached_export(weights, log, sha))
    if net.props.get("weights_sha256") != sha:
        raise ClearsightError(f"{net.path}: exported from other weights than {weights}; export again")
    return net
