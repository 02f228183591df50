"""Per-sample weights that remove spurious correlations between features (RSR phase "invariant features").

Two learners, both returning non-negative weights that sum to one, to multiply the per-sample loss:

* :class:`RFFWeightLearner` (StableNet): random Fourier features of every feature dimension, then weights
  ``w = softmax(theta)`` optimised for a few inner steps to minimise the off-diagonal weighted cross-covariance
  of those features, with a memory bank of earlier features and weights so that small batches see more samples.
* :func:`density_ratio_weights` (SRDO, the variant in the authors' CGID code): a classifier tells the real
  feature rows from a column-wise permuted ("decorrelated") copy; ``w ~ 1/p(real | x) - 1`` (torch instead of
  the original sklearn MLP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["random_fourier_features", "weighted_cross_covariance", "decorrelation_loss", "RFFWeightLearner",
           "density_ratio_weights"]  # fmt: skip


def random_fourier_features(x: torch.Tensor, num_f: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """RFF of each feature dimension: ``(n, m) -> (n, m, num_f)``, StableNet's form.

    Each scalar ``x_j`` is mapped by random ``omega ~ N(0, 1)`` and ``b ~ U(0, 2 pi)``: ``mid = x omega + b``,
    min-max normalised per sample to ``[0, pi/2]``, then ``sqrt(2 / num_f) (cos(mid) + sin(mid))``.
    """
    n, m = x.shape
    w = torch.randn(1, m, num_f, generator=generator).to(x)
    b = (torch.rand(1, m, num_f, generator=generator) * 2 * math.pi).to(x)
    mid = x[:, :, None] * w + b
    lo = mid.amin(1, keepdim=True)
    hi = mid.amax(1, keepdim=True)
    mid = (mid - lo) / (hi - lo).clamp_min(1e-8) * (math.pi / 2)
    return math.sqrt(2.0 / num_f) * (torch.cos(mid) + torch.sin(mid))


def weighted_cross_covariance(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``Cov_w(Z) = (w Z)^T Z - (sum w z)(sum w z)^T`` for ``z`` ``(n, k)`` and weights ``w`` ``(n,)`` summing to 1."""
    wz = w[:, None] * z
    mean = wz.sum(0)
    return wz.T @ z - mean[:, None] * mean[None, :]


def decorrelation_loss(features: torch.Tensor, w: torch.Tensor, rff: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of squared off-diagonal weighted cross-covariances between feature dimensions (via their RFF)."""
    z = (rff if rff is not None else features[:, :, None]).flatten(1)
    c = weighted_cross_covariance(z, w)
    k = features.shape[1]
    f = z.shape[1] // k
    # only covariances between *different* features count: mask the blocks of one feature with itself
    same = torch.block_diag(*[torch.ones(f, f, device=z.device)] * k).bool()
    return (c.masked_fill(same, 0.0) ** 2).sum()


class RFFWeightLearner(nn.Module):
    """StableNet's weight learner with a memory bank.

    Args:
        dim: feature dimension; bank: rows kept in the memory bank (0: none).
        num_f: RFF per feature; epochs: inner optimisation steps per batch; lr: their SGD learning rate;
        penalty: weight of the concentration penalty ``n^(p-1) sum w^p`` (``p = decay_pow``; 1 at uniform
        weights); presave: EMA ratio of the bank after its first 10 updates; seed: RFF seed.

    The inner objective is StableNet's, made scale-free: the decorrelation loss is divided by its value under
    uniform weights (StableNet divides it by a constant ``lambda_p = 70`` tuned for 512-d features and batch
    128, which at other sizes lets one term swamp the other), plus ``penalty`` times the normalised
    ``sum w^decay_pow``.
    """

    def __init__(self, dim: int, bank: int = 256, num_f: int = 1, epochs: int = 20, lr: float = 1.0,
                 penalty: float = 0.1, decay_pow: int = 2, presave: float = 0.9, seed: int = 0) -> None:  # fmt: skip
        super().__init__()
        self.num_f, self.epochs, self.lr, self.penalty = num_f, epochs, lr, penalty
        self.decay_pow, self.presave, self.seed = decay_pow, presave, seed
        self.register_buffer("bank_z", torch.zeros(bank, dim))
        self.register_buffer("bank_w", torch.full((bank,), 1.0 / max(bank, 1)))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _update_bank(self, z: torch.Tensor, w: torch.Tensor) -> None:
        n = self.bank_z.shape[0]
        if n == 0:
            return
        k = min(n, z.shape[0])
        u = int(self.updates)
        ratio = u / (u + 1) if u < 10 else self.presave  # running mean first, then EMA
        self.bank_z[:k] = ratio * self.bank_z[:k] + (1 - ratio) * z[:k]
        self.bank_w[:k] = ratio * self.bank_w[:k] + (1 - ratio) * w[:k]
        self.updates += 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Weights ``(n,)``, non-negative and summing to one, for the rows ``z`` ``(n, dim)``; no gradient flows."""
        z = z.detach().float()
        n = z.shape[0]
        use_bank = self.bank_z.shape[0] > 0 and int(self.updates) > 0
        allz = torch.cat([z, self.bank_z]) if use_bank else z
        gen = torch.Generator().manual_seed(self.seed)
        rff = random_fourier_features(allz, self.num_f, gen)
        theta = torch.ones(n, device=z.device, requires_grad=True)
        opt = torch.optim.SGD([theta], lr=self.lr, momentum=0.9)

        def full(w: torch.Tensor) -> torch.Tensor:
            wall = torch.cat([w * (1 - self.presave), self.bank_w * self.presave]) if use_bank else w
            return wall / wall.sum()

        with torch.no_grad():
            ref = decorrelation_loss(allz, full(torch.full((n,), 1.0 / n, device=z.device)), rff).clamp_min(1e-12)
        for _ in range(self.epochs):
            w = F.softmax(theta, 0)
            conc = n ** (self.decay_pow - 1) * (w**self.decay_pow).sum()
            loss = decorrelation_loss(allz, full(w), rff) / ref + self.penalty * conc
            opt.zero_grad()
            loss.backward()
            opt.step()
        w = F.softmax(theta.detach(), 0)
        self._update_bank(z, w)
        return w


def density_ratio_weights(z: torch.Tensor, iters: int = 300, hidden: int = 32, seed: int = 0) -> torch.Tensor:
    """SRDO weights: ``w_i ~ 1/p(P|z_i) - 1`` from a classifier of real rows vs column-permuted rows; sum to one."""
    g = torch.Generator().manual_seed(seed)
    x = z.detach().float()
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    n, m = x.shape
    q = torch.stack([x[torch.randperm(n, generator=g), j] for j in range(m)], 1)
    torch.manual_seed(seed)
    clf = nn.Sequential(nn.Linear(m, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
    data = torch.cat([x, q])
    label = torch.cat([torch.ones(n), torch.zeros(n)])
    for _ in range(iters):
        loss = F.binary_cross_entropy_with_logits(clf(data)[:, 0], label)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = torch.sigmoid(clf(x)[:, 0]).clamp(1e-4, 1 - 1e-4)
    w = (1.0 / p - 1.0).clamp_min(0)
    return w / w.sum().clamp_min(1e-12)
