"""clearsight: restore photos degraded by haze, night haze, sand and dust, low light, noise, rain and blur.

Public API::

    import clearsight as cs
    img = cs.read_image("foggy.jpg")          # (1, 3, H, W) float32 in [0, 1]
    out = cs.restore(img, model="auto")       # restores what it recognises (a clean photo passes unchanged)
    cs.recognise("foggy.jpg").found           # what a photo needs; cs.judge(before, after) whether it was harmed
    cs.write_image("clear.png", out)
    cs.list_models(); cs.create_model("dcp", omega=0.9)
    cs.create_model("corun.haze")              # a shipped network; cs.load_restorer("my.safetensors")
    cs.create_metric("psnr")(out, reference)  # one score per image
    cs.tune_allocator()                        # faster network passes on Linux (the CLI does this itself)

Names are imported lazily, so ``import clearsight`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "read_image": "io",
    "write_image": "io",
    "load_image": "io",
    "save_image": "io",
    "ImageRecord": "io",
    "restore": "infer",
    "restore_files": "batch",
    "list_models": "models",
    "create_model": "models",
    "model_info": "models",
    "list_metrics": "metrics",
    "create_metric": "metrics",
    "ClearsightError": "_errors",
    "ImageReadError": "_errors",
    "ImageWriteError": "_errors",
    "EmptyImageFileError": "_errors",
    "UnsupportedImageError": "_errors",
    "CorruptImageError": "_errors",
    "ImageTooLargeError": "_errors",
    "ShapeError": "_errors",
    "UnknownNameError": "_errors",
    "physics": None,
    "priors": None,
    "metrics": None,
    "models": None,
    "io": None,
    "infer": None,
    "batch": None,
    "train": None,
    "load_restorer": "models",
    "tune_allocator": "runtime",
    "recognise": "models.auto",
    "judge": "judging",
}

__all__ = sorted(k for k in _LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'clearsight' has no attribute {name!r}")
    mod = _LAZY[name]
    if mod is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{mod}", __name__), name)


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from . import batch, infer, io, metrics, models, physics, priors, train
    from ._errors import (
        ClearsightError,
        CorruptImageError,
        EmptyImageFileError,
        ImageReadError,
        ImageTooLargeError,
        ImageWriteError,
        ShapeError,
        UnknownNameError,
        UnsupportedImageError,
    )
    from .batch import restore_files
    from .infer import restore
    from .io import ImageRecord, load_image, read_image, save_image, write_image
    from .judging import judge
    from .metrics import create_metric, list_metrics
    from .models import create_model, list_models, load_restorer, model_info
    from .models.auto import recognise
    from .runtime import tune_allocator
