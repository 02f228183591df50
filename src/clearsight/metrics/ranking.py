"""Rank and linear correlation between predicted scores and ground truth: SRCC, PLCC, KRCC."""

from __future__ import annotations

import numpy as np

__all__ = ["srcc", "plcc", "krcc", "rankdata", "group_split"]


def _arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"score lists differ in length: {x.size} and {y.size}")
    if x.size < 2:
        raise ValueError("correlation needs at least two scores")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores contain NaN or infinite values")
    return x, y


def rankdata(a) -> np.ndarray:
    """Ranks starting at 1, ties given their average rank."""
    a = np.asarray(a, np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), np.float64)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def plcc(a, b) -> float:
    """Pearson linear correlation coefficient."""
    x, y = _arrays(a, b)
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def srcc(a, b) -> float:
    """Spearman rank correlation coefficient (Pearson on average ranks)."""
    x, y = _arrays(a, b)
    return plcc(rankdata(x), rankdata(y))


def krcc(a, b) -> float:
    """Kendall's tau-b rank correlation (handles ties)."""
    x, y = _arrays(a, b)
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    sx, sy = dx[iu], dy[iu]
    num = float((sx * sy).sum())
    den = np.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return num / den if den > 0 else 0.0


def group_split(pred, target) -> dict[str, float]:
    """Where a predictor's errors lie when the scores come in groups (scenes, bursts): between or within them.

    ``pred`` and ``target`` are ``(G, N)`` arrays: ``G`` groups of ``N`` scores. Each score is split into its
    group's mean and its deviation from it. Returns:

    * ``between_var`` / ``within_var``: the target's variance of group means and of deviations (which of the
      two dominates the overall SRCC);
    * ``srcc_group_means``: SRCC between predicted and true group means;
    * ``plcc_deviations``: PLCC between predicted and true deviations (the ordering inside groups);
    * ``srcc_true_means``: overall SRCC if the group means were predicted exactly (true means plus predicted
      deviations): what a perfect between-group predictor would reach;
    * ``srcc_true_deviations``: overall SRCC with predicted means plus true deviations.
    """
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.ndim != 2 or p.shape != t.shape or p.shape[0] < 2 or p.shape[1] < 2:
        raise ValueError(f"pred and target must both be (groups >= 2, scores >= 2) arrays, got {p.shape} and {t.shape}")
    pm, tm = p.mean(1, keepdims=True), t.mean(1, keepdims=True)
    return {
        "between_var": float(tm.var()),
        "within_var": float((t - tm).var()),
        "srcc_group_means": srcc(pm, tm),
        "plcc_deviations": plcc(p - pm, t - tm),
        "srcc_true_means": srcc(tm + (p - pm), t),
        "srcc_true_deviations": srcc(pm + (t - tm), t),
    }
