"""A small degradation classifier: which degradations (if any) does an image or a block show?

Stands in for DA-CLIP's degradation prompts in Colabator's coherence scores (DA-CLIP cannot be had here).
Fully convolutional with global average pooling, so it scores whole images and 32-px blocks alike.
Trained on our synthesis presets plus clean crops (``recipes/degradation_classifier.py``). A wider one, over
UDAIR's task list, is stored in ``udair.allinone`` as its identifier (``recipes/udair_identifier.py``).

Example:
    >>> import torch
    >>> net = DegradationClassifier()
    >>> net(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 9])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DegradationClassifier", "CLASSES", "HAZY"]

#: Output classes, in order.
CLASSES = ("clean", "day_haze", "dense_haze", "night_haze", "sand_dust", "low_light", "noise", "rain", "blur")
#: Classes that count as "hazy" for Colabator's haze-free probability.
HAZY = ("day_haze", "dense_haze", "night_haze", "sand_dust")


class DegradationClassifier(nn.Module):
    """Conv-BN-ReLU stages (widths ``widths``, stride 2 after the first), global average and max pooling, a
    linear head; inputs in [0, 1] of any size >= 8 px."""

    def __init__(self, widths=(16, 32, 64, 96), classes: int = len(CLASSES)) -> None:
        super().__init__()
        layers, c = [], 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, stride=1 if i == 0 else 2, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True), nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True)]  # fmt: skip
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)``."""
        f = self.features((x - 0.5) / 0.25)
        return self.head(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.forward(x).float(), 1)

    @torch.no_grad()
    def clear_probability(self, x: torch.Tensor) -> torch.Tensor:
        """``1 - P(hazy)`` per image ``(B,)``: Colabator's haze-free score."""
        p = self.probabilities(x)
        return 1.0 - p[:, [CLASSES.index(c) for c in HAZY]].sum(1)
