"""Degradation synthesis: operators, depth sources, procedural scenes, presets and pipelines."""

from .base import Degradation, Params
from .depth import estimate_depth, normalize_depth, random_depth
from .ops import DEGRADATIONS, create_degradation, list_degradations

__all__ = [
    "DEGRADATIONS",
    "Degradation",
    "Params",
    "create_degradation",
    "estimate_depth",
    "list_degradations",
    "normalize_depth",
    "random_depth",
]
