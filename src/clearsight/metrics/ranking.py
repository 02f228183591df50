"""Rank and linear correlation between predicted scores and ground truth: SRCC, PLCC, KRCC."""

from __future__ import annotations

import numpy as np

__all__ = ["srcc", "plcc", "krcc", "rankdata"]


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
