"""``dcp-auto``: pick the classical restorer from simple scene statistics, and say which and why.

Statistics are taken on a 320-pixel preview:

* mean luminance ``Y`` (Rec. 601 luma in [0, 1]);
* mean CIELAB chroma ``(a*, b*)`` — sand and dust give a strong yellow-orange cast (``b* >> 0``);
* haze score: mean dark channel (7-pixel window) — clear daytime photos have dark channels near 0,
  haze lifts them.

Rules, in order (thresholds set by looking at the real images listed in ``docs/classical.md``, kept
round on purpose so they are not fitted to a handful of files):

1. ``dcp-dust`` if ``b* > 25`` and ``b* > 1.5 |a*|`` and ``Y >= 0.32`` (a bright, yellow veil);
2. ``dcp-night`` if ``Y < 0.32`` (night or dim scene);
3. ``dcp`` otherwise.

They are a heuristic: a sunset or a yellow wall can look like dust, a dark day-time scene like night.
Pass ``--model`` explicitly when you know the condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import Restorer, RestorerState, make_preview
from .dcp import DCP
from .dust import DustDCP, lab_cast_np
from .filters import dark_channel_np
from .night import NightDCP

__all__ = ["ClassicalAuto", "SceneStats", "scene_stats_np"]


@dataclass(frozen=True)
class SceneStats:
    """Statistics ``auto`` decides on (see the module docstring)."""

    luminance: float
    cast_a: float
    cast_b: float
    haze_score: float

    def __str__(self) -> str:
        return f"Y={self.luminance:.2f} a*={self.cast_a:.1f} b*={self.cast_b:.1f} haze={self.haze_score:.2f}"


def scene_stats_np(x: np.ndarray) -> SceneStats:
    """:class:`SceneStats` of a float32 ``(H, W, 3)`` image in [0, 1]."""
    p = make_preview(x, 320)
    y = cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)
    a, b = lab_cast_np(p)
    return SceneStats(float(y.mean()), a, b, float(dark_channel_np(p, 7).mean()))


class ClassicalAuto(Restorer):
    """Choose among ``dcp``, ``dcp-night`` and ``dcp-dust`` per image from :class:`SceneStats` (the classical
    baseline of ``auto``, which recognises degradations with :mod:`clearsight.recognition`)."""

    name = "dcp-auto"
    description = "picks dcp, dcp-night or dcp-dust per image from brightness, colour cast and haze score"

    night_luminance = 0.32
    dust_b = 25.0
    dust_ratio = 1.5

    def __init__(self) -> None:
        self.choices: dict[str, Restorer] = {"dcp": DCP(), "dcp-night": NightDCP(), "dcp-dust": DustDCP()}

    @property
    def halo(self) -> int:
        return max(r.halo for r in self.choices.values())

    def choose(self, stats: SceneStats) -> tuple[str, str]:
        """Return ``(method name, reason)`` for the given statistics."""
        if (
            stats.cast_b > self.dust_b
            and stats.cast_b > self.dust_ratio * abs(stats.cast_a)
            and (stats.luminance >= self.night_luminance)
        ):
            return "dcp-dust", f"yellow-orange cast b*={stats.cast_b:.1f} > {self.dust_b:g}"
        if stats.luminance < self.night_luminance:
            return "dcp-night", f"dark scene, mean luminance {stats.luminance:.2f} < {self.night_luminance:g}"
        return "dcp", f"daylight scene, haze score {stats.haze_score:.2f}"

    def prepare(self, preview: np.ndarray) -> RestorerState:
        stats = scene_stats_np(preview)
        method, reason = self.choose(stats)
        inner = self.choices[method].prepare(preview)
        return RestorerState(method, reason, {"stats": stats}, inner)

    def process(self, x: np.ndarray, state: RestorerState) -> np.ndarray:
        return self.choices[state.method].process(x, state.inner)

    def freeze(self, state: RestorerState) -> tuple[Restorer, RestorerState]:
        """The restorer picked for ``state`` and its state: a video keeps its first frame's pick."""
        return self.choices[state.method], state.inner
