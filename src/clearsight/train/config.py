"""Typed training configurations: dataclasses loaded from YAML, with dotted ``key=value`` overrides.

Values of overrides are parsed as YAML scalars or flow collections (``optim.lr=2e-4``,
``data.presets={day_haze: 1, sand_dust: 0.5}``); nothing is ever ``eval``-ed. Unknown keys are refused
with the list of valid ones.

Example:
    >>> cfg = load_config(None, ["optim.iterations=20", "model.name=corun"])
    >>> cfg.optim.iterations, cfg.model.name
    (20, 'corun')
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._errors import ClearsightError

__all__ = [
    "TrainConfig",
    "ModelConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "load_config",
    "config_to_dict",
    "ConfigError",
]


class ConfigError(ClearsightError):
    """A training configuration is invalid (unknown key, wrong type, bad value)."""


@dataclass
class ModelConfig:
    """Which architecture to train (a name of :data:`clearsight.models.ARCHS`) and its arguments."""

    name: str = "corun"
    args: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # safetensors file to start from (fine-tuning)


@dataclass
class DataConfig:
    """Training and validation data.

    ``kind: synthesis`` crops ``sources`` (clean images, relative to ``root``) and degrades them on the fly
    with a mixture of ``presets`` (name: weight). ``kind: paired`` reads ``degraded``/``clean`` folders of
    pairs with the same names. Validation uses ``val_sources`` (never the training images) with a fixed seed.
    ``workers`` -1 picks one loader process per spare core; ``cache`` is how many decoded images (with their
    estimated depth) each loader process keeps, 0 for all of them. ``balanced`` fills every batch with each
    preset equally often (``batch`` must be a multiple of the number of presets).
    """

    kind: str = "synthesis"
    root: str = "."
    sources: list[str] = field(default_factory=list)
    presets: dict[str, float] = field(default_factory=lambda: {"day_haze": 1.0})
    depth: str = "random"  # the proxy benchmark's winner (docs/synthesis.md); the shipped recipes pin "mixed"
    crop: int = 256
    min_scale: float = 0.5
    batch: int = 8
    workers: int = -1
    cache: int = 0
    degraded: str | None = None
    clean: str | None = None
    val_sources: list[str] = field(default_factory=list)
    val_items: int = 32
    val_crop: int = 256
    balanced: bool = False


@dataclass
class LossConfig:
    """Weights of the loss terms (0 turns a term off) and the feature space of the contrast-perceptual loss.

    ``features``: ``random`` (a frozen random multi-scale conv net), ``gradient`` (fixed gradient and
    Laplacian-pyramid filters) or ``none``. The ASM term needs a model that returns a transmission.

    ``reweight`` (RSR's "invariant features" phase): ``rff`` (StableNet's random-Fourier-feature weight
    learner) or ``density`` (SRDO's density ratio) learns per-sample weights on the model's pooled
    representation ``z`` that multiply the per-sample L1 term; ``none`` weights every sample the same. It
    needs a model whose training output has ``z`` (the RSR network).

    ``cscl`` weighs UDAIR's cross-sample contrastive loss between the degradation embeddings of samples of the
    same preset (it needs ``data.balanced`` and a model whose training output has ``tokens``). ``ident`` weighs a
    supervised contrastive loss on the global degradation embedding that UDAIR identifies degradations from
    (:func:`~clearsight.train.losses.degradation_supcon`; our addition, also needs ``data.balanced``).
    """

    l1: float = 1.0
    asm: float = 0.01
    contrast: float = 0.2
    features: str = "random"
    reweight: str = "none"
    cscl: float = 0.0
    ident: float = 0.0


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and a cosine decay to ``min_lr``, iteration-based."""

    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    iterations: int = 1000
    warmup: int = 0
    clip: float = 1.0


@dataclass
class TrainConfig:
    """A whole training run. ``out`` holds checkpoints, logs and the exported weights.

    ``max_memory``: the training process's memory budget, ``auto`` (60% of the memory available at the start),
    ``off``, or a size such as ``8G``; a batch that would not fit runs as micro-batches with the same gradient
    (:mod:`clearsight.train.memory`).
    """

    name: str = "run"
    out: str = "runs/run"
    seed: int = 0
    device: str = "auto"
    amp: str = "bf16"
    channels_last: bool = True
    ema: float = 0.999
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 200
    val_metrics: list[str] = field(default_factory=lambda: ["psnr", "ssim"])
    tensorboard: bool = False
    max_memory: str = "auto"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    card: dict[str, Any] = field(default_factory=dict)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict (for YAML/JSON) of a config dataclass."""
    return dataclasses.asdict(cfg)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is typing.Union or str(origin) == "types.UnionType":
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} has the wrong type")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, args[0], key) for v in value] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): (_coerce(v, args[1], key) if args else v) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads '3e-4' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{sorted(unknown)[0]} (valid keys: {', '.join(prefix + n for n in names)})"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {p} is not a section")
    node[parts[-1]] = value


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML (or the defaults when ``path`` is None) and apply overrides.

    Args:
        path: YAML file; its top-level keys are the fields of :class:`TrainConfig`.
        overrides: ``section.key=value`` strings; values are parsed as YAML (``1e-4``, ``[1, 2]``, ``{a: 1}``).
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists() or p.is_dir():
            raise ConfigError(f"{p}: no such config file")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override {o!r} must look like key=value (e.g. optim.lr=2e-4)")
        key, raw = o.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(data, key.strip(), value)
    cfg = _build(TrainConfig, data)
    if cfg.amp not in ("bf16", "none"):
        raise ConfigError(f"amp must be bf16 or none, got {cfg.amp!r}")
    if cfg.optim.iterations < 1:
        raise ConfigError("optim.iterations must be at least 1")
    if cfg.data.kind not in ("synthesis", "paired"):
        raise ConfigError(f"data.kind must be synthesis or paired, got {cfg.data.kind!r}")
    if cfg.loss.features not in ("random", "gradient", "none"):
        raise ConfigError(f"loss.features must be random, gradient or none, got {cfg.loss.features!r}")
    if cfg.data.balanced and cfg.data.batch % max(1, len(cfg.data.presets)) != 0:
        raise ConfigError(
            f"data.balanced needs data.batch ({cfg.data.batch}) to be a multiple of the {len(cfg.data.presets)} presets"
        )
    if cfg.loss.cscl and not cfg.data.balanced:
        raise ConfigError("loss.cscl needs data.balanced: true (pairs of samples of each preset in every batch)")
    if cfg.loss.ident and not cfg.data.balanced:
        raise ConfigError("loss.ident needs data.balanced: true (pairs of samples of each preset in every batch)")
    if cfg.loss.reweight not in ("none", "rff", "density"):
        raise ConfigError(f"loss.reweight must be none, rff or density, got {cfg.loss.reweight!r}")
    return cfg
