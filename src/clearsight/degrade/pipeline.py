"""Pipelines of degradation stages, described as data, and the named presets.

A pipeline is a list of stage configs, each ``{"op": NAME, "p": PROBABILITY, **ranges}``, applied in
order. Each stage draws its own params per sample; ``p < 1`` makes it apply to a random subset of the
batch (the draw is part of the params, so replay is exact). YAML form::

    depth: geometry          # geometry | random | given (see clearsight.degrade.depth)
    near: [0.0, 0.3]         # depth of the nearest point is drawn from this range (hazy near points)
    stages:
      - {op: gamma, p: 0.5, gamma: [1.5, 3.0]}
      - {op: day_haze, beta: [0.4, 5.6], airlight: [0.25, 1.0]}
      - {op: noise, p: 0.5}
      - {op: jpeg, p: 0.5, quality: [30, 95]}

Example:
    >>> import torch
    >>> from clearsight.degrade.pipeline import Degrader
    >>> deg = Degrader.from_preset("day_haze")
    >>> x = torch.rand(2, 3, 32, 32)
    >>> y, params = deg(x, generator=torch.Generator().manual_seed(0))
    >>> torch.equal(deg.replay(x, params), y)
    True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_image
from .._errors import ClearsightError
from .base import Params, bernoulli, uniform
from .depth import estimate_depth, random_depth
from .ops import DEGRADATIONS

__all__ = ["PRESETS", "Degrader", "PipelineConfig", "list_presets", "load_pipeline_config"]


@dataclass
class PipelineConfig:
    """A pipeline as data.

    Attributes:
        stages: stage configs, each a mapping with ``op``, optional ``p`` and the op's range overrides.
        depth: default depth source when the caller gives none (``geometry`` or ``random``).
        near: range of the depth given to the nearest point; depth is remapped to ``[near, 1]`` so that
            close objects carry a little haze too, as they do in real fog.
        description: one line.
    """

    stages: list[dict[str, Any]]
    depth: str = "geometry"
    near: tuple[float, float] = (0.0, 0.0)
    description: str = ""


def _stage(op: str, p: float = 1.0, **kw) -> dict[str, Any]:
    return {"op": op, "p": p, **kw}


#: Named presets. Ranges of the haze-type presets are calibrated against real images; see docs/synthesis.md.
PRESETS: dict[str, PipelineConfig] = {
    "day_haze": PipelineConfig(
        [_stage("day_haze", beta=(0.5, 2.5), airlight=(0.65, 0.98)), _stage("noise", 0.3, sigma=(1 / 255, 8 / 255))],
        near=(0.0, 0.1),
        description="daytime haze and fog, grey airlight, light sensor noise",
    ),
    "dense_haze": PipelineConfig(
        [
            _stage("nonhomogeneous_haze", beta=(2.0, 4.5), airlight=(0.7, 0.98), strength=(0.2, 0.6)),
            _stage("noise", 0.4, sigma=(1 / 255, 10 / 255)),
        ],
        near=(0.15, 0.4),
        description="dense, patchy fog",
    ),
    "night_haze": PipelineConfig(
        [
            _stage("night_haze", exposure=(0.2, 0.6), ambient=(0.03, 0.2), glow=(0.3, 1.0), warmth=(0.3, 1.0)),
            _stage("noise", 0.3, sigma=(1 / 255, 5 / 255), probs=(0.2, 0.3, 0.2, 0.3)),
        ],
        near=(0.05, 0.3),
        description="night fog: dark scene, coloured lamps with glow, low spatially varying airlight, noise",
    ),
    "sand_dust": PipelineConfig(
        [_stage("sand_dust", saturation=(0.55, 0.9), value=(0.85, 1.0), absorb_b=(0.8, 1.0))],
        near=(0.05, 0.3),
        description="sand and dust: yellow-orange veil, blue scattered and absorbed",
    ),
    "low_light": PipelineConfig(
        [
            _stage("low_light", exposure=(0.1, 0.6), shot=(1e-5, 5e-4), read=(1e-4, 1e-3)),
            _stage("jpeg", 0.3, quality=(60, 95)),
        ],
        description="under-exposure in linear light with Poisson-Gaussian noise",
    ),
    "noise": PipelineConfig(
        [_stage("noise", sigma=(2 / 255, 25 / 255), probs=(0.25, 0.35, 0.2, 0.2))], description="sensor noise"
    ),
    "rain": PipelineConfig([_stage("rain")], description="rain streaks with a haze veil"),
    "blur": PipelineConfig(
        [_stage("motion_blur", 0.7), _stage("defocus", 0.4), _stage("noise", 0.5, sigma=(1 / 255, 5 / 255))],
        description="camera shake and defocus",
    ),
    "clean": PipelineConfig(
        [_stage("jpeg", 0.3, quality=(75, 95))],
        depth="random",
        description="no weather degradation (mild JPEG at most): all-in-one models learn to leave such images alone",
    ),
    "ridcp": PipelineConfig(
        [
            _stage("gamma", 0.5, gamma=(1.5, 3.0)),
            _stage("noise", 0.5, sigma=(2 / 255, 25 / 255), probs=(0.4, 0.4, 0.2, 0.0)),
            _stage("day_haze", beta=(0.4, 5.6), airlight=(0.25, 1.0), offset=0.025),
            _stage("jpeg", 0.5, quality=(30, 95)),
        ],
        description="the RIDCP/CORUN generator, published ranges (t = exp(-2 beta d), beta in [0.2, 2.8])",
    ),
    "rsr_mixed": PipelineConfig(
        [
            _stage("low_light", 0.3, exposure=(0.1, 0.6), gamma=(1.0, 1.2), shot=(1e-4, 1e-3), read=(1e-4, 1e-3)),
            _stage("day_haze", 0.45, beta=(0.5, 2.8), airlight=(0.6, 0.98)),
            _stage("sand_dust", 0.35),
            _stage("night_haze", 0.2),
            _stage("color_cast", 0.4, gains=(0.8, 1.2)),
            _stage("noise", 0.5, sigma=(2 / 255, 20 / 255)),
        ],
        near=(0.05, 0.3),
        description="RSR's composition: colour + noise + low light + haze (day, dust or night)",
    ),
}


def list_presets() -> list[str]:
    """Names of the built-in presets."""
    return sorted(PRESETS)


def load_pipeline_config(source: str | Path | Mapping | Sequence | PipelineConfig) -> PipelineConfig:
    """A :class:`PipelineConfig` from a preset name, a YAML file, a mapping, a list of stages or a config."""
    if isinstance(source, PipelineConfig):
        return copy.deepcopy(source)
    if isinstance(source, (str, Path)) and str(source) in PRESETS:
        return copy.deepcopy(PRESETS[str(source)])
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ClearsightError(f"{source}: neither a preset ({', '.join(list_presets())}) nor a YAML file")
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ClearsightError(f"{path}: invalid YAML ({e})") from None
        source = data
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        source = {"stages": list(source)}
    if not isinstance(source, Mapping) or "stages" not in source:
        raise ClearsightError("a pipeline config needs a 'stages' list")
    stages = [dict(s) for s in source["stages"]]
    for s in stages:
        if "op" not in s:
            raise ClearsightError(f"stage {s} has no 'op'; choose one of {', '.join(DEGRADATIONS.names())}")
    known = {"stages", "depth", "near", "description"}
    unknown = set(source) - known
    if unknown:
        raise ClearsightError(f"unknown pipeline keys {sorted(unknown)}; allowed: {sorted(known)}")
    return PipelineConfig(
        stages=stages,
        depth=str(source.get("depth", "geometry")),
        near=tuple(source.get("near", (0.0, 0.0))),
        description=str(source.get("description", "")),
    )


class Degrader(nn.Module):
    """A pipeline of degradation stages with per-sample draws and exact replay.

    ``degrader(clean, depth=None, generator=None) -> (degraded, params)``; ``params`` holds every draw
    (keys ``"{i}.{op}.{name}"``, plus ``"{i}.{op}.applied"`` and ``"near"``) and
    ``degrader.replay(clean, params, depth)`` reproduces the output bit for bit.
    """

    def __init__(self, config: PipelineConfig, name: str = "custom") -> None:
        super().__init__()
        self.config, self.name = config, name
        self.stages = nn.ModuleList()
        self.probs: list[float] = []
        for s in config.stages:
            kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in s.items() if k not in ("op", "p")}
            try:
                self.stages.append(DEGRADATIONS.get(s["op"])(**kw))
            except TypeError as e:
                raise ClearsightError(f"stage {s['op']!r}: {e}") from None
            self.probs.append(float(s.get("p", 1.0)))
        if config.depth not in ("geometry", "random", "given"):
            raise ClearsightError(f"unknown depth source {config.depth!r}; choose geometry, random or given")

    @classmethod
    def from_preset(cls, name: str, seed: int | None = None) -> Degrader:
        """Build a named preset (``seed`` is accepted for API symmetry; pass a generator when calling)."""
        if name not in PRESETS:
            from .._registry import Registry

            reg: Registry = Registry("preset")
            for n in PRESETS:
                reg.register(n, n)
            reg.get(name)
        return cls(copy.deepcopy(PRESETS[name]), name)

    @classmethod
    def from_config(cls, source: str | Path | Mapping | Sequence) -> Degrader:
        """Build from a preset name, a YAML path, a mapping or a list of stages."""
        name = str(source) if isinstance(source, (str, Path)) and str(source) in PRESETS else "custom"
        return cls(load_pipeline_config(source), name)

    @property
    def needs_depth(self) -> bool:
        return any(s.needs_depth for s in self.stages)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> Params:
        params: Params = {"near": uniform(batch, *self.config.near, generator)}
        for i, (stage, p) in enumerate(zip(self.stages, self.probs)):
            prefix = f"{i}.{stage.name}."
            params[prefix + "applied"] = (
                bernoulli(batch, p, generator) if p < 1 else torch.ones(batch, dtype=torch.bool)
            )
            for k, v in stage.sample(batch, generator).items():
                params[prefix + k] = v
        return params

    def default_depth(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.config.depth == "random":
            return random_depth(x.shape[0], x.shape[2], x.shape[3], generator).to(x.device, x.dtype)
        return estimate_depth(x)

    def apply(
        self, x: torch.Tensor, params: Params, depth: torch.Tensor | None = None, maps: dict | None = None
    ) -> torch.Tensor:
        check_image(x)
        if self.needs_depth:
            if depth is None:
                raise ClearsightError("this pipeline needs depth: pass depth= or call the degrader without params")
            near = params["near"].to(x.device, x.dtype).view(-1, 1, 1, 1)
            depth = near + (1 - near) * depth.to(x.dtype)
            if maps is not None:
                maps["depth"] = depth
        out = x
        for i, stage in enumerate(self.stages):
            prefix = f"{i}.{stage.name}."
            mask = params[prefix + "applied"]
            if not mask.any():
                continue
            sub = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix) and not k.endswith("applied")}
            idx = mask.nonzero().flatten()
            sub_maps: dict[str, torch.Tensor] | None = {} if maps is not None else None
            if bool(mask.all()):
                y = stage.apply(out, sub, depth, sub_maps)
            else:
                part = {k: v[idx] for k, v in sub.items()}
                y_part = stage.apply(out[idx], part, depth[idx] if depth is not None else None, sub_maps)
                y = out.clone()
                y[idx] = y_part
                if sub_maps and "transmission" in sub_maps:
                    full = torch.ones(x.shape[0], *sub_maps["transmission"].shape[1:], dtype=x.dtype, device=x.device)
                    full[idx] = sub_maps["transmission"]
                    sub_maps["transmission"] = full
            if sub_maps and "transmission" in sub_maps and maps is not None:
                maps["transmission"] = sub_maps["transmission"]
            out = y.clamp(0, 1)
        return out

    def forward(
        self,
        x: torch.Tensor,
        depth: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        params: Params | None = None,
        maps: dict | None = None,
    ) -> tuple[torch.Tensor, Params]:
        """Degrade ``x`` (sampling params unless given); returns ``(degraded, params)``.

        When the pipeline needs depth and none is given, the default source of the config is used and the
        depth is stored in ``params["depth"]`` so that replay sees the same depth.
        """
        if params is None:
            params = self.sample(x.shape[0], generator)
        if self.needs_depth and depth is None:
            depth = params.get("depth")
            if depth is None:
                depth = self.default_depth(x, generator)
                params["depth"] = depth
        return self.apply(x, params, depth, maps), params

    def replay(self, x: torch.Tensor, params: Params, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Apply recorded ``params`` again (exactly the same output)."""
        return self(x, depth=depth, params=params)[0]


def params_to_json(params: Params) -> dict[str, Any]:
    """Params of one image as JSON-friendly values (maps such as ``depth`` left out)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k == "depth":
            continue
        v = v.detach().cpu()
        out[k] = v.item() if v.numel() == 1 else v.tolist()
    return out


__all__ += ["params_to_json"]
