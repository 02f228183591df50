"""Saving and loading network weights as safetensors with the architecture in the file's metadata.

A weights file is self-describing: its metadata holds ``arch`` (a name of :data:`clearsight.models.ARCHS`),
``args`` (JSON, the builder's arguments) and free-form fields (iterations, recipe, scores), so
``clearsight restore --weights FILE`` needs nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from .._errors import ClearsightError

__all__ = ["save_weights", "load_weights", "read_metadata", "WEIGHTS_DIR"]

#: Folder of the weights shipped inside the package.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def save_weights(module: nn.Module, path: str | os.PathLike, arch: str, args: dict, **meta: Any) -> Path:
    """Write ``module``'s state dict (float32, contiguous) and metadata to ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in module.state_dict().items()}
    metadata = {"arch": arch, "args": json.dumps(args, sort_keys=True)}
    metadata.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors creates files readable by the owner only
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a weights file; a one-line error when the file is not a clearsight weights file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ClearsightError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types for corrupt files
        raise ClearsightError(f"{path}: not a safetensors weights file ({e})") from None
    if "arch" not in meta:
        raise ClearsightError(f"{path}: no 'arch' in its metadata; it was not written by clearsight")
    return meta


def load_weights(path: str | os.PathLike) -> tuple[nn.Module, dict[str, str]]:
    """Build the network a weights file describes and load its weights; returns it in eval mode and the metadata."""
    from safetensors.torch import load_file

    from .archs import build_arch

    meta = read_metadata(path)
    args = json.loads(meta.get("args", "{}"))
    net = build_arch(meta["arch"], **args)
    state = load_file(str(path))
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ClearsightError(
            f"{path}: weights do not fit arch {meta['arch']} {args} "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return net.eval(), meta
