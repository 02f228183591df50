"""IRP predictor: how well can this frame be restored? One score in [0, 1] from the degraded frame alone.

Follows the plan of methods §4.2 ("gradually distilling and selectively fusing degradation features"), built
from scratch (no ImageNet backbone can be had here):

* **structure/degradation split of the input** with an edge-preserving guided filter (the original
  depends on ``guided_filter_pytorch``): the network sees the frame and its detail layer ``x - GF(x)``,
  where noise and lost edges live;
* **progressive distillation**: a strided CNN of ``len(widths)`` levels; at each level a degradation branch
  takes the level's high-pass response (feature minus its local mean) and adds the previous level's
  distilled features, so degradation evidence is refined level by level;
* **selective fusion**: each level's distilled features are pooled (mean and standard deviation) to a
  ``dim``-vector; SK-style attention (softmax over levels, per channel) weights the levels; an MLP maps the
  fused vector to the score (sigmoid).

The score is trained on the IRP labels of :mod:`clearsight.irp.labels` (``recipes/irp_dynamic.py``).

Example:
    >>> import torch
    >>> net = IRPNet(IRPConfig.tiny()).eval()
    >>> net(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..priors.filters import box_filter, guided_filter

__all__ = ["IRPConfig", "IRPNet"]


@dataclass
class IRPConfig:
    """Widths of the levels, the fusion width and the guided-filter split (radius in px, eps in [0, 1]^2)."""

    widths: tuple[int, ...] = (24, 32, 48, 64)
    dim: int = 64
    radius: int = 2
    eps: float = 1e-2

    @classmethod
    def tiny(cls) -> IRPConfig:
        return cls(widths=(8, 12, 16), dim=16)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class IRPNet(nn.Module):
    """The IRP predictor. Input :math:`(B, 3, H, W)` in [0, 1], any size >= 16 px; output :math:`(B,)` in [0, 1].

    Args:
        config: an :class:`IRPConfig` (default: the shipped size); keyword arguments override its fields.
    """

    def __init__(self, config: IRPConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or IRPConfig()
        if overrides:
            cfg = IRPConfig(**{**asdict(cfg), **overrides})
        cfg.widths = tuple(cfg.widths)
        self.config = cfg
        w = cfg.widths
        self.stem = _conv(6, w[0])
        self.levels = nn.ModuleList(
            [nn.Sequential(_conv(w[max(i - 1, 0)], w[i], 2), _conv(w[i], w[i])) for i in range(len(w))]
        )
        self.distill = nn.ModuleList([nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(inplace=True)) for c in w])
        self.carry = nn.ModuleList([nn.Conv2d(w[i - 1], w[i], 3, 2, 1) for i in range(1, len(w))])
        self.pool = nn.ModuleList([nn.Linear(2 * c, cfg.dim) for c in w])
        self.attn = nn.Sequential(nn.Linear(cfg.dim, max(cfg.dim // 2, 8)), nn.ReLU(inplace=True),
                                  nn.Linear(max(cfg.dim // 2, 8), len(w) * cfg.dim))  # fmt: skip
        self.head = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.ReLU(inplace=True), nn.Linear(cfg.dim, 1))

    def level_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled distilled features of each level :math:`(B, L, D)`."""
        gray = x.mean(1, keepdim=True)
        base = guided_filter(gray, x, self.config.radius, self.config.eps)
        f = self.stem(torch.cat([(x - 0.5) / 0.25, (x - base) * 8], 1))
        deg, vecs = None, []
        for i, level in enumerate(self.levels):
            f = level(f)
            d = self.distill[i](f - box_filter(f, 1))
            if deg is not None:
                d = d + self.carry[i - 1](deg)
            deg = d
            stats = torch.cat([d.mean((2, 3)), d.float().std((2, 3)).to(d.dtype)], 1)
            vecs.append(self.pool[i](stats))
        return torch.stack(vecs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.level_vectors(x)
        b, n, d = v.shape
        a = self.attn(v.sum(1)).view(b, n, d).softmax(1)
        return torch.sigmoid(self.head((a * v).sum(1))).squeeze(1)

    @torch.no_grad()
    def level_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The fusion's attention per level, averaged over channels :math:`(B, L)` (for inspection)."""
        v = self.level_vectors(x)
        b, n, d = v.shape
        return self.attn(v.sum(1)).view(b, n, d).softmax(1).mean(2)

    @torch.no_grad()
    def score(self, x: torch.Tensor, tile: int = 256, max_pixels: int = 512 * 512, bf16: bool = False) -> torch.Tensor:
        """Scores :math:`(B,)` at native resolution: images above ``max_pixels`` are scored as the mean over a
        3x3 grid of ``tile``-pixel crops (resizing would change the very blur and noise being judged)."""
        h, w = x.shape[-2:]
        if h < 16 or w < 16:
            raise ValueError(f"IRP needs images of at least 16x16 pixels, got {w}x{h}")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if h * w <= max_pixels:
                return self(x).float()
            th, tw = min(tile, h), min(tile, w)
            ys = [round(i * (h - th) / 2) for i in range(3)]
            xs = [round(i * (w - tw) / 2) for i in range(3)]
            crops = [x[..., y : y + th, c : c + tw] for y in ys for c in xs]
            return torch.stack([self(c).float() for c in crops]).mean(0)
