"""CORUN: a cooperative unfolding network for dehazing (Fang et al., NeurIPS 2024), re-implemented.

The network unrolls ``K`` stages of an alternating minimisation of the atmospheric scattering model with the
airlight fixed to one, ``P = J * T + (1 - T)``:

* **TGDM** solves ``min_T ||(1 - P) - T (1 - J^)||^2 + lambda ||T - T_prev||^2`` in closed form, per channel,
  then a proximal network (**T-CPMM**, an MST U-Net) refines the transmission (not in the last stage);
* **SGDM** solves ``min_J ||P - (J T^ + 1 - T^)||^2 + gamma ||J - J_prev||^2`` in closed form, then a proximal
  network (**S-CPMM**) refines the scene.

Two options go beyond the paper and are off in its configuration (``CORUNConfig.paper()``):

* ``airlight="estimate"`` divides the input by a dark-channel airlight estimate before the unrolling and
  multiplies the result back, so the ``A = 1`` model holds for grey, yellow or dim airlights;
* ``t_init="dark_channel"`` starts the unrolling from the dark-channel-prior transmission instead of 0.5.

Example:
    >>> import torch
    >>> from clearsight.models.corun import CORUN, CORUNConfig
    >>> net = CORUN(CORUNConfig.tiny())
    >>> out = net(torch.rand(1, 3, 20, 30))
    >>> tuple(out.shape)
    (1, 3, 20, 30)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._pad import pad_to_multiple

__all__ = [
    "CORUN",
    "CORUNConfig",
    "MST",
    "tgdm",
    "sgdm",
    "dark_channel_torch",
    "estimate_airlight_torch",
]

_T_MIN, _T_MAX = 0.05, 0.999


# ---------------------------------------------------------------------------------------------------
# closed-form updates
# ---------------------------------------------------------------------------------------------------
def _nonzero(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    return torch.where(x == 0, torch.full_like(x, eps), x)


def tgdm(p: torch.Tensor, t_prev: torch.Tensor, j_hat: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Closed-form transmission update (TGDM), clamped to [0.05, 0.999].

    Minimises ``sum_c ||(1 - P_c) - T (1 - J^_c)||^2 + lam ||T - T_prev||^2`` over a 1-channel ``T``, with the
    paper's normalisation: numerator and denominator are divided by ``(1 - J^_c)`` before the channel sum.
    """
    p, t_prev, j_hat = p.float(), t_prev.float(), j_hat.float()
    a = _nonzero(1.0 - j_hat)
    num = ((1.0 - p) + lam * t_prev / a).sum(1, keepdim=True)
    den = _nonzero((a + lam / a).sum(1, keepdim=True))
    return (num / den).clamp(_T_MIN, _T_MAX)


