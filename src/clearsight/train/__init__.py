"""Training: typed configs, the trainer (EMA, checkpoints, exact resume, torchrun DDP), losses and datasets.

Example:
    >>> from clearsight.train import load_config
    >>> cfg = load_config(None, ["model.args={preset: tiny}", "optim.iterations=5"])
    >>> cfg.model.args
    {'preset': 'tiny'}
"""

from .config import ConfigError, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig, load_config
from .losses import ContrastPerceptualLoss, GradientFeatures, RandomFeatures, RestorationLoss
from .trainer import Trainer, train

__all__ = [
    "ConfigError",
    "ContrastPerceptualLoss",
    "DataConfig",
    "GradientFeatures",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RandomFeatures",
    "RestorationLoss",
    "TrainConfig",
    "Trainer",
    "load_config",
    "train",
]
