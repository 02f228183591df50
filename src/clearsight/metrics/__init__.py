"""Image quality metrics behind one registry.

Each metric declares whether it needs a reference (``FR``) or not (``NR``), whether lower is better,
and its range, and returns one score per image, shape ``(B,)``.

Example:
    >>> import clearsight as cs, torch
    >>> m = cs.create_metric("psnr")
    >>> x = torch.rand(2, 3, 16, 16)
    >>> m(x, x.clamp(0, 0.9)).shape
    torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from .._registry import Registry
from .brisque import brisque
from .color import ciede2000
from .fog import fog_density
from .full_reference import ms_ssim, psnr, ssim
from .niqe import niqe
from .no_reference import colorfulness, entropy, haze_score, noise_level, rms_contrast
from .piqe import piqe
from .ranking import krcc, plcc, srcc

__all__ = [
    "MetricInfo",
    "Metric",
    "METRICS",
    "create_metric",
    "list_metrics",
    "psnr",
    "ssim",
    "ms_ssim",
    "ciede2000",
    "niqe",
    "brisque",
    "piqe",
    "fog_density",
    "srcc",
    "plcc",
    "krcc",
]


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of a metric.

    Attributes:
        name: registry name.
        mode: ``FR`` (needs a reference) or ``NR``.
        lower_better: whether a lower score means better.
        score_range: ``(low, high)``; ``None`` for an open end.
        description: one line.
    """

    name: str
    mode: Literal["FR", "NR"]
    lower_better: bool
    score_range: tuple[float | None, float | None]
    description: str
    fn: Callable[..., torch.Tensor] = field(repr=False, default=psnr)


class Metric(torch.nn.Module):
    """A callable metric with its metadata as attributes (``lower_better``, ``mode``, ``score_range``)."""

    def __init__(self, info: MetricInfo, **kwargs) -> None:
        super().__init__()
        self.info = info
        self.kwargs = kwargs

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def mode(self) -> str:
        return self.info.mode

    @property
    def lower_better(self) -> bool:
        return self.info.lower_better

    @property
    def score_range(self) -> tuple[float | None, float | None]:
        return self.info.score_range

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        if self.info.mode == "FR":
            if ref is None:
                raise ValueError(f"metric {self.name!r} needs a reference image")
            return self.info.fn(x, ref, **self.kwargs)
        return self.info.fn(x, **self.kwargs)


METRICS: Registry[MetricInfo] = Registry("metric")
for _info in (
    MetricInfo("psnr", "FR", False, (0.0, None), "peak signal-to-noise ratio in dB", psnr),
    MetricInfo("ssim", "FR", False, (-1.0, 1.0), "structural similarity, 11x11 Gaussian window", ssim),
    MetricInfo("ms_ssim", "FR", False, (0.0, 1.0), "multi-scale SSIM, 5 scales (>= 176 px)", ms_ssim),
    MetricInfo("ciede2000", "FR", True, (0.0, None), "mean CIEDE2000 colour difference", ciede2000),
    MetricInfo("haze_score", "NR", True, (0.0, 1.0), "mean dark channel: amount of veil", haze_score),
    MetricInfo("rms_contrast", "NR", False, (0.0, 0.5), "standard deviation of the luma", rms_contrast),
    MetricInfo("colorfulness", "NR", False, (0.0, None), "Hasler-Suesstrunk colourfulness", colorfulness),
    MetricInfo("entropy", "NR", False, (0.0, 8.0), "Shannon entropy of the luma histogram, bits", entropy),
    MetricInfo(
        "noise_level", "NR", True, (0.0, None), "noise sigma of the luma (Immerkaer), [0, 1] units", noise_level
    ),
    MetricInfo(
        "fog_density", "NR", True, (0.0, None), "FADE-style fog density, models fitted here (not FADE)", fog_density
    ),
    MetricInfo("brisque", "NR", True, (0.0, 100.0), "BRISQUE naturalness/artefacts (brisque package's model)", brisque),
    MetricInfo("niqe", "NR", True, (0.0, None), "NIQE naturalness, pristine model fitted here (>= 192 px)", niqe),
    MetricInfo("piqe", "NR", True, (0.0, 100.0), "PIQE block-based distortion score (training-free)", piqe),
):
    METRICS.register(_info.name, _info)


def list_metrics(pattern: str | None = None, mode: str | None = None) -> list[str]:
    """Registered metric names, filtered by shell-style ``pattern`` and ``mode`` (``FR``/``NR``)."""
    return [n for n in METRICS.names(pattern) if mode is None or METRICS.get(n).mode == mode]


def create_metric(name: str, **kwargs) -> Metric:
    """Build the metric ``name``; keyword arguments are passed to its function (e.g. ``data_range``)."""
    return Metric(METRICS.get(name), **kwargs)