def sgdm(p: torch.Tensor, t_hat: torch.Tensor, j_prev: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    """Closed-form scene update (SGDM): ``argmin_J ||P - (J T^ + 1 - T^)||^2 + gamma ||J - J_prev||^2``, in [0, 1]."""
    p, t_hat, j_prev = p.float(), t_hat.float(), j_prev.float()
    return ((t_hat * p + t_hat * t_hat - t_hat + gamma * j_prev) / (t_hat * t_hat + gamma)).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------------
# priors used by the optional airlight normalisation and dark-channel start
# ---------------------------------------------------------------------------------------------------
def dark_channel_torch(x: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """Dark channel of ``(B, 3, H, W)``: channel minimum, then a ``patch`` x ``patch`` minimum filter."""
    m = -x.amin(1, keepdim=True)
    r = patch // 2
    m = F.max_pool2d(F.pad(m, (r, r, 0, 0), mode="replicate"), (1, patch), stride=1)  # separable: rows, then columns
    return -F.max_pool2d(F.pad(m, (0, 0, r, r), mode="replicate"), (patch, 1), stride=1)


def estimate_airlight_torch(
    x: torch.Tensor, patch: int = 15, top: float = 0.001, bounds: tuple[float, float] = (0.3, 1.0)
) -> torch.Tensor:
    """He et al.'s airlight, batched: mean colour of the ``top`` fraction of pixels with the brightest dark channel.

    Returns ``(B, 3, 1, 1)``, clamped to ``bounds`` so that dark frames are not blown up.
    """
    b = x.shape[0]
    dark = dark_channel_torch(x, patch).flatten(1)
    k = max(1, int(round(dark.shape[1] * top)))
    idx = dark.topk(k, dim=1).indices
    cols = torch.gather(x.flatten(2), 2, idx[:, None, :].expand(b, 3, k))
    return cols.mean(2).clamp(*bounds)[..., None, None]


# ---------------------------------------------------------------------------------------------------
# MST proximal network (mask-free spectral-wise transformer U-Net)
# ---------------------------------------------------------------------------------------------------
class MSMSA(nn.Module):
    """Spectral-wise multi-head self-attention: tokens are pixels, attention is channel x channel."""

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = dim_head * heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(inner, dim, bias=True)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False, groups=dim),
            nn.GELU(approximate="tanh"),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False, groups=dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, H, W, C)
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        q, k, v = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, N, heads*d) -> (B, heads, d, N)
            return t.reshape(b, h * w, self.heads, self.dim_head).permute(0, 2, 3, 1)

        q, k, vh = split(q), split(k), split(v)
        # cosine similarity of k and q along the spatial axis; dividing the small (d x d) product by the norms
        # equals normalising q and k first, without two passes over the full-resolution tensors
        qn = torch.linalg.vector_norm(q, dim=-1, dtype=torch.float32).clamp_min(1e-12)
        kn = torch.linalg.vector_norm(k, dim=-1, dtype=torch.float32).clamp_min(1e-12)
        sim = (k @ q.transpose(-2, -1)).float() / (kn[..., :, None] * qn[..., None, :])
        attn = (sim * self.rescale).softmax(-1)  # (B, heads, d, d)
        out = (attn.to(vh.dtype) @ vh).permute(0, 3, 1, 2).reshape(b, h * w, self.heads * self.dim_head)
        out = self.proj(out).reshape(b, h, w, c)
        pos = self.pos_emb(v.reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return out + pos


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1, bias=False),
            nn.GELU(approximate="tanh"),
            nn.Conv2d(dim * mult, dim * mult, 3, padding=1, bias=False, groups=dim * mult),
            nn.GELU(approximate="tanh"),
            nn.Conv2d(dim * mult, dim, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class MSAB(nn.Module):
    """``num_blocks`` x [attention + x, then LayerNorm -> FFN + x]; the attention has no pre-norm."""

    def __init__(self, dim: int, dim_head: int, heads: int, num_blocks: int, ffn_mult: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList([MSMSA(dim, dim_head, heads), nn.LayerNorm(dim), FeedForward(dim, ffn_mult)])
            for _ in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        x = x.permute(0, 2, 3, 1)
        for attn, norm, ff in self.blocks:
            x = attn(x) + x
            x = ff(norm(x)) + x
        return x.permute(0, 3, 1, 2)


class MST(nn.Module):
    """The proximal U-Net: ``levels`` encoder levels doubling the width, a bottleneck, a mirrored decoder.

    Args:
        in_ch: input channels; out_ch: output channels (the output is added to the first ``out_ch`` inputs).
        dim: width of the first level; heads are ``width / dim`` at each level (one head of ``dim`` channels
            at the first level, as in the paper).
        levels: number of down-sampling levels (the input side must be a multiple of ``2 ** levels``).
        num_blocks: MSAB blocks per level, the last entry for the bottleneck.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        dim: int = 30,
        levels: int = 2,
        num_blocks=(1, 1, 1),
        ffn_mult: int = 4,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if len(num_blocks) != levels + 1:
            raise ValueError(f"num_blocks needs {levels + 1} entries (one per level and the bottleneck)")
        self.out_ch, self.levels = out_ch, levels
        self.embedding = nn.Conv2d(in_ch, dim, 3, padding=1, bias=False)
        self.encoder = nn.ModuleList()
        c = dim
        for i in range(levels):
            self.encoder.append(
                nn.ModuleList(
                    [
                        MSAB(c, dim, c // dim, num_blocks[i], ffn_mult),
                        nn.Sequential(nn.Conv2d(c, c // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2)),
                    ]
                )
            )
            c *= 2
        self.bottleneck = MSAB(c, dim, c // dim, num_blocks[-1], ffn_mult)
        self.decoder = nn.ModuleList()
        for i in range(levels):
            self.decoder.append(
                nn.ModuleList(
                    [
                        nn.Sequential(nn.Conv2d(c, c * 2, 3, padding=1, bias=False), nn.PixelShuffle(2)),
                        nn.Conv2d(c, c // 2, 1, bias=False),
                        MSAB(c // 2, dim, (c // 2) // dim, num_blocks[levels - 1 - i], ffn_mult),
                    ]
                )
            )
            c //= 2
        self.mapping = nn.Conv2d(dim, out_ch, 3, padding=1, bias=False)
        self.apply(self._init)
        if zero_init:  # start as the identity on the residual input
            nn.init.zeros_(self.mapping.weight)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.embedding(x)
        skips = []
        for block, down in self.encoder:
            f = block(f)
            skips.append(f)
            f = down(f)
        f = self.bottleneck(f)
        for (up, fuse, block), skip in zip(self.decoder, reversed(skips)):
            f = up(f)
            f = block(fuse(torch.cat([f, skip], 1)))
        return self.mapping(f) + x[:, : self.out_ch]


# ---------------------------------------------------------------------------------------------------
# CORUN
# ---------------------------------------------------------------------------------------------------
@dataclass
class CORUNConfig:
    """Configuration of :class:`CORUN`.

    Attributes:
        stages: number of unrolled stages ``K`` (at least 2: a first and a last stage).
        dim: width of the first level of every MST.
        levels: down-sampling levels of every MST.
        num_blocks: MSAB blocks per MST level and bottleneck.
        ffn_mult: expansion of the MSAB feed-forward (4 in the paper).
        zero_init: zero the last convolution of every MST, so the untrained network is the pure unrolled
            physics (the paper keeps PyTorch's default initialisation).
        airlight: ``one`` (the paper: A = 1) or ``estimate`` (normalise the input by a dark-channel airlight).
        t_init: ``constant`` (the paper: T0 = 0.5) or ``dark_channel`` (T0 from the dark channel prior).
        omega: haze kept by the dark-channel start (``1 - omega * dark``).
        patch: dark-channel patch of the optional priors.
    """

    stages: int = 4
    dim: int = 30
    levels: int = 2
    num_blocks: list[int] = field(default_factory=lambda: [1, 1, 1])
    ffn_mult: int = 4
    zero_init: bool = False
    airlight: str = "one"
    t_init: str = "constant"
    omega: float = 0.9
    patch: int = 15

    @classmethod
    def paper(cls) -> CORUNConfig:
        """The published configuration: 4 stages, MST dim 30, 3 levels of widths 30/60/120 and a 240 bottleneck."""
        return cls(stages=4, dim=30, levels=3, num_blocks=[1, 1, 1, 1])

    @classmethod
    def cpu(cls) -> CORUNConfig:
        """The CPU-sized configuration clearsight ships: 3 stages, dim 16, 2 levels, FFN x2, priors on."""
        return cls(
            stages=3,
            dim=16,
            levels=2,
            num_blocks=[1, 1, 1],
            ffn_mult=2,
            zero_init=True,
            airlight="estimate",
            t_init="dark_channel",
        )

    @classmethod
    def tiny(cls) -> CORUNConfig:
        """For tests: 2 stages, dim 8, one level."""
        return cls(stages=2, dim=8, levels=1, num_blocks=[1, 1])

    def to_dict(self) -> dict:
        return asdict(self)


class CORUN(nn.Module):
    """The cooperative unfolding network.

    ``forward(x)`` returns the restored image ``(B, 3, H, W)`` (not clamped; clamp for display).
    ``forward_train(x)`` returns a dict with ``image`` (the final ``J_K``), ``transmission`` (``T^_K``),
    ``airlight`` (``(B, 3, 1, 1)``, ones unless estimated) and the per-stage lists ``images`` and
    ``transmissions`` (final stage first, as in the paper's code).
    """

    def __init__(self, config: CORUNConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or CORUNConfig()
        if overrides:
            cfg = CORUNConfig(**{**cfg.to_dict(), **overrides})
        if cfg.stages < 2:
            raise ValueError("CORUN needs at least 2 stages")
        if cfg.airlight not in ("one", "estimate") or cfg.t_init not in ("constant", "dark_channel"):
            raise ValueError("airlight must be 'one' or 'estimate'; t_init 'constant' or 'dark_channel'")
        self.config = cfg
        self.size_divisor = 2**cfg.levels
        init = 0.3  # lambda = sigmoid(param) starts at sigmoid(0.3) ~ 0.574, as published; the sigmoid keeps it > 0

        def mst(i: int, o: int) -> MST:
            return MST(i, o, cfg.dim, cfg.levels, tuple(cfg.num_blocks), cfg.ffn_mult, cfg.zero_init)

        self.lam = nn.Parameter(torch.full((cfg.stages,), init))
        self.gam = nn.Parameter(torch.full((cfg.stages,), init))
        self.t_nets = nn.ModuleList(mst(4, 1) for _ in range(cfg.stages - 1))  # none in the last stage
        self.j_nets = nn.ModuleList(mst(4, 3) for _ in range(cfg.stages))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        return pad_to_multiple(x, max(self.size_divisor, 16))

    def estimate_airlight(self, x: torch.Tensor) -> torch.Tensor | None:
        """The airlight ``(B, 3, 1, 1)`` this network divides by (``None`` when it assumes A = 1)."""
        if self.config.airlight != "estimate":
            return None
        return estimate_airlight_torch(x.float(), self.config.patch)

    def forward_train(self, x: torch.Tensor, airlight: torch.Tensor | None = None) -> dict:
        cfg = self.config
        p, h, w = self._pad(x)
        if airlight is None:
            if cfg.airlight == "estimate":
                airlight = estimate_airlight_torch(p.float(), cfg.patch).to(p.dtype)
            else:
                airlight = torch.ones(p.shape[0], 3, 1, 1, dtype=p.dtype, device=p.device)
        if cfg.airlight == "estimate":
            p = p / airlight
        if cfg.t_init == "dark_channel":
            t = (1.0 - cfg.omega * dark_channel_torch(p.clamp(0, 1), cfg.patch)).clamp(_T_MIN, _T_MAX)
        else:
            t = torch.full_like(p[:, :1], 0.5)
        j = j_hat = p
        images, transmissions = [], []
        for k in range(cfg.stages):
            lam, gam = torch.sigmoid(self.lam[k]), torch.sigmoid(self.gam[k])
            t_hat = tgdm(p, t, j_hat, lam)
            t = self.t_nets[k](torch.cat([t_hat, j], 1)) if k < cfg.stages - 1 else t_hat
            j_hat = sgdm(p, t_hat, j, gam)
            j = self.j_nets[k](torch.cat([j_hat, t_hat], 1))
            images.append(j)
            transmissions.append(t_hat)
        images = [(im * airlight)[..., :h, :w] for im in reversed(images)]
        transmissions = [tt[..., :h, :w] for tt in reversed(transmissions)]
        return {
            "image": images[0],
            "transmission": transmissions[0],
            "airlight": airlight,
            "images": images,
            "transmissions": transmissions,
        }

    def forward(self, x: torch.Tensor, airlight: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_train(x, airlight)["image"]
