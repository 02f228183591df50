"""Restoration models behind one registry.

For now the registry holds the training-free restorers of :mod:`clearsight.priors`; learned networks
join it under names of the form ``arch.weights`` (e.g. ``corun.s-haze``) as they are trained.

Example:
    >>> import clearsight as cs
    >>> "dcp" in cs.list_models()
    True
    >>> r = cs.create_model("dcp")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._errors import ClearsightError
from .._registry import Registry
from ..priors.auto import ClassicalAuto
from ..priors.base import Restorer
from ..priors.dcp import DCP
from ..priors.dust import DustDCP
from ..priors.night import NightDCP
from .archs import ARCHS, build_arch

__all__ = [
    "ModelInfo",
    "MODELS",
    "ARCHS",
    "create_model",
    "list_models",
    "model_info",
    "build_arch",
    "load_restorer",
    "weights_file",
    "AFFINE_DEFAULTS",
    "AFFINE_MODE_DEFAULTS",
    "MAX_PIXELS_DEFAULTS",
]


@dataclass(frozen=True)
class ModelInfo:
    """What a registered model is.

    Attributes:
        name: registry name.
        description: one line for ``clearsight models``.
        kind: ``classical`` (training-free), ``learned`` or ``combined`` (``auto``: recognition, then classical
            and learned restorers).
        factory: builds the restorer; keyword arguments override its configuration.
    """

    name: str
    description: str
    kind: str
    factory: Callable[..., Restorer]


MODELS: Registry[ModelInfo] = Registry("model")


def _auto(**overrides) -> Restorer:
    from .auto import Auto

    return Auto(**overrides)


MODELS.register("auto", ModelInfo("auto", (
    "recognises what a photo needs (noise, low light, haze, night haze, sand-dust) and restores only that; a clean "
    "photo is left unchanged; each step is checked for harm"), "combined", _auto))  # fmt: skip
for _cls in (ClassicalAuto, DCP, NightDCP, DustDCP):
    MODELS.register(_cls.name, ModelInfo(_cls.name, _cls.description, "classical", _cls))


def weights_file(model: str):
    """The weights file behind ``model``: a path to a ``.safetensors`` file as given, or the shipped file of
    the learned model ``arch.tag``; a one-line error for classical restorers and unknown names."""
    from pathlib import Path

    from .learned import WEIGHTS_DIR

    if Path(model).is_file():
        return Path(model)
    if MODELS.get(model).kind != "learned":
        raise ClearsightError(f"{model} is a classical restorer; this needs a learned model (e.g. corun.haze)")
    arch, _, tag = model.partition(".")
    return WEIGHTS_DIR / f"{arch}_{tag}.safetensors"


#: Default ``max_pixels`` per architecture where it differs from NetworkRestorer's 300000: a denoiser runs at full
#: resolution (a reduced pass carried back by guided upsampling would bring the input's noise back with it).
#: CORUN's reduced pass was chosen on validation (``benchmarks/corun_settings.py``: Kodak24 through day and dense
#: haze, never a benchmark folder): 80000 pixels scored 20.69 dB / SSIM 0.773 against 20.51 / 0.774 at 120000
#: and 20.19 / 0.783 at 300000 (the smallest pass within 0.001 SSIM of 120000's), and runs faster.
MAX_PIXELS_DEFAULTS: dict[str, int | None] = {"ffdnet": None, "corun": 80_000}
#: Context in pixels around each tile per architecture where it differs from NetworkRestorer's 32.
HALO_DEFAULTS: dict[str, int] = {"ffdnet": 48}

#: Default window radius (fraction of the shorter side) of the locally affine projection per architecture: on for
#: the dehazing networks, off for the all-in-one one (see :mod:`clearsight.models.learned` and ``docs/learned.md``).
AFFINE_DEFAULTS: dict[str, float] = {"corun": 0.07, "rsr": 0.07}
#: Default ``affine_mode`` per architecture where it differs from ``"channel"``. CORUN's was chosen on validation
#: (``benchmarks/corun_settings.py --modes``: Kodak24 through day and dense haze, no benchmark folder): ``"shared"``
#: keeps the input's hues and scores as well as ``"channel"``.
AFFINE_MODE_DEFAULTS: dict[str, str] = {"corun": "shared"}


def load_restorer(weights, name: str | None = None, pretrained: bool = True, **overrides) -> Restorer:
    """A restorer running the network of a weights file (``clearsight restore --weights FILE``).

    ``overrides`` go to :class:`~clearsight.models.learned.NetworkRestorer` (``precision``, ``max_pixels``,
    ``halo``, ``affine``, ``affine_mode``, ``gate``: on by default for UDAIR networks that identify their tasks);
    ``backend="onnx"`` runs the network's pass in onnxruntime, from ``onnx_file`` or from a graph exported once
    into the cache (:mod:`clearsight.models.onnx`). Dehazing architectures
    (:data:`AFFINE_DEFAULTS`) get the locally affine projection unless ``affine`` is given (``affine=None`` turns
    it off).
    """
    import json
    from pathlib import Path

    from ._weights import load_weights, read_metadata
    from .learned import NetworkRestorer

    if pretrained:
        net, meta = load_weights(weights)
    else:
        meta = read_metadata(weights)
        net = build_arch(meta["arch"], **json.loads(meta.get("args", "{}")))
    name = name or meta.get("name") or Path(weights).stem
    arch = meta.get("arch", "")
    backend, onnx_file = overrides.pop("backend", "torch"), overrides.pop("onnx_file", None)
    if backend not in ("torch", "onnx"):
        raise ValueError(f"backend must be torch or onnx, got {backend!r}")
    if backend == "onnx" or onnx_file:
        import sys

        from .onnx import network_for

        say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731 - the one-time export takes a minute
        overrides["onnx"] = network_for(weights_file(str(weights)), onnx_file, log=say)
    if "affine" not in overrides:
        overrides["affine"] = AFFINE_DEFAULTS.get(arch)
    if "affine_mode" not in overrides and arch in AFFINE_MODE_DEFAULTS:
        overrides["affine_mode"] = AFFINE_MODE_DEFAULTS[arch]
    if "gate" not in overrides and arch == "udair" and _identifies(net):
        overrides["gate"] = True  # chosen on Kodak24 validation (benchmarks/udair_gate.py, docs/allinone.md)
    if "max_pixels" not in overrides and arch in MAX_PIXELS_DEFAULTS:
        overrides["max_pixels"] = MAX_PIXELS_DEFAULTS[arch]
    if "halo" not in overrides and arch in HALO_DEFAULTS:
        overrides["halo"] = HALO_DEFAULTS[arch]
    return NetworkRestorer(net, name, meta.get("description", ""), **overrides)


def _identifies(net) -> bool:
    """A UDAIR network that can identify its tasks (an identifier, or a fitted prototype bank)."""
    if not getattr(net.config, "tasks", ()):
        return False
    return net.identifier is not None or bool(net.proto_embedding.abs().sum() > 0)


#: Architectures whose shipped weights are not image restorers (classifiers and predictors used by other parts).
_NOT_RESTORERS = {"degclass", "irp"}


def _register_shipped() -> None:
    from ._weights import read_metadata
    from .learned import WEIGHTS_DIR

    for f in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        arch, _, tag = f.stem.partition("_")
        if arch in _NOT_RESTORERS:
            continue
        name = f"{arch}.{tag}" if tag else arch
        try:
            desc = read_metadata(f).get("description", f"{arch} network")
        except ClearsightError as e:  # keep the other models usable; the error shows when this one is used
            desc = f"unusable: {e}"

        def factory(pretrained: bool = True, _f=f, _name=name, **kw) -> Restorer:
            return load_restorer(_f, _name, pretrained, **kw)

        MODELS.register(name, ModelInfo(name, desc, "learned", factory))


_register_shipped()


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered restorers, optionally filtered with a shell-style ``pattern``."""
    return MODELS.names(pattern)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``."""
    return MODELS.get(name)


def create_model(name: str, pretrained: bool = True, **overrides) -> Restorer:
    """Build the restorer called ``name``.

    Args:
        name: one of :func:`list_models`.
        pretrained: load shipped weights (learned models only; classical ones have none).
        **overrides: configuration fields to change, e.g. ``create_model("dcp", omega=0.8)``.
    """
    info = MODELS.get(name)
    if info.kind == "learned":
        return info.factory(pretrained=pretrained, **overrides)
    return info.factory(**overrides)
