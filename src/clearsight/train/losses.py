"""Losses of the restoration trainer: L1, the scattering-model reconstruction and the contrast-perceptual ratio.

The published contrast-perceptual loss compares VGG-19 ImageNet features, which cannot be had here. Two
feature spaces we can compute stand in for it (``docs/learned.md`` compares them on a short run):

* :class:`RandomFeatures`: a frozen VGG-shaped network (five levels, 3x3 convolutions, ReLU, max-pooling)
  with weights drawn from a fixed seed, read at the end of each level. Random convolutional features are
  known to carry a useful perceptual signal (texture statistics, edges at several scales).
* :class:`GradientFeatures`: fixed filters: image gradients and Laplacian-pyramid bands at five scales.

Example:
    >>> import torch
    >>> loss = ContrastPerceptualLoss("gradient")
    >>> x = torch.rand(1, 3, 32, 32)
    >>> float(loss(x, x, torch.rand(1, 3, 32, 32)))
    0.0
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RandomFeatures",
    "GradientFeatures",
    "ContrastPerceptualLoss",
    "asm_reconstruction",
    "cross_sample_contrastive",
    "degradation_supcon",
    "RestorationLoss",
]

#: Layer weights of the published loss (relu1_1 ... relu5_1).
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class RandomFeatures(nn.Module):
    """A frozen random VGG-like feature pyramid (widths 32, 64, 128, 128, 128), He-initialised from a seed."""

    def __init__(self, seed: int = 0, widths=(32, 64, 128, 128, 128)) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.levels = nn.ModuleList()
        c = 3
        for i, w in enumerate(widths):
            conv = nn.Conv2d(c, w, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (9 * c)) ** 0.5)
                conv.bias.zero_()
            self.levels.append(nn.Sequential(*([nn.MaxPool2d(2)] if i else []), conv, nn.ReLU()))
            c = w
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class GradientFeatures(nn.Module):
    """Fixed multi-scale features: horizontal/vertical gradients and the Laplacian band at five scales."""

    def __init__(self, scales: int = 5) -> None:
        super().__init__()
        self.scales = scales

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for _ in range(self.scales):
            low = F.avg_pool2d(x, 2) if min(x.shape[-2:]) >= 2 else x
            up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
            gx = x[..., :, 1:] - x[..., :, :-1]
            gy = x[..., 1:, :] - x[..., :-1, :]
            feats.append(torch.cat([F.pad(gx, (0, 1)), F.pad(gy, (0, 0, 0, 1)), x - up], 1))
            x = low
        return feats


class ContrastPerceptualLoss(nn.Module):
    """Sum over levels of ``w_l * L1(f(out), f(target)) / L1(f(out), f(negative))`` (the CORUN ratio loss).

    Pulls the output towards the clean target and pushes it away from the degraded input in a feature space.
    """

    def __init__(self, features: str = "random", weights=LAYER_WEIGHTS, eps: float = 1e-7) -> None:
        super().__init__()
        if features == "random":
            self.net: nn.Module = RandomFeatures()
        elif features == "gradient":
            self.net = GradientFeatures(len(weights))
        else:
            raise ValueError(f"features must be random or gradient, got {features!r}")
        self.weights, self.eps = tuple(weights), eps

    def forward(self, out: torch.Tensor, target: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        fo = self.net(out)
        with torch.no_grad():
            ft, fn = self.net(target), self.net(negative)
        loss = out.new_zeros(())
        for w, a, p, n in zip(self.weights, fo, ft, fn):
            loss = loss + w * F.l1_loss(a.float(), p.float()) / (F.l1_loss(a.float(), n.float()) + self.eps)
        return loss


def asm_reconstruction(
    image: torch.Tensor, transmission: torch.Tensor, airlight: torch.Tensor | float, degraded: torch.Tensor
) -> torch.Tensor:
    """Mean ``|J T + A (1 - T) - P|``: the restored scene re-hazed with its own transmission should give the input."""
    return F.l1_loss(image * transmission + airlight * (1 - transmission), degraded)


def cross_sample_contrastive(
    tokens: torch.Tensor, task: torch.Tensor, scale: torch.Tensor | float = 1 / 0.07
) -> torch.Tensor:
    """UDAIR's cross-sample contrastive loss (CSCL) over a batch holding two samples of each task.

    Per task, the anchor is the concatenation of its two samples' flattened degradation features and the
    positive the same two in a random order; a CLIP-style symmetric InfoNCE over the tasks x tasks logits
    ``scale * A P^T`` pulls embeddings of different images with the same degradation together and pushes
    different degradations apart. Unlike the released code the features are L2-normalised (its raw dot
    products of 24,576-d features saturate the softmax). The random order uses the global torch RNG (saved in
    training checkpoints, so resumed runs repeat it).
    """
    f = F.normalize(tokens.flatten(1).float(), dim=1)
    anchors, positives = [], []
    for t in task.unique(sorted=True):
        idx = (task == t).nonzero()[:, 0]
        if len(idx) < 2:
            raise ValueError("cross_sample_contrastive needs at least two samples of every task in the batch")
        a, b = f[idx[0]], f[idx[1]]
        anchors.append(torch.cat([a, b]))
        positives.append(torch.cat([b, a]) if torch.rand(()) < 0.5 else torch.cat([a, b]))
    if len(anchors) < 2:
        return f.new_zeros(())
    anc = torch.stack(anchors) / math.sqrt(2)
    pos = torch.stack(positives) / math.sqrt(2)
    scale = scale.float().clamp(max=100.0) if isinstance(scale, torch.Tensor) else min(float(scale), 100.0)
    logits = scale * anc @ pos.T
    labels = torch.arange(len(anchors), device=f.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def degradation_supcon(embedding: torch.Tensor, task: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """A supervised contrastive loss on the global degradation embeddings (our addition to UDAIR).

    For every sample, the other samples of the batch with the same ``task`` are positives and the rest
    negatives; the loss is the mean over anchors of ``-mean_pos log softmax(cos / temperature)`` (SupCon, with
    the anchor itself left out of the softmax). It shapes exactly the embedding that :meth:`UDAIR.identify`
    compares with the prototypes by cosine similarity, which the patch-level CSCL does not (its pooled 16x16
    features keep the image content, so same-degradation pairs of different images stay far apart). Samples
    whose task has no other sample in the batch are skipped; a batch without any positive pair gives zero.
    """
    f = F.normalize(embedding.flatten(1).float(), dim=1)
    n = f.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=f.device)
    logits = (f @ f.T / temperature).masked_fill(eye, float("-inf"))
    logp = logits.log_softmax(1).masked_fill(eye, 0.0)
    pos = (task[:, None] == task[None, :]) & ~eye
    count = pos.sum(1)
    keep = count > 0
    if not bool(keep.any()):
        return f.new_zeros(())
    per = -(logp * pos).sum(1)[keep] / count[keep]
    return per.mean()


class RestorationLoss(nn.Module):
    """The weighted sum of the enabled terms; returns the total and a dict of the terms (for logging).

    ``pred`` is the model's training output: a tensor, or a dict with ``image`` and optionally
    ``transmission`` and ``airlight``. ``batch`` holds ``degraded`` and ``clean``.
    """

    def __init__(
        self,
        l1: float = 1.0,
        asm: float = 0.0,
        contrast: float = 0.0,
        features: str = "random",
        cscl: float = 0.0,
        ident: float = 0.0,
    ) -> None:
        super().__init__()
        self.w_l1, self.w_asm, self.w_cp, self.w_cscl, self.w_ident = l1, asm, contrast, cscl, ident
        self.cp = ContrastPerceptualLoss(features) if contrast > 0 and features != "none" else None

    def forward(
        self, pred, batch: dict[str, torch.Tensor], weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """``weights`` (``(B,)``, summing to one) multiply the per-sample L1 term; uniform weights give the mean."""
        if isinstance(pred, torch.Tensor):
            pred = {"image": pred}
        out, clean, hazy = pred["image"].float(), batch["clean"], batch["degraded"]
        terms: dict[str, torch.Tensor] = {}
        if self.w_l1:
            if weights is None:
                terms["l1"] = self.w_l1 * F.l1_loss(out, clean)
            else:
                per = (out - clean).abs().mean((1, 2, 3))
                terms["l1"] = self.w_l1 * (weights.to(per) * per).sum()
        if self.w_asm and "transmission" in pred:
            a = pred.get("airlight", 1.0)
            a = a.float() if isinstance(a, torch.Tensor) else a
            terms["asm"] = self.w_asm * asm_reconstruction(out, pred["transmission"].float(), a, hazy)
        if self.cp is not None:
            terms["contrast"] = self.w_cp * self.cp(out, clean, hazy)
        if self.w_cscl and "tokens" in pred:
            terms["cscl"] = self.w_cscl * cross_sample_contrastive(pred["tokens"], batch["task"], pred["scale"])
        if self.w_ident and "embedding" in pred:
            terms["ident"] = self.w_ident * degradation_supcon(pred["embedding"], batch["task"])
        total = sum(terms.values()) if terms else out.new_zeros(())
        return total, {k: float(v.detach()) for k, v in terms.items()}
