"""Domain adaptation: CORAL alignment, sample re-weighting, Colabator pseudo-labelling, and ``adapt``.

Example:
    >>> import torch
    >>> from clearsight.adapt import coral_exp_loss
    >>> f = torch.randn(32, 4)
    >>> float(coral_exp_loss(f, f))
    0.0
"""

from .colabator import (
    LabelPool,
    PoolEntry,
    block_map,
    brisque_quality,
    classifier_clear_probability,
    clear_probability,
    naturalness_quality,
    sharpness_quality,
    strength_candidates,
    strong_augment,
    weight_map,
)
from .coral import Projection, coral_exp_loss, coral_loss, feature_covariance
from .reweight import RFFWeightLearner, decorrelation_loss, density_ratio_weights, random_fourier_features

__all__ = [
    "LabelPool",
    "PoolEntry",
    "Projection",
    "RFFWeightLearner",
    "block_map",
    "classifier_clear_probability",
    "clear_probability",
    "coral_exp_loss",
    "coral_loss",
    "decorrelation_loss",
    "density_ratio_weights",
    "feature_covariance",
    "random_fourier_features",
    "brisque_quality",
    "naturalness_quality",
    "sharpness_quality",
    "strength_candidates",
    "strong_augment",
    "weight_map",
]
