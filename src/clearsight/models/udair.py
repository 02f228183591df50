"""UDAIR, all-in-one restoration with a degradation codebook (``../shared/docs/methods.md`` §5.2).

A small Restormer (MDTA attention over channels, gated depth-wise feed-forward, pixel-(un)shuffle
resampling) restores the image; a degradation-aware module (DAM: a VQ-VAE-2-style encoder with two
EMA-updated codebooks, a straight-through estimator, an MLP and a gated channel transform) turns the input into
a degradation embedding ``E`` (``4 dim`` channels at 1/4 resolution) that is injected at three decoder levels.
Distribution adapters on the three injected embeddings are trained only at test time
(:mod:`clearsight.adapt.tta`).

Differences from the released code, all switchable through :class:`UDAIRConfig`:

* widths and block counts are configurable; ``cpu()`` is the shipped configuration, ``paper()`` the released
  one (dim 24, blocks 4/6/6/8, 512 codes of 64 dimensions, 128-channel DAM encoder);
* inputs are padded (reflect) to a multiple of 8 and cropped back;
* the unused VQ decoder branch is not built (it has no loss in the released code).

Example:
    >>> import torch
    >>> net = UDAIR(UDAIRConfig.tiny()).eval()
    >>> out = net.forward_train(torch.rand(2, 3, 24, 40))
    >>> tuple(out["image"].shape), tuple(out["embedding"].shape)
    ((2, 3, 24, 40), (2, 32))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import ShapeError
from ._pad import pad_to_multiple

__all__ = ["UDAIRConfig", "UDAIR", "VectorQuantizer", "GCT", "DistributionAdapter", "TransformerBlock", "identify_view"]

#: longest side of the view on which whole images are identified
IDENTIFY_SIDE = 512
#: shortest side below which an image holds too little to tell its degradation (as for IRP and BRISQUE)
IDENTIFY_MIN = 16


def identify_view(x: torch.Tensor, side: int = IDENTIFY_SIDE) -> torch.Tensor:
    """``x`` (B, 3, H, W) reduced by area averaging so that its longest side is at most ``side``: the degradation,
    not the detail, decides, and identifying a 12 MP photo at full size would cost seconds.

    Raises:
        ShapeError: the image is smaller than ``IDENTIFY_MIN`` pixels on a side.
    """
    if min(x.shape[-2:]) < IDENTIFY_MIN:
        h, w = x.shape[-2:]
        raise ShapeError(f"identification needs images of at least {IDENTIFY_MIN}x{IDENTIFY_MIN} pixels, got {w}x{h}")
    longest = max(x.shape[-2:])
    return x if longest <= side else F.interpolate(x, scale_factor=side / longest, mode="area")


_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass
class UDAIRConfig:
    """Sizes of :class:`UDAIR` (``dim`` is the first level's width; ``E`` has ``4 dim`` channels)."""

    dim: int = 24
    blocks: tuple[int, int, int, int] = (4, 6, 6, 8)
    refinement: int = 4
    heads: tuple[int, int, int, int] = (1, 2, 4, 8)
    ffn: float = 2.66
    codes: int = 512
    code_dim: int = 64
    dam_width: int = 128
    dropout: float = 0.3
    decay: float = 0.99
    residual_adapters: bool = True
    tasks: tuple[str, ...] = ()
    proto_size: int = 128
    identifier: tuple[int, ...] = ()

    @classmethod
    def paper(cls) -> UDAIRConfig:
        return cls()

    @classmethod
    def cpu(cls) -> UDAIRConfig:
        """The shipped configuration: two thirds of the width, a quarter of the blocks, a smaller codebook."""
        return cls(dim=16, blocks=(1, 2, 2, 2), refinement=1, codes=256, code_dim=32, dam_width=64)

    @classmethod
    def tiny(cls) -> UDAIRConfig:
        """For tests."""
        return cls(dim=8, blocks=(1, 1, 1, 1), refinement=1, codes=16, code_dim=8, dam_width=16)


class LayerNorm2d(nn.Module):
    """Restormer's "WithBias" layer norm over channels."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused kernel over the channel axis (a free view for channels-last tensors)
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, 1e-5)
        return y.permute(0, 3, 1, 2)


class MDTA(nn.Module):
    """Multi-Dconv-head transposed attention: attention across channels with L2-normalised q and k."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, 1, 1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, 1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class GDFN(nn.Module):
    """Gated depth-wise feed-forward network."""

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, 1, 1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dw(self.project_in(x)).chunk(2, 1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float = 2.66) -> None:
        super().__init__()
        self.norm1, self.attn = LayerNorm2d(dim), MDTA(dim, heads)
        self.norm2, self.ffn = LayerNorm2d(dim), GDFN(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stack(dim: int, n: int, heads: int, ffn: float) -> nn.Sequential:
    return nn.Sequential(*[TransformerBlock(dim, heads, ffn) for _ in range(n)])


def _down(c: int) -> nn.Sequential:  # c -> 2c, half size
    return nn.Sequential(nn.Conv2d(c, c // 2, 3, 1, 1, bias=False), nn.PixelUnshuffle(2))


def _up(c: int) -> nn.Sequential:  # c -> c/2, double size
    return nn.Sequential(nn.Conv2d(c, c * 2, 3, 1, 1, bias=False), nn.PixelShuffle(2))


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with a codebook updated by EMA (never by gradients) and a straight-through
    estimator. ``update`` switches the EMA update off (it runs only in training mode anyway).

    ``forward(x)`` takes ``(B, H, W, dim)`` and returns the quantised tensor (same shape), the commitment
    difference (returned for logging; the released code does not add it to the loss) and the code indices.
    """

    def __init__(self, dim: int, codes: int, decay: float = 0.99, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.codes, self.decay, self.eps = dim, codes, decay, eps
        self.update = True
        embed = torch.randn(dim, codes)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(codes))
        self.register_buffer("embed_avg", embed.clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = x.reshape(-1, self.dim).float()
        embed = self.embed
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ embed + embed.pow(2).sum(0, keepdim=True)
        ind = dist.argmin(1)
        if self.training and self.update:
            with torch.no_grad():
                onehot = F.one_hot(ind, self.codes).to(flat.dtype)
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(flat.T @ onehot, alpha=1 - self.decay)
                n = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (n + self.codes * self.eps) * n
                self.embed.copy_(self.embed_avg / size[None])
        q = F.embedding(ind, embed.T).view(*x.shape[:-1], self.dim).to(x.dtype)
        diff = (q.detach() - x).pow(2).mean()
        return x + (q - x).detach(), diff, ind.view(x.shape[:-1])


class _ResBlock(nn.Module):
    def __init__(self, c: int, mid: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, mid, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GCT(nn.Module):
    """Gated channel transformation (l2 mode): ``x (1 + tanh(gamma * emb / norm + beta))``."""

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.alpha * (x.float().pow(2).sum((2, 3), keepdim=True) + self.eps).sqrt()
        norm = self.gamma / (emb.pow(2).mean(1, keepdim=True) + self.eps).sqrt()
        return x * (1 + torch.tanh(emb * norm + self.beta)).to(x.dtype)


class DistributionAdapter(nn.Module):
    """1x1 (c -> 2c), GELU, depth-wise 3x3, GELU, squeeze-excitation, 1x1 (2c -> c); trains only at test time.

    The released adapter *replaces* the embedding and starts from a random initialisation that the network
    never saw in training. Ours is residual with a zero-initialised last conv (``residual=True``), so test-time
    adaptation starts from the trained network's own embedding and only moves it toward the source statistics.
    """

    def __init__(self, c: int, residual: bool = True) -> None:
        super().__init__()
        h, r = 2 * c, max(1, int(2 * c * 0.25))
        self.residual = residual
        self.inp = nn.Conv2d(c, h, 1)
        self.dw = nn.Conv2d(h, h, 3, 1, 1, groups=h)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(h, r, 1), nn.GELU(), nn.Conv2d(r, h, 1), nn.Sigmoid()
        )
        self.out = nn.Conv2d(h, c, 1)
        if residual:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.dw(F.gelu(self.inp(x))))
        y = self.out(y * self.se(y))
        return x + y if self.residual else y


class DAM(nn.Module):
    """The degradation-aware module: two-level VQ encoder, then MLP (dropout) + GELU + GCT -> ``E``."""

    def __init__(self, cfg: UDAIRConfig) -> None:
        super().__init__()
        c, e, out = cfg.dam_width, cfg.code_dim, 4 * cfg.dim
        r = max(1, c // 4)
        self.enc_b = nn.Sequential(
            nn.Conv2d(3, c // 2, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(c // 2, c, 4, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1), *[_ResBlock(c, r) for _ in range(3)], nn.ReLU(),
        )  # fmt: skip
        self.enc_t = nn.Sequential(
            nn.Conv2d(c, c // 2, 4, 2, 1), nn.ReLU(inplace=True), nn.Conv2d(c // 2, c, 3, 1, 1),
            *[_ResBlock(c, r) for _ in range(3)], nn.ReLU(),
        )  # fmt: skip
        self.quantize_conv_t = nn.Conv2d(c, e, 1)
        self.quantize_t = VectorQuantizer(e, cfg.codes, cfg.decay)
        self.dec_t = nn.Sequential(
            nn.Conv2d(e, c, 3, 1, 1), *[_ResBlock(c, r) for _ in range(3)], nn.ReLU(), nn.ConvTranspose2d(c, e, 4, 2, 1)
        )
        self.quantize_conv_b = nn.Conv2d(e + c, e, 1)
        self.quantize_b = VectorQuantizer(e, cfg.codes, cfg.decay)
        self.mlp = nn.Sequential(
            nn.Conv2d(e, 2 * e, 1),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Conv2d(2 * e, out, 1),
            nn.Dropout(cfg.dropout),
        )
        self.gct = GCT(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.enc_b(x)
        t = self.enc_t(b)
        qt, d1, _ = self.quantize_t(self.quantize_conv_t(t).permute(0, 2, 3, 1))
        dt = self.dec_t(qt.permute(0, 3, 1, 2))
        qb, d2, _ = self.quantize_b(self.quantize_conv_b(torch.cat([dt, b], 1)).permute(0, 2, 3, 1))
        return self.gct(F.gelu(self.mlp(qb.permute(0, 3, 1, 2)))), d1 + d2

    def quantizers(self) -> list[VectorQuantizer]:
        return [self.quantize_t, self.quantize_b]


class UDAIR(nn.Module):
    """The UDAIR network. ``forward`` restores; ``forward_train`` also returns the degradation embedding.

    Set ``tta = True`` to route the injected embeddings through the distribution adapters (at test time:
    :meth:`restore_tta`); :meth:`identify` recognises the degradation from the prototype bank.
    """

    size_divisor = 8

    def __init__(self, config: UDAIRConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = UDAIRConfig(**{**asdict(config or UDAIRConfig()), **overrides})
        cfg.blocks, cfg.heads, cfg.identifier = tuple(cfg.blocks), tuple(cfg.heads), tuple(cfg.identifier)
        self.config = cfg
        d, hd, f = cfg.dim, cfg.heads, cfg.ffn
        self.tta = False
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.patch_embed = nn.Conv2d(3, d, 3, 1, 1, bias=False)
        self.enc1 = _stack(d, cfg.blocks[0], hd[0], f)
        self.down1_2 = _down(d)
        self.enc2 = _stack(2 * d, cfg.blocks[1], hd[1], f)
        self.down2_3 = _down(2 * d)
        self.enc3 = _stack(4 * d, cfg.blocks[2], hd[2], f)
        self.down3_4 = _down(4 * d)
        self.latent = _stack(8 * d, cfg.blocks[3], hd[3], f)
        self.dam = DAM(cfg)
        e = 4 * d
        self.e4_conv = nn.Conv2d(e, 8 * d, 3, 1, 1)
        self.fuse4 = nn.Sequential(TransformerBlock(16 * d, 4, f), nn.Conv2d(16 * d, 8 * d, 1))
        self.up4_3 = _up(8 * d)
        self.reduce3 = nn.Conv2d(8 * d, 4 * d, 1, bias=False)
        self.dec3 = _stack(4 * d, cfg.blocks[2], hd[2], f)
        self.fuse3 = nn.Sequential(TransformerBlock(8 * d, 4, f), nn.Conv2d(8 * d, 4 * d, 1))
        self.up3_2 = _up(4 * d)
        self.reduce2 = nn.Conv2d(4 * d, 2 * d, 1, bias=False)
        self.dec2 = _stack(2 * d, cfg.blocks[1], hd[1], f)
        self.e2_conv = nn.Conv2d(e, 2 * d, 3, 1, 1)
        self.fuse2 = nn.Sequential(TransformerBlock(4 * d, 4, f), nn.Conv2d(4 * d, 2 * d, 1))
        self.up2_1 = _up(2 * d)
        self.dec1 = _stack(2 * d, cfg.blocks[0], hd[0], f)
        self.refinement = _stack(2 * d, cfg.refinement, hd[0], f)
        self.output = nn.Conv2d(2 * d, 3, 3, 1, 1, bias=False)
        ra = cfg.residual_adapters
        self.distrib_adapt4 = DistributionAdapter(8 * d, ra)
        self.distrib_adapt3 = DistributionAdapter(4 * d, ra)
        self.distrib_adapt2 = DistributionAdapter(2 * d, ra)
        self.logit_scale = nn.Parameter(torch.tensor(1 / 0.07).log())
        # the source prototype bank: per task, the mean injected embeddings of training crops of `proto_size`
        # and the mean global embedding (for identifying the degradation); filled by `fit_prototypes`
        t, ps = len(cfg.tasks), cfg.proto_size
        self.register_buffer("proto_e4", torch.zeros(t, 8 * d, ps // 8, ps // 8))
        self.register_buffer("proto_e3", torch.zeros(t, 4 * d, ps // 4, ps // 4))
        self.register_buffer("proto_e2", torch.zeros(t, 2 * d, ps // 2, ps // 2))
        self.register_buffer("proto_embedding", torch.zeros(t, 4 * d))
        # optional: a classifier of the task list trained apart (recipes/udair_identifier.py) that `identify`
        # prefers to the nearest prototype; it takes no part in restoration or training
        self.identifier = None
        if cfg.identifier:
            if not t:
                raise ValueError("an identifier needs the task list (config.tasks)")
            from .degclass import DegradationClassifier

            self.identifier = DegradationClassifier(cfg.identifier, classes=t)

    def adapter_parameters(self) -> list[nn.Parameter]:
        """The parameters test-time adaptation trains (the three distribution adapters)."""
        return [p for n, p in self.named_parameters() if n.startswith("distrib_adapt")]

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        return pad_to_multiple(x, self.size_divisor)

    def _inject(self, emb: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The embeddings injected at 1/8, 1/4 and 1/2 of the padded size ``size`` (before the adapters)."""
        h, w = size
        e4 = self.e4_conv(F.adaptive_avg_pool2d(emb, (h // 8, w // 8)))
        e3 = emb if emb.shape[-2:] == (h // 4, w // 4) else F.adaptive_avg_pool2d(emb, (h // 4, w // 4))
        e2 = self.e2_conv(F.interpolate(emb, size=(h // 2, w // 2), mode="nearest"))
        return e4, e3, e2

    def _adapt(self, e4, e3, e2):
        # float32 even under bf16 autocast: test-time adaptation moves the residual adapters by amounts far
        # below bf16's resolution of the embeddings (8 bits), which would round the adaptation away
        dt = e4.dtype
        with torch.autocast(e4.device.type, enabled=False):
            out = self.distrib_adapt4(e4.float()), self.distrib_adapt3(e3.float()), self.distrib_adapt2(e2.float())
        return tuple(o.to(dt) for o in out)

    def forward_train(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``image``; ``embedding`` (B, 4 dim): the global mean of ``E``, used to identify the degradation;
        ``tokens`` (B, 4 dim, 256): ``E`` pooled to 16x16 (the contrastive features); ``e4``, ``e3``, ``e2``: the
        injected embeddings (after the adapters when ``tta`` is set); ``scale``: the contrastive logit scale;
        ``commitment``: the codebooks' commitment difference (logged, not a loss)."""
        p, h, w = self._pad(x)
        s = p - self.mean
        e1 = self.enc1(self.patch_embed(s))
        e2 = self.enc2(self.down1_2(e1))
        e3 = self.enc3(self.down2_3(e2))
        lat = self.latent(self.down3_4(e3))
        emb, diff = self.dam(s)
        E4, E3, E2 = self._inject(emb, p.shape[-2:])
        if self.tta:
            E4, E3, E2 = self._adapt(E4, E3, E2)
        lat = self.fuse4(torch.cat([lat, E4], 1))
        d3 = self.dec3(self.reduce3(torch.cat([self.up4_3(lat), e3], 1)))
        d3 = self.fuse3(torch.cat([d3, E3], 1))
        d2 = self.dec2(self.reduce2(torch.cat([self.up3_2(d3), e2], 1)))
        d2 = self.fuse2(torch.cat([d2, E2], 1))
        d1 = self.refinement(self.dec1(torch.cat([self.up2_1(d2), e1], 1)))
        out = self.output(d1) + p
        return {
            "image": out[..., :h, :w],
            "embedding": emb.float().mean((2, 3)),
            "tokens": F.adaptive_avg_pool2d(emb.float(), 16).flatten(2),
            "e4": E4,
            "e3": E3,
            "e2": E2,
            "scale": self.logit_scale.exp(),
            "commitment": diff,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_train(x)["image"]

    # ------------------------------------------------------------------ degradation identification and TTA
    @torch.no_grad()
    def fit_prototypes(self, batches) -> None:
        """Fill the prototype bank from ``batches`` of dicts with ``degraded`` crops of ``proto_size`` and
        ``task`` indices into ``config.tasks`` (every task must occur)."""
        t = len(self.config.tasks)
        sums = [torch.zeros_like(b) for b in (self.proto_e4, self.proto_e3, self.proto_e2, self.proto_embedding)]
        counts = torch.zeros(t, device=self.proto_embedding.device)
        for batch in batches:
            out = self.forward_train(batch["degraded"])
            for k, task in enumerate(batch["task"].tolist()):
                for acc, key in zip(sums, ("e4", "e3", "e2", "embedding")):
                    acc[task] += out[key][k].float()
                counts[task] += 1
        if (counts == 0).any():
            missing = [self.config.tasks[i] for i in range(t) if counts[i] == 0]
            raise ValueError(f"no samples of task(s) {missing} to build their prototypes")
        for buf, acc in zip((self.proto_e4, self.proto_e3, self.proto_e2, self.proto_embedding), sums):
            buf.copy_(acc / counts.view(-1, *[1] * (acc.dim() - 1)))

    def _check_prototypes(self) -> None:
        if not self.config.tasks or not bool(self.proto_embedding.abs().sum() > 0):
            raise RuntimeError("this UDAIR network has no prototype bank (train it with tasks, then fit_prototypes)")

    @torch.no_grad()
    def identify(self, x: torch.Tensor, temperature: float = 0.05, method: str = "auto") -> torch.Tensor:
        """Probabilities ``(B, tasks)`` of each degradation.

        ``method="prototype"`` (UDAIR's rule): a softmax over the cosine similarities between the image's global
        codebook embedding and the tasks' prototype embeddings, at ``temperature``. ``"classifier"``: the
        softmax of the separately trained :attr:`identifier`. ``"auto"``: the classifier when the network has
        one, else the prototypes.
        """
        if method not in ("auto", "prototype", "classifier"):
            raise ValueError(f"method must be 'auto', 'prototype' or 'classifier', not {method!r}")
        if method == "classifier" and self.identifier is None:
            raise RuntimeError("this UDAIR network has no identifier (see recipes/udair_identifier.py)")
        if method != "prototype" and self.identifier is not None:
            was = self.identifier.training
            self.identifier.eval()
            with torch.autocast(x.device.type, enabled=False):
                p = self.identifier(x.float()).softmax(1)
            self.identifier.train(was)
            return p
        self._check_prototypes()
        p, _, _ = self._pad(x)
        emb = self.dam(p - self.mean)[0].float().mean((2, 3))
        sim = F.normalize(emb, dim=1) @ F.normalize(self.proto_embedding, dim=1).T
        return (sim / temperature).softmax(1)

    def restore_tta(self, x: torch.Tensor, steps: int = 5, lr: float = 1e-3, task: int | None = None) -> torch.Tensor:
        """Episodic test-time adaptation (§5.4) of each image of ``x``, then its restoration.

        Per image: the task is assigned by :meth:`identify` (or given as ``task``), the adapters take ``steps`` AdamW
        steps on ``1e5 sum_l ||Cov(S_l) - Cov(T_l)||_F / (4 d^2)`` between the task's source prototypes and the
        image's injected embeddings (pooled to the prototypes' size), the image is restored with the adapted
        adapters, and the adapters are reset. Dropout is off and the codebooks are not updated (the network
        runs in eval mode); only the adapters change, so the embedding is computed once and the loss needs no
        pass through the restoration network.
        """
        self._check_prototypes()
        saved = {k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith("distrib_adapt")}
        was_training, was_tta = self.training, self.tta
        self.eval()
        outs = []
        try:
            for i in range(x.shape[0]):
                xi = x[i : i + 1]
                p, _, _ = self._pad(xi)
                with torch.no_grad():
                    emb = self.dam(p - self.mean)[0]
                    base = [e.float() for e in self._inject(emb, p.shape[-2:])]
                    k = int(self.identify(xi).argmax(1)) if task is None else task
                protos = (self.proto_e4[k], self.proto_e3[k], self.proto_e2[k])
                params = self.adapter_parameters()
                for q in params:
                    q.requires_grad_(True)
                opt = torch.optim.AdamW(params, lr=lr)
                with torch.enable_grad():
                    for _ in range(steps):
                        loss = sum(
                            _coral_frobenius(src, F.adaptive_avg_pool2d(tgt, src.shape[-2:]))
                            for src, tgt in zip(protos, self._adapt(*base))
                        )
                        opt.zero_grad(set_to_none=True)
                        (1e5 * loss).backward()
                        opt.step()
                self.tta = True
                with torch.no_grad():
                    outs.append(self.forward_train(xi)["image"])
                self.tta = was_tta
                self.load_state_dict(saved, strict=False)  # episodic: every image starts from the same adapters
        finally:
            self.tta = was_tta
            self.load_state_dict(saved, strict=False)
            self.train(was_training)
        return torch.cat(outs)


def _coral_frobenius(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||Cov(S) - Cov(T)||_F / (4 d^2)`` with every spatial position a sample (UDAIR's form, not squared)."""

    def cov(f: torch.Tensor) -> torch.Tensor:
        rows = f.reshape(-1, f.shape[-3], f.shape[-2] * f.shape[-1]).permute(0, 2, 1).reshape(-1, f.shape[-3])
        rows = rows - rows.mean(0, keepdim=True)
        return rows.T @ rows / max(1, rows.shape[0] - 1)

    d = source.shape[-3]
    return torch.linalg.matrix_norm(cov(source.float()) - cov(target.float())) / (4 * d * d)
