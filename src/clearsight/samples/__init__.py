"""Sample images shipped with clearsight.

They are self-made: procedural outdoor scenes rendered by ``scripts/make_samples.py`` from nothing
but code (no photographs), degraded with clearsight's own scattering model. They may be shipped and
reused freely (same licence as the project).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["sample_dir", "sample_paths"]


def sample_dir() -> Path:
    """Folder holding the sample images."""
    return Path(__file__).resolve().parent


def sample_paths() -> list[Path]:
    """The sample images, sorted by name."""
    return sorted(p for p in sample_dir().iterdir() if p.suffix.lower() in (".jpg", ".png"))
