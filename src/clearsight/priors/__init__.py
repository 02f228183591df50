"""Classical, training-free restorers and the priors they are built on.

* filters: box and guided filters, dark channel, local maximum (torch and NumPy/OpenCV twins);
* airlight: airlight estimation (robust, He et al., quad-tree);
* dcp: dark channel prior dehazing; night: night haze with a spatially varying airlight;
  dust: sand-dust cast removal then DCP; dcp-auto: picks one of them per image.
"""

from .airlight import estimate_airlight, estimate_airlight_np
from .auto import ClassicalAuto, SceneStats, scene_stats_np
from .base import Restorer, RestorerState, make_preview
from .dcp import DCP, DCPConfig
from .dust import DustConfig, DustDCP
from .filters import (
    DarkChannel,
    GuidedFilter,
    box_filter,
    dark_channel,
    dark_channel_np,
    guided_filter,
    guided_filter_np,
    local_max,
)
from .night import NightConfig, NightDCP

__all__ = [
    "ClassicalAuto",
    "DCP",
    "DCPConfig",
    "DarkChannel",
    "DustConfig",
    "DustDCP",
    "GuidedFilter",
    "NightConfig",
    "NightDCP",
    "Restorer",
    "RestorerState",
    "SceneStats",
    "box_filter",
    "dark_channel",
    "dark_channel_np",
    "estimate_airlight",
    "estimate_airlight_np",
    "guided_filter",
    "guided_filter_np",
    "local_max",
    "make_preview",
    "scene_stats_np",
]
